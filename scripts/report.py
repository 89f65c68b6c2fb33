"""`ape run report`: per crash window, liquidations, keeper rewards, the insurance fund, bad debt
and LP PnL, as a table, `<out>/report.md`, `<out>/report.json` and `<out>/demo.png`."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import click
from ape import chain, project
from ape.cli import ConnectedProviderCommand
from rich.console import Console
from rich.table import Table

from margin_maintenance.deployment import (
    Deployment,
    DeploymentError,
    attach,
    check_chain,
    load_connected,
    load_deployment,
)
from margin_maintenance.report import (
    MIN_WINDOW_STEPS,
    NOTES,
    RunReport,
    plot_data,
    plot_report,
    read_report,
    render_markdown,
    table_rows,
)
from margin_maintenance.system import System


def _load() -> tuple[Deployment, System]:
    """The record at $MM_DEPLOYMENT when set, else the connected network's record."""
    if path := os.environ.get("MM_DEPLOYMENT"):
        p = Path(path)
        dep = load_deployment(p.stem, p.parent)
        check_chain(dep, chain.chain_id, chain.provider.get_code)
        return dep, attach(project, dep)
    return load_connected(project)


def _utc(ts: int | None) -> str:
    return "?" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _intro(dep: Deployment, rep: RunReport) -> list[str]:
    t = rep.block_times
    lines = [
        f"Network `{dep.network}` (chain {dep.chain_id}), clearinghouse `{dep.clearinghouse}`, "
        f"blocks {rep.start_block}..{rep.end_block}, {len(rep.events)} clearinghouse events, "
        f"{len(rep.updates)} oracle updates.",
        "",
    ]
    if not rep.windows:
        lines.append("No crash window found in the oracle updates: whole-run figures only.")
    for w in rep.windows:
        lines.append(
            f"- **{w.label}**: {w.market}, blocks {w.start_block}..{w.end_block}, chain time "
            f"{_utc(t.get(w.start_block))} .. {_utc(t.get(w.end_block))} UTC"
        )
    return lines


def _json(dep: Deployment, rep: RunReport) -> dict:
    cols = []
    for f in rep.figures:
        d = asdict(f)
        d["lp_pnl"] = f.lp_pnl
        d["share_price_change"] = f.share_price_change
        cols.append(d)
    return {
        "network": dep.network,
        "chain_id": dep.chain_id,
        "clearinghouse": dep.clearinghouse,
        "collateral_decimals": dep.collateral.decimals,
        "start_block": rep.start_block,
        "end_block": rep.end_block,
        "price_decimals": rep.price_decimals,
        "columns": cols,
    }


@click.command(cls=ConnectedProviderCommand, short_help="Per-crash figures, report.md and a PNG")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out/report"),
    show_default=True,
    help="Folder for report.md, report.json and demo.png.",
)
@click.option(
    "--block",
    type=click.IntRange(min=0),
    default=None,
    help="Report as of this block (default: the head when it starts).",
)
@click.option(
    "--name",
    "names",
    multiple=True,
    help="Label of the crash windows, in chain order (repeat; default '<market> crash').",
)
@click.option(
    "--min-steps",
    type=click.IntRange(min=1),
    default=MIN_WINDOW_STEPS,
    show_default=True,
    help="Answer changes in a row on one market that make a crash window.",
)
@click.option("--plot/--no-plot", default=True, show_default=True, help="Write demo.png.")
def cli(out_dir: Path, block: int | None, names: tuple[str, ...], min_steps: int, plot: bool):
    """Report on the recorded deployment ($MM_DEPLOYMENT, else deployments/<network>.json in
    $MM_DEPLOYMENTS_DIR): crash windows found from the aggregators' AnswerUpdated events, then
    per window and for the whole run: liquidations (partial / full), accounts, keeper rewards
    and the insurance top-up, insurance fund start / end / min, bad debt and who bore it, LP PnL
    and share price, profit haircuts, traders' realised PnL and fees."""
    try:
        dep, system = _load()
    except DeploymentError as err:
        raise click.ClickException(str(err)) from err
    t0 = time.perf_counter()
    rep = read_report(system, dep.start_block, block, names, min_steps)
    dec = dep.collateral.decimals
    header, rows = table_rows(rep.figures, dec, rep.price_decimals)

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 200))  # a pipe or file: do not wrap rows
    table = Table(title=f"{dep.network}: run report (blocks {rep.start_block}..{rep.end_block})")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right", no_wrap=i > 0)
    for r in rows:
        table.add_row(*r)
    console.print(table)
    for w in rep.windows:
        click.echo(
            f"  {w.label}: {w.market} blocks {w.start_block}..{w.end_block} "
            f"({_utc(rep.block_times.get(w.start_block))} .. "
            f"{_utc(rep.block_times.get(w.end_block))} chain time)"
        )

    out_dir.mkdir(parents=True, exist_ok=True)
    image = None
    if plot:
        data = plot_data(
            rep.updates,
            rep.price_decimals,
            rep.events,
            rep.path,
            rep.block_times,
            rep.symbols,
            dec,
            rep.windows,
            rep.end_block,
        )
        png = plot_report(data, out_dir / "demo.png", f"{dep.network}: oracle prices, liquidations")
        image = png.name
        click.echo(f"wrote {png}")
    md = render_markdown(header, rows, intro=_intro(dep, rep), image=image, notes=NOTES)
    (out_dir / "report.md").write_text(md)
    (out_dir / "report.json").write_text(json.dumps(_json(dep, rep), indent=2) + "\n")
    click.echo(f"wrote {out_dir / 'report.md'}, {out_dir / 'report.json'}")
    click.echo(f"report in {time.perf_counter() - t0:.2f} s")
