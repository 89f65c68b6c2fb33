"""The end-of-run report: per crash window, what liquidations, the insurance fund, bad debt and
the LP pool did, as a table (console and Markdown) and a PNG.

Everything is computed from decoded events (`events.fetch_events` dicts, the same the audit
rebuilds balances from) plus a few chain reads the events cannot give: block times, and at
chosen blocks the LP share price and the traders' unrealised PnL per market. The pure part
takes plain dicts and numbers, so it is unit-tested without a chain; `read_report` is the thin
Ape reader.

Windows. A crash replay posts one `AnswerUpdated` per step on the replayed market's aggregator;
the other markets only get heartbeat re-posts of their unchanged answer. So the "driven"
updates (answer differs from the aggregator's previous one) in chain order, grouped into runs
of one market, mark the replays: a run of at least `min_steps` driven updates is a window. The
windows partition the run: each lasts from its first driven update to the block before the
next window starts (the last to the report block), so liquidations the keeper lands after the
last price step still count for the crash that caused them. Everything before the first window
is the setup (deploy, seed). All amounts are in collateral-token units unless named otherwise.

Market time. A replay rescales a crash file's closes so its first row equals the market's
price on chain and posts row i at chain time start + (t_i - t_0) / compression
(`crashdata.plan_replay`). `match_crash` finds the file and first row whose planned answers
equal the window's posted answers, which gives every step's original candle time; between
steps chain time is mapped linearly, so the plot runs on the crash's own dates.

LP PnL. Realised: the pool's change less LP deposits (trading fees, traders' realised losses
less their profits, less socialised bad debt). Unrealised: what the share price also counts,
the change in traders' open profit the pool owes (market by market; open losses count only
once realised) and in account debt. Realised + unrealised is the change of the LPs'
redemption value, i.e. the share price change when no LP joins or leaves.
"""

from __future__ import annotations

import bisect
import logging
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from margin_maintenance.audit import Ledger, apply_event
from margin_maintenance.crashdata import PricePoint, parse_scenario_name, plan_replay
from margin_maintenance.events import CLIENT_EVENTS, fetch_events

log = logging.getLogger(__name__)

WAD = 10**18
MIN_WINDOW_STEPS = 3  # driven price updates in a row that make a replay window
MAX_LP_SAMPLES = 300  # blocks per window at which the LP share price and open PnL are read
CONSOLE_WIDTH = 100  # characters per console line


# ---- Prices and windows ----


@dataclass(frozen=True)
class PriceUpdate:
    """One `AnswerUpdated` of a market's aggregator."""

    market: str  # market symbol, e.g. "ETH-USD"
    block_number: int
    log_index: int
    timestamp: int  # the round's updated_at (the block time when posted with set_price)
    answer: int  # aggregator decimals


def price_updates(logs: Mapping[str, Iterable[Mapping[str, Any]]]) -> list[PriceUpdate]:
    """`AnswerUpdated` event dicts per market symbol as `PriceUpdate`s, in chain order."""
    out = [
        PriceUpdate(
            market=symbol,
            block_number=int(e["block_number"]),
            log_index=int(e["log_index"]),
            timestamp=int(e["updated_at"]),
            answer=int(e["current"]),
        )
        for symbol, evs in logs.items()
        for e in evs
    ]
    out.sort(key=lambda u: (u.block_number, u.log_index))
    return out


def driven_updates(updates: Sequence[PriceUpdate]) -> list[PriceUpdate]:
    """Updates that change their market's answer (the first update of a market counts)."""
    last: dict[str, int] = {}
    out = []
    for u in updates:
        if last.get(u.market) != u.answer:
            out.append(u)
        last[u.market] = u.answer
    return out


@dataclass(frozen=True)
class Segment:
    """A block range the report has a column for: the setup, a crash window, the whole run."""

    label: str
    start_block: int
    end_block: int  # inclusive
    market: str | None = None  # the replayed market of a crash window

    def holds(self, block: int) -> bool:
        return self.start_block <= block <= self.end_block


def detect_windows(
    updates: Sequence[PriceUpdate],
    end_block: int,
    names: Sequence[str] = (),
    min_steps: int = MIN_WINDOW_STEPS,
) -> list[Segment]:
    """The crash windows in `updates` (see the module docstring), labelled by `names` in order,
    else "<market> crash" (numbered when a market has several)."""
    runs: list[tuple[str, int, int]] = []  # (market, first block, driven updates)
    for u in driven_updates(updates):
        if runs and runs[-1][0] == u.market:
            market, first, n = runs[-1]
            runs[-1] = (market, first, n + 1)
        else:
            runs.append((u.market, u.block_number, 1))
    kept = [(m, b) for m, b, n in runs if n >= min_steps]
    per_market: dict[str, int] = {}
    for m, _ in kept:
        per_market[m] = per_market.get(m, 0) + 1
    seen: dict[str, int] = {}
    windows = []
    for i, (market, first) in enumerate(kept):
        last = kept[i + 1][1] - 1 if i + 1 < len(kept) else end_block
        seen[market] = seen.get(market, 0) + 1
        label = f"{market} crash" + (f" #{seen[market]}" if per_market[market] > 1 else "")
        if i < len(names) and names[i]:
            label = names[i]
        windows.append(Segment(label, first, max(first, last), market))
    return windows


def plan_segments(windows: Sequence[Segment], start_block: int, end_block: int) -> list[Segment]:
    """The report's columns: the setup before the first window (when there is one), each
    window, and the whole run."""
    out: list[Segment] = []
    first = windows[0].start_block if windows else end_block + 1
    if first > start_block:
        out.append(Segment("setup" if windows else "run", start_block, first - 1))
    out.extend(windows)
    if windows:
        out.append(Segment("whole run", start_block, end_block))
    return out


@dataclass(frozen=True)
class PriceMove:
    """The replayed market's answer over a window (aggregator decimals)."""

    market: str
    start: int  # last answer before the window
    low: int
    high: int
    end: int

    @property
    def drawdown(self) -> float:
        """Low against start, as a negative fraction."""
        return self.low / self.start - 1 if self.start else 0.0


def price_move(updates: Sequence[PriceUpdate], market: str, seg: Segment) -> PriceMove | None:
    """How `market`'s answer moved over `seg` (None: no update of it up to the segment end)."""
    before = [u.answer for u in updates if u.market == market and u.block_number < seg.start_block]
    inside = [u.answer for u in updates if u.market == market and seg.holds(u.block_number)]
    if not before and not inside:
        return None
    start = before[-1] if before else inside[0]
    path = [start, *inside]
    return PriceMove(market, start, min(path), max(path), path[-1])


# ---- Market time: which crash file a window replayed ----


@dataclass(frozen=True)
class CrashClock:
    """A window's replay matched to its crash file: chain time <-> the file's candle times."""

    crash: str  # the file's stem, e.g. eth_usdt_binance_1h_2020-03-12_black_thursday
    market: str
    first_row: int  # index in the file of the first replayed row
    source_start_price: float  # that row's close (the file's unit, USD or USDT)
    start_price: float  # the on-chain price it was rescaled to (whole USD)
    anchors: tuple[tuple[int, int], ...]  # (chain time, candle time) of every matched step

    @property
    def rows(self) -> int:
        return len(self.anchors)

    @property
    def rescale(self) -> float:
        """On-chain price per unit of the file's price (every row was multiplied by this)."""
        return self.start_price / self.source_start_price

    @property
    def compression(self) -> float:
        """Candle seconds per chain second over the matched steps (1.0 for a single step)."""
        (c0, t0), (c1, t1) = self.anchors[0], self.anchors[-1]
        return (t1 - t0) / (c1 - c0) if c1 > c0 else 1.0

    @property
    def interval(self) -> str:
        """The file's candle interval ("1h"), from its name."""
        return parse_scenario_name(Path(self.crash)).interval

    def market_time(self, chain_ts: float) -> float:
        """The candle time of a chain time: exact at every step, linear between two steps,
        extrapolated at the compression outside them."""
        chain = [c for c, _ in self.anchors]
        i = bisect.bisect_right(chain, chain_ts) - 1
        if i < 0:
            c, t = self.anchors[0]
            return t + (chain_ts - c) * self.compression
        if i >= len(self.anchors) - 1:
            c, t = self.anchors[-1]
            return t + (chain_ts - c) * self.compression
        (c0, t0), (c1, t1) = self.anchors[i], self.anchors[i + 1]
        return t0 + (chain_ts - c0) * (t1 - t0) / (c1 - c0)


def replay_steps(updates: Sequence[PriceUpdate], window: Segment) -> list[PriceUpdate]:
    """The window market's updates a replay posted: the last one before the window (the
    replay's first step re-posts the current answer, so it is not driven) and every one in it."""
    own = [u for u in updates if u.market == window.market]
    before = [u for u in own if u.block_number < window.start_block]
    inside = [u for u in own if window.holds(u.block_number)]
    return before[-1:] + inside


