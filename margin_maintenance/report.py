"""The end-of-run report: per crash window, what liquidations, the insurance fund, bad debt and
the LP pool did, as a table (console and Markdown) and a PNG.

Everything is computed from decoded events (`events.fetch_events` dicts, the same the audit
rebuilds balances from) plus a few chain reads the events cannot give: block times and the LP
share price at the window boundaries. The pure part takes plain dicts and numbers, so it is
unit-tested without a chain; `read_report` is the thin Ape reader.

Windows. A crash replay posts one `AnswerUpdated` per step on the replayed market's aggregator;
the other markets only get heartbeat re-posts of their unchanged answer. So the "driven"
updates (answer differs from the aggregator's previous one) in chain order, grouped into runs
of one market, mark the replays: a run of at least `min_steps` driven updates is a window. The
windows partition the run: each lasts from its first driven update to the block before the
next window starts (the last to the report block), so liquidations the keeper lands after the
last price step still count for the crash that caused them. Everything before the first window
is the setup (deploy, seed). All amounts are in collateral-token units unless named otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from margin_maintenance.audit import Ledger, apply_event
from margin_maintenance.events import CLIENT_EVENTS, fetch_events

log = logging.getLogger(__name__)

WAD = 10**18
MIN_WINDOW_STEPS = 3  # driven price updates in a row that make a replay window


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


# ---- Balance paths ----


@dataclass(frozen=True)
class Snapshot:
    """Balances rebuilt from events, as of the end of `block`."""

    block: int
    insurance_fund: int
    pool_assets: int
    bad_debt: int  # cumulative BadDebtSettled.bad_debt
    socialised: int  # cumulative BadDebtSettled.socialised


def ledger_path(events: Iterable[Mapping[str, Any]]) -> list[Snapshot]:
    """A snapshot after every block holding an event, with the audit's ledger rules (so the
    path ends where the audit's rebuild does). Per block, not per event: within one
    liquidation BadDebtSettled is logged before the Liquidated that credits the fee, and an
    event-by-event path would dip below anything the chain ever held."""
    ledger = Ledger()
    path: list[Snapshot] = []
    evs = sorted(events, key=lambda e: (e["block_number"], e["log_index"]))
    for i, e in enumerate(evs):
        apply_event(ledger, e)
        if i + 1 == len(evs) or evs[i + 1]["block_number"] != e["block_number"]:
            path.append(
                Snapshot(
                    int(e["block_number"]),
                    ledger.insurance_fund,
                    ledger.pool_assets,
                    ledger.bad_debt_total,
                    ledger.socialised_total,
                )
            )
    return path


def at_block(path: Sequence[Snapshot], block: int) -> Snapshot:
    """The snapshot in force at the end of `block` (all zero before the first)."""
    current = Snapshot(block, 0, 0, 0, 0)
    for s in path:
        if s.block > block:
            break
        current = s
    return current


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
) -> Figures:
    """The figures of one segment from all events of the run (`path`: `ledger_path(events)`;
    `share_prices`: block -> assets per whole LP share at the end of that block)."""
    path = ledger_path(events) if path is None else path
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
    if seg.market is not None:
        f.price = price_move(updates, seg.market, seg)
    return f


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
    report.md. `decimals`: the collateral token's; share prices have the same unit."""
    amt = lambda v: fmt_amount(v, decimals)  # noqa: E731
    sgn = lambda v: fmt_signed(v, decimals)  # noqa: E731
    pdec = price_decimals or {}

    def share(v: int | None) -> str:
        return "-" if v is None else f"{v / 10**decimals:,.6f}"

    def change(f: Figures) -> str:
        c = f.share_price_change
        return "-" if c is None else f"{c * 100:+.3f}%"

    def price(f: Figures) -> str:
        p = f.price
        if p is None:
            return "-"
        d = pdec.get(p.market, 8)
        return (
            f"{_fmt_price(p.start, d)} -> {_fmt_price(p.low, d)} low -> "
            f"{_fmt_price(p.end, d)} ({p.drawdown * 100:+.1f}%)"
        )

    spec: list[tuple[str, Any]] = [
        ("blocks", lambda f: f"{f.segment.start_block}..{f.segment.end_block}"),
        ("replayed price: start -> low -> end (drawdown)", price),
        ("liquidations (partial / full)", lambda f: f"{f.liquidations} ({f.partial} / {f.full})"),
        ("accounts liquidated", lambda f: str(f.accounts_liquidated)),
        ("closed notional", lambda f: amt(f.closed_notional)),
        ("liquidation fees (from accounts)", lambda f: amt(f.liquidation_fees)),
        ("keeper rewards", lambda f: amt(f.keeper_rewards)),
        ("  of which topped up by insurance", lambda f: amt(f.insurance_topup)),
        ("insurance fund start", lambda f: amt(f.insurance_start)),
        ("insurance fund end", lambda f: amt(f.insurance_end)),
        ("insurance fund min", lambda f: amt(f.insurance_min)),
        ("insurance funded (deposits)", lambda f: amt(f.insurance_funded)),
        ("bad debt (accounts)", lambda f: f"{amt(f.bad_debt)} ({f.bad_debt_events})"),
        ("  covered by insurance", lambda f: amt(f.covered_by_insurance)),
        ("  socialised to LPs", lambda f: amt(f.socialised)),
        ("  uncovered (left as debt)", lambda f: amt(f.uncovered)),
        ("pool assets start", lambda f: amt(f.pool_start)),
        ("pool assets end", lambda f: amt(f.pool_end)),
        ("LP net deposits", lambda f: sgn(f.lp_net_deposits)),
        ("LP PnL, realised (pool change - net deposits)", lambda f: sgn(f.lp_pnl)),
        ("LP share price start", lambda f: share(f.share_price_start)),
        ("LP share price end", lambda f: share(f.share_price_end)),
        ("LP share price change", change),
        ("profit haircuts (owed - paid)", lambda f: amt(f.haircuts)),
        ("traders' realised PnL", lambda f: sgn(f.trader_realized_pnl)),
        ("  of which in liquidations", lambda f: sgn(f.liquidation_realized_pnl)),
        ("trades (PositionChanged by trade)", lambda f: str(f.trades)),
        ("trading fees", lambda f: amt(f.trading_fees)),
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
        out += [f"![prices, liquidations, insurance fund and bad debt]({image})", ""]
    if notes:
        out += ["Notes:", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(out)


NOTES: tuple[str, ...] = (
    "Windows are found from the oracle: a run of at least "
    f"{MIN_WINDOW_STEPS} answer changes on one market's aggregator (heartbeat re-posts of an "
    "unchanged answer do not count). A window lasts until the next one starts, so liquidations "
    "landed after the last price step count for the crash that caused them; `setup` is "
    "everything before the first window (deploy, seed).",
    "Insurance fund and pool assets are rebuilt from events with the audit's rules, at the end "
    "of each block (`ape run audit` checks the same rebuild against the chain).",
    "Keeper rewards topped up by insurance: the part of rewards not paid by the liquidation "
    "fee (sum of -insurance_delta where negative).",
    "LP PnL is realised: trading fees plus traders' realised losses less their profits, less "
    "socialised bad debt. The LP share price (convert_to_assets of one whole share, read at the "
    "boundary blocks) also carries open positions' unrealised PnL; where the run starts before "
    "any LP share exists, it starts at the first LP deposit.",
    "Traders' realised PnL includes what liquidations realised (their closes log "
    "PositionChanged with fee 0; the liquidation fee is separate).",
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
class PlotData:
    """What `plot_report` draws; times are chain seconds."""

    prices: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # whole USD
    marks: list[LiquidationMark] = field(default_factory=list)
    partial: int = 0  # liquidations (not marks: one per market closed)
    full: int = 0
    insurance: list[tuple[int, float]] = field(default_factory=list)  # whole tokens
    bad_debt: list[tuple[int, float]] = field(default_factory=list)  # cumulative
    socialised: list[tuple[int, float]] = field(default_factory=list)  # cumulative
    windows: list[tuple[str, int, int]] = field(default_factory=list)  # label, start, end time


def plot_data(
    updates: Sequence[PriceUpdate],
    price_decimals: Mapping[str, int],
    events: Sequence[Mapping[str, Any]],
    path: Sequence[Snapshot],
    block_times: Mapping[int, int],
    symbols: Mapping[int, str],
    decimals: int,
    windows: Sequence[Segment] = (),
    end_block: int | None = None,
) -> PlotData:
    """Series for the plot, markets in the order of `price_decimals`. Balance steps without a
    known block time are skipped; the last values are carried to `end_block`'s time."""
    data = PlotData()
    for market in price_decimals:
        data.prices[market] = []
    for u in updates:
        scale = 10 ** price_decimals.get(u.market, 8)
        data.prices.setdefault(u.market, []).append((u.timestamp, u.answer / scale))
    data.prices = {m: series for m, series in data.prices.items() if series}
    data.marks = liquidation_marks(events, block_times, symbols)
    for e in events:
        if e["event"] == "Liquidated":
            if e["full"]:
                data.full += 1
            else:
                data.partial += 1
    unit = 10**decimals
    for s in path:
        t = block_times.get(s.block)
        if t is None:
            continue
        data.insurance.append((t, s.insurance_fund / unit))
        data.bad_debt.append((t, s.bad_debt / unit))
        data.socialised.append((t, s.socialised / unit))
    end_t = block_times.get(end_block) if end_block is not None else None
    if end_t is not None:
        series_all = [data.insurance, data.bad_debt, data.socialised, *data.prices.values()]
        for series in series_all:
            if series and series[-1][0] < end_t:
                series.append((end_t, series[-1][1]))
    for i, w in enumerate(windows):
        t0 = block_times.get(w.start_block)
        t1 = block_times.get(w.end_block)
        nxt = windows[i + 1] if i + 1 < len(windows) else None
        if nxt is not None and nxt.start_block == w.end_block + 1:
            t1 = block_times.get(nxt.start_block, t1)  # shade up to the next window, no gap
        if t0 is not None and t1 is not None:
            data.windows.append((w.label, t0, t1))
    return data


def plot_report(data: PlotData, out: str | Path, title: str = "") -> Path:
    """Two panels over chain time: oracle prices (one y axis per market) with liquidation
    marks (a count beside a mark that stands for several), and the insurance fund with
    cumulative bad debt and socialised loss (one USD axis)."""
    from datetime import UTC, datetime

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import StrMethodFormatter

    def dates(ts: Iterable[int]) -> list[datetime]:
        return [datetime.fromtimestamp(t, UTC) for t in ts]

    usd = StrMethodFormatter("{x:,.0f}")
    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(13, 8.5), sharex=True, height_ratios=[3, 2], constrained_layout=True
    )
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:purple"]
    handles: list[Any] = []
    axes: dict[str, Any] = {}
    for i, (market, series) in enumerate(data.prices.items()):
        ax = ax1 if i == 0 else ax1.twinx()
        if i >= 2:
            ax.spines["right"].set_position(("axes", 1 + 0.08 * (i - 1)))
        colour = colours[i % len(colours)]
        ts, ps = zip(*series, strict=True)
        side = "left" if i == 0 else "right"
        (line,) = ax.step(dates(ts), ps, where="post", color=colour, lw=1.4)
        line.set_label(f"{market} ({side} axis)")
        ax.set_ylabel(f"{market} (USD)", color=colour)
        ax.tick_params(axis="y", colors=colour)
        ax.yaxis.set_major_formatter(usd)
        handles.append(line)
        axes[market] = ax
    styles = {False: ("x", "darkorange", 45), True: ("X", "crimson", 60)}
    for k, (mark, count) in enumerate(cluster_marks(data.marks)):
        ax = axes.get(mark.market)
        if ax is None:
            continue
        marker, colour, size = styles[mark.full]
        x = dates([mark.timestamp])[0]
        ax.scatter([x], [mark.price], marker=marker, color=colour, s=size, lw=1.4, zorder=5)
        if count > 1:
            ax.annotate(
                f"x{count}",
                xy=(x, mark.price),
                xytext=(6, 3 if k % 2 == 0 else -11),  # alternate: neighbours stay legible
                textcoords="offset points",
                fontsize=8,
                color=colour,
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.75},
                zorder=6,
            )
    for full, n in ((False, data.partial), (True, data.full)):
        marker, colour, _ = styles[full]
        label = f"{'full' if full else 'partial'} liquidations: {n}"
        handles.append(Line2D([], [], ls="", marker=marker, color=colour, ms=8, label=label))
    for k, (label, t0, t1) in enumerate(data.windows):
        for ax in (ax1, ax2):
            ax.axvspan(*dates([t0, t1]), color="grey", alpha=0.08 if k % 2 else 0.14, lw=0)
        ax1.annotate(
            label,
            xy=(dates([t0])[0], 1),
            xycoords=("data", "axes fraction"),
            xytext=(4, -4),
            textcoords="offset points",
            va="top",
            fontsize=9,
            color="dimgrey",
        )
    # Above the panel: inside it would hide a line of one of the twin axes.
    ax1.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=len(handles),
        fontsize=9,
        frameon=False,
    )
    fig.suptitle(title or "Oracle prices and liquidations")
    ax1.grid(alpha=0.3)

    h2: list[Any] = []
    for series, colour, ls, label in (
        (data.insurance, "tab:green", "-", "insurance fund"),
        (data.bad_debt, "crimson", "--", "cumulative bad debt"),
        (data.socialised, "purple", ":", "cumulative socialised to LPs"),
    ):
        if series:
            ts, vs = zip(*series, strict=True)
            (ln,) = ax2.step(dates(ts), vs, where="post", color=colour, lw=1.6, ls=ls)
            ln.set_label(f"{label} (end {vs[-1]:,.2f})")
            h2.append(ln)
    ax2.set_ylabel("USD")
    ax2.set_ylim(bottom=0)
    ax2.yaxis.set_major_formatter(usd)
    ax2.grid(alpha=0.3)
    if h2:
        ax2.legend(handles=h2, loc="best", fontsize=9, framealpha=0.85)
    ax2.set_title("Insurance fund and bad debt (rebuilt from events)")
    ax2.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax2.set_xlabel("chain time (UTC)")

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


