"""The bench's figures and their rendering (docs/bench.md, JSON), and timed commands."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

# ---- Figures: pure, unit-tested ----


@dataclass(frozen=True)
class Stats:
    median: float
    min: float
    max: float
    runs: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        if not samples:
            raise ValueError("no samples")
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))


@dataclass
class ClearResult:
    """What the keeper did after the price update, at one block time."""

    block_time: int  # seconds per block (interval mining)
    price_block: int
    liquidatable_at_update: int  # the keeper's first read after the price update
    liquidated: int  # Liquidated events in the keeper's receipts
    still_liquidatable: int  # read after the keeper's last iteration
    blocks_to_clear: int  # last liquidation's block - the price update's block
    liquidation_blocks: list[int]  # blocks that hold at least one liquidation
    seconds_to_clear: float  # seeing the price block -> the last liquidation receipt
    iterations: int  # keeper iterations from the price block to the all-clear
    batches: int
    gas_total: int
    gas_per_liquidation: float
    max_batch_gas: int
    max_block_gas: int  # the fullest liquidation block's gas used
    block_gas_limit: int
    rpc_requests: int  # HTTP requests the keeper made in the clearing loop
    rpc_methods: dict[str, int] = field(default_factory=dict)  # JSON-RPC calls by method
    iteration_seconds: list[float] = field(default_factory=list)
    iteration_phases: list[dict[str, float]] = field(default_factory=list)  # seconds by phase
    iteration_liquidated: list[int] = field(default_factory=list)
    # seeing the price (its block; a signed one: the service having it) -> the first
    # liquidation receipt
    first_liquidation_s: float = 0.0

    @property
    def cleared(self) -> bool:
        return self.still_liquidatable == 0 and self.liquidated == self.liquidatable_at_update


@dataclass
class ScaleResult:
    accounts: int
    doomed_planned: int
    predicted_liquidatable: int
    seed_seconds: float
    seed_txs: int
    index_seconds: float  # the keeper's first catch-up (event scan into SQLite)
    status: Stats
    status_http_requests: int  # per read
    status_eth_calls: int  # per read
    clears: list[ClearResult]
    oracle: str = "push"  # "signed": the move came from the attestation service


@dataclass
class Timing:
    """A command timed for the record (test suite, demo): wall seconds and exit code."""

    name: str
    command: str
    seconds: float
    returncode: int
    summary: str = ""


def growth(small: ScaleResult, large: ScaleResult) -> list[str]:
    """Plain sentences on how each cost grows from the small book to the large one."""
    k = large.accounts / small.accounts
    s0, s1 = small.status.median, large.status.median
    out = [
        f"status read: {k:g}x the accounts took {s1 / s0:.1f}x the time "
        f"({_us(s0, small.accounts)} -> {_us(s1, large.accounts)} per account); "
        f"eth_calls {small.status_eth_calls} -> {large.status_eth_calls} "
        f"(one per 512 accounts), HTTP requests {small.status_http_requests} -> "
        f"{large.status_http_requests} (one per 256 calls)"
    ]
    for c0 in small.clears:
        c1 = next((c for c in large.clears if c.block_time == c0.block_time), None)
        if c1 is None:
            continue
        out.append(
            f"clearing at {c0.block_time}-s blocks: {c0.liquidatable_at_update:,} -> "
            f"{c1.liquidatable_at_update:,} liquidatable accounts took "
            f"{c0.blocks_to_clear} -> {c1.blocks_to_clear} block(s), "
            f"{c0.seconds_to_clear:.1f} -> {c1.seconds_to_clear:.1f} s, "
            f"{c0.batches} -> {c1.batches} `liquidate_many`; the first keeper iteration "
            f"{c0.iteration_seconds[0]:.2f} -> {c1.iteration_seconds[0]:.2f} s; "
            f"keeper RPC {c0.rpc_requests} -> {c1.rpc_requests} HTTP requests "
            f"({sum(c0.rpc_methods.values()):,} -> {sum(c1.rpc_methods.values()):,} "
            "JSON-RPC calls)"
        )
    g0 = [c.gas_per_liquidation for c in small.clears]
    g1 = [c.gas_per_liquidation for c in large.clears]
    if g0 and g1:
        out.append(
            f"gas per liquidation: {min(g0):,.0f}-{max(g0):,.0f} -> {min(g1):,.0f}-{max(g1):,.0f}"
            " (flat: a liquidation touches its own account's slots and the market's, whatever"
            " the book's size)"
        )
    return out


def _us(seconds: float, n: int) -> str:
    return f"{seconds / n * 1e6:.1f} us"


def _ms(s: float) -> str:
    return f"{s * 1000:,.0f} ms"


def spec_verdicts(r: ScaleResult) -> tuple[str, list[str]]:
    """SPEC.md section 9 keeper targets, stated at 10,000 accounts only: (read, [clear per
    block time])."""
    if r.accounts != 10_000:
        return "", ["" for _ in r.clears]
    read = "< 1 s: " + ("met" if r.status.max < 1.0 else "missed")
    clears = [
        "<= 3 blocks: " + ("met" if c.cleared and c.blocks_to_clear <= 3 else "missed")
        for c in r.clears
    ]
    return read, clears


def _phases(phases: dict[str, float], total: float) -> str:
    parts = [f"{k} {v:.2f}" for k, v in phases.items()]
    parts.append(f"other {max(0.0, total - sum(phases.values())):.2f}")
    return ", ".join(parts)


def render_markdown(
    results: Sequence[ScaleResult],
    timings: Sequence[Timing] = (),
    *,
    quick: bool = False,
    machine: str = "",
) -> str:
    """docs/bench.md: the status and clearing tables, the growth sentences, the timings."""
    lines = [
        "<!-- written by `ape run scale` (make bench); do not edit by hand -->",
        "# Keeper scale and timings" + (" (quick run)" if quick else ""),
        "",
    ]
    if machine:
        lines += [machine, ""]
    signed = [r for r in results if r.oracle == "signed"]
    results = [r for r in results if r.oracle != "signed"]
    if results:
        gas_limit = results[0].clears[0].block_gas_limit if results[0].clears else 0
        lines += [
            f"Anvil 1.7.1 on 127.0.0.1, default block gas limit ({gas_limit:,}). Every account "
            "holds one position opened by a real `trade`: a tenth are 9x ETH longs, the rest "
            "2-3x longs and shorts in ETH and BTC. The keeper is `core.Keeper`, the bot's "
            "block handler, with its default settings (at most 8 `liquidate_many` of 64 "
            "accounts per iteration, signed with consecutive nonces and sent together).",
            "",
            "## Reading every account's status",
            "",
            "The keeper's batched read (`reads.py`): `margin_status` over 512 accounts per "
            "`eth_call`, up to 256 calls per JSON-RPC batch, decoded by hand. Several runs "
            "after one warm-up.",
            "",
            "| accounts | median | min | max | runs | eth_calls | HTTP requests | SPEC §9 target |",
            "|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in results:
            read, _ = spec_verdicts(r)
            s = r.status
            lines.append(
                f"| {r.accounts:,} | {_ms(s.median)} | {_ms(s.min)} | {_ms(s.max)} | {s.runs} "
                f"| {r.status_eth_calls} | {r.status_http_requests} | {read} |"
            )
        lines += [
            "",
            "## Clearing after one price update",
            "",
            "ETH -10% posted through the mock aggregator with interval mining on (one block "
            "every *block time* seconds); the keeper's handler runs for every new block until "
            "an iteration finds nothing liquidatable. *Blocks to clear*: the last "
            "liquidation's block minus the price update's block. *Seconds*: from the keeper "
            "seeing the price update's block to the last liquidation receipt (so they include "
            "waiting for blocks). *Gas per liquidation*: each `liquidate_many`'s gas used "
            "(21,000 intrinsic included) over the accounts it liquidated; the reward is "
            "credited inside the engine, no ERC20 transfer. Each block time starts from the "
            "same chain state (anvil snapshot).",
            "",
            "| accounts | block time | liquidatable | liquidated | blocks to clear "
            "| liquidation blocks | seconds | iterations | batches | gas per liquidation "
            "| fullest block | SPEC §9 target |",
            "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|",
        ]
        for r in results:
            _, verdicts = spec_verdicts(r)
            for c, verdict in zip(r.clears, verdicts, strict=True):
                offsets = ", ".join(f"+{b - c.price_block}" for b in c.liquidation_blocks)
                lines.append(
                    f"| {r.accounts:,} | {c.block_time} s | {c.liquidatable_at_update:,} "
                    f"| {c.liquidated:,} | {c.blocks_to_clear} | {offsets} "
                    f"| {c.seconds_to_clear:.1f} | {c.iterations} | {c.batches} "
                    f"| {c.gas_per_liquidation:,.0f} | {c.max_block_gas:,} | {verdict} |"
                )
        lines += ["", "Keeper iterations while clearing (seconds by phase):", ""]
        for r in results:
            for c in r.clears:
                its = "; ".join(
                    f"{t:.2f} s, {k} liquidated ({_phases(p, t)})"
                    for t, p, k in zip(
                        c.iteration_seconds,
                        c.iteration_phases,
                        c.iteration_liquidated,
                        strict=True,
                    )
                )
                methods = ", ".join(
                    f"{m} {k}" for m, k in sorted(c.rpc_methods.items(), key=lambda x: -x[1])
                )
                lines.append(
                    f"- {r.accounts:,} accounts, {c.block_time}-s blocks: {its}. "
                    f"RPC: {c.rpc_requests} HTTP requests ({methods})."
                )
        lines += ["", "Setup (not part of the measurements):", ""]
        for r in results:
            lines.append(
                f"- {r.accounts:,} accounts: {r.seed_txs:,} seeding transactions in "
                f"{r.seed_seconds:.0f} s; the keeper's first index scan "
                f"(`eth_getLogs` into SQLite) {r.index_seconds:.1f} s; "
                f"{r.predicted_liquidatable:,} predicted liquidatable by the plan."
            )
        if len(results) >= 2:
            small, large = results[0], results[-1]
            lines += ["", f"## Growth from {small.accounts:,} to {large.accounts:,} accounts", ""]
            lines += [f"- {s}" for s in growth(small, large)]
    if signed:
        lines += ["", *render_signed(signed)]
    if timings:
        lines += [
            "",
            "## Wall times (figures, not asserts)",
            "",
            "| what | command | wall time | exit | last line |",
            "|---|---|---:|---:|---|",
        ]
        for t in timings:
            lines.append(
                f"| {t.name} | `{t.command}` | {t.seconds:,.0f} s | {t.returncode} | {t.summary} |"
            )
    return "\n".join(lines) + "\n"


def render_signed(results: Sequence[ScaleResult]) -> list[str]:
    """The section on clearing with signed prices while the push feeds are stale."""
    lines = [
        "## Clearing on signed prices while the push feed is stale",
        "",
        "The same book on markets that read signed prices (`SignedPriceFeed`, 3-of-5 "
        "signers). Both push feeds are past their heartbeat (no reference for the "
        "deviation check), a signed price at the unmoved level is stored, then ETH -10% "
        "reaches the attestation service only (`POST /v1/prices`, loopback HTTP in the "
        "bench's process). The keeper (`MM_ATTEST_URL`) fetches the report each block, "
        "reads the book through an `eth_call` state override holding it, and sends "
        "`liquidate_with_prices` batches (the first stores the price; the rest skip it). "
        "*Blocks to clear* count from the head when the service got the price; *first / "
        "last*: seconds from then to the first and the last liquidation receipt.",
        "",
        "| accounts | block time | liquidatable | liquidated | blocks to clear "
        "| liquidation blocks | first receipt | last receipt | batches | gas per liquidation "
        "| SPEC §9 target |",
        "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        _, verdicts = spec_verdicts(r)
        for c, verdict in zip(r.clears, verdicts, strict=True):
            offsets = ", ".join(f"+{b - c.price_block}" for b in c.liquidation_blocks)
            lines.append(
                f"| {r.accounts:,} | {c.block_time} s | {c.liquidatable_at_update:,} "
                f"| {c.liquidated:,} | {c.blocks_to_clear} | {offsets} "
                f"| {c.first_liquidation_s:.1f} s | {c.seconds_to_clear:.1f} s | {c.batches} "
                f"| {c.gas_per_liquidation:,.0f} | {verdict} |"
            )
    return lines


# ---- Timed commands ----


def time_command(name: str, argv: Sequence[str], log_path: Path, cwd: Path | None = None) -> Timing:
    """Run `argv` to completion (output to `log_path`) and time it; the last line of its
    output is kept as the summary (pytest's tally, the demo's closing line)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    with open(log_path, "w") as log:
        rc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd).returncode
    seconds = time.perf_counter() - t
    return Timing(name, " ".join(argv), seconds, rc, last_summary(log_path.read_text()))


def last_summary(output: str) -> str:
    """The last non-empty line that is not make's own, stripped of pytest's '=' frame."""
    for line in reversed(output.splitlines()):
        line = line.strip().strip("=").strip()
        if line and not line.startswith(("make[", "make:")):
            return line.replace("|", "/")[:160]
    return ""


def machine_line() -> str:
    """Where the figures were taken: CPUs, load, Python, the date."""
    import platform

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU(s) "
        f"({platform.machine()}, {platform.system()}), Python {platform.python_version()}, "
        f"1-minute load average {load:.1f} when the report was written."
    )


def to_json(results: Sequence[ScaleResult], timings: Sequence[Timing]) -> str:
    return json.dumps(
        {"scale": [asdict(r) for r in results], "timings": [asdict(t) for t in timings]},
        indent=2,
    )