def match_crash(
    updates: Sequence[PriceUpdate],
    window: Segment,
    crashes: Mapping[str, Sequence[PricePoint]],
    decimals: int = 8,
) -> CrashClock | None:
    """The crash file (name -> rows) and first row whose replay plan (`plan_replay`, rescaled
    to the answer before the window's first move) posts exactly the window's answers, up to its
    last driven update. The longest match wins, then the first name in sorted order. None: no
    file fits."""
    steps = replay_steps(updates, window)
    moved = next((i for i, u in enumerate(steps) if u.answer != steps[0].answer), None)
    if window.market is None or moved is None:
        return None
    # Of several posts of the starting answer (a deploy's answer, heartbeats, the replay's first
    # step) the last one before the first move is the replay's first step.
    steps = steps[moved - 1 :]
    driven = {(u.block_number, u.log_index) for u in driven_updates(updates)}
    last_driven = max(
        (i for i, u in enumerate(steps) if (u.block_number, u.log_index) in driven), default=0
    )
    answers = [u.answer for u in steps]
    a0, j = answers[0], 1  # the base, and the first step that moved
    aj = answers[j]
    best: tuple[int, str, int] | None = None  # (matched steps, name, first row)
    for name in sorted(crashes):
        points = crashes[name]
        for s in range(len(points) - last_driven):
            # a cheap filter on the first move, then the replay's own plan, answer for answer
            if abs(a0 * points[s + j].price_usd / points[s].price_usd - aj) > 2 + aj * 1e-9:
                continue
            plan = plan_replay(points, a0, 1.0, s, len(answers), decimals)
            n = 0
            while n < len(plan) and plan[n].answer == answers[n]:
                n += 1
            if n > last_driven and (best is None or n > best[0]):
                best = (n, name, s)
    if best is None:
        return None
    n, name, s = best
    points = crashes[name]
    return CrashClock(
        crash=name,
        market=window.market,
        first_row=s,
        source_start_price=points[s].price_usd,
        start_price=a0 / 10**decimals,
        anchors=tuple((steps[i].timestamp, points[s + i].timestamp_s) for i in range(n)),
    )


def crash_label(clock: CrashClock) -> str:
    """A default window label from its file: "2020-03-12 ETH crash"."""
    sc = parse_scenario_name(Path(clock.crash))
    return f"{sc.date} {sc.base} crash" if sc.date else f"{clock.market} crash"


# ---- Balance paths ----


@dataclass(frozen=True)
class Snapshot:
    """Balances rebuilt from events, as of the end of `block`."""

    block: int
    insurance_fund: int
    pool_assets: int
    bad_debt: int  # cumulative BadDebtSettled.bad_debt
    socialised: int  # cumulative BadDebtSettled.socialised
    account_debt: int = 0  # sum of negative collateral (the engine's total_debt)
    lp_net_deposits: int = 0  # cumulative LiquidityAdded - LiquidityRemoved assets
    lp_shares: int = 0  # LP shares outstanding

    @property
    def lp_realised(self) -> int:
        """Pool assets not paid in by LPs: cumulative realised LP PnL."""
        return self.pool_assets - self.lp_net_deposits


def ledger_path(events: Iterable[Mapping[str, Any]]) -> list[Snapshot]:
    """A snapshot after every block holding an event, with the audit's ledger rules (so the
    path ends where the audit's rebuild does). Per block, not per event: within one
    liquidation BadDebtSettled is logged before the Liquidated that credits the fee, and an
    event-by-event path would dip below anything the chain ever held."""
    ledger = Ledger()
    path: list[Snapshot] = []
    net_deposits = 0
    evs = sorted(events, key=lambda e: (e["block_number"], e["log_index"]))
    for i, e in enumerate(evs):
        apply_event(ledger, e)
        if e["event"] == "LiquidityAdded":
            net_deposits += int(e["assets"])
        elif e["event"] == "LiquidityRemoved":
            net_deposits -= int(e["assets"])
        if i + 1 == len(evs) or evs[i + 1]["block_number"] != e["block_number"]:
            path.append(
                Snapshot(
                    int(e["block_number"]),
                    ledger.insurance_fund,
                    ledger.pool_assets,
                    ledger.bad_debt_total,
                    ledger.socialised_total,
                    ledger.total_debt,
                    net_deposits,
                    ledger.lp_shares,
                )
            )
    return path


def at_block(path: Sequence[Snapshot], block: int) -> Snapshot:
    """The snapshot in force at the end of `block` (all zero before the first)."""
    i = bisect.bisect_right([s.block for s in path], block) - 1
    return path[i] if i >= 0 else Snapshot(block, 0, 0, 0, 0)


@dataclass(frozen=True)
class LPSample:
    """What the chain says about the LP pool at the end of one block (None: not read)."""

    share_price: int | None  # convert_to_assets(one whole share), token units
    trader_pnl: tuple[int, ...] | None = None  # trader_unrealized_pnl of every market

    @property
    def open_profit(self) -> int | None:
        """Traders' open profit the pool owes, market by market (what the share price
        deducts)."""
        return None if self.trader_pnl is None else sum(max(p, 0) for p in self.trader_pnl)

    @property
    def open_loss(self) -> int | None:
        """Traders' open losses (the share price counts them only once realised)."""
        return None if self.trader_pnl is None else sum(max(-p, 0) for p in self.trader_pnl)


# ---- Figures ----


@dataclass
class Figures:
    """One report column."""

    segment: Segment
    liquidations: int = 0
    partial: int = 0
    full: int = 0
    accounts_liquidated: int = 0
    liquidators: int = 0
    closed_notional: int = 0
    liquidation_fees: int = 0  # Liquidated.fee: taken from the accounts
    keeper_rewards: int = 0
    insurance_topup: int = 0  # rewards paid beyond the fee: sum of -insurance_delta < 0
    insurance_funded: int = 0  # InsuranceFunded
    insurance_start: int = 0
    insurance_end: int = 0
    insurance_min: int = 0
    bad_debt: int = 0
    bad_debt_events: int = 0
    covered_by_insurance: int = 0
    socialised: int = 0  # taken from the LP pool
    uncovered: int = 0  # left as account debt
    pool_start: int = 0
    pool_end: int = 0
    lp_net_deposits: int = 0  # LiquidityAdded - LiquidityRemoved assets
    share_price_start: int | None = None  # assets per whole LP share (convert_to_assets)
    share_price_end: int | None = None
    open_profit_start: int | None = None  # traders' open profit owed by the pool (LPSample)
    open_profit_end: int | None = None
    open_loss_start: int | None = None  # traders' open losses, not in the share price
    open_loss_end: int | None = None
    account_debt_start: int = 0  # negative collateral (total_debt), at the share-price blocks
    account_debt_end: int = 0
    haircuts: int = 0  # ProfitHaircut: owed - paid
    trader_realized_pnl: int = 0  # PositionChanged.realized_pnl, trades and liquidations
    liquidation_realized_pnl: int = 0  # the part realised by liquidations
    trading_fees: int = 0  # PositionChanged.fee
    trades: int = 0  # PositionChanged by trade() (liquidation closes excluded)
    price: PriceMove | None = None

    @property
    def lp_pnl(self) -> int:
        """Pool value change not due to LP deposits or withdrawals (realised: trading fees,
        traders' realised losses less profits, socialised bad debt)."""
        return self.pool_end - self.pool_start - self.lp_net_deposits

    @property
    def lp_unrealised(self) -> int | None:
        """What the share price counts beyond `lp_pnl`: minus the change in traders' open
        profit owed by the pool and in account debt (None: open PnL not read)."""
        if self.open_profit_start is None or self.open_profit_end is None:
            return None
        return -(self.open_profit_end - self.open_profit_start) - (
            self.account_debt_end - self.account_debt_start
        )

    @property
    def lp_mark_to_market(self) -> int | None:
        """Realised + unrealised: the change of the LPs' redemption value less deposits."""
        u = self.lp_unrealised
        return None if u is None else self.lp_pnl + u

    @property
    def traders_net_loss(self) -> int:
        """Traders' realised losses less their profits: what the pool took from them."""
        return -self.trader_realized_pnl

    @property
    def share_price_change(self) -> float | None:
        if not self.share_price_start or self.share_price_end is None:
            return None
        return self.share_price_end / self.share_price_start - 1


