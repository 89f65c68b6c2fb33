// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAggregator, IConfigurator, IEngine, IToken, IVault, vm} from "./Interfaces.sol";

/// The system the campaign drives, deployed from the Vyper build (bytecode/, exported from
/// Ape's manifest by `python -m margin_maintenance.campaign`) with the defaults of
/// `margin_maintenance.system.SystemParams`: a 6-decimal token, ETH-USD at 2,000 and BTC-USD
/// at 60,000, im 10%, mm 5%, liquidation fee 1%, trading fee 5 bps, a 2-hour stale window with
/// a 5% haircut, keeper share 50%, partial bound 80%, minimum reward 1 token, reserve 10%.
/// The deployer (the handler) owns the token, the aggregators and the configurator, and is
/// the guardian.
abstract contract World {
    uint256 internal constant USDC = 1e6;
    uint256 internal constant WAD = 1e18;
    uint256 internal constant BPS = 10_000;
    uint256 internal constant N_MARKETS = 2;
    uint256 internal constant HEARTBEAT = 3_600;
    uint256 internal constant STALE_WINDOW = 7_200;

    IToken public token;
    IVault public vault;
    IConfigurator public cfg;
    IEngine public ch;
    IAggregator[N_MARKETS] public aggs;
    int256[N_MARKETS] public answer; // each aggregator's answer, 8 decimals
    int256[N_MARKETS] internal minAnswer;
    int256[N_MARKETS] internal maxAnswer;
    uint256[N_MARKETS] internal defaultCap; // the open-interest cap each market starts with
    bool[N_MARKETS] public settled; // settled at a fixed price (its answer no longer moves)

    function _code(string memory name) internal view returns (bytes memory) {
        return vm.parseBytes(vm.readFile(string.concat("bytecode/", name, ".hex")));
    }

    function _create(string memory name, bytes memory args) internal returns (address out) {
        bytes memory init = bytes.concat(_code(name), args);
        assembly {
            out := create(0, add(init, 0x20), mload(init))
        }
        require(out != address(0), string.concat("deploy failed: ", name));
    }

    function _deploy(uint256 pool, uint256 insurance) internal {
        token = IToken(_create("MockERC20", abi.encode("USD Coin (mock)", "USDC", uint8(6))));
        vault = IVault(_create("LPVault", abi.encode("Margin Maintenance LP", "mmLP", uint8(12))));
        cfg = IConfigurator(_create("Configurator", ""));
        // The engine's cold functions run in its storage from the extension (its __default__);
        // no price updater here: the campaign's markets read their push feeds.
        address ext = _create(
            "ClearinghouseExtension", abi.encode(address(token), address(vault), address(cfg), address(0))
        );
        ch = IEngine(
            _create("Clearinghouse", abi.encode(address(token), address(vault), address(cfg), address(0), ext))
        );
        vault.bind(address(ch));
        cfg.bind(address(ch), address(this), 5_000, 8_000, 1 * USDC, 1_000);
        string[2] memory names = ["ETH / USD", "BTC / USD"];
        int256[2] memory start = [int256(2_000e8), int256(60_000e8)];
        uint256[2] memory maxOi = [uint256(1_000_000), uint256(50_000)];
        for (uint256 m; m < N_MARKETS; ++m) {
            address agg = _create("MockAggregator", abi.encode(uint8(8), names[m], start[m]));
            address feed = _create(
                "PriceFeed",
                abi.encode(agg, HEARTBEAT, int256(0), type(int256).max, address(0), uint256(0), STALE_WINDOW, 500)
            );
            cfg.add_market(feed, 1_000, 500, 100, 5, maxOi[m] * WAD, 10 * USDC);
            aggs[m] = IAggregator(agg);
            defaultCap[m] = maxOi[m] * WAD;
            answer[m] = start[m];
            minAnswer[m] = start[m] / 200; // 10 / 300 USD
            maxAnswer[m] = start[m] * 50;
        }
        if (pool > 0) {
            token.mint(address(this), pool);
            token.approve(address(ch), type(uint256).max);
            vault.add_liquidity(pool, 0);
            // Shares held by the deployer: an LP that never moves (the pool's floor).
        }
        if (insurance > 0) {
            token.mint(address(this), insurance);
            ch.fund_insurance(insurance);
        }
    }

    /// A fresh answer for market `m` (clamped to the world's price range), timed now.
    function _setAnswer(uint256 m, int256 a) internal {
        if (settled[m]) return;
        if (a < minAnswer[m]) a = minAnswer[m];
        if (a > maxAnswer[m]) a = maxAnswer[m];
        answer[m] = a;
        aggs[m].set_price(a);
    }

    function _refreshAll() internal {
        for (uint256 m; m < N_MARKETS; ++m) {
            aggs[m].set_price(answer[m]);
        }
    }

    /// The market's price as the engine reads it: WAD.
    function _priceWad(uint256 m) internal view returns (uint256) {
        return uint256(answer[m]) * 1e10;
    }
}