def read_report(
    system: Any,
    start_block: int,
    block: int | None = None,
    names: Sequence[str] = (),
    min_steps: int = MIN_WINDOW_STEPS,
) -> RunReport:
    """Fetch the clearinghouse's and the aggregators' events up to `block` (default: the head
    now), find the windows, read block times and LP share prices at the boundaries."""
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
    windows = detect_windows(updates, block, names, min_steps)
    segments = plan_segments(windows, start_block, block)
    path = ledger_path(events)

    one_share = 10 ** int(system.lp_token.decimals())
    share_prices: dict[int, int | None] = {}
    for seg in segments:
        for b in share_price_blocks(seg, events):
            if b is None or b in share_prices:
                continue
            try:
                share_prices[b] = int(ch.convert_to_assets(one_share, block_id=b))
            except Exception as err:  # e.g. a node that pruned the state of block b
                log.warning("convert_to_assets at block %s failed: %s", b, err)
                share_prices[b] = None
    block_times = {
        b: int(chain.blocks[b].timestamp)
        for b in sorted(blocks_needing_time(events, segments, path))
    }
    figures = [compute_figures(s, events, path, share_prices, updates) for s in segments]
    return RunReport(
        start_block=start_block,
        end_block=block,
        segments=segments,
        figures=figures,
        events=events,
        updates=updates,
        price_decimals=price_decimals,
        path=path,
        block_times=block_times,
        symbols=dict(zip(system.market_ids, system.symbols, strict=True)),
    )


__all__ = [
    "MIN_WINDOW_STEPS",
    "NOTES",
    "Figures",
    "LiquidationMark",
    "PlotData",
    "PriceMove",
    "PriceUpdate",
    "RunReport",
    "Segment",
    "Snapshot",
    "at_block",
    "blocks_needing_time",
    "cluster_marks",
    "compute_figures",
    "detect_windows",
    "driven_updates",
    "fmt_amount",
    "fmt_signed",
    "ledger_path",
    "liquidation_closes",
    "liquidation_marks",
    "plan_segments",
    "plot_data",
    "plot_report",
    "price_move",
    "price_updates",
    "read_report",
    "render_markdown",
    "render_text",
    "share_price_blocks",
    "table_rows",
]
