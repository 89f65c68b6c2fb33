"""Chain I/O: the real contracts on Ape's in-process chain, one snapshot, one restore per scenario,
the keeper's own decision code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from margin_maintenance.crashdata import (
    PricePoint,
    Scenario,
    list_scenarios,
    load_prices,
    resolve_scenario,
)
from margin_maintenance.keeper import decisions
from margin_maintenance.population import (
    generate_population,
)

from .config import CrashSpec, SimConfig, SweepPoint
from .mirror import MirrorAccount, apply_events, equity, is_liquidatable, near_maintenance
from .oracle import OracleModel, PushFeed
from .paths import CrashPath, build_path, window_around_drop
from .results import LiquidationRecord, ScenarioResult, SimulationResults, generation_of
from .settings import MARKETS, TOKEN_DECIMALS, WAD, SimulationError, log

# ---- Chain I/O ----


def select_crashes(cfg: SimConfig) -> list[tuple[Scenario, list[PricePoint], int, int | None]]:
    """(scenario, rows, skip, rows to replay) for every configured crash."""
    specs = cfg.crashes
    if specs is None:
        specs = tuple(CrashSpec(s.name) for s in list_scenarios(cfg.data_dir))
    out = []
    for spec in specs:
        scenario = resolve_scenario(spec.name, cfg.data_dir)
        points = load_prices(scenario.path)
        skip, rows = spec.skip, spec.rows
        if rows is None and cfg.window_rows and spec.skip == 0:
            skip, rows = window_around_drop(points, cfg.window_rows), cfg.window_rows
        out.append((scenario, points, skip, rows))
    return out


class ChainSimulator:
    """The deployed system, the seeded population and the snapshot every scenario starts from.

    `setup()` deploys (system.py), seeds (population.py) and snapshots; `run(path, point)`
    restores the snapshot, applies the point and replays the path."""

    def __init__(self, project: Any, config: SimConfig, deployer: Any, keeper: Any) -> None:
        config.validate()
        self.project = project
        self.cfg = config
        self.deployer = deployer
        self.keeper = keeper
        self.population = generate_population(config.seed, tuple(MARKETS), config.population)
        self.system: Any = None
        self.snapshot_id: Any = None
        self.base_accounts: list[MirrorAccount] = []
        self.accounts: list[MirrorAccount] = []  # the last scenario's mirror
        self.token_scale = 10 ** (18 - TOKEN_DECIMALS)
        self._fast = False  # raw web3 transactions (in-process chain only)

    # -- setup --

    def setup(self, progress: Callable[[str], None] | None = None) -> None:
        from ape import chain

        from margin_maintenance.deployment import with_chain_market_ids
        from margin_maintenance.keeper.reads import ChainReader, ClearinghouseReader, Method
        from margin_maintenance.population import seed_population
        from margin_maintenance.system import MarketParams, SystemParams, deploy_system

        cfg, base = self.cfg, self.cfg.sweep.base
        markets = tuple(
            MarketParams(
                symbol,
                price,
                initial_margin_bps=cfg.initial_margin_bps,
                maintenance_margin_bps=base.mm_bps,
                liquidation_fee_bps=base.fee_bps,
                trading_fee_bps=cfg.trading_fee_bps,
                # a funding market's cap is at most half its skew scale (the configurator's
                # rule); the seeded book stays far below either
                max_open_interest_units=min(oi, cfg.funding.skew_scale_units(price) // 2)
                if cfg.funding
                else oi,
                skew_scale_units=cfg.funding.skew_scale_units(price) if cfg.funding else 0,
                max_funding_velocity_bps=cfg.funding.velocity_bps if cfg.funding else 0,
            )
            for symbol, (price, oi) in MARKETS.items()
        )
        params = SystemParams(
            token_decimals=TOKEN_DECIMALS,
            keeper_share_bps=cfg.keeper_share_bps,
            max_partial_bps=cfg.max_partial_bps,
            min_keeper_reward=cfg.min_keeper_reward_usd,
            markets=markets,
            # On signed prices, SignedPriceFeeds over the push feeds: a push scenario beside
            # the sweep brings no report, so every read is the push feed's own; a pull scenario
            # brings one per row. A push sweep deploys push feeds only (fewer calls per read).
            signed_prices=cfg.oracle.pull,
        )
        system = with_chain_market_ids(
            deploy_system(self.project, self.deployer, self.deployer, params)
        )
        self.system = system
        ch, token = system.clearinghouse, system.token
        seeded = seed_population(
            system,
            self.deployer,
            self.population,
            first_index=cfg.first_index,
            progress=progress,
        )
        if seeded.failed:
            log.warning("%d trader(s) could not open: %s", len(seeded.failed), seeded.failed)
        # Insurance budget for every scenario: minted and approved once, funded per scenario.
        budget = round(max(p.insurance_usd for p, _ in cfg.sweep.points()) * 10**TOKEN_DECIMALS)
        if budget:
            token.mint(self.deployer, budget, sender=self.deployer)
            token.approve(ch, 2**256 - 1, sender=self.deployer)
        self.reader = ClearinghouseReader.for_contract(ch, chain.provider)
        self._raw = ChainReader.for_contract(ch, chain.provider)
        self._m_position = Method(ch.position.abis[0])
        self._m_collateral = Method(ch.collateral.abis[0])
        self._m_pool = Method(ch.pool_assets.abis[0])
        self._m_insurance = Method(ch.insurance_fund.abis[0])
        self._m_upnl = Method(ch.trader_unrealized_pnl.abis[0])
        self._m_set_price = Method(system.aggregators[0].set_price.abis[0])
        self._m_liq_many = Method(ch.liquidate_many.abis[0])
        self._m_update = Method(ch.update_prices.abis[0])
        self._m_accrued = Method(ch.accrued_funding.abis[0])
        self._m_funding = Method(ch.market_funding.abis[0])
        self._chain_id = int(chain.chain_id)
        self._signed_at = 0  # publish time of the last signed report brought
        self._fast = _in_process(chain.provider)
        self._agg_decimals = [int(a.decimals()) for a in system.aggregators]
        self._staleness = [
            int(system.push_feed(i).max_staleness()) for i in range(len(system.feeds))
        ]
        self._start_answers = [int(a.latestAnswer()) for a in system.aggregators]
        market_of = dict(zip(system.symbols, system.market_ids, strict=True))
        self.base_accounts = [
            MirrorAccount(t.address, market_of[t.market], 0, 0, 0) for t in seeded.traders
        ]
        self.read_accounts(self.base_accounts)
        chain.mine(1)  # a block of its own: snapshot ids on py-evm are block hashes
        self.snapshot_id = chain.provider.snapshot()

    def start_answer(self, symbol: str) -> tuple[int, int]:
        """(answer, decimals) of a market at the snapshot."""
        k = self.system.symbols.index(symbol)
        return self._start_answers[k], self._agg_decimals[k]

    # -- small chain helpers --

    def _call(self, method: Any, *args: Any) -> tuple[Any, ...]:
        from margin_maintenance.keeper.reads import ReadError

        raw = self._raw.call_many([method.calldata(*args)])[0]
        if isinstance(raw, ReadError):
            raise SimulationError(f"read failed: {raw}")
        return method.result(raw)

    def read_accounts(self, accounts: Sequence[MirrorAccount]) -> None:
        """Set the mirror of `accounts` to the chain's collateral and position."""
        from margin_maintenance.keeper.reads import ReadError

        calls: list[str] = []
        for a in accounts:
            calls.append(self._m_collateral.calldata(a.address))
            calls.append(self._m_position.calldata(a.address, a.market))
        raws = self._raw.call_many(calls)
        for i, a in enumerate(accounts):
            c_raw, p_raw = raws[2 * i], raws[2 * i + 1]
            if isinstance(c_raw, ReadError) or isinstance(p_raw, ReadError):
                raise SimulationError(f"cannot read {a.address}: {c_raw} {p_raw}")
            a.collateral = int(self._m_collateral.result(c_raw)[0])
            size, entry = self._m_position.fields(p_raw)  # struct Position(size, entry_price)
            a.size, a.entry = int(size), int(entry)

    def _transact(
        self, to: Any, calldata: str, sender: Any, gas: int, quiet: bool = False
    ) -> list[Any] | None:
        """Send a transaction straight through web3 (on the in-process chain every test
        account is unlocked; about 3x faster than Ape's path, which estimates gas and builds a
        rich receipt). Returns the receipt's raw logs, or None when it reverted."""
        from ape import chain
        from ape.exceptions import ApeException
        from web3.exceptions import Web3Exception

        w3 = chain.provider.web3
        try:
            h = w3.eth.send_transaction(
                {"from": sender.address, "to": to.address, "data": calldata, "gas": gas}
            )
            receipt = w3.eth.wait_for_transaction_receipt(h)
        except (ApeException, Web3Exception, ValueError) as err:
            if not quiet:
                log.warning("transaction to %s reverted: %s", to.address, err)
            return None
        return list(receipt["logs"]) if receipt["status"] == 1 else None

    def _post(self, k: int, answer: int) -> int:
        """Post `answer` to market k's aggregator; returns the block timestamp."""
        from ape import chain

        agg = self.system.aggregators[k]
        if self._fast:
            calldata = self._m_set_price.calldata(answer)
            if self._transact(agg, calldata, self.deployer, 200_000) is None:
                raise SimulationError(f"set_price({answer}) reverted")
        else:
            agg.set_price(answer, sender=self.deployer)
        return int(chain.provider.web3.eth.get_block("latest")["timestamp"])

    def _bring(self, k: int, price_wad: int) -> bool:
        """The keeper brings market k's signed price (3 of 5, published at the latest block's
        time) on chain with `update_prices`; False when the verifier refused it (too far from
        a fresh push answer)."""
        from ape import chain
        from ape.exceptions import ApeException

        from margin_maintenance.attest import Report, encode_updates

        s, ch = self.system, self.system.clearinghouse
        latest = int(chain.provider.web3.eth.get_block("latest")["timestamp"])
        at = max(latest, self._signed_at + 1)
        if at > latest:  # a chain whose blocks may share a time (anvil): the next one is later
            chain.pending_timestamp = at
        report = Report(s.feed_ids[k], price_wad, 0, at)
        blob = encode_updates([s.signer_set.sign(report, self._chain_id, str(s.verifier.address))])
        if self._fast:
            ok = self._transact(ch, self._m_update.calldata(blob), self.keeper, 500_000, True)
            landed = ok is not None
        else:
            try:
                ch.update_prices(blob, sender=self.keeper)
                landed = True
            except ApeException:
                landed = False
        if landed:
            self._signed_at = at
        return landed

    def _liquidate_many(self, accounts: Sequence[str]) -> list[dict[str, Any]] | None:
        """`liquidate_many(accounts)` from the keeper; its decoded client events, or None
        when it reverted."""
        from ape import chain
        from ape.exceptions import ApeException

        from margin_maintenance.events import log_to_dict

        ch = self.system.clearinghouse
        abis = [ch.PositionChanged.abi, ch.Liquidated.abi, ch.BadDebtSettled.abi]
        abis += [ch.ProfitHaircut.abi, ch.FundingSettled.abi]
        if self._fast:
            gas = min(self.cfg.keeper.block_gas_limit, 300_000 + 250_000 * len(accounts))
            raw = self._transact(ch, self._m_liq_many.calldata(list(accounts)), self.keeper, gas)
            if raw is None:
                return None
            decoded = chain.provider.network.ecosystem.decode_logs(raw, *abis)
        else:
            try:
                tx = ch.liquidate_many(list(accounts), sender=self.keeper)
            except ApeException as err:
                log.warning("liquidate_many reverted: %s", err)
                return None
            decoded = tx.decode_logs(abis)
        return [log_to_dict(x) for x in decoded]

    def _start_wad(self, market_id: int) -> int:
        """A market's price at the snapshot, WAD (the undriven market keeps it)."""
        i = self.system.market_ids.index(market_id)
        return self._start_answers[i] * 10 ** (18 - self._agg_decimals[i])

    def _lp_value(self) -> int:
        value = int(self._call(self._m_pool)[0])
        for m in self.system.market_ids:
            value -= int(self._call(self._m_upnl, m)[0])
        return value

    def _set_rates(self, point: SweepPoint) -> None:
        """The point's rates on every market, before the path starts. A rise on a market with
        positions waits the configurator's RISK_DELAY: queue it, let the delay pass, apply it
        (the path's first post then refreshes every feed)."""
        from ape import chain

        from margin_maintenance.model import RISK_DELAY

        cfg, configurator = self.cfg, self.system.configurator
        queued = []
        for m in self.system.market_ids:
            tx = configurator.set_market_risk(
                m,
                cfg.initial_margin_bps,
                point.mm_bps,
                point.fee_bps,
                cfg.trading_fee_bps,
                sender=self.deployer,
            )
            if tx.decode_logs(configurator.MarketRiskQueued):
                queued.append(m)
        if queued:
            chain.pending_timestamp = chain.pending_timestamp + RISK_DELAY
            for m in queued:
                configurator.apply_market_risk(m, sender=self.deployer)

    # -- one scenario --

    def run(
        self,
        path: CrashPath,
        point: SweepPoint,
        axes: tuple[str, ...],
        oracle: OracleModel | None = None,
    ) -> ScenarioResult:
        """One scenario from the snapshot: `oracle` (default: the configuration's) decides the
        price liquidations are judged at."""
        from ape import chain

        cfg, system = self.cfg, self.system
        oracle = oracle or cfg.oracle
        ch = system.clearinghouse
        chain.provider.restore(self.snapshot_id)
        self.snapshot_id = chain.provider.snapshot()  # anvil consumes ids; py-evm: same hash
        first_block = int(chain.blocks.head.number or 0) + 1

        base = cfg.sweep.base
        if (point.mm_bps, point.fee_bps) != (base.mm_bps, base.fee_bps):
            self._set_rates(point)
        if point.insurance_usd > 0:
            ch.fund_insurance(round(point.insurance_usd * 10**TOKEN_DECIMALS), sender=self.deployer)

        k = system.symbols.index(path.symbol)
        market_id = system.market_ids[k]
        others = [i for i in range(len(system.symbols)) if i != k]
        price_scale = 10 ** (18 - self._agg_decimals[k])
        accounts = [replace(a) for a in self.base_accounts]
        by_address = {a.address.lower(): a for a in accounts}
        driven = [a for a in accounts if a.market == market_id]
        mm_bps, scale = point.mm_bps, self.token_scale

        result = ScenarioResult(path.name, path.label, point, axes, path.rows, oracle.mode)
        result.funding = "on" if cfg.funding else ("off" if cfg.clocked else "")
        # A clocked run stamps row t at the file's time: start + (ts[t] - ts[0]).
        clock_start = int(chain.blocks.head.timestamp) + 1
        screen = cfg.screen and not cfg.clocked
        last_posted: dict[int, int] = {}  # market index -> block time of our last post

        def post(t: int, answer: int) -> None:
            block_time = self._post(k, answer)
            last_posted[k] = block_time
            result.onchain_steps += 1
            for o in others:  # heartbeat: re-post the other market before it goes stale
                if block_time - last_posted.get(o, -(10**12)) > self._staleness[o] // 2:
                    last_posted[o] = self._post(o, self._start_answers[o])

        # Start: both markets fresh at the first row's price, then the starting figures.
        multiplier = 1.0
        push_feed = PushFeed(oracle, path.answers[0], path.source_ts[0])
        post(0, path.answers[0])
        result.insurance_start = int(self._call(self._m_insurance)[0])
        result.lp_value_start = self._lp_value()

        size, n_batches = cfg.keeper.capacity()
        cost = cfg.keeper.cost_model()
        min_reward = round(cfg.min_keeper_reward_usd * 10**TOKEN_DECIMALS)
        pending: dict[int, list[tuple[int, list[tuple[str, bool]]]]] = {}  # due row -> batches
        inflight: set[str] = set()  # planned, not landed yet
        deferred: set[str] = set()  # liquidatable, but not worth the gas when last read
        gens: list[tuple[int, int]] = []  # (row landed, generation) of every liquidation
        last_row = path.rows - 1

        def land(batch: list[tuple[str, bool]], t: int, observed: int, price_wad: int) -> float:
            inflight.difference_update(a.lower() for a, _ in batch)
            return self._land(batch, t, observed, result, by_address, gens, price_wad, market_id)

        for t in range(path.rows):
            if cfg.clocked and t > 0:
                at = clock_start + path.source_ts[t] - path.source_ts[0]
                chain.pending_timestamp = max(at, int(chain.blocks.head.timestamp) + 1)
            raw_answer = path.answers[t]
            answer = max(1, round(raw_answer * multiplier))
            result.raw_price.append(raw_answer / 10 ** self._agg_decimals[k])
            result.price.append(answer / 10 ** self._agg_decimals[k])
            pushed = push_feed.step(t, path.source_ts[t], answer)
            result.push_price.append(pushed / 10 ** self._agg_decimals[k])
            # The price accounts are judged at: the row's own (signed), or the push answer.
            mark = answer if oracle.pull else pushed
            price_wad = mark * price_scale
            due = pending.pop(t, [])
            if screen:
                flagged = [
                    a
                    for a in driven
                    if a.address.lower() not in inflight
                    and near_maintenance(a, price_wad, mm_bps, scale, cfg.screen_buffer, min_reward)
                ]
                # An account skipped as unprofitable wakes the keeper again only once it could
                # pay a reward: equity left, or a fund that can top the reward up.
                wake = [
                    a
                    for a in flagged
                    if a.address.lower() not in deferred
                    or equity(a, price_wad, scale) > 0
                    or result.insurance_start
                    + sum(r.insurance_delta - r.insurance_covered for r in result.liquidations)
                    >= min_reward
                ]
                if not (due or wake or t == last_row):
                    continue
            else:
                flagged = [a for a in accounts if a.open and a.address.lower() not in inflight]
            if t > 0:
                post(t, pushed)
            if oracle.pull:
                if self._bring(k, price_wad):
                    result.signed_updates += 1
                else:  # refused: the chain marks at the push answer this row
                    result.signed_refused += 1
                    price_wad = pushed * price_scale

            # Batches planned `latency` rows ago land now, at this row's price.
            sold_usd = 0.0
            for observed, batch in due:
                sold_usd += land(batch, t, observed, price_wad)

            # The keeper reads, ranks and plans (the bot's own functions).
            if flagged:
                batches, skipped = self._plan(flagged, size, n_batches, cost, result)
                deferred = (deferred | {a.lower() for a in skipped}) & {
                    a.address.lower() for a in flagged
                }
                raw_wad = raw_answer * price_scale
                for b in batches:
                    deferred.difference_update(a.lower() for a in b)
                    tagged = [
                        (
                            acct,
                            cfg.impact.on
                            and not is_liquidatable(
                                by_address[acct.lower()], raw_wad, mm_bps, scale, min_reward
                            ),
                        )
                        for acct in b
                    ]
                    land_at = min(t + point.latency, last_row)
                    if land_at == t:
                        sold_usd += land(tagged, t, t, price_wad)
                    else:
                        pending.setdefault(land_at, []).append((t, tagged))
                        inflight.update(a.lower() for a in b)
            multiplier *= cfg.impact.factor(sold_usd)

        # Accounts still liquidatable after the last row (every due batch has landed by then,
        # so these are the ones not worth the gas) and the equity they are under water by: a
        # loss the LPs still carry.
        final_wad = price_wad  # the last row is always posted (and signed, in pull)
        if cfg.clocked:  # the chain's own view: the mirror does not follow funding
            self._left_on_chain(accounts, result)
        else:
            for a in accounts:
                px = final_wad if a.market == market_id else self._start_wad(a.market)
                if is_liquidatable(a, px, mm_bps, scale, min_reward):
                    result.left_liquidatable += 1
                    result.underwater_left += max(0, -equity(a, px, scale))
        if cfg.funding:
            self._funding_figures(accounts, market_id, result)
        self.accounts = accounts  # the mirror after the run (the tests compare it with chain)
        result.insurance_end = int(self._call(self._m_insurance)[0])
        result.lp_value_end = self._lp_value()
        result.push_transmissions = push_feed.transmissions
        result.blocks = (first_block, int(chain.blocks.head.number or 0))
        self._check_books(result)
        if cfg.verify:
            verify_against_chain(ch, result)
        return result

    def _left_on_chain(self, accounts: Sequence[MirrorAccount], result: ScenarioResult) -> None:
        """Accounts still liquidatable at the end and their negative equity, as the chain's
        `margin_status` has them (funding included)."""
        open_ = [a.address for a in accounts if a.open]
        rows, unread = self.reader.margin_status(decisions.status_chunks(open_))
        if unread:
            raise SimulationError(f"margin_status failed: {next(iter(unread.values()))}")
        for r in rows:
            if r.liquidatable:
                result.left_liquidatable += 1
                result.underwater_left += max(0, -int(r.equity))

    def _funding_figures(
        self, accounts: Sequence[MirrorAccount], market_id: int, result: ScenarioResult
    ) -> None:
        """Funding of the driven market's longs and shorts over the window: what the
        liquidations settled (FundingSettled) and what the open positions have accrued
        (`accrued_funding`; the seeded traders hold one position each), token units, positive
        received; and the rate at the end."""
        for a in accounts:
            if a.open and a.market == market_id:
                (due,) = self._call(self._m_accrued, a.address)
                if a.size > 0:
                    result.funding_longs += int(due)
                else:
                    result.funding_shorts += int(due)
        for r in result.liquidations:
            if r.market_id == market_id:
                if r.side > 0:
                    result.funding_longs += r.funding
                else:
                    result.funding_shorts += r.funding
        info = self._call(self._m_funding, market_id)
        fields = tuple(info[0]) if len(info) == 1 else info  # the FundingInfo struct
        result.funding_rate_end = int(fields[2]) / WAD  # of the price per day

    def _plan(
        self,
        flagged: Sequence[MirrorAccount],
        size: int,
        n_batches: int,
        cost: decisions.CostModel,
        result: ScenarioResult,
    ) -> tuple[list[list[str]], list[str]]:
        """The bot's pipeline over `flagged`: (batches to send, accounts not worth the gas)."""
        addresses = [a.address for a in flagged]
        rows, unread = self.reader.margin_status(decisions.status_chunks(addresses))
        if unread:
            raise SimulationError(f"margin_status failed: {next(iter(unread.values()))}")
        candidates = decisions.liquidatable_candidates(rows)
        if not candidates:
            return [], []
        capacity = size * n_batches
        previews, failed = self.reader.previews([c.account for c in candidates[: 2 * capacity]])
        if failed:
            raise SimulationError(f"liquidation_preview failed: {next(iter(failed.values()))}")
        targets = decisions.select_targets(candidates, previews, capacity)
        batches, skipped = decisions.plan_batches(targets, size, n_batches, cost)
        planned = [[t.account for t in b] for b in batches]
        result.planned += sum(len(b) for b in planned)
        result.unprofitable += len(skipped)
        return planned, [t.account for t in skipped]

    def _land(
        self,
        batch: Sequence[tuple[str, bool]],
        step: int,
        observed: int,
        result: ScenarioResult,
        by_address: dict[str, MirrorAccount],
        gens: list[tuple[int, int]],
        price_wad: int,
        market_id: int,
    ) -> float:
        """Send one liquidate_many; record its events; returns the driven market's net sold
        notional (USD) for the impact model."""
        accounts = [a for a, _ in batch]
        induced = {a.lower(): flag for a, flag in batch}
        logs = self._liquidate_many(accounts)
        if logs is None:
            result.reverts += 1
            return 0.0
        by_account: dict[str, list[dict[str, Any]]] = {}
        for e in logs:
            by_account.setdefault(str(e["account"]).lower(), []).append(e)
        sold = 0.0
        # Impact of a liquidation moves the rows after the one it landed at.
        earlier = [g for landed, g in gens if landed < observed]
        for a in accounts:
            evs = by_account.get(a.lower(), [])
            liq = [e for e in evs if e["event"] == "Liquidated"]
            if not liq:
                result.healthy_at_landing += 1
                continue
            e = liq[0]
            moves = [x for x in evs if x["event"] == "PositionChanged"]
            bad = [x for x in evs if x["event"] == "BadDebtSettled"]
            cuts = [x for x in evs if x["event"] == "ProfitHaircut"]
            paid = [x for x in evs if x["event"] == "FundingSettled"]
            sold_a = sum(
                -int(x["size_delta"]) * int(x["price"]) / WAD / WAD
                for x in moves
                if int(x["market_id"]) == market_id
            )
            sold += sold_a
            side = 1 if moves and int(moves[0]["size_delta"]) < 0 else -1
            gen = generation_of(induced.get(a.lower(), False), earlier)
            gens.append((step, gen))
            result.liquidations.append(
                LiquidationRecord(
                    step=step,
                    observed=observed,
                    account=str(e["account"]),
                    market_id=int(moves[0]["market_id"]) if moves else market_id,
                    side=side,
                    fraction=int(e["fraction"]),
                    full=bool(e["full"]),
                    closed_notional=int(e["closed_notional"]),
                    fee=int(e["fee"]),
                    keeper_reward=int(e["keeper_reward"]),
                    insurance_delta=int(e["insurance_delta"]),
                    price_usd=price_wad / WAD,
                    sold_usd=round(sold_a, 6),
                    bad_debt=sum(int(x["bad_debt"]) for x in bad),
                    insurance_covered=sum(int(x["insurance_covered"]) for x in bad),
                    socialised=sum(int(x["socialised"]) for x in bad),
                    uncovered=sum(int(x["uncovered"]) for x in bad),
                    haircut=sum(int(x["owed"]) - int(x["paid"]) for x in cuts),
                    funding=sum(int(x["funding"]) for x in paid),
                    generation=gen,
                )
            )
        for a in accounts:
            apply_events(by_address[a.lower()], by_account.get(a.lower(), []))
        return sold

    def _check_books(self, result: ScenarioResult) -> None:
        """The fund at the end must be the start plus the recorded deltas."""
        expected = result.insurance_start + sum(
            r.insurance_delta - r.insurance_covered for r in result.liquidations
        )
        if expected != result.insurance_end:
            raise SimulationError(
                f"{result.crash} {result.point.label}: insurance {result.insurance_end} on "
                f"chain, {expected} from the records"
            )