def liquidation_closes(events: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int], list[dict]]:
    """For every Liquidated event, keyed by (tx, log_index), the PositionChanged events of the
    same account logged before it in the same transaction (the legs it closed)."""
    pending: dict[tuple[str, str], list[dict]] = {}
    out: dict[tuple[str, int], list[dict]] = {}
    for e in sorted(events, key=lambda e: (e["block_number"], e["log_index"])):
        key = (str(e.get("tx")), str(e.get("account")))
        if e["event"] == "PositionChanged":
            pending.setdefault(key, []).append(dict(e))
        elif e["event"] == "Liquidated":
            out[(str(e.get("tx")), int(e["log_index"]))] = pending.pop(key, [])
    return out


def _liquidation_legs(events: Sequence[Mapping[str, Any]]) -> set[tuple[str, int]]:
    """(tx, log_index) of every PositionChanged that a liquidation logged."""
    return {
        (str(p.get("tx")), int(p["log_index"]))
        for legs in liquidation_closes(events).values()
        for p in legs
    }


def share_price_blocks(seg: Segment, events: Sequence[Mapping[str, Any]]) -> tuple[int | None, int]:
    """Blocks to read the LP share price at for `seg`: the end of the block before it, or,
    when no LP share existed then, the end of the block of the first LP deposit inside it
    (None: no deposit up to the segment end); and the segment's last block."""
    adds = [int(e["block_number"]) for e in events if e["event"] == "LiquidityAdded"]
    if any(b < seg.start_block for b in adds):
        return seg.start_block - 1, seg.end_block
    inside = [b for b in adds if seg.holds(b)]
    return (min(inside) if inside else None), seg.end_block


def compute_figures(
    seg: Segment,
    events: Sequence[Mapping[str, Any]],
    path: Sequence[Snapshot] | None = None,
    share_prices: Mapping[int, int | None] | None = None,
    updates: Sequence[PriceUpdate] = (),
    lp_samples: Mapping[int, LPSample] | None = None,
) -> Figures:
    """The figures of one segment from all events of the run (`path`: `ledger_path(events)`;
    `share_prices`: block -> assets per whole LP share at the end of that block; `lp_samples`:
    block -> `LPSample`, which also gives share prices when `share_prices` is None)."""
    path = ledger_path(events) if path is None else path
    if share_prices is None and lp_samples is not None:
        share_prices = {b: s.share_price for b, s in lp_samples.items()}
    f = Figures(seg)
    liq_legs = _liquidation_legs(events)
    accounts: set[str] = set()
    keepers: set[str] = set()
    for e in events:
        if not seg.holds(int(e["block_number"])):
            continue
        name = e["event"]
        if name == "Liquidated":
            f.liquidations += 1
            if e["full"]:
                f.full += 1
            else:
                f.partial += 1
            accounts.add(str(e["account"]).lower())
            keepers.add(str(e["liquidator"]).lower())
            f.closed_notional += int(e["closed_notional"])
            f.liquidation_fees += int(e["fee"])
            f.keeper_rewards += int(e["keeper_reward"])
            f.insurance_topup += max(-int(e["insurance_delta"]), 0)
        elif name == "BadDebtSettled":
            f.bad_debt_events += 1
            f.bad_debt += int(e["bad_debt"])
            f.covered_by_insurance += int(e["insurance_covered"])
            f.socialised += int(e["socialised"])
            f.uncovered += int(e["uncovered"])
        elif name == "InsuranceFunded":
            f.insurance_funded += int(e["amount"])
        elif name == "LiquidityAdded":
            f.lp_net_deposits += int(e["assets"])
        elif name == "LiquidityRemoved":
            f.lp_net_deposits -= int(e["assets"])
        elif name == "ProfitHaircut":
            f.haircuts += int(e["owed"]) - int(e["paid"])
        elif name == "PositionChanged":
            f.trader_realized_pnl += int(e["realized_pnl"])
            f.trading_fees += int(e["fee"])
            if (str(e.get("tx")), int(e["log_index"])) in liq_legs:
                f.liquidation_realized_pnl += int(e["realized_pnl"])
            else:
                f.trades += 1
    f.accounts_liquidated = len(accounts)
    f.liquidators = len(keepers)

    before = at_block(path, seg.start_block - 1)
    after = at_block(path, seg.end_block)
    f.insurance_start, f.insurance_end = before.insurance_fund, after.insurance_fund
    # The minimum since the fund was first funded (a run's start at zero is no low point).
    funded = next((s.block for s in path if s.insurance_fund > 0), None)
    lows: list[int] = []
    if funded is not None:
        if funded < seg.start_block:
            lows.append(before.insurance_fund)
        lows += [s.insurance_fund for s in path if seg.holds(s.block) and s.block >= funded]
    f.insurance_min = min(lows, default=after.insurance_fund)
    f.pool_start, f.pool_end = before.pool_assets, after.pool_assets

    if share_prices is not None:
        start_at, end_at = share_price_blocks(seg, events)
        f.share_price_start = None if start_at is None else share_prices.get(start_at)
        f.share_price_end = share_prices.get(end_at)
        if lp_samples is not None and start_at is not None:
            s0, s1 = lp_samples.get(start_at), lp_samples.get(end_at)
            if s0 is not None and s1 is not None:
                f.open_profit_start, f.open_profit_end = s0.open_profit, s1.open_profit
                f.open_loss_start, f.open_loss_end = s0.open_loss, s1.open_loss
                f.account_debt_start = at_block(path, start_at).account_debt
                f.account_debt_end = at_block(path, end_at).account_debt
    if seg.market is not None:
        f.price = price_move(updates, seg.market, seg)
    return f


# ---- The LP pool over a window ----


def thin(blocks: Sequence[int], cap: int) -> list[int]:
    """At most `cap` of `blocks` (sorted), evenly spread, the first and last kept."""
    if len(blocks) <= cap:
        return list(blocks)
    if cap < 2:
        return list(blocks[-cap:]) if cap > 0 else []
    keep = sorted({round(i * (len(blocks) - 1) / (cap - 1)) for i in range(cap)})
    return [blocks[i] for i in keep]


LP_EVENTS = ("PositionChanged", "BadDebtSettled", "LiquidityAdded", "LiquidityRemoved")


def lp_blocks(
    seg: Segment,
    events: Sequence[Mapping[str, Any]],
    updates: Sequence[PriceUpdate],
    cap: int = MAX_LP_SAMPLES,
) -> list[int]:
    """Blocks to read an `LPSample` at for a window's LP path: the end of the block before it,
    then every block in it where a price moved or an event moved the pool, open PnL or debt,
    and its last block (evenly thinned to `cap` in all)."""
    moved = {u.block_number for u in driven_updates(updates) if seg.holds(u.block_number)}
    moved |= {
        int(e["block_number"])
        for e in events
        if e["event"] in LP_EVENTS and seg.holds(int(e["block_number"]))
    }
    inside = thin(sorted(moved | {seg.end_block}), max(cap - 1, 1))
    return [seg.start_block - 1, *inside]


@dataclass(frozen=True)
class LPPoint:
    """The LP pool at the end of `block`, PnL counted from the start of a window."""

    block: int
    realised: int  # pool change less LP deposits
    unrealised: int  # -(change in open profit owed + change in account debt)
    share_price: int | None  # convert_to_assets(one whole share)
    open_profit: int  # traders' open profit owed by the pool now
    open_loss: int  # traders' open losses now

    @property
    def total(self) -> int:
        return self.realised + self.unrealised


def lp_path(
    seg: Segment, samples: Mapping[int, LPSample], path: Sequence[Snapshot]
) -> list[LPPoint]:
    """The LP pool at every sampled block of `seg` whose open PnL was read, relative to the end
    of the block before it ([] when that block was not read)."""
    base = seg.start_block - 1
    s0 = samples.get(base)
    if s0 is None or s0.open_profit is None:
        return []
    b0 = at_block(path, base)
    out = []
    for b in sorted(samples):
        s = samples[b]
        if b < base or b > seg.end_block or s.open_profit is None or s.open_loss is None:
            continue
        snap = at_block(path, b)
        out.append(
            LPPoint(
                block=b,
                realised=snap.lp_realised - b0.lp_realised,
                unrealised=-(s.open_profit - s0.open_profit)
                - (snap.account_debt - b0.account_debt),
                share_price=s.share_price,
                open_profit=s.open_profit,
                open_loss=s.open_loss,
            )
        )
    return out


# ---- Rendering ----


def fmt_amount(amount: int, decimals: int) -> str:
    """Token units as whole tokens, two decimals, thousands separators."""
    return f"{amount / 10**decimals:,.2f}"


def fmt_signed(amount: int, decimals: int) -> str:
    return f"{amount / 10**decimals:+,.2f}"


def _fmt_price(answer: int, decimals: int) -> str:
    return f"{answer / 10**decimals:,.2f}"


