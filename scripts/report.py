"""`ape run report`: per crash window, liquidations, keeper rewards, the insurance fund, bad debt
and LP PnL, as a table, `<out>/report.md`, `<out>/report.json` and `<out>/demo.png`.

The console output (table, windows, notes) fits 100 columns; report.md keeps one wide table."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click
from ape import chain, project
from ape.cli import ConnectedProviderCommand

from margin_maintenance.deployment import (
    Deployment,
    DeploymentError,
    attach,
    check_chain,
    load_connected,
    load_deployment,
)
from margin_maintenance.report import (
    CONSOLE_WIDTH,
    MIN_WINDOW_STEPS,
    RunReport,
    console_report,
    plot_data,
    plot_report,
    read_report,
    render_markdown,
    report_json,
    report_notes,
    table_rows,
    window_lines,
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


def _summary(dep: Deployment, rep: RunReport) -> str:
    return (
        f"Network `{dep.network}` (chain {dep.chain_id}), clearinghouse `{dep.clearinghouse}`, "
        f"blocks {rep.start_block}..{rep.end_block}, {len(rep.events)} clearinghouse events, "
        f"{len(rep.updates)} oracle updates."
    )


def _windows(rep: RunReport) -> list[str]:
    if not rep.windows:
        return ["No crash window found in the oracle updates: whole-run figures only."]
    return [f"- {x}" for x in window_lines(rep.windows, rep.clocks, rep.block_times, True)]


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
    help="Label of the crash windows, in chain order (repeat; default: '<date> <base> crash' "
    "from the matched crash file, else '<market> crash').",
)
@click.option(
    "--min-steps",
    type=click.IntRange(min=1),
    default=MIN_WINDOW_STEPS,
    show_default=True,
    help="Answer changes in a row on one market that make a crash window.",
)
@click.option("--plot/--no-plot", default=True, show_default=True, help="Write demo.png.")
@click.option(
    "--data-dir",
    default=None,
    envvar="MM_DATA_DIR",
    help="Crash data folder the windows are matched against (default: data/crashes).",
)
def cli(
    out_dir: Path,
    block: int | None,
    names: tuple[str, ...],
    min_steps: int,
    plot: bool,
    data_dir: str | None,
):
    """Report on the recorded deployment ($MM_DEPLOYMENT, else deployments/<network>.json in
    $MM_DEPLOYMENTS_DIR): crash windows found from the aggregators' AnswerUpdated events and
    matched to their crash files (market time, rescale factor), then per window and for the
    whole run: liquidations (partial / full), accounts, keeper rewards and the insurance
    top-up, insurance fund start / end / min, bad debt and who bore it, LP PnL realised and
    unrealised, the share price, profit haircuts, traders' realised PnL and fees. The console
    table fits 100 columns."""
    try:
        dep, system = _load()
    except DeploymentError as err:
        raise click.ClickException(str(err)) from err
    t0 = time.perf_counter()
    rep = read_report(system, dep.start_block, block, names, min_steps, data_dir)
    title = f"{dep.network}: run report (blocks {rep.start_block}..{rep.end_block})"
    click.echo(console_report(rep, title, CONSOLE_WIDTH))

    out_dir.mkdir(parents=True, exist_ok=True)
    image = None
    if plot:
        png = plot_report(plot_data(rep), out_dir / "demo.png", f"{dep.network}: {_PLOT_TITLE}")
        image = png.name
        click.echo(f"wrote {png}")
    intro = [_summary(dep, rep), "", *_windows(rep)]
    header, rows = table_rows(rep.figures, rep.decimals, rep.price_decimals)
    md = render_markdown(header, rows, intro=intro, image=image, notes=report_notes(rep))
    (out_dir / "report.md").write_text(md)
    doc = report_json(rep, dep.network, dep.chain_id, dep.clearinghouse)
    (out_dir / "report.json").write_text(json.dumps(doc, indent=2) + "\n")
    click.echo(f"wrote {out_dir / 'report.md'}, {out_dir / 'report.json'}")
    click.echo(f"report in {time.perf_counter() - t0:.2f} s")


_PLOT_TITLE = "crash replays on market time: oracle price and liquidations, insurance, LP pool"
