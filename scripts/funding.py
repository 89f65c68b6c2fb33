"""`ape run funding`: every crash window twice at the sweep's base point, the chain clock
following the file's timestamps, without and with funding and the skew premium; writes the
comparison (docs/sim/funding.md and funding.json)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import click
from ape import project
from ape.cli import ConnectedProviderCommand
from ape.logging import LogLevel, logger
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from margin_maintenance.simulator import CrashSpec, SimulationError, default_config, run_simulation
from margin_maintenance.simulator.config import FundingModel, Sweep
from margin_maintenance.simulator.funding_report import pair_rows, render_markdown


@click.command(cls=ConnectedProviderCommand, short_help="Crash windows with and without funding")
@click.option("--out-dir", type=click.Path(path_type=Path), default=Path("docs/sim"))
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--traders", type=int, default=None, help="Population size (default: the sweep's).")
@click.option("--crash", "crashes", multiple=True, help="Crash file(s); default: every window.")
@click.option("--window", type=int, default=0, help="Rows around each file's largest drop.")
@click.option("--scale-usd", type=float, default=FundingModel.scale_usd, show_default=True)
@click.option("--velocity-bps", type=int, default=FundingModel.velocity_bps, show_default=True)
def cli(
    out_dir: Path,
    seed: int,
    traders: int | None,
    crashes: tuple[str, ...],
    window: int,
    scale_usd: float,
    velocity_bps: int,
) -> None:
    base = default_config(seed)
    point = base.sweep.base
    one = Sweep(
        base=point,
        mm_bps=(point.mm_bps,),
        fee_bps=(point.fee_bps,),
        insurance_usd=(point.insurance_usd,),
        latency=(point.latency,),
    )
    cfg = replace(base, sweep=one, window_rows=window)
    if traders is not None:
        cfg = replace(cfg, population=replace(cfg.population, traders=traders))
    if crashes:
        cfg = replace(cfg, crashes=tuple(CrashSpec(c) for c in crashes))
    funding = FundingModel(scale_usd, velocity_bps)
    runs = {"off": replace(cfg, realtime=True), "on": replace(cfg, funding=funding)}
    results = {}
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
            ) as bar,
        ):
            for name, c in runs.items():
                task = bar.add_task(f"funding {name}", total=None, what="seeding")
                results[name] = run_simulation(
                    project,
                    c,
                    on_start=lambda n, task=task: bar.update(task, total=n, what=""),
                    on_scenario=lambda r, _s, task=task: bar.update(
                        task, advance=1, what=f"{r.label}: liq {r.n_liquidations}"
                    ),
                )
    except SimulationError as err:
        raise click.ClickException(str(err)) from err
    hours = {p.name: p.hours()[-1] for p in results["on"].crashes}
    rows = pair_rows(results["off"].scenarios, results["on"].scenarios, hours)
    header = (
        "<!-- written by `ape run funding`; do not edit by hand -->\n"
        f"# Funding and the skew premium in the crash windows\n\n"
        f"Base point ({point.label}), {cfg.population.traders} traders (seed {seed}), the push "
        f"feed; both runs stamp each row at its file time. Funding: skew scale worth "
        f"{scale_usd:,.0f} USD at each market's start price, velocity {velocity_bps} bps per day "
        f"per day. Funding in USD, positive = received; the pool's side is minus the traders'."
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "funding.md").write_text(render_markdown(rows, header))
    (out_dir / "funding.json").write_text(json.dumps([r.to_dict() for r in rows], indent=1))
    click.echo(render_markdown(rows, header))
    click.echo(f"{len(rows)} windows in {time.perf_counter() - t0:.0f} s; wrote {out_dir}")
