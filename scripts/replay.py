"""`ape run replay`: drive a real crash window through a market's mock aggregator."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from ape import project
from ape.cli import ConnectedProviderCommand
from ape.logging import LogLevel, logger
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from margin_maintenance.crashdata import (
    CrashDataError,
    list_scenarios,
    load_prices,
    max_drawdown,
    plan_replay,
    resolve_scenario,
)
from margin_maintenance.deployment import (
    DeploymentError,
    load_connected,
    test_signer,
    traders_for,
)
from margin_maintenance.replay import current_answer, run_replay, wait_until_settled


def _utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


@click.command(cls=ConnectedProviderCommand, short_help="Replay a crash through the oracle")
@click.option("--file", "name", default=None, help="Crash file: name, unique part of it, or path.")
@click.option(
    "--market",
    default=None,
    help="Market to drive, e.g. ETH-USD (default: the file's base asset).",
)
@click.option(
    "--compress",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Time compression: chain seconds between rows = source seconds / N.",
)
@click.option("--skip", type=click.IntRange(min=0), default=0, help="Rows to skip at the start.")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Rows to replay.")
@click.option(
    "--refresh-others/--no-refresh-others",
    default=True,
    show_default=True,
    help="Re-post the other markets' prices before they go stale (heartbeat).",
)
@click.option("--list", "list_only", is_flag=True, help="List the crash files and exit.")
@click.option("--data-dir", default=None, envvar="MM_DATA_DIR", help="Crash data folder.")
@click.option(
    "--quiet-txs/--show-txs",
    "quiet",
    default=True,
    show_default=True,
    help="Hide Ape's per-transaction log lines while the progress bar runs.",
)
@click.option(
    "--wait-keeper",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="After each price, wait up to this many seconds for an outside keeper to leave no "
    "seeded trader liquidatable (0: do not wait).",
)
def cli(
    name: str | None,
    market: str | None,
    compress: float,
    skip: int,
    max_steps: int | None,
    refresh_others: bool,
    list_only: bool,
    data_dir: str | None,
    quiet: bool,
    wait_keeper: float,
) -> None:
    """Replay a real crash-window close series through a market's mock aggregator, moving
    the chain clock to each row's time.

    Prices are RESCALED so the first replayed row equals the market's current on-chain price:
    the percentage moves are the real ones, the level is the market's. Time is compressed by
    --compress (60 turns one hour into one minute). Data: data/crashes in this repository
    (override: MM_DATA_DIR).
    """
    try:
        if list_only or name is None:
            for s in list_scenarios(data_dir):
                click.echo(f"{s.name}  ({s.base} {s.interval} {s.venue or '-'})")
            if name is None and not list_only:
                raise click.UsageError("pass --file NAME (one of the above)")
            return
        scenario = resolve_scenario(name, data_dir)
        points = load_prices(scenario.path)
        dep, system = load_connected(project)
    except (CrashDataError, DeploymentError) as err:
        raise click.ClickException(str(err)) from err

    try:
        rec = dep.market(market or scenario.symbol)
    except DeploymentError as err:
        raise click.ClickException(str(err)) from err
    k = system.market_ids.index(rec.id)
    agg_owner = str(system.aggregators[k].owner())
    try:
        owner = test_signer(agg_owner)
    except DeploymentError as err:
        raise click.ClickException(f"aggregator owner: {err}") from err
    decimals = int(system.aggregators[k].decimals())
    answer0 = current_answer(system, k)
    steps = plan_replay(points, answer0, compress, skip, max_steps, decimals)
    if not steps:
        raise click.ClickException(f"no rows left after --skip {skip}")
    rows = points[skip : skip + len(steps)]
    click.echo(
        f"{scenario.name}: {len(steps)} rows {_utc(rows[0].timestamp_s)} -> "
        f"{_utc(rows[-1].timestamp_s)} UTC, source {rows[0].price_usd:g} -> "
        f"{rows[-1].price_usd:g} (max drawdown {max_drawdown(rows):.1%})"
    )
    click.echo(
        f"{rec.symbol}: rescaled from {answer0 / 10**decimals:,.2f}; chain time span "
        f"{steps[-1].offset_s:,} s (compression {compress:g}x)"
    )

    with (
        logger.at_level(LogLevel.WARNING if quiet else logger.level),
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[price]}"),
            TimeElapsedColumn(),
        ) as bar,
    ):
        task = bar.add_task(rec.symbol, total=len(steps), price="")

        def on_step(step, block_time: int) -> None:
            bar.update(task, advance=1, price=f"{step.price_usd:,.2f} @ {_utc(block_time)}")

        after_step = None
        unsettled = 0
        if wait_keeper > 0:
            addresses = [t.address for t in traders_for(dep).traders]
            ch = system.clearinghouse

            def count_liquidatable() -> int:
                total = 0
                for i in range(0, len(addresses), 512):
                    rows = ch.margin_status(addresses[i : i + 512])
                    total += sum(1 for r in rows if r.liquidatable)
                return total

            def after_step() -> None:
                nonlocal unsettled
                if wait_until_settled(count_liquidatable, wait_keeper) > 0:
                    unsettled += 1

        result = run_replay(
            system,
            k,
            steps,
            owner,
            refresh_others=refresh_others,
            on_step=on_step,
            after_step=after_step,
        )
    if wait_keeper > 0:
        click.echo(f"keeper wait: {unsettled} of {len(steps)} steps left accounts liquidatable")
    click.echo(
        f"done: {result.steps} prices, last {result.last_answer / 10**decimals:,.2f}, "
        f"low {result.min_answer / 10**decimals:,.2f}; chain time "
        f"{_utc(result.first_block_time)} -> {_utc(result.last_block_time)}; "
        f"{result.refreshes} heartbeat re-posts of other markets"
    )
