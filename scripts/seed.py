"""`ape run seed`: LPs and a deterministic population of leveraged traders."""

from __future__ import annotations

import time

import click
from ape import chain, project
from ape.cli import ConnectedProviderCommand
from ape.logging import LogLevel, logger
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from margin_maintenance.deployment import (
    DeploymentError,
    load_connected,
    save_traders,
    test_signer,
    traders_for,
)
from margin_maintenance.population import (
    DEFAULT_FIRST_INDEX,
    PopulationParams,
    SeedResult,
    generate_population,
    seed_population,
    summarize,
)


@click.command(cls=ConnectedProviderCommand, short_help="Seed LPs and traders")
@click.option("--traders", type=click.IntRange(min=0), default=200, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True, help="Population random seed.")
@click.option(
    "--lp-usd", type=float, default=2_000_000.0, show_default=True, help="Total LP deposits."
)
@click.option("--lps", type=click.IntRange(min=0), default=1, show_default=True)
@click.option(
    "--insurance-usd",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seed the insurance fund (from the deployer) with this much.",
)
@click.option("--long-share", type=click.FloatRange(0, 1), default=0.7, show_default=True)
@click.option("--min-leverage", type=float, default=1.5, show_default=True)
@click.option("--max-leverage", type=float, default=9.5, show_default=True)
@click.option(
    "--first-index",
    type=click.IntRange(min=10),
    default=None,
    help=f"Mnemonic index of the first new account (default: after the last seeded one, "
    f"or {DEFAULT_FIRST_INDEX}).",
)
@click.option(
    "--deployments-dir",
    "out_dir",
    default=None,
    envvar="MM_DEPLOYMENTS_DIR",
    help="Records folder (default: deployments/; env MM_DEPLOYMENTS_DIR).",
)
@click.option(
    "--quiet-txs/--show-txs",
    "quiet",
    default=True,
    show_default=True,
    help="Hide Ape's per-transaction log lines while the progress bar runs.",
)
def cli(
    traders: int,
    seed: int,
    lp_usd: float,
    lps: int,
    insurance_usd: float,
    long_share: float,
    min_leverage: float,
    max_leverage: float,
    first_index: int | None,
    out_dir: str | None,
    quiet: bool,
) -> None:
    """Seed the recorded deployment: LPs add liquidity, then TRADERS test accounts (funded with
    1 ETH from the deployer, minted their collateral) deposit and open one position each. The
    population is drawn from random.Random(SEED): leverage MIN..MAX skewed high (Beta(2.5, 1.2)),
    log-normal collateral 500..50,000 (median 3,000), LONG_SHARE long, markets equally likely.
    Addresses go to deployments/<network>-traders.json (appended when it is this deployment's)."""
    try:
        dep, system = load_connected(project, out_dir)
        deployer = test_signer(dep.deployer)
        existing = traders_for(dep, out_dir)
    except DeploymentError as err:
        raise click.ClickException(str(err)) from err
    try:
        params = PopulationParams(
            traders=traders,
            lp_deposit_usd=lp_usd,
            lps=lps,
            long_share=long_share,
            leverage_min=min_leverage,
            leverage_max=max_leverage,
        )
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    pop = generate_population(seed, system.symbols, params)
    s = summarize(pop)
    click.echo(
        f"population seed {seed}: {s.traders} traders ({s.longs} long / {s.shorts} short; "
        + ", ".join(f"{m} {n}" for m, n in s.per_market.items())
        + f"), mean leverage {s.mean_leverage:.2f}x, collateral {s.total_collateral_usd:,.0f}, "
        f"notional {s.total_notional_usd:,.0f}; LP capital {s.lp_capital_usd:,.0f}"
    )
    start_index = first_index or existing.next_hd_index or DEFAULT_FIRST_INDEX
    taken = {t.hd_index for t in existing.traders} | {lp.hd_index for lp in existing.lps}
    if taken & set(range(start_index, start_index + lps + traders)):
        raise click.UsageError(f"--first-index {start_index} reuses already seeded accounts")

    result = SeedResult()
    t0 = time.perf_counter()
    try:
        with (
            logger.at_level(LogLevel.WARNING if quiet else logger.level),
            Progress(
                TextColumn("[bold]seeding"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[what]}"),
                TimeElapsedColumn(),
            ) as bar,
        ):
            task = bar.add_task("seed", total=lps + traders, what="")

            def progress(msg: str) -> None:
                bar.update(task, advance=1, what=msg)

            seed_population(
                system,
                deployer,
                pop,
                first_index=start_index,
                insurance_usd=insurance_usd,
                progress=progress,
                result=result,
            )
    finally:
        path = save_traders(existing.extended(result.traders, result.lps), out_dir)
        click.echo(
            f"seeded {len(result.lps)} LPs and {len(result.traders)} traders "
            f"({len(result.failed)} trades refused) in {time.perf_counter() - t0:.1f} s, "
            f"head block {chain.blocks.height}; wrote {path}"
        )
    for index, reason in result.failed:
        click.echo(f"  trader {index}: {reason}", err=True)
