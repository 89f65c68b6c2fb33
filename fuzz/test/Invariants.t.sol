// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Handler} from "../src/Handler.sol";
import {IEngine, IToken, IVault, MarketInfo, PoolState, vm} from "../src/Interfaces.sol";

struct FuzzSelector {
    address addr;
    bytes4[] selectors;
}

/// The laws that read state (`checkLaws`), over a deep pool and, in `ThinPool`, a thin one.
/// The campaign (`Invariants`, `ThinPoolInvariants`) checks them after every step; a saved
/// failing sequence (test/regressions/) replays its steps with `_replay` and checks them too.
contract Laws {
    Handler internal h;
    IEngine internal ch;
    IToken internal token;
    IVault internal vault;
    address[] internal actors;
    bool internal canary; // MM_CAMPAIGN_CANARY=1: a law that fails at the first full liquidation

    function _pool() internal pure virtual returns (uint256 pool, uint256 insurance) {
        return (2_000_000e6, 20_000e6);
    }

    function setUp() public {
        (uint256 pool, uint256 insurance) = _pool();
        h = new Handler(pool, insurance);
        ch = h.ch();
        token = h.token();
        vault = h.vault();
        actors = h.actorList();
        canary = vm.envOr("MM_CAMPAIGN_CANARY", uint256(0)) == 1;
    }

    /// The end of every run: the acting laws once more, then this run's counters appended to
    /// reports/ (the campaign runner adds them up).
    function afterRun() public {
        h.probeAll();
        string memory broken = h.broken();
        if (bytes(broken).length != 0) _fail(broken);
        (bytes32[] memory names, uint256[] memory values) = h.counters();
        string memory line = "{";
        for (uint256 i; i < names.length; ++i) {
            line = string.concat(line, i == 0 ? '"' : ',"', _name(names[i]), '":', vm.toString(values[i]));
        }
        vm.writeLine(vm.envOr("MM_CAMPAIGN_COUNTERS", string("reports/counters.jsonl")), string.concat(line, "}"));
    }

    function _name(bytes32 b) internal pure returns (string memory) {
        uint256 n;
        while (n < 32 && b[n] != 0) ++n;
        bytes memory out = new bytes(n);
        for (uint256 i; i < n; ++i) out[i] = b[i];
        return string(out);
    }

    /// One step of a saved failing sequence (test/regressions/), then the laws.
    function _replay(address sender, bytes memory call) internal {
        vm.prank(sender);
        (bool ok,) = address(h).call(call);
        ok; // a step that reverts is skipped, as in the campaign
        checkLaws();
    }

    function _fail(string memory why) internal pure {
        revert(why);
    }

    /// Every law that reads state, in one call per step.
    function checkLaws() public view {
        string memory broken = h.broken();
        if (bytes(broken).length != 0) _fail(broken);
        // The pipeline's own check (tests/test_campaign.py): this law must be caught.
        if (canary && h.count("liquidations_full") > 0) _fail("canary: a full liquidation happened");

        uint256 balance = token.balanceOf(address(ch));
        uint256 pool = ch.pool_assets();
        uint256 insurance = ch.insurance_fund();
        uint256 debt = ch.total_debt();
        int256 sum;
        uint256 positive;
        uint256 negative;
        uint256 claims;
        uint256 outside;
        for (uint256 i; i < actors.length; ++i) {
            int256 c = ch.collateral(actors[i]);
            sum += c;
            if (c > 0) positive += uint256(c);
            else negative += uint256(-c);
            claims += ch.claims(actors[i]);
            outside += token.balanceOf(actors[i]);
        }
        // Conservation: the engine holds exactly its ledgers (a negative balance counted).
        if (int256(balance) != sum + int256(pool + insurance)) _fail("conservation broken");
        // Claims against assets: debt is never spendable.
        if (debt != negative) _fail("total_debt is not the sum of negative balances");
        if (pool < debt) _fail("the pool holds less than the debt");
        if (balance < positive + insurance + (pool - debt)) _fail("tokens short of the positive claims");
        if (ch.total_claims() != claims) _fail("total_claims is not the sum of claims");
        // The vault holds only what open requests escrowed; no token is made or lost.
        if (token.balanceOf(address(vault)) != h.escrowedAssets()) _fail("vault escrow differs from open deposits");
        if (vault.balanceOf(address(vault)) != vault.escrowed_shares()) _fail("escrowed shares differ");
        if (token.totalSupply() != outside + balance + token.balanceOf(address(vault))) _fail("tokens made or lost");
        // Open interest is the sum of the positions, per side.
        for (uint256 m; m < 2; ++m) {
            uint256 longs;
            uint256 shorts;
            for (uint256 i; i < 4; ++i) {
                int256 size = ch.position(actors[i], m).size;
                if (size > 0) longs += uint256(size);
                else shorts += uint256(-size);
            }
            MarketInfo memory info = ch.market(m);
            if (info.open_interest_long != longs || info.open_interest_short != shorts) {
                _fail("open interest is not the sum of the positions");
            }
        }
        // The pool's view agrees with the ledgers (it has no value while a market has no price).
        try ch.pool_state() returns (PoolState memory ps) {
            if (ps.pool_assets != pool || ps.total_debt != debt || ps.claims != claims) _fail("pool_state differs");
        } catch {}
    }
}

