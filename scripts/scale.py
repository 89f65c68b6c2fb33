"""`ape run scale`: keeper scale on anvil (status reads, clearing a price move), optionally the
test-suite and demo wall times; writes docs/bench.md (SPEC.md section 9, `make bench`).

    ape run scale --accounts 1000,10000 --suite --demo     # make bench
    ape run scale --quick                                  # make bench-quick: 200 accounts

Each book size gets its own anvil, started here on a free loopback port and stopped by pid.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from ape import accounts, project

from margin_maintenance.scalebench import (
    machine_line,
    render_markdown,
    run_size,
    time_command,
    to_json,
)

ROOT = Path(__file__).resolve().parents[1]


def _sizes(value: str) -> list[int]:
    try:
        sizes = [int(x.replace("_", "")) for x in value.split(",") if x.strip()]
    except ValueError as err:
        raise click.BadParameter(f"not a comma-separated list of integers: {value}") from err
    if not sizes or min(sizes) < 10:
        raise click.BadParameter("each size must be at least 10 accounts")
    return sizes


def _block_times(value: str) -> list[int]:
    try:
        times = [int(x) for x in value.split(",") if x.strip()]
    except ValueError as err:
        raise click.BadParameter(f"not a comma-separated list of seconds: {value}") from err
    if not times or min(times) < 1:
        raise click.BadParameter("block times are whole seconds >= 1")
    return times


@click.command(short_help="Keeper scale on anvil; docs/bench.md")
@click.option("--accounts", "sizes", default=None, help="Book sizes, e.g. 1000,10000.")
@click.option("--quick", is_flag=True, help="CI check: 200 accounts, 3 runs, out/bench/.")
@click.option("--runs", type=int, default=None, help="Timed status reads per size (5).")
@click.option(
    "--block-times",
    default=None,
    help="Interval-mining block times (s) to clear at (default 1,2; quick: 1).",
)
@click.option(
    "--oracles",
    default="push,signed",
    show_default=True,
    help="Price paths to clear on: push (the aggregator moves) and/or signed (the attestation "
    "service moves while the push feeds are stale).",
)
@click.option("--suite", is_flag=True, help="Also time `ape test tests -q -n 2`.")
@click.option("--demo", is_flag=True, help="Also time `make demo-quick`.")
@click.option("--out", default=None, help="Markdown to write (docs/bench.md; quick: out/bench/).")
def cli(
    sizes: str | None,
    quick: bool,
    runs: int | None,
    block_times: str | None,
    oracles: str,
    suite: bool,
    demo: bool,
    out: str | None,
) -> None:
    started = time.perf_counter()
    book = _sizes(sizes or ("200" if quick else "1000,10000"))
    times = _block_times(block_times or ("1" if quick else "1,2"))
    runs = runs or (3 if quick else 5)
    oracle_list = [o.strip() for o in oracles.split(",") if o.strip()]
    if not oracle_list or set(oracle_list) - {"push", "signed"}:
        raise click.BadParameter("push and/or signed", param_hint="--oracles")
    work = ROOT / "out" / "bench"
    out_path = Path(out) if out else (work / "bench-quick.md" if quick else ROOT / "docs/bench.md")

    def progress(msg: str) -> None:
        click.echo(f"  [{time.perf_counter() - started:6.0f} s] {msg}")

    results = [
        run_size(
            project,
            accounts.test_accounts,
            n,
            runs=runs,
            block_times=times,
            workdir=work,
            progress=progress,
            oracle=o,
        )
        for o in oracle_list
        for n in book
    ]
    timings = []
    if suite:
        progress("timing the test suite: ape test tests -q -n 2")
        timings.append(
            time_command(
                "test suite (in-process chain, 2 workers)",
                ["ape", "test", "tests", "-q", "-n", "2"],
                work / "suite.log",
                ROOT,
            )
        )
        progress(f"suite: {timings[-1].seconds:.0f} s, {timings[-1].summary}")
    if demo:
        progress("timing make demo-quick")
        timings.append(
            time_command(
                "demo, quick (40 traders, 30 h per crash)",
                ["make", "demo-quick"],
                work / "demo-quick.log",
                ROOT,
            )
        )
        progress(f"demo-quick: {timings[-1].seconds:.0f} s, exit {timings[-1].returncode}")

    text = render_markdown(results, timings, quick=quick, machine=machine_line())
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text)
    (work / ("scale-quick.json" if quick else "scale.json")).write_text(
        to_json(results, timings) + "\n"
    )
    click.echo(text)
    click.echo(f"wrote {out_path} in {time.perf_counter() - started:.0f} s")
    failed = [r for r in results if not all(c.cleared for c in r.clears)]
    if failed:
        click.echo(f"FAILED: {[r.accounts for r in failed]} left accounts liquidatable")
        sys.exit(1)
