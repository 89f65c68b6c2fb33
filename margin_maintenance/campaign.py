"""The invariant campaign: forge's invariant fuzzer over the real Vyper contracts (fuzz/).

The contracts are the build Ape makes (`ape compile`): their deployment bytecode is exported
from `.build/__local__.json` to `fuzz/bytecode/`, and a Solidity handler (fuzz/src/Handler.sol)
deploys them, drives them with random sequences of actions and checks the laws: after every
step the ones that read state (fuzz/test/Invariants.t.sol), and every PROBE_EVERY steps, when
the pool holds less than the debt and at the end of every run the ones that act (one-by-one
withdrawals, a bank run, an unwind) on a copy of the state.

    python -m margin_maintenance.campaign --steps 20000 --seed 0x1     # what make test runs
    python -m margin_maintenance.campaign --steps 1000000 --record fuzz  # make fuzz (new seed)
    python -m margin_maintenance.campaign --steps 200000 --record bench  # make bench

A campaign runs in chunks (one forge call each, `--chunk-runs` runs of `--depth` steps per
world, the deep and the thin pool in parallel), each with its own seed derived from the first,
so progress shows and a long campaign explores more than one seed. On a violation it prints
the failing sequence (shrunk by forge), saves it as a plain regression test under
fuzz/test/regressions/ (run by every later campaign) and exits 1. At the end it prints the
steps, the steps per second and the counters of what the runs reached; `--record LABEL`
keeps them in docs/campaign.json under LABEL and renders docs/campaign.md.

MM_CAMPAIGN_CANARY=1 adds a law that fails at the first full liquidation: the check that
the pipeline (forge, the laws, the report, the saved regression) does catch a violation.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
FUZZ_DIR = REPO_ROOT / "fuzz"
MANIFEST = REPO_ROOT / ".build" / "__local__.json"
BYTECODE_DIR = FUZZ_DIR / "bytecode"
REGRESSION_DIR = FUZZ_DIR / "test" / "regressions"
RECORD_JSON = REPO_ROOT / "docs" / "campaign.json"
RECORD_MD = REPO_ROOT / "docs" / "campaign.md"
FORGE = REPO_ROOT / "node_modules" / ".bin" / "forge"
CONTRACTS = (
    "MockERC20",
    "LPVault",
    "Configurator",
    "Clearinghouse",
    "ClearinghouseExtension",
    "MockAggregator",
    "PriceFeed",
    "SettledPriceFeed",
    "PriceVerifier",
    "SignedPriceFeed",
)
WORLDS = ("Invariants", "ThinPoolInvariants")  # the deep pool and the thin pool
LAWS_OF = {"Invariants": "Laws", "ThinPoolInvariants": "ThinPool"}  # each world's plain base
INVARIANT_PATH = "test/Invariants.t.sol"
# What each run should reach at least once in a campaign: a campaign that reaches none of
# these tried nothing interesting, and says so.
HEADLINE = (
    "liquidations_partial",
    "liquidations_full",
    "bad_debt_settlements",
    "self_liquidations",
    "gaps",
    "edges",
    "stale_windows",
    "dead_feeds",
    "bank_runs",
    "unwinds",
    "straddles",
    "flat_withdraws",
    "requests_executed",
    "claims_settled",
    "drains",
    "signed_updates",
    "signed_batches",
    "signed_trades",
    "signed_refused",
    "wick_liquidations",
    "wick_refused_stale",
)


class CampaignError(RuntimeError):
    """The campaign could not run (no build, no forge): not a violation."""


# ---- Inputs ----


def export_bytecode(manifest: Path = MANIFEST, out: Path = BYTECODE_DIR) -> list[Path]:
    """Write each contract's deployment bytecode (hex) where the handler reads it."""
    if not manifest.exists():
        raise CampaignError(f"{manifest} not found: run `ape compile` first (make does)")
    types = json.loads(manifest.read_text())["contractTypes"]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CONTRACTS:
        if name not in types:
            raise CampaignError(f"{name} is not in {manifest}")
        path = out / f"{name}.hex"
        path.write_text(types[name]["deploymentBytecode"]["bytecode"])
        written.append(path)
    return written


def parse_seed(text: str | None) -> int:
    """A seed from hex (0x..) or decimal text; a new random one when none is given."""
    if text is None or text == "random":
        return secrets.randbits(64)
    return int(text, 0)


def chunk_seed(seed: int, index: int) -> int:
    """The seed of chunk `index`: the first chunk uses the campaign's own seed."""
    return seed + index


