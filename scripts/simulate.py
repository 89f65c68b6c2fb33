"""`ape run simulate`: replay every crash window against the real contracts, sweep the risk
parameters, and write a markdown report with PNG plots."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import click
from ape import project
from ape.cli import ConnectedProviderCommand
from ape.logging import LogLevel, logger
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from margin_maintenance.crashdata import CrashDataError
from margin_maintenance.simulator import (
    CrashSpec,
    OracleModel,
    SimulationError,
    default_config,
    quick_config,
    run_simulation,
    write_outputs,
)
from margin_maintenance.simulator.oracle import MODES


@click.command(cls=ConnectedProviderCommand, short_help="Crash simulator: cascades, thresholds")
@click.option("--quick", is_flag=True, help="One crash file, 20 traders, two values per axis.")
@click.option("--seed", type=int, default=7, show_default=True, help="Population random seed.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out/sim"),
    show_default=True,
    help="Folder for report.md, results.json and the PNGs.",
)
@click.option(
    "--impact-k",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Price impact: next price *= 1 - k * net liquidated notional / depth (0 = off).",
)
@click.option(
    "--depth-usd",
    type=click.FloatRange(min=0, min_open=True),
    default=1_000_000.0,
    show_default=True,
    help="Market depth for the impact model (USD).",
)
@click.option(
    "--traders",
    type=click.IntRange(min=1),
    default=None,
    help="Population size (default 60, or 20 with --quick).",
)
@click.option(
    "--crash",
    "crashes",
    multiple=True,
    help="Crash file (name or unique part); repeat for several (default: every file).",
)
@click.option(
    "--window",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Replay only this many rows around each file's largest drop (0 = whole files).",
)
@click.option(
    "--no-screen",
    is_flag=True,
    help="Post every row and read every account at every row (slow; same figures).",
)
@click.option(
    "--oracle",
    type=click.Choice(MODES),
    default="push",
    show_default=True,
    help="Judge accounts at the push feed's answer, or at signed prices the keeper brings "
    "every row (pull: the push base point and latency axis run beside it, compared).",
)
@click.option(
    "--push-deviation-bps",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="The push feed sends a new answer after this move (0: every row's price).",
)
@click.option(
    "--push-heartbeat-s",
    type=click.IntRange(min=1),
    default=3_600,
    show_default=True,
    help="... or when its last answer is this old (the crash file's time).",
)
@click.option(
    "--push-delay",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Rows each push answer lands late (a congested chain).",
)
@click.option("--data-dir", default=None, envvar="MM_DATA_DIR", help="Crash data folder.")
def cli(
    quick: bool,
    seed: int,
    out_dir: Path,
    impact_k: float,
    depth_usd: float,
    traders: int | None,
    crashes: tuple[str, ...],
    window: int,
    no_screen: bool,
    oracle: str,
    push_deviation_bps: int,
    push_heartbeat_s: int,
    push_delay: int,
    data_dir: str | None,
) -> None:
    """Replay the crash windows in data/crashes (override: MM_DATA_DIR) through the mock
    oracle against a deterministic trader population, with the reference keeper's decision
    functions liquidating in-process. Sweeps maintenance margin, liquidation fee, insurance
    fund and keeper latency one axis at a time around a base point, and reports, per crash,
    the solvency thresholds (smallest maintenance margin and insurance fund with zero
    socialised loss). The same seed gives the same report."""
    cfg = (quick_config if quick else default_config)(seed, impact_k, depth_usd)
    if traders is not None:
        cfg = replace(cfg, population=replace(cfg.population, traders=traders))
    if crashes:
        cfg = replace(cfg, crashes=tuple(CrashSpec(c) for c in crashes))
    try:
        model = OracleModel(oracle, push_deviation_bps, push_heartbeat_s, push_delay)
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    cfg = replace(cfg, window_rows=window, screen=not no_screen, data_dir=data_dir, oracle=model)
    try:
        cfg.validate()
    except ValueError as err:
        raise click.UsageError(str(err)) from err

    t0 = time.perf_counter()
    try:
        with (
            logger.at_level(LogLevel.WARNING),
            Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[what]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            ) as bar,
        ):
            seeding = bar.add_task(
                "seeding", total=cfg.population.lps + cfg.population.traders, what=""
            )
            scenarios = bar.add_task("scenarios", total=None, what="", visible=False)

            def on_setup(msg: str) -> None:
                bar.update(seeding, advance=1, what=msg)

            def on_start(total: int) -> None:
                bar.update(scenarios, total=total, visible=True)

            def on_scenario(r, _sim) -> None:
                bar.update(
                    scenarios,
                    advance=1,
                    what=f"{r.label} | {r.point.label} | liq {r.n_liquidations}, "
                    f"socialised {r.socialised / 1e6:,.0f}",
                )

            res = run_simulation(
                project, cfg, on_setup=on_setup, on_start=on_start, on_scenario=on_scenario
            )
    except (CrashDataError, SimulationError) as err:
        raise click.ClickException(str(err)) from err
    sim_s = time.perf_counter() - t0
    report = write_outputs(res, out_dir)
    total_s = time.perf_counter() - t0
    click.echo(
        f"{len(res.scenarios)} scenarios over {len(res.crashes)} crash windows in {sim_s:.0f} s "
        f"(plots and report {total_s - sim_s:.0f} s); wrote {report}"
    )
    for c in res.summaries():
        mm = c.thresholds["mm_bps"].text(lambda v: f"{v:.0f} bps")
        ins = c.thresholds["insurance_usd"].text(lambda v: f"{v:,.0f} USD")
        click.echo(
            f"  {c.path.label:<32} mm threshold {mm:<16} insurance threshold {ins:<16} "
            f"implied insurance {c.implied_insurance / 1e6:,.0f} USD"
        )