def _in_process(provider: Any) -> bool:
    """Ape's in-process py-evm chain, where every test account is unlocked in the node."""
    try:
        from ape_test.provider import LocalProvider
    except ImportError:  # pragma: no cover - ape_test ships with ape
        return False
    return isinstance(provider, LocalProvider)


def verify_against_chain(ch: Any, result: ScenarioResult) -> dict[str, tuple[int, int]]:
    """Rebuild the scenario's blocks from `eth_getLogs` (audit.py's ledger) and compare with
    the result; raises SimulationError on any difference. Returns {item: (ours, chain)}."""
    from margin_maintenance.audit import rebuild
    from margin_maintenance.events import fetch_events

    first, last = result.blocks
    ledger = rebuild(fetch_events(ch, start_block=first, stop_block=last))
    pairs = {
        "liquidations": (result.n_liquidations, ledger.counts["Liquidated"]),
        "keeper_rewards": (result.keeper_rewards, ledger.keeper_rewards_total),
        "bad_debt": (result.bad_debt, ledger.bad_debt_total),
        "socialised": (result.socialised, ledger.socialised_total),
        "haircut": (result.haircut, ledger.haircut_total),
        "bad_debt_events": (
            sum(1 for r in result.liquidations if r.bad_debt),
            ledger.counts["BadDebtSettled"],
        ),
    }
    wrong = {k: v for k, v in pairs.items() if v[0] != v[1]}
    if wrong:
        raise SimulationError(f"{result.crash} {result.point.label}: differs from chain: {wrong}")
    result.verified = True
    return pairs


