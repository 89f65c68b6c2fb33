"""The PNG: one column per window on market time (price with liquidations, insurance and bad debt,
the LP pool).

Part of `margin_maintenance.report` (see its docstring).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from margin_maintenance.crashdata import parse_scenario_name

from .figures import RunReport, at_block, liquidation_closes, lp_path
from .render import _utc
from .windows import WAD, CrashClock, Segment, driven_updates, replay_steps

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
        if not lp_moved and s0.open_value is not None:
            nav = base.pool_assets + s0.open_value - base.account_debt
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
        (2, "tab:red", "unrealised: change in open losses collectable - open profit - claims"),
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