def table_rows(
    figs: Sequence[Figures], decimals: int, price_decimals: Mapping[str, int] | None = None
) -> tuple[list[str], list[list[str]]]:
    """Header and rows (figure name, then one cell per column) shared by the console table and
    report.md: short labels and cells, so four columns fit 100 characters. `decimals`: the
    collateral token's; share prices have the same unit. Indented rows are the parts of the
    row above them (the LP PnL parts add up to it)."""
    amt = lambda v: fmt_amount(v, decimals)  # noqa: E731
    sgn = lambda v: fmt_signed(v, decimals)  # noqa: E731
    pdec = price_decimals or {}

    def maybe(fn: Any, v: int | None) -> str:
        return "-" if v is None else fn(v)

    def share(v: int | None) -> str:
        return "-" if v is None else f"{v / 10**decimals:,.6f}"

    def change(f: Figures) -> str:
        c = f.share_price_change
        return "-" if c is None else f"{c * 100:+.3f}%"

    def price(attr: str) -> Any:
        def cell(f: Figures) -> str:
            p = f.price
            return "-" if p is None else _fmt_price(getattr(p, attr), pdec.get(p.market, 8))

        return cell

    def drawdown(f: Figures) -> str:
        return "-" if f.price is None else f"{f.price.drawdown * 100:+.1f}%"

    def debt_change(f: Figures) -> str:
        if f.lp_unrealised is None:
            return "-"
        return sgn(-(f.account_debt_end - f.account_debt_start))

    def profit_change(f: Figures) -> str:
        if f.open_profit_start is None or f.open_profit_end is None:
            return "-"
        return sgn(-(f.open_profit_end - f.open_profit_start))

    spec: list[tuple[str, Any]] = [
        ("blocks", lambda f: f"{f.segment.start_block}..{f.segment.end_block}"),
        ("replayed price start", price("start")),
        ("  low", price("low")),
        ("  drawdown (low / start)", drawdown),
        ("  end", price("end")),
        ("liquidations", lambda f: str(f.liquidations)),
        ("  partial", lambda f: str(f.partial)),
        ("  full", lambda f: str(f.full)),
        ("accounts liquidated", lambda f: str(f.accounts_liquidated)),
        ("closed notional", lambda f: amt(f.closed_notional)),
        ("liquidation fees (from accounts)", lambda f: amt(f.liquidation_fees)),
        ("keeper rewards", lambda f: amt(f.keeper_rewards)),
        ("  topped up by insurance", lambda f: amt(f.insurance_topup)),
        ("insurance fund start", lambda f: amt(f.insurance_start)),
        ("insurance fund end", lambda f: amt(f.insurance_end)),
        ("insurance fund min", lambda f: amt(f.insurance_min)),
        ("insurance funded (deposits)", lambda f: amt(f.insurance_funded)),
        ("bad debt", lambda f: amt(f.bad_debt)),
        ("  accounts", lambda f: str(f.bad_debt_events)),
        ("  covered by insurance", lambda f: amt(f.covered_by_insurance)),
        ("  socialised to LPs", lambda f: amt(f.socialised)),
        ("  uncovered (left as debt)", lambda f: amt(f.uncovered)),
        ("pool assets start", lambda f: amt(f.pool_start)),
        ("pool assets end", lambda f: amt(f.pool_end)),
        ("LP net deposits", lambda f: sgn(f.lp_net_deposits)),
        ("LP PnL, realised", lambda f: sgn(f.lp_pnl)),
        ("  trading fees", lambda f: sgn(f.trading_fees)),
        ("  traders' net realised loss", lambda f: sgn(f.traders_net_loss)),
        ("  bad debt socialised", lambda f: sgn(-f.socialised)),
        ("LP PnL, unrealised", lambda f: maybe(sgn, f.lp_unrealised)),
        ("  open trader profit owed", profit_change),
        ("  account debt", debt_change),
        ("LP PnL, mark-to-market", lambda f: maybe(sgn, f.lp_mark_to_market)),
        ("LP share price start", lambda f: share(f.share_price_start)),
        ("LP share price end", lambda f: share(f.share_price_end)),
        ("LP share price change", change),
        ("open trader profit at end", lambda f: maybe(amt, f.open_profit_end)),
        ("open trader loss at end", lambda f: maybe(amt, f.open_loss_end)),
        ("profit haircuts (owed - paid)", lambda f: amt(f.haircuts)),
        ("traders' realised PnL", lambda f: sgn(f.trader_realized_pnl)),
        ("  in liquidations", lambda f: sgn(f.liquidation_realized_pnl)),
        ("trades (by trade())", lambda f: str(f.trades)),
    ]
    header = ["figure", *[f.segment.label for f in figs]]
    rows = [[name, *[fn(f) for f in figs]] for name, fn in spec]
    return header, rows


def render_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain aligned text: first column left, the others right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *[line(r) for r in rows]])


def _md_cell(text: str) -> str:
    body = text.lstrip(" ")
    indent = "&nbsp;" * (len(text) - len(body))  # Markdown drops leading spaces
    return indent + body.replace("|", "\\|")