/// The thin pool (20,000 tokens, no insurance): profits outgrow it, claims and haircuts
/// happen, free liquidity runs out.
contract ThinPool is Laws {
    function _pool() internal pure virtual override returns (uint256 pool, uint256 insurance) {
        return (20_000e6, 0);
    }
}

/// The campaign's targets and hooks, shared by both worlds.
abstract contract Campaign is Laws {
    function targetContracts() public view returns (address[] memory out) {
        out = new address[](1);
        out[0] = address(h);
    }

    /// Only the actions: never the probes (they always revert) nor the views.
    function targetSelectors() public view returns (FuzzSelector[] memory out) {
        bytes4[] memory s = new bytes4[](26);
        s[0] = Handler.deposit.selector;
        s[1] = Handler.withdraw.selector;
        s[2] = Handler.open.selector;
        s[3] = Handler.open.selector; // opening twice as often as the rest
        s[4] = Handler.hedge.selector;
        s[5] = Handler.reduce.selector;
        s[6] = Handler.settleClaim.selector;
        s[7] = Handler.move.selector;
        s[8] = Handler.move.selector;
        s[9] = Handler.gap.selector;
        s[10] = Handler.crashAll.selector;
        s[11] = Handler.edge.selector;
        s[12] = Handler.passTime.selector;
        s[13] = Handler.refresh.selector;
        s[14] = Handler.liquidate.selector;
        s[15] = Handler.liquidateMany.selector;
        s[16] = Handler.addLiquidity.selector;
        s[17] = Handler.removeLiquidity.selector;
        s[18] = Handler.requestDeposit.selector;
        s[19] = Handler.requestWithdrawal.selector;
        s[20] = Handler.executeRequest.selector;
        s[21] = Handler.cancelRequest.selector;
        s[22] = Handler.transferShares.selector;
        s[23] = Handler.fundInsurance.selector;
        s[24] = Handler.togglePause.selector;
        s[25] = Handler.straddle.selector;
        bytes4[] memory more = new bytes4[](11);
        more[0] = Handler.changeRisk.selector;
        more[1] = Handler.setLiquidationParams.selector;
        more[2] = Handler.cancelRisk.selector;
        more[3] = Handler.setPoolReserve.selector;
        more[4] = Handler.setMarketLimits.selector;
        more[5] = Handler.swapFeed.selector;
        more[6] = Handler.settleDead.selector;
        more[7] = Handler.strangerCall.selector;
        more[8] = Handler.signedPrice.selector;
        more[9] = Handler.signedPrice.selector; // twice as often: prices drive everything
        more[10] = Handler.wick.selector;
        bytes4[] memory all = new bytes4[](s.length + more.length);
        for (uint256 i; i < s.length; ++i) all[i] = s[i];
        for (uint256 i; i < more.length; ++i) all[s.length + i] = more[i];
        out = new FuzzSelector[](1);
        out[0] = FuzzSelector(address(h), all);
    }

    function invariant_laws() public view {
        checkLaws();
    }

    function afterInvariant() public {
        afterRun();
    }
}

/// The campaign over the deep pool (2,000,000 tokens, 20,000 of insurance).
contract Invariants is Campaign {}

/// The campaign over the thin pool.
contract ThinPoolInvariants is Campaign, ThinPool {
    function _pool() internal pure override(Laws, ThinPool) returns (uint256 pool, uint256 insurance) {
        return ThinPool._pool();
    }
}
