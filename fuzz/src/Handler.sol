// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccountStatus, Log, MarketInfo, PoolState, Position, Request, vm} from "./Interfaces.sol";
import {World} from "./World.sol";

/// The actions of the campaign, each one step (forge calls them in random sequences), and the
/// laws that act: they run on a copy of the state (a call that always reverts, so nothing it
/// does survives) every PROBE_EVERY steps, whenever the pool holds less than the debt, and at
/// the end of every run. A law that fails stores its reason in `broken`, which the test's
/// invariant reads after every step (a handler revert alone would be ignored by forge).
///
/// Actors: traders 0-3, LPs 4-5 (with the deployer's floor LP), keepers 6-7, and a stranger
/// (8) who never deposits (a batch entry with no account).
contract Handler is World {
    uint256 internal constant N_TRADERS = 4;
    uint256 internal constant N_ACTORS = 9;
    uint256 internal constant FIRST_LP = 4;
    uint256 internal constant FIRST_KEEPER = 6;
    uint256 internal constant STRANGER = 8;
    uint256 public constant PROBE_EVERY = 64;
    uint256 internal constant SHARE_PROBE = 1e12;

    bytes32 internal constant LIQUIDATED =
        keccak256("Liquidated(address,address,uint256,uint256,uint256,uint256,int256,bool)");
    bytes32 internal constant BAD_DEBT = keccak256("BadDebtSettled(address,uint256,uint256,uint256,uint256)");
    bytes32 internal constant POSITION_CHANGED =
        keccak256("PositionChanged(address,uint256,int256,int256,uint256,int256,uint256)");
    bytes32 internal constant LIQUIDITY_ADDED = keccak256("LiquidityAdded(address,uint256,uint256)");
    bytes32 internal constant LIQUIDITY_REMOVED = keccak256("LiquidityRemoved(address,uint256,uint256)");
    bytes32 internal constant CLAIM_SETTLED = keccak256("ClaimSettled(address,uint256,uint256)");

    error ProbeDone(uint256 outcome); // a probe's normal end: undo everything it did
    error LawBroken(string why);

    address[N_ACTORS] public actors;
    string public broken; // the first law that failed, with what it saw ("" while all hold)

    // Ghosts: what the laws compare against.
    uint256 public escrowedAssets; // tokens open deposit requests hold in the vault
    uint256 internal realisedPrice; // pool assets per share after the last step
    bool internal priceFallExplained; // this step's events allow that price to fall
    uint256[] internal openRequests;

    // Counters of what the run reached (written by `report` at the end of every run).
    mapping(bytes32 => uint256) public count;
    bytes32[] internal counted;

    constructor(uint256 pool, uint256 insurance) {
        _deploy(pool, insurance);
        for (uint256 i; i < N_ACTORS; ++i) {
            address a = address(uint160(0x10000 + i));
            actors[i] = a;
            if (i == STRANGER) continue;
            token.mint(a, 1e9 * USDC);
            vm.startPrank(a);
            token.approve(address(ch), type(uint256).max);
            token.approve(address(vault), type(uint256).max);
            vm.stopPrank();
        }
        realisedPrice = _realisedPrice();
    }

    // ---- Counters ----

    function _count(bytes32 what) internal {
        if (count[what] == 0) counted.push(what);
        ++count[what];
    }

    function counters() external view returns (bytes32[] memory names, uint256[] memory values) {
        names = counted;
        values = new uint256[](names.length);
        for (uint256 i; i < names.length; ++i) {
            values[i] = count[names[i]];
        }
    }

    function _break(string memory why) internal {
        if (bytes(broken).length == 0) broken = why;
    }

    // ---- Picking inputs ----

    function _trader(uint256 seed) internal view returns (address) {
        return actors[seed % N_TRADERS];
    }

    function _lp(uint256 seed) internal view returns (address) {
        return actors[FIRST_LP + (seed % 2)];
    }

    function _keeper(uint256 seed) internal view returns (address) {
        // Mostly a keeper; sometimes a trader or an LP (anyone may liquidate).
        uint256 s = seed % 10;
        if (s < 6) return actors[FIRST_KEEPER + (s % 2)];
        return actors[s % FIRST_KEEPER];
    }

    function _between(uint256 seed, uint256 lo, uint256 hi) internal pure returns (uint256) {
        return lo + (seed % (hi - lo + 1));
    }

    // ---- Step bookkeeping: the per-step laws the handler can see (events) ----

    modifier step(bytes32 name) {
        vm.recordLogs();
        _;
        _count(name);
        _count("steps");
        _noteLogs(vm.getRecordedLogs());
        _afterStep();
    }

    /// Whether the step's events explain a fall of the realised share price (actions that read
    /// the events themselves pass them here, since reading them clears the record).
    function _noteLogs(Log[] memory logs) internal {
        for (uint256 i; i < logs.length && !priceFallExplained; ++i) {
            bytes32 t = logs[i].topics[0];
            if (t == BAD_DEBT) {
                (,, uint256 socialised,) = abi.decode(logs[i].data, (uint256, uint256, uint256, uint256));
                priceFallExplained = socialised > 0;
            } else if (t == POSITION_CHANGED) {
                (,,, int256 realised,) = abi.decode(logs[i].data, (int256, int256, uint256, int256, uint256));
                priceFallExplained = realised > 0;
            } else if (t == CLAIM_SETTLED || t == LIQUIDITY_ADDED || t == LIQUIDITY_REMOVED) {
                priceFallExplained = true;
            }
        }
    }

    function _afterStep() internal {
        // The realised LP share price (pool assets per share) falls only with socialised bad
        // debt, realised trader profit (paid now or as a settled claim), or an LP flow.
        uint256 price = _realisedPrice();
        if (price < realisedPrice) {
            if (!priceFallExplained) {
                _break(string.concat("LP share price fell: ", _s(realisedPrice), " -> ", _s(price)));
            }
            _count("share_price_drops");
        }
        realisedPrice = price;
        priceFallExplained = false;
        if (count["steps"] % PROBE_EVERY == 0 || ch.pool_assets() < ch.total_debt()) _probeAll();
    }

    function _realisedPrice() internal view returns (uint256) {
        return SHARE_PROBE * (ch.pool_assets() + 1) / (vault.totalSupply() + 1e6);
    }

    // ---- Traders ----

    function deposit(uint256 who, uint256 amount) external step("deposit") {
        address a = actors[who % (N_ACTORS - 1)];
        amount = _between(amount, 1, 200_000 * USDC);
        vm.prank(a);
        ch.deposit(amount);
    }

    function withdraw(uint256 who, uint256 bps) external step("withdraw") {
        address a = actors[who % (N_ACTORS - 1)];
        int256 c = ch.collateral(a);
        if (c <= 0) return;
        bps = _between(bps, 1, BPS + 100); // sometimes a little more than it has
        uint256 amount = uint256(c) * bps / BPS;
        if (amount == 0) return;
        bool flat = ch.account_market_ids(a).length == 0;
        vm.prank(a);
        try ch.withdraw(amount) {
            _count("withdrawals");
        } catch Error(string memory why) {
            if (flat && amount <= uint256(c)) _break(string.concat("flat account cannot withdraw: ", why));
        }
    }

    function open(uint256 who, uint256 market, uint256 leverageBps, bool long) external step("open") {
        address a = _trader(who);
        uint256 m = market % N_MARKETS;
        int256 e = ch.equity(a);
        if (e <= 0) {
            vm.prank(a);
            ch.deposit(5_000 * USDC);
            e = ch.equity(a);
            if (e <= 0) return;
        }
        // 0.2x to 12x of equity (above 10x the initial requirement refuses it)
        uint256 notional = uint256(e) * _between(leverageBps, 2_000, 120_000) / BPS;
        int256 size = int256(notional * 1e12 * WAD / _priceWad(m));
        _trade(a, m, long ? size : -size);
    }

    function hedge(uint256 who, uint256 leverageBps, bool longFirst) external step("hedge") {
        // Two legs on opposite sides: the cross-margin case (one leg's profit carries the other).
        address a = _trader(who);
        int256 e = ch.equity(a);
        if (e <= 0) return;
        uint256 notional = uint256(e) * _between(leverageBps, 10_000, 48_000) / BPS;
        for (uint256 m; m < N_MARKETS; ++m) {
            int256 size = int256(notional * 1e12 * WAD / _priceWad(m));
            _trade(a, m, (m == 0) == longFirst ? size : -size);
        }
    }

    function reduce(uint256 who, uint256 market, uint256 fracBps) external step("reduce") {
        address a = _trader(who);
        uint256 m = market % N_MARKETS;
        int256 size = ch.position(a, m).size;
        if (size == 0) return;
        fracBps = _between(fracBps, 500, BPS + 2_000); // sometimes all of it, or a flip
        _trade(a, m, -size * int256(fracBps) / int256(BPS));
    }

    function _trade(address a, uint256 m, int256 delta) internal {
        if (delta == 0) return;
        vm.prank(a);
        try ch.trade(m, delta, delta > 0 ? type(uint256).max : 0) {
            _count("trades");
        } catch Error(string memory) {
            _count("trades_refused");
        } catch (bytes memory) {
            _break("trade reverted without a reason");
        }
    }

    function settleClaim(uint256 who, uint256 caller) external step("settle_claim") {
        address a = _trader(who);
        if (ch.claims(a) == 0) return;
        vm.prank(actors[caller % N_ACTORS]);
        try ch.settle_claim(a) returns (uint256 paid) {
            if (paid > 0) _count("claims_settled");
        } catch {}
    }

    // ---- Prices and time ----

    function move(uint256 market, uint256 bps, bool up) external step("move") {
        uint256 m = market % N_MARKETS;
        int256 change = int256(_between(bps, 1, 1_500));
        _setAnswer(m, answer[m] * (int256(BPS) + (up ? change : -change)) / int256(BPS));
    }

    function gap(uint256 market, uint256 bps, bool up) external step("gap") {
        uint256 m = market % N_MARKETS;
        int256 change = int256(_between(bps, 3_000, 6_000));
        _setAnswer(m, answer[m] * (int256(BPS) + (up ? change : -change)) / int256(BPS));
        _count("gaps");
    }

    function crashAll(uint256 bps, bool up) external step("crash_all") {
        int256 change = int256(_between(bps, 3_000, 6_000));
        for (uint256 m; m < N_MARKETS; ++m) {
            _setAnswer(m, answer[m] * (int256(BPS) + (up ? change : -change)) / int256(BPS));
        }
        _count("gaps");
    }

    /// Move `market` so that `who` lands just under maintenance (bisection on the price).
    function edge(uint256 who, uint256 market, uint256 depthBps) external step("edge") {
        address a = _trader(who);
        uint256 m = market % N_MARKETS;
        int256 size = ch.position(a, m).size;
        if (size == 0 || ch.is_liquidatable(a)) return;
        int256 safe = answer[m];
        int256 bad = size > 0 ? minAnswer[m] : maxAnswer[m];
        _setAnswer(m, bad);
        if (!ch.is_liquidatable(a)) {
            _setAnswer(m, safe);
            return;
        }
        for (uint256 i; i < 40 && _abs(bad - safe) > 1; ++i) {
            int256 mid = (safe + bad) / 2;
            _setAnswer(m, mid);
            if (ch.is_liquidatable(a)) bad = mid;
            else safe = mid;
        }
        // Just past the boundary: up to 20 more bisection brackets.
        int256 past = bad + (bad - safe) * int256(_between(depthBps, 0, 20));
        _setAnswer(m, past);
        if (ch.is_liquidatable(a)) _count("edges");
    }

    /// Time passes (past the heartbeat: a stale window, past the window: a dead market); the
    /// markets in `refresh` (bit mask) get an answer timed now.
    function passTime(uint256 dt, uint256 refreshMask) external step("pass_time") {
        dt = _between(dt, 1, 4 * 3_600);
        vm.warp(block.timestamp + dt);
        for (uint256 m; m < N_MARKETS; ++m) {
            if ((refreshMask >> m) & 1 == 1) {
                aggs[m].set_price(answer[m]);
            } else {
                uint256 age = block.timestamp - aggs[m].latestTimestamp();
                if (age > HEARTBEAT + STALE_WINDOW) _count("dead_feeds");
                else if (age > HEARTBEAT) _count("stale_windows");
            }
        }
    }

    function refresh(uint256 market) external step("refresh") {
        uint256 m = market % N_MARKETS;
        aggs[m].set_price(answer[m]);
    }

    // ---- Liquidations ----

    struct Before {
        bool liquidatable;
        int256 equity;
        uint256 maintenance;
        uint256 claims;
    }

    function _before(address a) internal view returns (Before memory b) {
        b.liquidatable = ch.is_liquidatable(a);
        b.equity = ch.equity(a);
        b.maintenance = ch.maintenance_requirement(a);
        b.claims = ch.claims(a);
    }

    function liquidate(uint256 victim, uint256 caller) external step("liquidate") {
        address a = actors[victim % N_ACTORS];
        address k = caller % 5 == 0 ? a : _keeper(caller); // sometimes its own liquidator
        Before memory b = _before(a);
        int256 keeperBefore = ch.collateral(k);
        vm.prank(k);
        try ch.liquidate(a) returns (uint256 reward) {
            Log[] memory logs = vm.getRecordedLogs();
            _noteLogs(logs);
            if (k != a && ch.collateral(k) != keeperBefore + int256(reward)) _break("keeper reward not credited");
            _checkLiquidated(a, k, b, logs, k == a);
        } catch (bytes memory ret) {
            if (b.liquidatable) _break(string.concat("liquidatable account not liquidated: ", _reason(ret)));
        }
    }

    function liquidateMany(uint256 seed, uint256 caller) external step("liquidate_many") {
        _batch(seed, caller);
    }

    function _batch(uint256 seed, uint256 caller) internal {
        address k = _keeper(caller);
        uint256 n = _between(seed, 1, 8);
        address[] memory list = new address[](n);
        for (uint256 i; i < n; ++i) {
            list[i] = actors[(seed >> (8 + 4 * i)) % N_ACTORS]; // duplicates and the stranger
        }
        Before[] memory b = new Before[](n);
        for (uint256 i; i < n; ++i) {
            b[i] = _before(list[i]);
        }
        vm.prank(k);
        try ch.liquidate_many(list) {
            Log[] memory logs = vm.getRecordedLogs();
            _noteLogs(logs);
            for (uint256 i; i < n; ++i) {
                bool first = true;
                for (uint256 j; j < i; ++j) {
                    if (list[j] == list[i]) first = false;
                }
                // The caller's own state moves with the rewards credited before it.
                if (first && list[i] != k) _checkLiquidated(list[i], k, b[i], logs, false);
            }
            _count("batches");
        } catch (bytes memory ret) {
            _break(string.concat("liquidate_many reverted: ", _reason(ret)));
        }
    }

    /// What one liquidation of `a` must have done, from the events of the step.
    function _checkLiquidated(address a, address k, Before memory b, Log[] memory logs, bool self_) internal {
        bool found;
        bool full;
        uint256 reward;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == LIQUIDATED && address(uint160(uint256(logs[i].topics[1]))) == a) {
                if (found) _break("two liquidations of one account in one call");
                found = true;
                (,,, reward,, full) = abi.decode(logs[i].data, (uint256, uint256, uint256, uint256, int256, bool));
                if (address(uint160(uint256(logs[i].topics[2]))) != k) _break("liquidator misreported");
            } else if (logs[i].topics[0] == BAD_DEBT && address(uint160(uint256(logs[i].topics[1]))) == a) {
                (uint256 bad, uint256 ins, uint256 soc, uint256 unc) =
                    abi.decode(logs[i].data, (uint256, uint256, uint256, uint256));
                if (bad != ins + soc + unc) _break("bad debt parts do not add up");
                if (unc != 0) _break("bad debt left uncovered");
                _count("bad_debt_settlements");
            }
        }
        if (!found) return; // skipped (healthy, or unpriced)
        if (!b.liquidatable) _break("healthy account liquidated");
        int256 eq = ch.equity(a);
        if (full) {
            _count("liquidations_full");
            if (ch.account_market_ids(a).length != 0) _break("full liquidation left a position");
            if (ch.collateral(a) < 0) _break("full liquidation left debt behind");
        } else {
            _count("liquidations_partial");
            uint256 mnt = ch.maintenance_requirement(a);
            uint256 ini = ch.initial_requirement(a);
            if (eq < int256(ini)) _break(_underInitial(a, b, eq, mnt, ini));
            // equity / maintenance never lowered: eq * m_before >= eq_before * m_after
            if (eq * int256(b.maintenance) < b.equity * int256(mnt)) _break("partial liquidation lowered the margin ratio");
        }
        if (self_) {
            _count("self_liquidations");
            if (reward != 0) _break("self-liquidation paid a reward");
            int256 gain = _max0(eq) + int256(ch.claims(a)) - int256(b.claims) - _max0(b.equity);
            if (gain > 0) _break(string.concat("self-liquidation earned ", _s(uint256(gain))));
        }
    }

    function _underInitial(address a, Before memory b, int256 eq, uint256 mnt, uint256 ini)
        internal
        view
        returns (string memory)
    {
        string memory head = string.concat(
            "partial liquidation left equity under initial: equity ", _si(b.equity), " -> ", _si(eq)
        );
        return string.concat(
            head,
            ", maintenance ",
            _s(b.maintenance),
            " -> ",
            _s(mnt),
            ", initial after ",
            _s(ini),
            ", claims ",
            _s(b.claims),
            " -> ",
            _s(ch.claims(a))
        );
    }

    // ---- LPs ----

    function addLiquidity(uint256 who, uint256 amount) external step("add_liquidity") {
        address a = _lp(who);
        amount = _between(amount, 1, 500_000 * USDC);
        vm.prank(a);
        try vault.add_liquidity(amount, 0) {
            _count("lp_instant_flows");
        } catch {}
    }

    function removeLiquidity(uint256 who, uint256 bps) external step("remove_liquidity") {
        address a = _lp(who);
        uint256 shares = vault.balanceOf(a) * _between(bps, 1, BPS) / BPS;
        if (shares == 0) return;
        vm.prank(a);
        try vault.remove_liquidity(shares, 0) {
            _count("lp_instant_flows");
        } catch {}
    }

    function requestDeposit(uint256 who, uint256 amount) external step("request_deposit") {
        address a = _lp(who);
        amount = _between(amount, 1, 500_000 * USDC);
        vm.prank(a);
        try vault.request_deposit(amount, 0) returns (uint256 id) {
            openRequests.push(id);
            escrowedAssets += vault.requests(id).amount;
        } catch {}
    }

    /// A withdrawal request: of a share of the LP's shares, or of all the pool's free liquidity
    /// (the thin pool).
    function requestWithdrawal(uint256 who, uint256 bps, bool drain) external step("request_withdrawal") {
        address a = _lp(who);
        uint256 held = vault.balanceOf(a);
        if (held == 0) return;
        uint256 shares = held * _between(bps, 1, BPS) / BPS;
        if (drain) {
            uint256 value = vault.convert_to_assets(held);
            uint256 free = vault.free_liquidity();
            shares = value <= free ? held : held * free / value;
            _count("drains");
        }
        if (shares == 0) return;
        vm.prank(a);
        try vault.request_withdrawal(shares, 0) returns (uint256 id) {
            openRequests.push(id);
        } catch {}
    }

    function executeRequest(uint256 pick, uint256 keeper, bool refreshFirst) external step("execute_request") {
        if (openRequests.length == 0) return;
        uint256 i = pick % openRequests.length;
        uint256 id = openRequests[i];
        if (refreshFirst) {
            vm.warp(block.timestamp + 1);
            _refreshAll();
        }
        Request memory r = vault.requests(id);
        vm.prank(_keeper(keeper));
        try vault.execute_request(id) {
            if (r.is_deposit) escrowedAssets -= r.amount;
            _dropRequest(i);
            _count("requests_executed");
        } catch {}
    }

    function cancelRequest(uint256 pick) external step("cancel_request") {
        if (openRequests.length == 0) return;
        uint256 i = pick % openRequests.length;
        uint256 id = openRequests[i];
        Request memory r = vault.requests(id);
        if (block.timestamp < r.created + 86_400 && (r.is_deposit || id >= vault.first_live_request())) {
            vm.warp(r.created + 86_400); // a day later: every feed is dead unless refreshed
            _refreshAll();
        }
        vm.prank(r.owner);
        try vault.cancel_request(id) {
            if (r.is_deposit) escrowedAssets -= r.amount;
            _dropRequest(i);
            _count("requests_cancelled");
        } catch Error(string memory why) {
            _break(string.concat("a timed-out request cannot be cancelled: ", why));
        }
    }

    function _dropRequest(uint256 i) internal {
        openRequests[i] = openRequests[openRequests.length - 1];
        openRequests.pop();
    }

    function transferShares(uint256 from, uint256 bps) external step("transfer_shares") {
        address a = _lp(from);
        address b = _lp(from + 1);
        uint256 shares = vault.balanceOf(a) * _between(bps, 1, BPS) / BPS;
        vm.prank(a);
        try vault.transfer(b, shares) {} catch {}
    }

    function fundInsurance(uint256 who, uint256 amount) external step("fund_insurance") {
        amount = _between(amount, 1, 20_000 * USDC);
        vm.prank(actors[who % (N_ACTORS - 1)]);
        ch.fund_insurance(amount);
    }

    // ---- Admin (the handler owns the configurator and is the guardian) ----

    function togglePause() external step("pause") {
        if (ch.paused()) cfg.unpause();
        else cfg.pause();
    }

    function changeRisk(uint256 market, uint256 mmBps, bool wait) external step("risk_change") {
        uint256 m = market % N_MARKETS;
        uint256 mmRate = _between(mmBps, 200, 800);
        // im 2x mm (within the configurator's bounds); a raise with open interest queues.
        try cfg.set_market_risk(m, 2 * mmRate, mmRate, 100, 5) {
            if (wait) {
                vm.warp(block.timestamp + 86_400);
                _refreshAll();
                try cfg.apply_market_risk(m) {
                    _count("risk_applied");
                } catch {}
            }
        } catch {}
    }

    function setLiquidationParams(uint256 share, uint256 partialBps, uint256 minReward)
        external
        step("liquidation_params")
    {
        try cfg.set_liquidation_params(_between(share, 0, BPS), _between(partialBps, 5_000, BPS), _between(minReward, 0, 10) * USDC) {}
        catch {}
    }

    function cancelRisk(uint256 market) external step("risk_cancel") {
        try cfg.cancel_market_risk(market % N_MARKETS) {
            _count("risk_cancelled");
        } catch {}
    }

    /// The pool keeps 0-100% of open notional from LP withdrawals.
    function setPoolReserve(uint256 bps) external step("pool_reserve") {
        cfg.set_pool_reserve(_between(bps, 0, BPS));
    }

    /// An open-interest cap of 0.5-4x today's larger side (plus a thousandth of the starting
    /// cap), or the starting cap again one time in four, and a minimum notional of 1-1,000 USDC;
    /// the cap may fall under today's open interest (then only reductions trade). A settled
    /// market keeps its cap of 0.
    function setMarketLimits(uint256 market, uint256 capBps, uint256 minNotional) external step("market_limits") {
        uint256 m = market % N_MARKETS;
        if (settled[m]) return;
        uint256 cap = defaultCap[m];
        if (capBps % 4 != 0) {
            MarketInfo memory info = ch.market(m);
            uint256 side = info.open_interest_long > info.open_interest_short
                ? info.open_interest_long
                : info.open_interest_short;
            cap = (side + cap / 1_000) * _between(capBps, 5_000, 40_000) / BPS;
        }
        cfg.set_market_limits(m, cap, _between(minNotional, 1, 1_000) * USDC);
    }

    /// The owner moves a live market to a new adapter on the same aggregator (another heartbeat,
    /// stale window and haircut) with positions open.
    function swapFeed(uint256 market, uint256 heartbeat, uint256 window, uint256 haircutBps)
        external
        step("swap_feed")
    {
        uint256 m = market % N_MARKETS;
        if (settled[m]) return;
        aggs[m].set_price(answer[m]); // the new adapter must price now
        address feed = _create(
            "PriceFeed",
            abi.encode(
                address(aggs[m]),
                _between(heartbeat, HEARTBEAT / 2, 2 * HEARTBEAT),
                int256(0),
                type(int256).max,
                address(0),
                uint256(0),
                _between(window, STALE_WINDOW / 2, 2 * STALE_WINDOW),
                _between(haircutBps, 0, 1_000)
            )
        );
        cfg.set_market_feed(m, feed);
        _count("feeds_swapped");
    }

    /// A dead market (past its stale window) is settled within 10% of its last price: proposed,
    /// a day passes (the other market stays priced), then anyone makes it the market's feed.
    /// At most one market per run, so the other keeps moving.
    function settleDead(uint256 market, uint256 bandBps, bool up, uint256 caller) external step("settle_market") {
        uint256 m = market % N_MARKETS;
        if (settled[0] || settled[1]) return;
        if (block.timestamp - aggs[m].latestTimestamp() <= HEARTBEAT + STALE_WINDOW) return;
        int256 d = int256(_between(bandBps, 0, 990));
        int256 fixed_ = answer[m] * (int256(BPS) + (up ? d : -d)) / int256(BPS);
        address feed = _create("SettledPriceFeed", abi.encode(uint256(fixed_) * 1e10, ch.market(m).feed));
        try cfg.propose_settlement(m, feed) {}
        catch {
            return; // its adapter's own window (after a swap) has not passed yet
        }
        vm.warp(block.timestamp + 86_400);
        for (uint256 o; o < N_MARKETS; ++o) {
            if (o != m) aggs[o].set_price(answer[o]);
        }
        vm.prank(actors[caller % N_ACTORS]);
        cfg.settle_market(m);
        settled[m] = true;
        answer[m] = fixed_;
        _count("markets_settled");
    }

    /// Someone who is neither the vault, the configurator nor the owner calls a hook or an
    /// admin function: it must revert and change nothing.
    function strangerCall(uint256 which, uint256 who, uint256 amount) external step("stranger_call") {
        address s = actors[who % N_ACTORS];
        amount = _between(amount, 1, 1_000_000 * USDC);
        address target = address(ch);
        bytes memory call;
        uint256 w = which % 10;
        if (w == 0) call = abi.encodeWithSignature("pool_pull(address,uint256)", s, amount);
        else if (w == 1) call = abi.encodeWithSignature("pool_add(address,uint256,uint256)", s, amount, amount);
        else if (w == 2) call = abi.encodeWithSignature("pool_pay(address,uint256,uint256)", s, amount, amount);
        else if (w == 3) call = abi.encodeWithSignature("configure_market(uint256,uint256,uint256)", 0, 0, 0);
        else if (w == 4) call = abi.encodeWithSignature("configure_params(uint256,uint256,address)", 0, 0, s);
        else if (w == 5) call = abi.encodeWithSignature("configure_pause(bool)", !ch.paused());
        else if (w == 6) call = abi.encodeWithSignature("bind(address)", s);
        else {
            target = address(cfg);
            if (w == 7) call = abi.encodeWithSignature("set_pool_reserve(uint256)", 0);
            else if (w == 8) call = abi.encodeWithSignature("pause()");
            else call = abi.encodeWithSignature("set_liquidation_params(uint256,uint256,uint256)", BPS, BPS, 0);
        }
        if (w == 6) target = address(vault);
        vm.prank(s);
        (bool ok,) = target.call(call);
        if (ok) _break(string.concat("a stranger's call went through (case ", _s(w), ")"));
        _count("stranger_refused");
    }

    // ---- Signed prices (ETH) ----

    /// A signed ETH report brought on chain, within +-12% of the push answer (beyond 10% the
    /// verifier refuses it while that answer is fresh), published 0-240 s ago (beyond 120 it is
    /// refused), signed by 1-3 of the signers (1 is too few): alone, then a liquidation batch
    /// judged at it (its laws checked), or in one transaction with a batch or with a trade.
    function signedPrice(uint256 bps, bool up, uint256 age, uint256 signers, uint256 mode, uint256 seed)
        external
        step("signed_price")
    {
        int256 d = int256(_between(bps, 0, 1_200));
        int256 a = answer[SIGNED_MARKET] * (int256(BPS) + (up ? d : -d)) / int256(BPS);
        // Mostly fresh (0-50 s: a trade may use it) and signed by enough; sometimes not.
        uint256 back = age % 8 == 0 ? _between(age >> 3, 0, 2 * SIGNED_MAX_AGE) : _between(age >> 3, 0, 50);
        uint256 count = signers % 6 == 0 ? 1 : 2 + (signers >> 3) % 2;
        if (a <= 0 || back >= block.timestamp) return;
        bytes memory blob = _signedUpdate(uint256(a) * 1e10, block.timestamp - back, count);
        address caller = _keeper(seed);
        uint256 m = mode % 4;
        if (m < 2) {
            vm.prank(caller);
            try ch.update_prices(blob) {
                _count("signed_updates");
                if (m == 1) _batch(seed >> 8, seed);
            } catch Error(string memory) {
                _count("signed_refused");
            } catch (bytes memory) {
                _break("update_prices reverted without a reason");
            }
        } else if (m == 2) {
            address[] memory list = new address[](N_TRADERS);
            for (uint256 i; i < N_TRADERS; ++i) {
                list[i] = actors[i];
            }
            vm.prank(caller);
            try ch.liquidate_with_prices(blob, list) {
                _count("signed_batches");
            } catch Error(string memory) {
                _count("signed_refused");
            } catch (bytes memory) {
                _break("liquidate_with_prices reverted without a reason");
            }
        } else {
            _signedTrade(blob, seed, uint256(a) * 1e10);
        }
    }

    /// The wick rule (who gains: a keeper, from a reward on an account the market no longer
    /// puts under water). The keeper signs a past wick, 3-12% against a trader's side and
    /// published up to twice the liquidation max age ago, and liquidates the trader on it. The
    /// law: such a batch lands only on a report no older than SIGNED_MAX_AGE and no older than
    /// the feed's last accepted one, so the keeper's choice among past prices is bounded by the
    /// window (a trade's by SIGNED_TRADE_AGE).
    function wick(uint256 seed, uint256 bps, uint256 age) external step("wick") {
        address t = _trader(seed);
        int256 size = ch.position(t, SIGNED_MARKET).size;
        uint256 back = _between(age, 0, 2 * SIGNED_MAX_AGE);
        if (size == 0 || back >= block.timestamp) return;
        (bytes memory blob, bool ok) = _wickReport(size > 0, bps, block.timestamp - back);
        if (!ok) return;
        (, uint256 last) = verifier.latest(ETH_FEED_ID);
        address[] memory list = new address[](1);
        list[0] = t;
        vm.prank(actors[FIRST_KEEPER + (seed >> 8) % 2]);
        try ch.liquidate_with_prices(blob, list) {
            if (back > SIGNED_MAX_AGE) _break("a batch landed on a report older than the max age");
            if (block.timestamp - back < last) _break("a batch landed on a report older than the last one");
            if (ch.position(t, SIGNED_MARKET).size != size) _count("wick_liquidations");
        } catch Error(string memory) {
            _count(back > SIGNED_MAX_AGE ? bytes32("wick_refused_stale") : bytes32("wick_refused"));
        } catch (bytes memory) {
            _break("liquidate_with_prices reverted without a reason");
        }
    }

    /// A 3-of-3 report 3-12% below the push answer (against a long) or above it, published at.
    function _wickReport(bool long, uint256 bps, uint256 at) internal view returns (bytes memory, bool) {
        int256 d = int256(_between(bps, 300, 1_200));
        int256 a = answer[SIGNED_MARKET] * (int256(BPS) + (long ? -d : d)) / int256(BPS);
        if (a <= 0) return ("", false);
        return (_signedUpdate(uint256(a) * 1e10, at, 3), true);
    }

    /// A 3x trade on the report's price, in one transaction with it.
    function _signedTrade(bytes memory blob, uint256 seed, uint256 price) internal {
        address t = _trader(seed);
        int256 e = ch.equity(t);
        if (e <= 0) return;
        int256 size = int256(uint256(e) * 3 * 1e12 * WAD / price);
        bool buy = seed & 1 == 0;
        vm.prank(t);
        try ch.trade_with_prices(blob, SIGNED_MARKET, buy ? size : -size, buy ? type(uint256).max : 0) {
            _count("signed_trades");
        } catch Error(string memory) {
            _count("signed_refused");
        } catch (bytes memory) {
            _break("trade_with_prices reverted without a reason");
        }
    }

    // ---- The laws that act, on a copy of the state ----

    /// Run every acting law now (the test calls it at the end of each run too).
    function probeAll() external {
        _probeAll();
    }

    function _probeAll() internal {
        _count("probe_rounds");
        for (uint256 i; i < N_ACTORS - 1; ++i) {
            address a = actors[i];
            if (ch.account_market_ids(a).length == 0 && ch.collateral(a) > 0) {
                _probe(abi.encodeCall(this.probeWithdraw, (a)), "flat withdraw", "flat_withdraws");
            }
        }
        _probe(abi.encodeCall(this.probeBankRun, ()), "bank run", "bank_runs");
        _probe(abi.encodeCall(this.probeUnwind, ()), "unwind", "unwinds");
    }

    function _probe(bytes memory call, string memory what, bytes32 tag) internal {
        uint256 t = block.timestamp;
        (bool ok, bytes memory ret) = address(this).call(call);
        vm.warp(t); // time is not state: put it back
        if (ok) {
            _break(string.concat(what, ": probe did not revert"));
            return;
        }
        if (ret.length == 36 && bytes4(ret) == ProbeDone.selector) {
            _count(abi.decode(_tail(ret), (uint256)) == 0 ? bytes32("probes_skipped") : tag);
            return;
        }
        if (ret.length > 4 && bytes4(ret) == LawBroken.selector) {
            (string memory why) = abi.decode(_tail(ret), (string));
            _break(string.concat(what, ": ", why));
        } else {
            _break(string.concat(what, ": unexpected revert ", _reason(ret)));
        }
    }

    function _reason(bytes memory ret) internal pure returns (string memory) {
        if (ret.length > 68 && bytes4(ret) == 0x08c379a0) return abi.decode(_tail(ret), (string));
        return "(no reason)";
    }

    /// `ret` without its 4-byte selector.
    function _tail(bytes memory ret) internal pure returns (bytes memory out) {
        out = new bytes(ret.length - 4);
        for (uint256 i; i < out.length; ++i) {
            out[i] = ret[i + 4];
        }
    }

    function _only_self() internal view {
        require(msg.sender == address(this), "probe: only the handler");
    }

    /// One flat account withdraws everything it holds.
    function probeWithdraw(address a) external {
        _only_self();
        _withdrawAll(a);
        revert ProbeDone(1);
    }

    /// Every flat account withdraws everything, one after another.
    function probeBankRun() external {
        _only_self();
        for (uint256 i; i < N_ACTORS - 1; ++i) {
            address a = actors[i];
            if (ch.account_market_ids(a).length == 0) _withdrawAll(a);
        }
        _assertBacked();
        revert ProbeDone(2);
    }

    /// Every trader closes at the current price (or is liquidated), every account settles its
    /// claim and withdraws, and every LP redeems at what the pool's view says.
    function probeUnwind() external {
        _only_self();
        _refreshAll();
        if (ch.paused()) cfg.unpause(); // new risk is not needed; the unwind must not depend on it
        address k = actors[FIRST_KEEPER];
        string memory refusal;
        for (uint256 i; i < N_TRADERS; ++i) {
            address a = actors[i];
            for (uint256 attempt; attempt < 3 && ch.account_market_ids(a).length > 0; ++attempt) {
                if (ch.is_liquidatable(a)) {
                    vm.prank(k);
                    try ch.liquidate(a) {} catch Error(string memory why) {
                        revert LawBroken(string.concat("liquidation failed: ", why));
                    }
                    continue;
                }
                uint256[] memory ids = ch.account_market_ids(a);
                for (uint256 j; j < ids.length; ++j) {
                    // the last leg first on the second attempt
                    uint256 m = attempt % 2 == 0 ? ids[j] : ids[ids.length - 1 - j];
                    int256 size = ch.position(a, m).size;
                    vm.prank(a);
                    try ch.trade(m, -size, size > 0 ? 0 : type(uint256).max) {}
                    catch (bytes memory ret) {
                        refusal = string.concat("market ", _s(m), ": ", _reason(ret));
                    }
                }
            }
            if (ch.account_market_ids(a).length > 0) {
                revert LawBroken(
                    string.concat(
                        "trader ",
                        _s(i),
                        " can neither close nor be liquidated (",
                        refusal,
                        "; equity ",
                        _si(ch.equity(a)),
                        ", collateral ",
                        _si(ch.collateral(a)),
                        ", maintenance ",
                        _s(ch.maintenance_requirement(a)),
                        ", claims ",
                        _s(ch.claims(a)),
                        ", pool ",
                        _s(ch.pool_assets()),
                        ")"
                    )
                );
            }
        }
        PoolState memory ps = ch.pool_state();
        if (ps.exposed) revert LawBroken("open interest left after every trader closed");
        for (uint256 i; i < N_ACTORS - 1; ++i) {
            address a = actors[i];
            if (ch.claims(a) > 0) {
                try ch.settle_claim(a) {} catch {}
            }
            _withdrawAll(a);
        }
        _assertBacked();
        // With no open interest every LP redeems its shares for what the pool's view says.
        for (uint256 i = FIRST_LP; i < FIRST_LP + 3; ++i) {
            address lp = i < FIRST_LP + 2 ? actors[i] : address(this);
            uint256 held = vault.balanceOf(lp);
            if (held == 0) continue;
            uint256 quoted = vault.convert_to_assets(held);
            if (quoted == 0) continue;
            uint256 balance = token.balanceOf(lp);
            vm.prank(lp);
            try vault.remove_liquidity(held, 0) returns (uint256 paid) {
                if (paid != quoted || token.balanceOf(lp) != balance + quoted) {
                    revert LawBroken(string.concat("LP paid ", _s(paid), ", quoted ", _s(quoted)));
                }
            } catch Error(string memory why) {
                revert LawBroken(string.concat("LP cannot redeem ", _s(quoted), ": ", why));
            }
        }
        _assertBacked();
        revert ProbeDone(3);
    }

    /// An LP who knows the next price: a deposit requested before it and executed after,
    /// redeemed at the next (unchanged) price, returns no more than it paid less both fees.
    function probeStraddle(address lp, uint256 amount, uint256 m, int256 next) external {
        _only_self();
        uint256 balance = token.balanceOf(lp);
        vm.prank(lp);
        uint256 id = vault.request_deposit(amount, 0);
        vm.warp(block.timestamp + 1);
        _refreshAll();
        _setAnswer(m, next);
        uint256 shares = vault.balanceOf(lp);
        vm.prank(actors[FIRST_KEEPER]);
        try vault.execute_request(id) {} catch {
            revert ProbeDone(0); // paused, an insolvent or worthless pool: no entry
        }
        shares = vault.balanceOf(lp) - shares;
        if (shares == 0) revert ProbeDone(0);
        vm.prank(lp);
        uint256 out = vault.request_withdrawal(shares, 0);
        vm.warp(block.timestamp + 1);
        _refreshAll();
        vm.prank(actors[FIRST_KEEPER]);
        try vault.execute_request(out) {} catch {
            revert ProbeDone(0); // beyond the free liquidity: no exit yet
        }
        uint256 fee = vault.execution_fee();
        uint256 got = token.balanceOf(lp) + amount - balance; // what came back
        if (got + 2 * fee > amount) {
            revert LawBroken(string.concat("LP straddle gained: paid ", _s(amount), ", got back ", _s(got)));
        }
        revert ProbeDone(4);
    }

    function straddle(uint256 who, uint256 amount, uint256 market, uint256 bps, bool up) external step("straddle") {
        uint256 m = market % N_MARKETS;
        int256 change = int256(_between(bps, 1, 6_000));
        int256 next = answer[m] * (int256(BPS) + (up ? change : -change)) / int256(BPS);
        int256[N_MARKETS] memory saved = answer;
        _probe(
            abi.encodeCall(this.probeStraddle, (_lp(who), _between(amount, 1 * USDC, 500_000 * USDC), m, next)),
            "straddle",
            "straddles"
        );
        answer = saved; // the probe's price moves were undone
    }

    function _withdrawAll(address a) internal {
        int256 c = ch.collateral(a);
        if (c <= 0) return;
        vm.prank(a);
        try ch.withdraw(uint256(c)) {} catch Error(string memory why) {
            revert LawBroken(string.concat("flat account cannot withdraw ", _s(uint256(c)), ": ", why));
        }
    }

    function _assertBacked() internal view {
        uint256 debt = ch.total_debt();
        uint256 pool = ch.pool_assets();
        if (pool < debt) revert LawBroken("pool holds less than the debt");
        uint256 positive;
        for (uint256 i; i < N_ACTORS; ++i) {
            positive += uint256(_max0(ch.collateral(actors[i])));
        }
        if (token.balanceOf(address(ch)) < positive + ch.insurance_fund() + pool - debt) {
            revert LawBroken("tokens short of the positive claims");
        }
    }

    // ---- Views for the test's per-step laws ----

    function actorList() external view returns (address[] memory out) {
        out = new address[](N_ACTORS + 1);
        for (uint256 i; i < N_ACTORS; ++i) {
            out[i] = actors[i];
        }
        out[N_ACTORS] = address(this); // the floor LP (and owner) holds no collateral but may
    }

    function openRequestCount() external view returns (uint256) {
        return openRequests.length;
    }

    // ---- Small helpers ----

    function _abs(int256 x) internal pure returns (int256) {
        return x < 0 ? -x : x;
    }

    function _max0(int256 x) internal pure returns (int256) {
        return x > 0 ? x : int256(0);
    }

    function _s(uint256 x) internal pure returns (string memory) {
        return vm.toString(x);
    }

    function _si(int256 x) internal pure returns (string memory) {
        return x < 0 ? string.concat("-", vm.toString(uint256(-x))) : vm.toString(uint256(x));
    }
}
