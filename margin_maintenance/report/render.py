"""Rendering: the console table (100 columns), Markdown, notes and report.json.

Part of `margin_maintenance.report` (see its docstring).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from .figures import Figures, RunReport
from .windows import MIN_WINDOW_STEPS, CrashClock, Segment

CONSOLE_WIDTH = 100  # characters per console line


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

    def loss_change(f: Figures) -> str:
        if f.open_loss_start is None or f.open_loss_end is None:
            return "-"
        return sgn(f.open_loss_end - f.open_loss_start)

    def claims_change(f: Figures) -> str:
        if f.lp_unrealised is None:
            return "-"
        return sgn(-(f.claims_end - f.claims_start))

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
        ("  open trader loss collectable", loss_change),
        ("  profit claims owed", claims_change),
        ("  account debt", debt_change),
        ("LP PnL, mark-to-market", lambda f: maybe(sgn, f.lp_mark_to_market)),
        ("LP share price start", lambda f: share(f.share_price_start)),
        ("LP share price end", lambda f: share(f.share_price_end)),
        ("LP share price change", change),
        ("open trader profit at end", lambda f: maybe(amt, f.open_profit_end)),
        ("open trader loss collectable at end", lambda f: maybe(amt, f.open_loss_end)),
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
        f"{n(f.open_profit_end or 0)} {unit}, adds their open losses as far as their "
        f"collateral pays them, {n(f.open_loss_start or 0)} -> {n(f.open_loss_end or 0)} "
        f"{unit}, and deducts profit claims and account debt: unrealised "
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
    "insurance fund then covers what the account could not pay). LP PnL, unrealised = the "
    "change in the terms the vault's net value counts besides pool assets, read from the "
    "engine's pool_state(): plus the traders' open losses as far as their collateral pays "
    "them, minus their open profit (each market side apart, never netted), minus profit "
    "claims owed and account debt. Mark-to-market = realised + unrealised = the change in LP "
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