def plan_chunks(steps: int, depth: int, chunk_runs: int, worlds: int = len(WORLDS)) -> list[int]:
    """Runs per world of each chunk, so that the campaign makes at least `steps` steps."""
    per_chunk = chunk_runs * depth * worlds
    full, rest = divmod(steps, per_chunk)
    chunks = [chunk_runs] * full
    if rest:
        chunks.append(-(-rest // (depth * worlds)))
    return chunks or [1]


# ---- One forge call ----


@dataclass
class ChunkResult:
    seed: int
    steps: int  # calls forge made, summed over the worlds
    reverts: int
    seconds: float
    counters: Counter[str]
    failures: list[dict[str, Any]] = field(default_factory=list)  # one per failing world


def read_counters(path: Path) -> Counter[str]:
    """The counters each run appended (one JSON object per line), added up. forge 1.7.1 calls
    `afterInvariant` once more after each world's last run (measured: 22 lines for 2 x 10
    runs, the last run of each world written twice, the worlds' lines interleaved), so a line
    seen before is that repeat: two runs never agree on every one of some forty counters."""
    total: Counter[str] = Counter()
    if path.exists():
        seen: set[str] = set()
        for line in path.read_text().splitlines():
            if line.strip() and line not in seen:
                total.update(json.loads(line))
                seen.add(line)
    return total


def parse_forge_json(text: str) -> tuple[int, int, list[dict[str, Any]]]:
    """(calls, reverts, failures) from `forge test --json`: one object per test file, each
    with its tests' results; a failure keeps its world, reason and counterexample."""
    calls = reverts = 0
    failures = []
    start = text.find("{")
    if start < 0:
        raise CampaignError(f"forge printed no JSON:\n{text[-2000:]}")
    suites = json.loads(text[start:])
    for suite_name, suite in suites.items():
        for test_name, result in suite.get("test_results", {}).items():
            kind = result.get("kind", {})
            inv = kind.get("Invariant") if isinstance(kind, dict) else None
            if inv:
                calls += int(inv.get("calls", 0))
                reverts += int(inv.get("reverts", 0))
            if result.get("status") != "Success":
                failures.append(
                    {
                        "world": suite_name.rsplit(":", 1)[-1],
                        "test": test_name,
                        "reason": result.get("reason"),
                        "counterexample": result.get("counterexample"),
                    }
                )
    return calls, reverts, failures


def forge_env(runs: int, depth: int, counters: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        FOUNDRY_INVARIANT_RUNS=str(runs),
        FOUNDRY_INVARIANT_DEPTH=str(depth),
        MM_CAMPAIGN_COUNTERS=str(counters.relative_to(FUZZ_DIR)),
        # forge replays a failure it kept before the campaign proper: keep none between
        # campaigns (a seed alone says what a campaign does; saved regressions replay instead)
        FOUNDRY_INVARIANT_FAILURE_PERSIST_DIR=str(counters.parent / "failures"),
        # forge looks for solc here, and node (for the solcjs wrapper) on PATH
        PATH=f"{REPO_ROOT / 'node_modules' / '.bin'}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def run_forge(args: list[str], env: dict[str, str]) -> str:
    if not FORGE.exists():
        raise CampaignError(f"{FORGE} not found: run `make setup` (npm installs forge)")
    proc = subprocess.run(
        [str(FORGE), "test", "--json", *args],
        cwd=FUZZ_DIR,  # foundry.toml's paths (solc, bytecode/, reports/) are relative to it
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 1) or "{" not in proc.stdout:
        raise CampaignError(
            f"forge failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


def reports_dir() -> Path:
    """This process's own folder under fuzz/reports/ (forge may write only there), so that
    two campaigns at once (the test suite runs on two workers) never share a file."""
    path = FUZZ_DIR / "reports" / str(os.getpid())
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_chunk(seed: int, runs: int, depth: int, index: int) -> ChunkResult:
    reports = reports_dir()
    shutil.rmtree(reports / "failures", ignore_errors=True)
    counters = reports / f"counters-{index}.jsonl"
    counters.unlink(missing_ok=True)
    t0 = time.perf_counter()
    out = run_forge(
        ["--match-path", INVARIANT_PATH, "--fuzz-seed", hex(seed)],
        forge_env(runs, depth, counters),
    )
    seconds = time.perf_counter() - t0
    calls, reverts, failures = parse_forge_json(out)
    return ChunkResult(seed, calls, reverts, seconds, read_counters(counters), failures)


# ---- Regressions ----


def _hexbytes(value: str) -> str:
    return value[2:] if value.startswith("0x") else value


def regression_source(name: str, world: str, reason: str, sequence: list[dict[str, Any]]) -> str:
    """A plain forge test that replays `sequence` (forge's shrunk counterexample) in `world`
    and checks the laws after every call: it fails until the defect is fixed."""
    from eth_utils import to_checksum_address

    lines = [
        "// SPDX-License-Identifier: MIT",
        "pragma solidity ^0.8.24;",
        "",
        f'import {{{LAWS_OF[world]}}} from "../Invariants.t.sol";',
        "",
        f"/// Found by the campaign: {reason}",
        f"contract {name} is {LAWS_OF[world]} {{",
        "    function test_replay() public {",
    ]
    for call in sequence:
        sig = call.get("signature") or call.get("func_name") or "?"
        args = call.get("args") or ""
        lines.append(f"        // {sig} {args}".rstrip())
        sender = to_checksum_address(call.get("sender") or "0x" + "00" * 20)
        lines.append(f'        _replay({sender}, hex"{_hexbytes(call.get("calldata", ""))}");')
    lines += ["        afterRun();", "    }", "}", ""]
    return "\n".join(lines)


def counterexample_calls(failure: dict[str, Any]) -> list[dict[str, Any]]:
    """The calls of a failure's counterexample (forge writes `{"Sequence": [n, [call, ..]]}`)."""
    example = failure.get("counterexample") or {}
    sequence = example.get("Sequence") if isinstance(example, dict) else None
    if isinstance(sequence, list) and len(sequence) == 2 and isinstance(sequence[1], list):
        return sequence[1]
    return sequence if isinstance(sequence, list) else []


def save_regression(
    failure: dict[str, Any], seed: int, directory: Path = REGRESSION_DIR
) -> Path | None:
    """Write the failing sequence as <directory>/Regression<World>_<seed>.t.sol."""
    sequence = counterexample_calls(failure)
    if not sequence:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    name = f"Regression{failure['world']}_{seed:x}"
    path = directory / f"{name}.t.sol"
    path.write_text(regression_source(name, failure["world"], str(failure["reason"]), sequence))
    return path


def run_regressions() -> list[dict[str, Any]]:
    """Every saved regression test, once (before the campaign)."""
    if not REGRESSION_DIR.exists() or not any(REGRESSION_DIR.glob("*.t.sol")):
        return []
    out = run_forge(
        ["--match-path", "test/regressions/*"], forge_env(1, 1, reports_dir() / "regressions.jsonl")
    )
    return parse_forge_json(out)[2]


# ---- The campaign ----


def summary_lines(results: list[ChunkResult], wall: float, seed: int, depth: int) -> list[str]:
    steps = sum(r.steps for r in results)
    counters: Counter[str] = Counter()
    for r in results:
        counters.update(r.counters)
    rate = steps / wall if wall > 0 else 0.0
    lines = [
        f"campaign: {steps:,} steps in {wall:.1f} s ({rate:,.0f} steps/s), seed {hex(seed)}, "
        f"{len(results)} chunk(s), runs of {depth} steps over {len(WORLDS)} worlds",
        "reached: " + ", ".join(f"{k} {counters.get(k, 0):,}" for k in HEADLINE),
    ]
    missed = [k for k in HEADLINE if counters.get(k, 0) == 0]
    if missed:
        lines.append("NOT reached: " + ", ".join(missed))
    actions = sorted((k, v) for k, v in counters.items() if k not in HEADLINE)
    lines.append("all counters: " + ", ".join(f"{k} {v:,}" for k, v in actions))
    return lines


def summary_json(results: list[ChunkResult], wall: float, seed: int, depth: int) -> dict[str, Any]:
    counters: Counter[str] = Counter()
    for r in results:
        counters.update(r.counters)
    steps = sum(r.steps for r in results)
    return {
        "seed": hex(seed),
        "steps": steps,
        "seconds": round(wall, 1),
        "steps_per_second": round(steps / wall, 1) if wall else 0,
        "depth": depth,
        "chunks": len(results),
        "worlds": list(WORLDS),
        "counters": dict(sorted(counters.items())),
    }


def machine_line() -> str:
    """Where the figures were measured (cores and CPU model)."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}"


def render_record(record: dict[str, Any]) -> str:
    """docs/campaign.md from docs/campaign.json (one section per label)."""
    out = [
        "# The invariant campaign: figures",
        "",
        "Written by `python -m margin_maintenance.campaign --record LABEL` (`make fuzz` records",
        "`fuzz`, `make bench` records `bench`). A step is one handler action plus every law that",
        "reads state; the laws that act (one-by-one withdrawals, the bank run, the unwind) run",
        "on a copy of the state every 64 steps, whenever the pool holds less than the debt, and",
        "at the end of every run. Counters add up every run of the campaign.",
        "",
    ]
    for label, r in sorted(record.items()):
        c = r["counters"]
        out += [
            f"## {label}",
            "",
            f"- {r['steps']:,} steps in {r['seconds']:,.1f} s:"
            f" **{r['steps_per_second']:,.0f} steps/s**,"
            f" seed `{r['seed']}`, {r['chunks']} forge call(s), runs of {r['depth']} steps,"
            f" worlds {', '.join(r['worlds'])}",
            f"- machine: {r.get('machine', 'unknown')}; commit {r.get('commit', 'unknown')}",
            f"- result: {r.get('result', 'unknown')}",
            "",
            "| reached | count |",
            "|---|---:|",
        ]
        out += [f"| {k} | {c.get(k, 0):,} |" for k in HEADLINE]
        out += [
            "",
            "Actions taken (each counted when the step ran, whatever the engine answered): "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(c.items()) if k not in HEADLINE)
            + ".",
            "",
        ]
    return "\n".join(out)


def record_run(label: str, summary: dict[str, Any]) -> None:
    """Keep `summary` under `label` in docs/campaign.json and re-render docs/campaign.md."""
    record = json.loads(RECORD_JSON.read_text()) if RECORD_JSON.exists() else {}
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout.strip()
    record[label] = {**summary, "machine": machine_line(), "commit": commit or "unknown"}
    RECORD_JSON.write_text(json.dumps(record, indent=2) + "\n")
    RECORD_MD.write_text(render_record(record))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20_000, help="at least this many steps in all")
    ap.add_argument(
        "--seed", default=None, help="first chunk's seed (hex or decimal); random if none"
    )
    ap.add_argument("--depth", type=int, default=1_000, help="steps per run")
    ap.add_argument("--chunk-runs", type=int, default=10, help="runs per world per forge call")
    ap.add_argument("--json", type=Path, default=None, help="write the summary here")
    ap.add_argument("--record", default=None, help="keep the figures in docs/campaign.* as LABEL")
    ap.add_argument(
        "--save-to", type=Path, default=REGRESSION_DIR, help="where a failing sequence is saved"
    )
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    seed = parse_seed(args.seed)
    try:
        export_bytecode()
        regressions = run_regressions()
        for failure in regressions:
            print(
                f"regression still failing: {failure['world']}: {failure['reason']}",
                file=sys.stderr,
            )
        chunks = plan_chunks(args.steps, args.depth, args.chunk_runs)
        results: list[ChunkResult] = []
        t0 = time.perf_counter()
        from tqdm import tqdm

        total = sum(c * args.depth * len(WORLDS) for c in chunks)
        with tqdm(total=total, unit="step", desc="campaign", disable=args.no_progress) as bar:
            for i, runs in enumerate(chunks):
                result = run_chunk(chunk_seed(seed, i), runs, args.depth, i)
                results.append(result)
                bar.update(result.steps)
                if result.failures:
                    break
        wall = time.perf_counter() - t0
    except CampaignError as err:
        print(f"campaign: {err}", file=sys.stderr)
        return 2
    for line in summary_lines(results, wall, seed, args.depth):
        print(line)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(summary_json(results, wall, seed, args.depth), indent=2) + "\n"
        )
    failed = [f for r in results for f in r.failures]
    if args.record:
        summary = summary_json(results, wall, seed, args.depth)
        summary["result"] = "violation" if failed else "every law held"
        record_run(args.record, summary)
    for failure, result in ((f, r) for r in results for f in r.failures):
        print(f"\nVIOLATION in {failure['world']} (seed {hex(result.seed)}): {failure['reason']}")
        for call in counterexample_calls(failure):
            print(f"  {call.get('sender')} -> {call.get('signature')} {call.get('args')}")
        path = save_regression(failure, result.seed, args.save_to)
        if path is not None:
            print(
                f"saved as {path} (every later campaign replays it"
                " once it is under fuzz/test/regressions/)"
            )
    if failed or regressions:
        return 1
    shutil.rmtree(reports_dir(), ignore_errors=True)  # nothing to look at: every law held
    return 0


if __name__ == "__main__":
    sys.exit(main())