def run_simulation(
    project: Any,
    config: SimConfig,
    *,
    deployer: Any | None = None,
    keeper: Any | None = None,
    on_setup: Callable[[str], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_scenario: Callable[[ScenarioResult, ChainSimulator], None] | None = None,
) -> SimulationResults:
    """Deploy, seed, and run every (crash, sweep point) on the connected chain.
    `on_start(total)` once the scenario count is known, `on_scenario(result, sim)` after each
    one (before the next restore: the scenario's blocks are still on chain)."""
    from ape import accounts as ape_accounts

    config.validate()
    deployer = deployer or ape_accounts.test_accounts[0]
    keeper = keeper or ape_accounts.test_accounts[1]
    crashes = select_crashes(config)
    unknown = sorted({s.symbol for s, *_ in crashes} - set(MARKETS))
    if unknown:
        raise SimulationError(f"no market for {unknown}: the simulator lists {list(MARKETS)}")
    sim = ChainSimulator(project, config, deployer, keeper)
    sim.setup(on_setup)
    paths = []
    for scenario, points, skip, rows in crashes:
        answer, decimals = sim.start_answer(scenario.symbol)
        paths.append(build_path(scenario, points, answer, decimals, skip, rows))
    sweep_points = config.sweep.points()
    # On signed prices, the same windows on the push feed beside them (the base point and the
    # latency axis): what the signed price buys.
    compare = config.oracle.with_mode("push") if config.oracle.pull else None
    beside = [(p, a) for p, a in sweep_points if "latency" in a] if compare else []
    if on_start is not None:
        on_start(len(paths) * (len(sweep_points) + len(beside)))
    results: list[ScenarioResult] = []
    for path in paths:
        runs = [(p, a, None) for p, a in sweep_points] + [(p, a, compare) for p, a in beside]
        for point, axes, oracle in runs:
            r = sim.run(path, point, axes, oracle)
            results.append(r)
            if on_scenario is not None:
                on_scenario(r, sim)
    return SimulationResults(config, sim.population, paths, results)
