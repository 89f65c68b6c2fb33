"""`ape run status`: every account's equity, requirements and liquidatable flag, and the pool."""

from __future__ import annotations

import time

import click
from ape import chain, project
from ape.cli import ConnectedProviderCommand
from rich.console import Console
from rich.table import Table

from margin_maintenance.deployment import DeploymentError, load_connected, traders_for
from margin_maintenance.events import accounts_in, fetch_events
from margin_maintenance.status import (
    fmt_units,
    rank_by_risk,
    read_margin_status,
    read_pool,
    short_address,
    summarize,
    unique,
)
from margin_maintenance.system import WAD


@click.command(cls=ConnectedProviderCommand, short_help="Account health and pool figures")
@click.option(
    "--source",
    type=click.Choice(["auto", "traders", "events", "both"]),
    default="auto",
    show_default=True,
    help="Where accounts come from: the traders file, Deposited/PositionChanged events since "
    "the deployment block, or both (auto: the traders file if there is one, else events).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=25,
    show_default=True,
    help="Rows shown, riskiest first (0 = all).",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 512),
    default=512,
    show_default=True,
    help="Accounts per margin_status call.",
)
@click.option(
    "--positions/--no-positions",
    default=True,
    show_default=True,
    help="Show each shown account's positions (two calls per row).",
)
@click.option(
    "--full-addresses/--short-addresses",
    default=False,
    show_default=True,
    help="Print whole account addresses (short: 0x1234..abcd, so a row fits 100 columns).",
)
@click.option(
    "--width",
    type=click.IntRange(min=40),
    default=100,
    show_default=True,
    help="Table width when the output is not a terminal (a pipe or a file).",
)
def cli(
    source: str, limit: int, batch: int, positions: bool, full_addresses: bool, width: int
) -> None:
    """Status of the recorded deployment (deployments/<network>.json; env MM_DEPLOYMENTS_DIR)."""
    try:
        dep, system = load_connected(project)
        tf = traders_for(dep)
    except DeploymentError as err:
        raise click.ClickException(str(err)) from err
    ch, dec = system.clearinghouse, dep.collateral.decimals

    addresses: list[str] = []
    if source in ("traders", "both") or (source == "auto" and tf.traders):
        addresses += tf.addresses
    if source in ("events", "both") or (source == "auto" and not tf.traders):
        evs = fetch_events(ch, ("Deposited", "PositionChanged"), dep.start_block)
        addresses += accounts_in(evs)
    addresses = unique(addresses)

    t0 = time.perf_counter()
    rows = read_margin_status(ch, addresses, batch)
    elapsed = time.perf_counter() - t0
    ranked = rank_by_risk(rows)
    shown = ranked if limit == 0 else ranked[:limit]
    symbol = dict(zip(system.market_ids, system.symbols, strict=True))

    table = Table(title=f"{dep.network}: accounts (riskiest first, {len(shown)} of {len(rows)})")
    for col in ("account", "equity", "maintenance", "initial", "equity/mm", "liq."):
        table.add_column(col, justify="left" if col == "account" else "right", no_wrap=True)
    if positions:
        table.add_column("size @ entry", no_wrap=True)
    for r in shown:
        cells = [
            r.account if full_addresses else short_address(r.account),
            fmt_units(r.equity, dec),
            fmt_units(r.maintenance, dec),
            fmt_units(r.initial, dec),
            "-" if not r.has_position else f"{r.margin_ratio:.2f}",
            "[bold red]YES[/]" if r.liquidatable else "",
        ]
        if positions:
            legs = []
            for m in ch.account_market_ids(r.account):
                size, entry = ch.position(r.account, m)
                name = symbol.get(int(m), str(m)).split("-")[0]
                legs.append(f"{name} {size / WAD:+,.3f} @ {entry / WAD:,.0f}")
            cells.append("; ".join(legs))
        table.add_row(*cells)

    s = summarize(rows)
    pool = read_pool(ch, system.token, system.lp_token)
    console = Console()
    if not console.is_terminal:
        console = Console(width=width)  # a pipe or file: a fixed width, rows not wrapped
    console.print(table)
    summary = Table(title="pool and totals", show_header=False)
    summary.add_column("item")
    summary.add_column("value", justify="right")
    for k, v in [
        ("accounts / with positions", f"{s.accounts} / {s.with_positions}"),
        ("liquidatable", f"{s.liquidatable}"),
        ("negative equity", f"{s.underwater}"),
        ("total equity", fmt_units(s.total_equity, dec)),
        ("total maintenance", fmt_units(s.total_maintenance, dec)),
        ("pool_assets", fmt_units(pool.pool_assets, dec)),
        ("insurance_fund", fmt_units(pool.insurance_fund, dec)),
        ("free_liquidity", fmt_units(pool.free_liquidity, dec)),
        ("total_debt", fmt_units(pool.total_debt, dec)),
        ("engine token balance", fmt_units(pool.token_balance, dec)),
        ("LP shares", fmt_units(pool.lp_supply, int(system.lp_token.decimals()))),
    ]:
        summary.add_row(k, v)
    console.print(summary)
    click.echo(
        f"block {chain.blocks.height}; margin_status of {len(rows)} accounts in "
        f"{elapsed * 1000:.0f} ms ({-(-len(rows) // batch) if rows else 0} calls)"
    )
