"""`ape run audit`: rebuild every balance from events and compare with the chain."""

from __future__ import annotations

import sys
import time

import click
from ape import project
from ape.cli import ConnectedProviderCommand
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from margin_maintenance.audit import reads_needed, run_audit
from margin_maintenance.deployment import DeploymentError, load_connected
from margin_maintenance.status import fmt_units


@click.command(cls=ConnectedProviderCommand, short_help="Rebuild balances from events; compare")
@click.option(
    "--block",
    type=click.IntRange(min=0),
    default=None,
    help="Audit as of this block (default: the head when it starts).",
)
@click.option(
    "--positions/--no-positions",
    default=True,
    show_default=True,
    help="Also check every position's size (one call per account and market).",
)
def cli(block: int | None, positions: bool) -> None:
    """Rebuild each account's collateral, pool_assets, insurance_fund, LP share supply,
    positions and open interest from the clearinghouse's events since the deployment block, read
    the same items on chain at the same block, and check the engine's token balance equals
    collateral + pool + insurance. Exits 1 on any difference."""
    try:
        dep, system = load_connected(project)
    except DeploymentError as err:
        raise click.ClickException(str(err)) from err
    dec = dep.collateral.decimals
    t0 = time.perf_counter()
    with Progress(
        TextColumn("[bold]reading chain state"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:

        def on_rebuilt(ledger):
            task = bar.add_task("read", total=reads_needed(ledger, positions))
            return lambda n: bar.advance(task, n)

        report = run_audit(
            system.clearinghouse,
            system.token,
            system.lp_token,
            system.market_ids,
            dep.start_block,
            block,
            positions,
            on_rebuilt,
        )
    led = report.ledger
    counts = ", ".join(f"{k} {v}" for k, v in sorted(led.counts.items())) or "none"
    click.echo(f"blocks {dep.start_block}..{report.block}: {report.events} events ({counts})")
    click.echo(
        f"accounts {len(led.collateral)}, collateral {fmt_units(led.total_collateral, dec)}, "
        f"pool_assets {fmt_units(led.pool_assets, dec)}, "
        f"insurance_fund {fmt_units(led.insurance_fund, dec)}, "
        f"token balance {fmt_units(report.state.token_balance, dec)}"
    )
    click.echo(
        f"keeper rewards {fmt_units(led.keeper_rewards_total, dec)}, "
        f"bad debt {fmt_units(led.bad_debt_total, dec)} "
        f"(socialised {fmt_units(led.socialised_total, dec)}), "
        f"profit haircuts {fmt_units(led.haircut_total, dec)}"
    )
    click.echo(f"checked in {time.perf_counter() - t0:.2f} s")
    if report.ok:
        click.echo("audit OK: events and chain agree on every item")
        return
    click.echo(f"audit FAILED: {len(report.differences)} differences", err=True)
    for d in report.differences:
        click.echo(
            f"  {d.item}: expected {d.rebuilt} chain {d.onchain} (delta {d.delta:+})", err=True
        )
    sys.exit(1)
