"""Crash simulator: margin-call cascades and solvency thresholds from real crash data.

Every crash window in `data/crashes/` is replayed through the mock oracle of the real
contracts on a local chain, against a deterministic trader population (population.py), one LP
and the reference keeper's own decision functions (keeper/decisions.py, keeper/reads.py), run
in-process. Sweeps over the maintenance margin, the liquidation fee, the insurance fund and the
keeper's latency find, for each crash, the solvency thresholds: the smallest maintenance margin
and the smallest insurance fund with no socialised loss.

The module has two halves:

* Pure model (no chain): configuration and sweeps, the price-impact model, an exact mirror of
  the engine's margin maths (to decide which accounts the keeper needs to read at a step and to
  classify induced liquidations), result records, threshold extraction, report rendering and
  plots. Unit-tested on plain values.
* Chain I/O (`ChainSimulator`, `run_simulation`): one deploy and seed, a provider snapshot,
  and one restore per scenario; prices posted through the aggregator, liquidations sent with
  `liquidate_many`, every figure taken from the events of the transactions, and checked against
  the chain's own log (`eth_getLogs`) after each scenario.

One price row is one market price. A scenario's steps:

1. the price of row t is the rescaled close times the impact multiplier M_t; the push feed
   (oracle.py: Chainlink's deviation and heartbeat, in the file's time, optionally landing rows
   late) decides the answer on chain; on signed prices (`OracleModel(mode="pull")`) the keeper
   also brings the row's price signed by the attestation signers, and accounts are judged at it;
2. liquidation batches the keeper planned at row t - latency land (at this row's price);
3. the keeper reads `margin_status`, previews, ranks (`select_targets`), checks gas
   (`plan_batches`) and schedules the batches for row t + latency (latency 0: now);
4. with the impact model on, M_{t+1} = M_t * (1 - k * net_sold_usd_t / depth_usd), where
   net_sold_usd_t is the liquidated long notional less the liquidated short notional of the
   driven market at row t (long liquidations sell, so they push the price down).

Nobody trades during a replay and there is no funding, so the chain's state can only change at
a liquidation. The simulator therefore posts a price only at rows where the mirror finds an
account within `screen_buffer` of its maintenance requirement (or a planned batch lands), and
the keeper reads only those accounts; everything else is the chain's own answer.
`SimConfig(screen=False)` posts every row and reads every account at every row (the test suite
checks that both give the same figures).
"""

from __future__ import annotations

from margin_maintenance.model import bps_up, notional_up, pnl  # re-exported (tests)

from .config import (
    QUICK_CRASH,
    CrashSpec,
    ImpactModel,
    KeeperModel,
    SimConfig,
    Sweep,
    SweepPoint,
    check_rates,
    default_config,
    quick_config,
)
from .mirror import (
    MirrorAccount,
    apply_events,
    equity,
    is_liquidatable,
    maintenance,
    near_maintenance,
    trigger_price_wad,
)
from .oracle import OracleModel, PushFeed
from .outputs import (
    PNG_METADATA,
    plot_crash,
    plot_sweep,
    write_outputs,
)
from .paths import (
    CrashPath,
    build_path,
    crash_label,
    window_around_drop,
)
from .render import (
    METHOD_NOTES,
    findings,
    render_report,
)
from .results import (
    CrashSummary,
    LiquidationRecord,
    ScenarioResult,
    SimulationResults,
    Threshold,
    generation_of,
    implied_insurance,
    solvency_threshold,
    usd,
)
from .run import (
    ChainSimulator,
    run_simulation,
    select_crashes,
    verify_against_chain,
)
from .settings import (
    AXES,
    AXIS_TITLES,
    BPS,
    MARKETS,
    REPORT_FILE,
    RESULTS_FILE,
    TOKEN_DECIMALS,
    WAD,
    SimulationError,
    log,
)

__all__ = [
    "bps_up",
    "notional_up",
    "pnl",
    "AXES",
    "AXIS_TITLES",
    "BPS",
    "ChainSimulator",
    "CrashPath",
    "CrashSpec",
    "CrashSummary",
    "ImpactModel",
    "OracleModel",
    "PushFeed",
    "KeeperModel",
    "LiquidationRecord",
    "MARKETS",
    "METHOD_NOTES",
    "MirrorAccount",
    "PNG_METADATA",
    "QUICK_CRASH",
    "REPORT_FILE",
    "RESULTS_FILE",
    "ScenarioResult",
    "SimConfig",
    "SimulationError",
    "SimulationResults",
    "Sweep",
    "SweepPoint",
    "TOKEN_DECIMALS",
    "Threshold",
    "WAD",
    "apply_events",
    "build_path",
    "check_rates",
    "crash_label",
    "default_config",
    "equity",
    "findings",
    "generation_of",
    "implied_insurance",
    "is_liquidatable",
    "log",
    "maintenance",
    "near_maintenance",
    "plot_crash",
    "plot_sweep",
    "quick_config",
    "render_report",
    "run_simulation",
    "select_crashes",
    "solvency_threshold",
    "trigger_price_wad",
    "usd",
    "verify_against_chain",
    "window_around_drop",
    "write_outputs",
]
