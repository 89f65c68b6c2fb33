"""The end-of-run report: per crash window, what liquidations, the insurance fund, bad debt and
the LP pool did, as a table (console and Markdown) and a PNG.

Everything is computed from decoded events (`events.fetch_events` dicts, the same the audit
rebuilds balances from) plus a few chain reads the events cannot give: block times, and at
chosen blocks the LP share price and the pool's open terms (`pool_state()`). The pure part
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
the change in the terms of the vault's net value besides pool assets (`pool_state()`): the
traders' open losses as far as their collateral pays them, less their open profit (market side
by market side), less profit claims and account debt. Realised + unrealised is the change of
the LPs' redemption value, i.e. the share price change when no LP joins or leaves.
"""

from __future__ import annotations

from .figures import (
    MAX_LP_SAMPLES,
    Figures,
    LPPoint,
    LPSample,
    RunReport,
    Snapshot,
    at_block,
    compute_figures,
    ledger_path,
    liquidation_closes,
    lp_blocks,
    lp_path,
    share_price_blocks,
    thin,
)
from .plot import (
    LiquidationMark,
    PlotData,
    WindowPlot,
    cluster_marks,
    liquidation_marks,
    plot_data,
    plot_report,
    window_plot,
)
from .reader import (
    assemble_report,
    blocks_needing_time,
    load_crashes,
    plan_windows,
    read_block_times,
    read_lp_samples,
    read_report,
    sample_blocks,
)
from .render import (
    CONSOLE_WIDTH,
    NOTES,
    console_report,
    fmt_amount,
    fmt_signed,
    lp_note,
    render_console,
    render_markdown,
    render_notes,
    render_text,
    report_json,
    report_notes,
    table_rows,
    window_lines,
)
from .windows import (
    MIN_WINDOW_STEPS,
    CrashClock,
    PriceMove,
    PriceUpdate,
    Segment,
    crash_label,
    detect_windows,
    driven_updates,
    match_crash,
    plan_segments,
    price_move,
    price_updates,
    replay_steps,
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
