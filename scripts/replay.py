"""`ape run replay`: drive a real crash window through a market's mock aggregator."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import click
import requests
from ape import chain, project
from ape.cli import ConnectedProviderCommand
from ape.logging import LogLevel, logger
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from margin_maintenance.attest import Report, feed_id
from margin_maintenance.attest.codec import latest_override
from margin_maintenance.attest.service import post_price
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
from margin_maintenance.keeper.reads import ClearinghouseReader
from margin_maintenance.replay import current_answer, run_replay, wait_until_settled

WAD = 10**18


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
@click.option(
    "--attest-url",
    default=None,
    help="Signed prices: offer each price to this attestation service (signed as of its "
    "block) for the keeper to bring on chain; the push feed then lags --push-lag-s behind.",
)
@click.option(
    "--push-lag-s",
    type=click.IntRange(min=0),
    default=None,
    help="With --attest-url: how far the push feed lags (chain seconds; default: one "
    "heartbeat and a minute, so it is always past its heartbeat).",
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
    attest_url: str | None,
    push_lag_s: int | None,
) -> None:
    """Replay a real crash-window close series through a market's mock aggregator, moving
    the chain clock to each row's time.

    Prices are RESCALED so the first replayed row equals the market's current on-chain price:
    the percentage moves are the real ones, the level is the market's. Time is compressed by
    --compress (60 turns one hour into one minute). Data: data/crashes in this repository
    (override: MM_DATA_DIR).

    With --attest-url the market runs on signed prices: each price goes to the attestation
    service, the push feed lags behind, and only the keeper brings prices on chain.
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

    first_block = int(chain.blocks.head.number) + 1
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
        attest = None
        signed_now: list[Report] = []  # the report just offered (what the keeper would bring)
        if attest_url is not None:
            if system.verifier is None:
                raise click.ClickException("the deployment has no price verifier")
            fid = feed_id(rec.symbol)
            if push_lag_s is None:
                push_lag_s = int(system.push_feed(k).max_staleness()) + 60

            def attest(step, at: int) -> None:
                price = str(Decimal(step.answer) / 10**decimals)  # exact: the service's WAD
                try:
                    post_price(attest_url, rec.symbol, price, at)
                except (RuntimeError, requests.RequestException) as err:
                    raise click.ClickException(str(err)) from err
                signed_now[:] = [Report(fid, round(step.answer * WAD // 10**decimals), 0, at)]

        unsettled = 0
        if wait_keeper > 0:
            addresses = [t.address for t in traders_for(dep).traders]
            ch = system.clearinghouse
            reader = ClearinghouseReader.for_contract(ch, chain.provider)
            verifier = None if system.verifier is None else str(system.verifier.address)

            def count_liquidatable() -> int:
                # With signed prices the count is taken as the keeper sees it: through a state
                # override holding the report just offered (a node without overrides: as stored).
                if signed_now and verifier is not None and reader.can_override:
                    reader.overrides = latest_override([(verifier, signed_now[0])])
                chunks = [addresses[i : i + 512] for i in range(0, len(addresses), 512)]
                rows, _ = reader.margin_status(chunks)
                return sum(1 for r in rows if r.liquidatable)

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
            attest=attest,
            push_lag_s=(push_lag_s or 0) if attest_url else 0,
        )
    if wait_keeper > 0:
        click.echo(f"keeper wait: {unsettled} of {len(steps)} steps left accounts liquidatable")
    click.echo(
        f"done: {result.steps} prices, last {result.last_answer / 10**decimals:,.2f}, "
        f"low {result.min_answer / 10**decimals:,.2f}; chain time "
        f"{_utc(result.first_block_time)} -> {_utc(result.last_block_time)}; "
        f"{result.refreshes} heartbeat re-posts of other markets"
    )
    if attest_url is not None and system.verifier is not None:
        head = chain.blocks.head
        brought = [
            log
            for log in system.verifier.PriceAttested.range(first_block, head.number + 1)
            if bytes(log.feed_id) == feed_id(rec.symbol)
        ]
        push_age = int(head.timestamp) - int(system.aggregators[k].latestTimestamp())
        click.echo(
            f"signed prices: {len(steps)} offered to {attest_url}, {len(brought)} brought on "
            f"chain by the keeper; the push feed ends {push_age:,} s old (heartbeat "
            f"{int(system.push_feed(k).max_staleness()):,} s)"
        )