def render_markdown(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    title: str = "Margin Maintenance run report",
    intro: Sequence[str] = (),
    image: str | None = None,
    notes: Sequence[str] = (),
) -> str:
    """report.md: a title, intro lines, the figures table, the plot, notes."""
    out = [f"# {title}", ""]
    if intro:
        out += [*intro, ""]
    out.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
    out.append("|" + "|".join([":---", *["---:"] * (len(header) - 1)]) + "|")
    out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
    out.append("")
    if image:
        alt = "each crash window on market time: price and liquidations, insurance, LP pool"
        out += [f"![{alt}]({image})", ""]
    if notes:
        out += ["Notes:", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(out)


def _wrap_label(label: str, width: int) -> list[str]:
    """A row label over as many lines as it needs, its indentation kept (continuations two
    spaces deeper)."""
    body = label.lstrip(" ")
    indent = len(label) - len(body)
    if len(label) <= width:
        return [label]
    lines = textwrap.wrap(body, max(width - indent - 2, 4), break_long_words=True)
    return [" " * indent + lines[0], *[" " * (indent + 2) + x for x in lines[1:]]]


def render_console(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int = CONSOLE_WIDTH,
    title: str = "",
) -> str:
    """The table for a terminal, no line longer than `width`: column headers wrap on spaces,
    long row labels wrap, and the value columns are split into blocks (each repeating the
    label column) when they do not fit side by side."""
    gap = 2
    cols = list(range(1, len(header)))

    def col_width(i: int) -> int:
        words = [len(w) for w in header[i].split()] or [1]
        return min(max(max((len(r[i]) for r in rows), default=1), *words), width - gap - 12)

    widths = {i: col_width(i) for i in cols}
    widest = max(widths.values(), default=0)
    label_w = min(max(len(r[0]) for r in [header, *rows]), width - gap - widest)
    blocks: list[list[int]] = []
    for i in cols:
        used = label_w + sum(gap + widths[k] for k in blocks[-1]) if blocks else None
        if used is None or used + gap + widths[i] > width:
            blocks.append([i])
        else:
            blocks[-1].append(i)
    out: list[str] = textwrap.wrap(title, width) if title else []
    for n, block in enumerate(blocks or [[]]):
        if n or out:
            out.append("")
        heads = {i: textwrap.wrap(header[i], widths[i], break_long_words=True) for i in block}
        depth = max((len(h) for h in heads.values()), default=1)
        for k in range(depth):
            label = header[0] if k == depth - 1 else ""
            cells = []
            for i in block:
                h = heads[i]
                pad = depth - len(h)
                cells.append((h[k - pad] if k >= pad else "").rjust(widths[i]))
            out.append((" " * gap).join([label.ljust(label_w), *cells]).rstrip())
        out.append((" " * gap).join(["-" * label_w, *["-" * widths[i] for i in block]]))
        for r in rows:
            labels = _wrap_label(r[0], label_w)
            cells = [r[i][: widths[i]].rjust(widths[i]) for i in block]
            out.append((" " * gap).join([labels[0].ljust(label_w), *cells]).rstrip())
            out += labels[1:]
    return "\n".join(out)


def render_notes(notes: Sequence[str], width: int = CONSOLE_WIDTH) -> str:
    """Notes as wrapped "- " items for the console."""
    return "\n".join(
        textwrap.fill(n, width, initial_indent="- ", subsequent_indent="  ") for n in notes
    )


def _utc(ts: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "?" if ts is None else datetime.fromtimestamp(ts, UTC).strftime(fmt)


def window_lines(
    windows: Sequence[Segment],
    clocks: Sequence[CrashClock | None],
    block_times: Mapping[int, int],
    markdown: bool = False,
) -> list[str]:
    """One sentence per window (for a list item): its blocks and chain time, and, when its
    crash file was found, the file, rows, original candle dates, compression and rescale
    factor."""
    out = []
    for w, clock in zip(windows, clocks, strict=True):
        label = f"**{w.label}**" if markdown else w.label
        chain = (
            f"chain time {_utc(block_times.get(w.start_block), '%Y-%m-%d %H:%M:%S')} .. "
            f"{_utc(block_times.get(w.end_block), '%H:%M:%S')} UTC"
        )
        if clock is None:
            out.append(
                f"{label}: {w.market}, blocks {w.start_block}..{w.end_block}, {chain}; "
                "no crash file matched its prices, so the plot is on chain time."
            )
            continue
        name = f"`{clock.crash}`" if markdown else clock.crash
        first, last = clock.anchors[0][1], clock.anchors[-1][1]
        out.append(
            f"{label}: {w.market}, blocks {w.start_block}..{w.end_block}: {name} rows "
            f"{clock.first_row}..{clock.first_row + clock.rows - 1} ({clock.rows} "
            f"{clock.interval or 'row'} closes, market time {_utc(first)} .. {_utc(last)} UTC), "
            f"replayed {clock.compression:,.4g}x faster, prices x{clock.rescale:,.4g} "
            f"({clock.source_start_price:,.2f} rescaled to {clock.start_price:,.2f}); {chain}."
        )
    return out


def lp_note(f: Figures, decimals: int, unit: str = "USDC") -> str | None:
    """One sentence on why the LP share price and realised LP PnL can disagree, with the
    segment's numbers (None when its open PnL or share prices were not read)."""
    change, mtm = f.share_price_change, f.lp_mark_to_market
    if change is None or mtm is None or f.lp_unrealised is None:
        return None
    n = lambda v: f"{v / 10**decimals:,.0f}"  # noqa: E731
    s = lambda v: f"{v / 10**decimals:+,.0f}"  # noqa: E731
    return (
        f"LP share price vs realised LP PnL ({f.segment.label}): the share price moved "
        f"{change * 100:+.2f}% while LP PnL, realised, was {s(f.lp_pnl)} {unit} (trading fees "
        f"{n(f.trading_fees)} + traders' net realised loss {s(f.traders_net_loss)}, of which "
        f"{s(-f.liquidation_realized_pnl)} in liquidations, - bad debt socialised "
        f"{n(f.socialised)}), because the share price also deducts the open profit the pool "
        f"owes traders still holding positions, {n(f.open_profit_start or 0)} -> "
        f"{n(f.open_profit_end or 0)} {unit}, and counts their open losses "
        f"({n(f.open_loss_end or 0)} {unit} at the end) only once realised: unrealised "
        f"{s(f.lp_unrealised)}, so the LPs' mark-to-market PnL was {s(mtm)} {unit}."
    )


NOTES: tuple[str, ...] = (
    "Windows are found from the oracle: a run of at least "
    f"{MIN_WINDOW_STEPS} answer changes on one market's aggregator (heartbeat re-posts of an "
    "unchanged answer do not count). A window lasts until the next one starts, so liquidations "
    "landed after the last price step count for the crash that caused them; `setup` is "
    "everything before the first window (deploy, seed).",
    "Market time and prices: the replay rescales a crash file's closes so its first row equals "
    "the market's on-chain price (every row times the same factor, so percentage moves are "
    "real) and compresses its clock. The report finds the file and first row whose replay "
    "plan posts exactly the window's on-chain answers; that gives each step's original candle "
    "time (chain time in between is mapped linearly) and the rescale factor.",
    "Insurance fund and pool assets are rebuilt from events with the audit's rules, at the end "
    "of each block (`ape run audit` checks the same rebuild against the chain).",
    "Keeper rewards topped up by insurance: the part of rewards not paid by the liquidation "
    "fee (sum of -insurance_delta where negative).",
    "LP PnL, realised = pool change - LP net deposits = trading fees + traders' net realised "
    "loss - bad debt socialised (a trader's loss is credited to the pool in full; the "
    "insurance fund then covers what the account could not pay). LP PnL, unrealised = minus "
    "the change in traders' open profit the pool owes (per market, as the share price counts "
    "it; open losses are not counted until realised) and in account debt, read from "
    "trader_unrealized_pnl. Mark-to-market = realised + unrealised = the change in LP "
    "redemption value, which is what the share price (convert_to_assets of one whole share) "
    "shows when no LP joins or leaves. Where the run starts before any LP share exists, the "
    "share price starts at the first LP deposit.",
    "Traders' realised PnL includes what liquidations realised (their closes log "
    "PositionChanged with fee 0; the liquidation fee is separate).",
    "The plot has one column per window, on market time: the price panel shows the on-chain "
    "(rescaled) oracle price with the file's original price on the right axis; a marker is "
    "one liquidation (x partial: a fraction of every position closed; X full: all closed), "
    "drawn at its block's time and the closing price, and 'xN' beside a marker means N "
    "liquidations at that same point (one block, one price: typically one liquidate_many "
    "batch). Below: the insurance fund and the window's bad debt, then the LP pool.",
)


def report_json(rep: RunReport, network: str, chain_id: int, clearinghouse: str) -> dict:
    """report.json: every column's figures in token units (`decimals` says how to read them),
    and each window's crash file, rows, market and chain time, compression and rescale."""
    cols = []
    for f in rep.figures:
        d = asdict(f)
        d["lp_pnl"] = f.lp_pnl
        d["lp_unrealised"] = f.lp_unrealised
        d["lp_mark_to_market"] = f.lp_mark_to_market
        d["share_price_change"] = f.share_price_change
        cols.append(d)
    windows = []
    for w, clock in zip(rep.windows, rep.clocks, strict=True):
        item: dict[str, Any] = {
            "label": w.label,
            "market": w.market,
            "start_block": w.start_block,
            "end_block": w.end_block,
            "crash_file": None,
        }
        if clock is not None:
            item.update(
                crash_file=clock.crash,
                first_row=clock.first_row,
                rows=clock.rows,
                market_time_start=clock.anchors[0][1],
                market_time_end=clock.anchors[-1][1],
                chain_time_start=clock.anchors[0][0],
                chain_time_end=clock.anchors[-1][0],
                compression=clock.compression,
                source_start_price=clock.source_start_price,
                start_price=clock.start_price,
                rescale=clock.rescale,
            )
        windows.append(item)
    return {
        "network": network,
        "chain_id": chain_id,
        "clearinghouse": clearinghouse,
        "decimals": rep.decimals,
        "collateral_decimals": rep.decimals,  # the same, under its earlier name
        "unit": rep.unit,
        "units": {
            "amounts": f"{rep.unit} token units: divide by 10**decimals",
            "share prices": "token units per whole LP share: divide by 10**decimals",
            "price": "aggregator answers: divide by 10**price_decimals[market]",
        },
        "start_block": rep.start_block,
        "end_block": rep.end_block,
        "price_decimals": rep.price_decimals,
        "windows": windows,
        "columns": cols,
    }


def report_notes(rep: RunReport) -> list[str]:
    """The run's own LP sentence (for its last column, the whole run), then the fixed notes."""
    note = lp_note(rep.figures[-1], rep.decimals, rep.unit) if rep.figures else None
    return [*([note] if note else []), *NOTES]


def console_report(rep: RunReport, title: str = "", width: int = CONSOLE_WIDTH) -> str:
    """What `ape run report` prints: the table, a line per window, and the notes, every line at
    most `width` characters."""
    header, rows = table_rows(rep.figures, rep.decimals, rep.price_decimals)
    windows = (
        window_lines(rep.windows, rep.clocks, rep.block_times)
        if rep.windows
        else ["No crash window found in the oracle updates: whole-run figures only."]
    )
    return "\n".join(
        [
            render_console(header, rows, width, title),
            "",
            "Windows:",
            render_notes(windows, width),
            "",
            "Notes:",
            render_notes(report_notes(rep), width),
        ]
    )


# ---- Plot ----


@dataclass(frozen=True)
class LiquidationMark:
    """A point to mark on a market's price line."""

    market: str
    timestamp: int
    price: float  # the closing (oracle) price, whole USD
    full: bool


def liquidation_marks(
    events: Sequence[Mapping[str, Any]],
    block_times: Mapping[int, int],
    symbols: Mapping[int, str],
) -> list[LiquidationMark]:
    """One mark per market a liquidation closed, at its block time and closing price."""
    by_key = {
        (str(e.get("tx")), int(e["log_index"])): e for e in events if e["event"] == "Liquidated"
    }
    marks = []
    for key, legs in liquidation_closes(events).items():
        liq = by_key[key]
        t = block_times.get(int(liq["block_number"]))
        if t is None:
            continue
        for p in legs:
            market = symbols.get(int(p["market_id"]), str(p["market_id"]))
            marks.append(LiquidationMark(market, t, int(p["price"]) / WAD, bool(liq["full"])))
    marks.sort(key=lambda m: m.timestamp)
    return marks


def cluster_marks(marks: Sequence[LiquidationMark]) -> list[tuple[LiquidationMark, int]]:
    """Marks that would be drawn on top of each other (same market, time, price and kind:
    one `liquidate_many` batch) as one mark with a count, in time order."""
    counts: dict[LiquidationMark, int] = {}
    for m in marks:
        counts[m] = counts.get(m, 0) + 1
    return sorted(counts.items(), key=lambda mc: (mc[0].timestamp, mc[0].market, mc[0].full))


@dataclass
class WindowPlot:
    """One column of the plot: a crash window on market time (chain time when no crash file
    matched). Times are seconds, prices whole USD, amounts whole tokens."""

    label: str
    market: str
    title: str  # the window's label and dates
    market_time: bool  # False: the x axis is chain time
    x_start: float
    x_end: float
    prices: list[tuple[float, float]] = field(default_factory=list)  # on-chain answer
    rescale: float | None = None  # on-chain price per unit of the file's price
    source: str = ""  # the file's pair and venue, e.g. "ETH/USDT binance 1h close"
    start_price: float | None = None
    marks: list[tuple[float, float, bool, int]] = field(default_factory=list)  # t, price, full, n
    other_legs: dict[str, int] = field(default_factory=dict)  # legs closed in other markets
    partial: int = 0  # liquidations in the window
    full: int = 0
    insurance: list[tuple[float, float]] = field(default_factory=list)  # fund level
    bad_debt: list[tuple[float, float]] = field(default_factory=list)  # in the window
    socialised: list[tuple[float, float]] = field(default_factory=list)  # in the window
    lp: list[tuple[float, float, float, float | None]] = field(
        default_factory=list
    )  # t, realised, unrealised, share price (PnL since the window start)
    lp_nav_start: float | None = None  # redemption value at the start, if no LP moved
    share_price_start: float | None = None
    share_price_end: float | None = None


@dataclass
class PlotData:
    """What `plot_report` draws: one column per window."""

    windows: list[WindowPlot] = field(default_factory=list)
    unit: str = "USDC"


def _source_label(clock: CrashClock) -> str:
    sc = parse_scenario_name(Path(clock.crash))
    venue = f" {sc.venue.replace('_', ' ')}" if sc.venue else ""
    return f"{sc.base}/{sc.quote}{venue} {sc.interval} close".strip()


def window_plot(rep: RunReport, index: int) -> WindowPlot:
    """The plot column of `rep.windows[index]`."""
    w = rep.windows[index]
    clock = rep.clocks[index] if index < len(rep.clocks) else None
    unit = 10**rep.decimals
    times = rep.block_times

    def x(chain_ts: float) -> float:
        return clock.market_time(chain_ts) if clock is not None else float(chain_ts)

    market = w.market or ""
    scale = 10 ** rep.price_decimals.get(market, 8)
    steps = replay_steps(rep.updates, w)
    if clock is not None:  # from the replay's first step on (not a deploy's answer before it)
        steps = [u for u in steps if u.timestamp >= clock.anchors[0][0]]
    t_end = times.get(w.end_block, steps[-1].timestamp if steps else 0)
    x_start = x(steps[0].timestamp if steps else times.get(w.start_block, t_end))
    x_end = max(x(t_end), x_start + 1)
    if clock is not None:
        first, last = clock.anchors[0][1], clock.anchors[-1][1]
        dates = f"{_utc(first)} .. {_utc(last)} UTC"
        title = f"{w.label}: {dates}\n{clock.crash}, rows {clock.first_row}.."
        title += f"{clock.first_row + clock.rows - 1}, replayed {clock.compression:,.4g}x faster"
    else:
        title = f"{w.label}: {market} (chain time, no crash file matched)"
    out = WindowPlot(
        w.label,
        market,
        title,
        clock is not None,
        x_start,
        x_end,
        rescale=clock.rescale if clock else None,
        source=_source_label(clock) if clock else "",
        start_price=clock.start_price if clock else (steps[0].answer / scale if steps else None),
    )
    out.prices = [(x(u.timestamp), u.answer / scale) for u in steps]
    if out.prices:
        out.prices.append((x_end, out.prices[-1][1]))

    inside = [e for e in rep.events if w.holds(int(e["block_number"]))]
    clustered = cluster_marks(liquidation_marks(inside, times, rep.symbols))
    for mark, n in clustered:
        if mark.market == market:
            out.marks.append((x(mark.timestamp), mark.price, mark.full, n))
        else:
            out.other_legs[mark.market] = out.other_legs.get(mark.market, 0) + n
    out.partial = sum(1 for e in inside if e["event"] == "Liquidated" and not e["full"])
    out.full = sum(1 for e in inside if e["event"] == "Liquidated" and e["full"])

    base = at_block(rep.path, w.start_block - 1)
    out.insurance = [(x_start, base.insurance_fund / unit)]
    out.bad_debt = [(x_start, 0.0)]
    out.socialised = [(x_start, 0.0)]
    for s in rep.path:
        t = times.get(s.block)
        if not w.holds(s.block) or t is None:
            continue
        out.insurance.append((x(t), s.insurance_fund / unit))
        out.bad_debt.append((x(t), (s.bad_debt - base.bad_debt) / unit))
        out.socialised.append((x(t), (s.socialised - base.socialised) / unit))
    for series in (out.insurance, out.bad_debt, out.socialised):
        series.append((x_end, series[-1][1]))

    points = lp_path(w, rep.lp_samples, rep.path)
    for p in points:
        t = times.get(p.block)
        if t is None:
            continue
        sp = None if p.share_price is None else p.share_price / unit
        out.lp.append((max(x(t), x_start), p.realised / unit, p.unrealised / unit, sp))
    if points:
        s0 = rep.lp_samples[w.start_block - 1]
        out.share_price_start = None if s0.share_price is None else s0.share_price / unit
        out.share_price_end = out.lp[-1][3] if out.lp else None
        lp_moved = any(e["event"] in ("LiquidityAdded", "LiquidityRemoved") for e in inside)
        if not lp_moved and s0.open_profit is not None:
            nav = base.pool_assets - s0.open_profit - base.account_debt
            out.lp_nav_start = nav / unit if nav > 0 else None
        if out.lp:
            out.lp.append((x_end, *out.lp[-1][1:]))
    return out


def plot_data(rep: RunReport) -> PlotData:
    """Series for the plot: one column per window, or the whole run on chain time when no
    window was found."""
    if rep.windows:
        return PlotData([window_plot(rep, i) for i in range(len(rep.windows))], rep.unit)
    moved = [u.market for u in driven_updates(rep.updates)]
    if not moved:
        return PlotData([], rep.unit)
    run = Segment("run", rep.start_block, rep.end_block, moved[0])
    alone = RunReport(**{**rep.__dict__, "segments": [run], "clocks": [None]})
    return PlotData([window_plot(alone, 0)], rep.unit)


def _dates(ts: Iterable[float]) -> list[datetime]:
    return [datetime.fromtimestamp(t, UTC) for t in ts]


def _steps(ax: Any, series: Sequence[tuple[Any, ...]], k: int = 1, **kw: Any) -> Any:
    """A step line of column `k` of `series` against its first column (seconds)."""
    (line,) = ax.step(_dates(p[0] for p in series), [p[k] for p in series], where="post", **kw)
    return line


MARK_STYLES = {False: ("x", "darkorange", 45), True: ("X", "crimson", 60)}  # by Liquidated.full


def _price_panel(ax: Any, wp: WindowPlot, colour: str) -> None:
    """The oracle price (on-chain, rescaled; the file's price on the right axis) and one marker
    per liquidation, with a legend that says what a marker and "xN" are."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import StrMethodFormatter

    handles: list[Any] = []
    if wp.prices:
        line = _steps(ax, wp.prices, color=colour, lw=1.4)
        line.set_label(f"{wp.market} oracle price (on chain)")
        handles.append(line)
    if wp.rescale:
        ax.set_ylabel(
            f"{wp.market} oracle price, USD\n(crash series rescaled x{wp.rescale:,.4g}"
            f" to start at {wp.start_price:,.0f})"
        )
        k = wp.rescale
        right = ax.secondary_yaxis("right", functions=(lambda y, k=k: y / k, lambda y, k=k: y * k))
        right.set_ylabel(f"original {wp.source} (file)", color="dimgrey")
        right.tick_params(axis="y", colors="dimgrey")
        right.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    else:
        ax.set_ylabel(f"{wp.market} oracle price, USD")
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    for n, (t, price, full, count) in enumerate(wp.marks):
        marker, mcolour, size = MARK_STYLES[full]
        x = _dates([t])[0]
        ax.scatter([x], [price], marker=marker, color=mcolour, s=size, lw=1.4, zorder=5)
        if count > 1:
            ax.annotate(
                f"x{count}",
                xy=(x, price),
                xytext=(6, 3 if n % 2 == 0 else -11),  # alternate: neighbours stay legible
                textcoords="offset points",
                fontsize=8,
                color=mcolour,
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.75},
                zorder=6,
            )
    for full, count in ((False, wp.partial), (True, wp.full)):
        marker, mcolour, _ = MARK_STYLES[full]
        what = "all positions closed" if full else "part of every position closed"
        label = f"{'full' if full else 'partial'} liquidation ({what}): {count}"
        handles.append(Line2D([], [], ls="", marker=marker, color=mcolour, ms=8, label=label))
    handles.append(
        Patch(
            color="none",
            label="xN beside a marker: N liquidations at that point\n"
            "(same block and price, e.g. one liquidate_many batch)",
        )
    )
    if wp.other_legs:
        legs = ", ".join(f"{n} {m}" for m, n in sorted(wp.other_legs.items()))
        handles.append(Patch(color="none", label=f"also closed, not drawn: {legs} legs"))
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.85)
    ax.set_title(wp.title, fontsize=10)
    ax.grid(alpha=0.3)


def _insurance_panel(ax: Any, wp: WindowPlot, unit: str) -> None:
    from matplotlib.ticker import StrMethodFormatter

    handles = []
    for series, colour, ls, label in (
        (wp.insurance, "tab:green", "-", "insurance fund"),
        (wp.bad_debt, "crimson", "--", "bad debt in this window"),
        (wp.socialised, "purple", ":", "of it socialised to LPs"),
    ):
        if series:
            line = _steps(ax, series, color=colour, lw=1.6, ls=ls)
            line.set_label(f"{label} (end {series[-1][1]:,.0f})")
            handles.append(line)
    ax.set_ylabel(unit)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.grid(alpha=0.3)
    if handles:
        ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.85)
    ax.set_title("Insurance fund and bad debt (rebuilt from events)", fontsize=10)


def _lp_panel(ax: Any, wp: WindowPlot, unit: str) -> None:
    """Realised, unrealised and mark-to-market LP PnL since the window start, and the share
    price: on an aligned right axis when no LP joined or left (its chain reads then sit on the
    mark-to-market line), else on a twin axis of its own."""
    from matplotlib.ticker import FuncFormatter, StrMethodFormatter

    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel(f"LP PnL since window start, {unit}")
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.grid(alpha=0.3)
    if not wp.lp:
        ax.set_title("LP pool (share price and open PnL not read)", fontsize=10)
        return
    handles = []
    last = wp.lp[-1]
    for k, colour, label in (
        (1, "tab:green", "realised: trading fees + traders' net realised loss - socialised"),
        (2, "tab:red", "unrealised: - change in open trader profit owed by the pool"),
    ):
        line = _steps(ax, wp.lp, k, color=colour, lw=1.5)
        line.set_label(f"{label}: {last[k]:+,.0f}")
        handles.append(line)
    total = [(p[0], p[1] + p[2]) for p in wp.lp]
    line = _steps(ax, total, color="black", lw=1.8)
    line.set_label(f"mark-to-market = realised + unrealised: {total[-1][1]:+,.0f}")
    handles.append(line)
    sp0, sp1 = wp.share_price_start, wp.share_price_end
    change = f" ({sp1 / sp0 - 1:+.2%})" if sp0 and sp1 is not None else ""
    ax.set_title(
        f"LP pool: share price {sp0:,.4f} -> {sp1:,.4f} {unit}{change}"
        if sp0 and sp1 is not None
        else "LP pool",
        fontsize=10,
    )
    sps = [(p[0], p[3]) for p in wp.lp if p[3] is not None]
    if sp0 and wp.lp_nav_start and sps:
        nav, p0 = wp.lp_nav_start, sp0
        right = ax.secondary_yaxis(
            "right",
            functions=(
                lambda y, nav=nav, p0=p0: p0 * (1 + y / nav),
                lambda s, nav=nav, p0=p0: (s / p0 - 1) * nav,
            ),
        )
        right.set_ylabel(f"LP share price, {unit} per share", color="tab:blue")
        right.tick_params(axis="y", colors="tab:blue")
        right.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.4f}"))
        ys = [(s / p0 - 1) * nav for _, s in sps]
        dots = ax.scatter(_dates(t for t, _ in sps), ys, s=7, color="tab:blue", zorder=4)
        dots.set_label(f"LP share price read from chain (right axis){change}")
        handles.append(dots)
    elif sps:
        twin = ax.twinx()
        line = _steps(twin, sps, color="tab:blue", lw=1.2, ls="--")
        line.set_label(f"LP share price (right axis){change}")
        twin.set_ylabel(f"LP share price, {unit} per share", color="tab:blue")
        twin.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.4f}"))
        handles.append(line)
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.85)


def plot_report(data: PlotData, out: str | Path, title: str = "") -> Path:
    """One column per window, three panels each, sharing the window's market-time axis: the
    oracle price (on-chain, rescaled; the file's original price on the right axis) with one
    marker per liquidation; the insurance fund with the window's bad debt; the LP pool's
    realised, unrealised and mark-to-market PnL with the share price."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    cols = max(len(data.windows), 1)
    fig, axes = plt.subplots(
        3,
        cols,
        figsize=(7.4 * cols + 0.4, 12.5),
        sharex="col",
        height_ratios=[3, 1.6, 2.2],
        constrained_layout=True,
        squeeze=False,
    )
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:purple"]
    for c, wp in enumerate(data.windows):
        _price_panel(axes[0][c], wp, colours[c % len(colours)])
        _insurance_panel(axes[1][c], wp, data.unit)
        _lp_panel(axes[2][c], wp, data.unit)
        bottom = axes[2][c]
        locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
        bottom.xaxis.set_major_locator(locator)
        bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        bottom.set_xlim(*_dates([wp.x_start, wp.x_end]))
        bottom.set_xlabel(
            "market time (UTC): the crash file's own candle times"
            if wp.market_time
            else "chain time (UTC)"
        )
    fig.suptitle(title or "Crash replays: oracle price and liquidations, insurance, LP pool")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


# ---- I/O ----


@dataclass
class RunReport:
    """Everything `ape run report` prints and writes."""

    start_block: int
    end_block: int
    segments: list[Segment]
    figures: list[Figures]
    events: list[dict[str, Any]]
    updates: list[PriceUpdate]
    price_decimals: dict[str, int]
    path: list[Snapshot]
    block_times: dict[int, int]
    symbols: dict[int, str]  # market id -> symbol
    clocks: list[CrashClock | None] = field(default_factory=list)  # per window, in order
    lp_samples: dict[int, LPSample] = field(default_factory=dict)
    decimals: int = 6  # the collateral token's
    unit: str = "USDC"  # the collateral token's symbol

    @property
    def windows(self) -> list[Segment]:
        return [s for s in self.segments if s.market is not None]


def blocks_needing_time(
    events: Sequence[Mapping[str, Any]], segments: Sequence[Segment], path: Sequence[Snapshot]
) -> set[int]:
    """Blocks whose time the plot needs: liquidations, the steps of the insurance fund and
    of bad debt, segment bounds."""
    blocks = {int(e["block_number"]) for e in events if e["event"] == "Liquidated"}
    last: tuple[int, int, int] | None = None
    for s in path:
        key = (s.insurance_fund, s.bad_debt, s.socialised)
        if key != last:
            blocks.add(s.block)
        last = key
    for seg in segments:
        blocks |= {seg.start_block, seg.end_block}
    return blocks


def sample_blocks(
    segments: Sequence[Segment],
    events: Sequence[Mapping[str, Any]],
    updates: Sequence[PriceUpdate],
    cap: int = MAX_LP_SAMPLES,
) -> list[int]:
    """Blocks to read an `LPSample` at: every segment's share-price blocks, and each
    window's `lp_blocks`."""
    blocks: set[int] = set()
    for seg in segments:
        blocks |= {b for b in share_price_blocks(seg, events) if b is not None}
        if seg.market is not None:
            blocks |= set(lp_blocks(seg, events, updates, cap))
    return sorted(blocks)


def assemble_report(
    start_block: int,
    end_block: int,
    events: list[dict[str, Any]],
    updates: list[PriceUpdate],
    price_decimals: dict[str, int],
    symbols: dict[int, str],
    segments: list[Segment],
    clocks: list[CrashClock | None],
    block_times: dict[int, int],
    lp_samples: dict[int, LPSample],
    decimals: int = 6,
    unit: str = "USDC",
) -> RunReport:
    """The report from what was read (pure: the reader's last step, and the tests' entry)."""
    path = ledger_path(events)
    figures = [compute_figures(s, events, path, None, updates, lp_samples) for s in segments]
    return RunReport(
        start_block=start_block,
        end_block=end_block,
        segments=segments,
        figures=figures,
        events=events,
        updates=updates,
        price_decimals=price_decimals,
        path=path,
        block_times=block_times,
        symbols=symbols,
        clocks=clocks,
        lp_samples=lp_samples,
        decimals=decimals,
        unit=unit,
    )


def plan_windows(
    updates: Sequence[PriceUpdate],
    start_block: int,
    end_block: int,
    crashes: Mapping[str, Sequence[PricePoint]],
    price_decimals: Mapping[str, int],
    names: Sequence[str] = (),
    min_steps: int = MIN_WINDOW_STEPS,
) -> tuple[list[Segment], list[CrashClock | None]]:
    """The report's segments and each window's crash clock. A window without a `--name` is
    labelled after its crash file ("2020-03-12 ETH crash") when one matched and that label is
    not taken."""
    windows = detect_windows(updates, end_block, names, min_steps)
    clocks = [
        match_crash(updates, w, crashes, price_decimals.get(w.market or "", 8)) for w in windows
    ]
    labels = [w.label for w in windows]
    for i, (w, clock) in enumerate(zip(windows, clocks, strict=True)):
        if clock is not None and not (i < len(names) and names[i]):
            label = crash_label(clock)
            if label not in labels:
                labels[i] = label
                windows[i] = Segment(label, w.start_block, w.end_block, w.market)
    return plan_segments(windows, start_block, end_block), clocks


def load_crashes(directory: str | Path | None = None) -> dict[str, list[PricePoint]]:
    """Every crash file's rows by name ({} when the folder is missing; a bad file is
    skipped with a warning)."""
    from margin_maintenance.crashdata import CrashDataError, list_scenarios, load_prices

    out: dict[str, list[PricePoint]] = {}
    try:
        scenarios = list_scenarios(directory)
    except CrashDataError as err:
        log.warning("no crash files to match windows against: %s", err)
        return out
    for sc in scenarios:
        try:
            out[sc.name] = load_prices(sc.path)
        except CrashDataError as err:
            log.warning("skipping %s: %s", sc.path, err)
    return out


RPC_BATCH = 200  # requests per JSON-RPC batch in the reader


def _batched(requests: Sequence[Callable[[Any], Any]]) -> list[Any]:
    """Send web3 requests (each `request(w3)` builds one) as JSON-RPC batches; raises where the
    provider cannot batch or any request failed, so the caller can fall back to single calls."""
    from ape import chain

    w3 = chain.provider.web3
    out: list[Any] = []
    for i in range(0, len(requests), RPC_BATCH):
        with w3.batch_requests() as batch:
            for request in requests[i : i + RPC_BATCH]:
                batch.add(request(w3))
            responses = batch.execute()
        if len(responses) != len(requests[i : i + RPC_BATCH]):
            raise RuntimeError("batch answered a different number of requests")
        out += responses
    return out


def read_block_times(blocks: Sequence[int]) -> dict[int, int]:
    """Block number -> timestamp, in batches where the provider allows it."""
    from ape import chain

    try:
        heads = _batched([lambda w3, b=b: w3.eth.get_block(b) for b in blocks])
        return {b: int(h["timestamp"]) for b, h in zip(blocks, heads, strict=True)}
    except Exception as err:  # no batching (in-process chain) or a failed request
        log.debug("block times one by one: %s", err)
    return {b: int(chain.blocks[b].timestamp) for b in blocks}


def read_lp_samples(system: Any, blocks: Sequence[int]) -> dict[int, LPSample]:
    """`LPSample` (share price, traders' unrealised PnL per market) at the end of each block:
    eth_call batches where the provider allows it, else one Ape call at a time."""
    from margin_maintenance.keeper.reads import Method

    ch = system.clearinghouse
    one_share = 10 ** int(system.lp_token.decimals())
    markets = list(system.market_ids)
    price, pnl = Method(ch.convert_to_assets.abis[0]), Method(ch.trader_unrealized_pnl.abis[0])
    calls = [(price, (one_share,))] + [(pnl, (m,)) for m in markets]
    to = str(ch.address)
    data = [m.calldata(*args) for m, args in calls]
    try:
        raw = _batched(
            [
                lambda w3, b=b, d=d: w3.eth.call({"to": to, "data": d}, b)
                for b in blocks
                for d in data
            ]
        )
        out: dict[int, LPSample] = {}
        for k, b in enumerate(blocks):
            try:
                values = [
                    int(m.result(bytes(raw[k * len(calls) + j]))[0])
                    for j, (m, _) in enumerate(calls)
                ]
            except Exception as err:  # e.g. empty return data before the engine existed
                log.warning("LP sample at block %s unreadable: %s", b, err)
                out[b] = LPSample(None, None)
                continue
            out[b] = LPSample(values[0], tuple(values[1:]))
        return out
    except Exception as err:  # no batching, or a call failed (e.g. before a market existed)
        log.debug("LP samples one call at a time: %s", err)
    out = {}
    for b in blocks:
        try:
            share_price: int | None = int(ch.convert_to_assets(one_share, block_id=b))
        except Exception as err:  # e.g. a node that pruned the state of block b
            log.warning("convert_to_assets at block %s failed: %s", b, err)
            share_price = None
        try:
            pnls: tuple[int, ...] | None = tuple(
                int(ch.trader_unrealized_pnl(m, block_id=b)) for m in markets
            )
        except Exception as err:
            log.warning("trader_unrealized_pnl at block %s failed: %s", b, err)
            pnls = None
        out[b] = LPSample(share_price, pnls)
    return out


def read_report(
    system: Any,
    start_block: int,
    block: int | None = None,
    names: Sequence[str] = (),
    min_steps: int = MIN_WINDOW_STEPS,
    data_dir: str | Path | None = None,
) -> RunReport:
    """Fetch the clearinghouse's and the aggregators' events up to `block` (default: the head
    now), find the windows and their crash files, read block times, and the LP share price
    and traders' unrealised PnL per market at the blocks `sample_blocks` names."""
    from ape import chain

    block = chain.blocks.height if block is None else block
    ch = system.clearinghouse
    events = fetch_events(ch, CLIENT_EVENTS, start_block, block)
    answer_logs = {
        symbol: fetch_events(agg, ("AnswerUpdated",), start_block, block)
        for symbol, agg in zip(system.symbols, system.aggregators, strict=True)
    }
    price_decimals = {
        symbol: int(agg.decimals())
        for symbol, agg in zip(system.symbols, system.aggregators, strict=True)
    }
    updates = price_updates(answer_logs)
    segments, clocks = plan_windows(
        updates, start_block, block, load_crashes(data_dir), price_decimals, names, min_steps
    )

    samples = read_lp_samples(system, sample_blocks(segments, events, updates))
    path = ledger_path(events)
    needed = blocks_needing_time(events, segments, path) | set(samples)
    block_times = read_block_times(sorted(b for b in needed if b >= 0))
    try:
        unit = str(system.token.symbol())
    except Exception:  # a token without symbol()
        unit = "tokens"
    return assemble_report(
        start_block,
        block,
        events,
        updates,
        price_decimals,
        dict(zip(system.market_ids, system.symbols, strict=True)),
        segments,
        clocks,
        block_times,
        samples,
        int(system.token.decimals()),
        unit,
    )


__all__ = [
    "CONSOLE_WIDTH",
    "MAX_LP_SAMPLES",
    "MIN_WINDOW_STEPS",
    "NOTES",
    "CrashClock",
    "Figures",
    "LPPoint",
    "LPSample",
    "LiquidationMark",
    "PlotData",
    "PriceMove",
    "PriceUpdate",
    "RunReport",
    "Segment",
    "Snapshot",
    "WindowPlot",
    "assemble_report",
    "at_block",
    "blocks_needing_time",
    "cluster_marks",
    "compute_figures",
    "console_report",
    "crash_label",
    "detect_windows",
    "driven_updates",
    "fmt_amount",
    "fmt_signed",
    "ledger_path",
    "liquidation_closes",
    "liquidation_marks",
    "load_crashes",
    "lp_blocks",
    "lp_note",
    "lp_path",
    "match_crash",
    "plan_segments",
    "plan_windows",
    "plot_data",
    "plot_report",
    "price_move",
    "price_updates",
    "read_block_times",
    "read_lp_samples",
    "read_report",
    "render_console",
    "render_markdown",
    "render_notes",
    "render_text",
    "report_notes",
    "report_json",
    "replay_steps",
    "sample_blocks",
    "share_price_blocks",
    "table_rows",
    "thin",
    "window_lines",
    "window_plot",
]
