"""Keeper scale on anvil (`ape run scale`, part of `make bench`; SPEC.md section 9).

For each book size N: a fresh anvil on a free loopback port, the system deployed with
`deploy_system`, and N accounts that each mint collateral, approve, deposit and open one
position with real transactions (no storage writes). A tenth of them are 9x ETH longs, the
rest 2-3x longs and shorts in ETH and BTC, so one ETH move of -10% makes exactly that tenth
liquidatable (a 9x long crosses maintenance at -6.4%, a 3x long only at -29.8%).

Measured, then:

- **status read**: the keeper's `ClearinghouseReader.margin_status` over every account (512 per
  `eth_call`, all calls in one JSON-RPC batch), the median, min and max of several runs after
  one warm-up, and the HTTP requests and `eth_call`s it used;
- **clearing**, once per block time from the same anvil snapshot: interval mining on (one block
  every `block_time` seconds, anvil's default 30M block gas limit), one ETH price update, then
  the keeper's own block handler (`core.Keeper.on_block`, what the Silverback bot runs) called
  for every new block until an iteration finds nothing liquidatable: the blocks from the price
  update's block to the last liquidation's block, the seconds from seeing the price update's
  block to the last receipt, the gas of every `liquidate_many` over the accounts it
  liquidated, the keeper's RPC calls, and each iteration's seconds by phase.

Seeding runs with automine off and the impersonated accounts' transactions fired in JSON-RPC
batches without waiting for receipts, then mined block by block (base fee 0 while seeding, so
the full seeding blocks do not push it up; it is set back to 1 gwei before the measurements).
Nothing here asserts a time: the figures are reported.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests
from eth_utils import keccak, to_checksum_address

from margin_maintenance.chain.rpc import JsonRpc
from margin_maintenance.system import WAD, SystemParams, deploy_system, feed_answer

MAX_UINT = 2**256 - 1
GWEI = 10**9
ETH, BTC = 0, 1  # market positions in SystemParams().markets
RPC_CHUNK = 500  # JSON-RPC requests per HTTP batch while seeding
SEED_WAVE = 1_000  # accounts sent to the pool before mining it empty
SEED_GAS = {"mint": 120_000, "approve": 80_000, "deposit": 150_000, "trade": 300_000}
MEASURE_BASE_FEE = GWEI  # anvil's own initial base fee, restored after seeding
LIQUIDATED_SIG = "Liquidated(address,address,uint256,uint256,uint256,uint256,int256,bool)"
LIQUIDATED_TOPIC = "0x" + keccak(text=LIQUIDATED_SIG).hex()

# ---- The book: pure, unit-tested ----


@dataclass(frozen=True)
class AccountPlan:
    """One seeded account: collateral (whole tokens) and one position at the start price."""

    index: int
    market: int  # position in SystemParams().markets (ETH 0, BTC 1)
    side: int  # +1 long, -1 short
    leverage: float  # notional / collateral at the start price
    collateral_usd: float
    doomed: bool  # planned to be liquidatable after the bench's price move


@dataclass(frozen=True)
class BookParams:
    """The leverage mix and the price move that makes `doomed_share` of the book liquidatable."""

    doomed_share: float = 0.10
    doomed_leverage: float = 9.0  # ETH longs; cross maintenance at -6.4%
    safe_leverage: tuple[float, float] = (2.0, 3.0)  # a 3x long crosses only at -29.8%
    eth_share_of_safe: float = 0.6
    long_share_of_safe: float = 0.6
    collateral_usd: tuple[float, float] = (500.0, 5_000.0)  # log-uniform
    eth_move: float = -0.10  # the price update: ETH -10%
    seed: int = 7


def plan_book(n: int, params: BookParams | None = None) -> list[AccountPlan]:
    """`n` accounts, exactly round(n * doomed_share) of them doomed, deterministic in `seed`."""
    p = params or BookParams()
    rng = random.Random(p.seed)
    n_doomed = round(n * p.doomed_share)
    doomed = set(rng.sample(range(n), n_doomed)) if n else set()
    lo, hi = p.collateral_usd
    plans = []
    for i in range(n):
        collateral = round(math.exp(rng.uniform(math.log(lo), math.log(hi))), 2)
        if i in doomed:
            plans.append(AccountPlan(i, ETH, 1, p.doomed_leverage, collateral, True))
            continue
        market = ETH if rng.random() < p.eth_share_of_safe else BTC
        side = 1 if rng.random() < p.long_share_of_safe else -1
        leverage = round(rng.uniform(*p.safe_leverage), 3)
        plans.append(AccountPlan(i, market, side, leverage, collateral, False))
    return plans


def crossing_move(leverage: float, maintenance_bps: int = 500, trading_fee_bps: int = 5) -> float:
    """The adverse price move (a fraction, positive) at which a fresh position of `leverage`
    reaches its maintenance requirement: 1 - fee*L - L*x = mm*L*(1 - x) for a long."""
    mm, fee = maintenance_bps / 10_000, trading_fee_bps / 10_000
    return (1 - fee * leverage - mm * leverage) / (leverage * (1 - mm))


def liquidatable_after(
    plan: AccountPlan,
    moves: Sequence[float],
    maintenance_bps: int = 500,
    trading_fee_bps: int = 5,
) -> bool:
    """Whether `plan`'s account is below maintenance after each market moves by `moves[m]`
    (fractions, -0.1 = -10%); the same arithmetic as the engine, without its rounding."""
    move = moves[plan.market]
    notional = plan.collateral_usd * plan.leverage
    equity = plan.collateral_usd - notional * trading_fee_bps / 10_000 + plan.side * notional * move
    maintenance = notional * (1 + move) * maintenance_bps / 10_000
    return equity < maintenance


def predicted_liquidatable(plans: Sequence[AccountPlan], params: BookParams) -> int:
    moves = [params.eth_move, 0.0]
    return sum(liquidatable_after(p, moves) for p in plans)


def position_size(plan: AccountPlan, price_usd: float) -> int:
    """Signed WAD base units for the plan's notional at `price_usd`."""
    units = plan.collateral_usd * plan.leverage / price_usd
    return plan.side * round(units * WAD)


def account_address(index: int, salt: str = "margin-maintenance/scale") -> str:
    """A deterministic address for seeded account `index` (no key: anvil impersonates it)."""
    return to_checksum_address(keccak(text=f"{salt}/{index}")[-20:])


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


# ---- JSON-RPC: plain HTTP, batched ----


class Rpc(JsonRpc):
    """The bench's endpoint: long timeouts, large batches (seeding needs tens of thousands of
    calls)."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri, timeout=300.0)

    def batch(self, calls: Sequence[tuple[str, list[Any]]], chunk: int = RPC_CHUNK) -> list[Any]:
        return super().batch(calls, chunk)


@contextlib.contextmanager
def count_rpc(exclude: Sequence[requests.Session] = ()) -> Iterator[Counter[str]]:
    """Count every HTTP request this process sends (key "_http") and every JSON-RPC call by
    method, however it is sent (web3, Ape, the keeper's reader), while the block runs;
    requests of the `exclude` sessions (the bench's own) are not counted."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    original = requests.Session.send
    skip = {id(s) for s in exclude}

    def send(self: requests.Session, request: Any, **kwargs: Any) -> Any:
        if id(self) in skip:
            return original(self, request, **kwargs)
        methods: list[str] = []
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            body = json.loads(request.body)
            for item in body if isinstance(body, list) else [body]:
                methods.append(str(item.get("method")))
        with lock:
            counts["_http"] += 1
            counts.update(methods)
        return original(self, request, **kwargs)

    requests.Session.send = send  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        requests.Session.send = original  # type: ignore[method-assign]


# ---- anvil ----


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def run_anvil(log_path: Path, anvil: str = "anvil") -> Iterator[str]:
    """A fresh anvil on a free loopback port (default gas limit, automine); stopped by pid."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [anvil, "--host", "127.0.0.1", "--port", str(port), "--silent"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        rpc = Rpc(uri)
        for _ in range(100):
            try:
                rpc.call("eth_chainId")
                break
            except requests.RequestException:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"anvil exited ({proc.returncode}); see {log_path}"
                    ) from None
                time.sleep(0.1)
        else:
            raise RuntimeError(f"anvil did not answer on {uri}")
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- Seeding ----


def _send_all(rpc: Rpc, txs: Sequence[dict[str, Any]]) -> None:
    rpc.batch([("eth_sendTransaction", [t]) for t in txs])


def _mine_until_empty(rpc: Rpc, max_blocks: int = 10_000) -> list[int]:
    """Mine blocks until the pool is empty; the numbers of the blocks mined."""
    mined = []
    for _ in range(max_blocks):
        status = rpc.call("txpool_status")
        if int(status["pending"], 16) == 0 and int(status["queued"], 16) == 0:
            return mined
        rpc.call("evm_mine")
        mined.append(rpc.block_number())
    raise RuntimeError("transaction pool did not drain")


def seed_book(
    rpc: Rpc,
    sysm: Any,
    deployer: str,
    plans: Sequence[AccountPlan],
    prices: Sequence[float],
    progress: Callable[[str], None] = lambda _: None,
    wave: int = SEED_WAVE,
) -> tuple[list[str], int]:
    """Mint, approve, deposit and trade for every planned account with real transactions,
    `wave` accounts at a time (fired in JSON-RPC batches, then mined until the pool is empty:
    anvil's pool slows down when it holds tens of thousands of transactions); returns
    (addresses, transactions sent). Receipts are not fetched (40,000 of them take longer than
    the seeding): the status read that follows checks every account holds a position."""
    from margin_maintenance.keeper.reads import Method

    ch, token = sysm.clearinghouse, sysm.token
    unit = sysm.unit
    ch_addr, token_addr = str(ch.address), str(token.address)
    mint = Method(token.mint.abis[0])
    approve = Method(token.approve.abis[0])
    deposit = Method(ch.deposit.abis[0])
    trade = Method(ch.trade.abis[0])
    market_ids = sysm.market_ids
    addrs = [account_address(p.index) for p in plans]
    amounts = [round(p.collateral_usd * unit) for p in plans]
    fees = {"maxFeePerGas": hex(GWEI), "maxPriorityFeePerGas": "0x0"}

    def tx(sender: str, to: str, data: str, kind: str, nonce: int) -> dict[str, Any]:
        gas = hex(SEED_GAS[kind])
        return {"from": sender, "to": to, "data": data, "gas": gas, "nonce": hex(nonce), **fees}

    rpc.call("evm_setAutomine", [False])
    rpc.call("anvil_autoImpersonateAccount", [True])
    rpc.call("anvil_setNextBlockBaseFeePerGas", ["0x0"])
    sent = 0
    blocks: list[int] = []
    try:
        rpc.batch([("anvil_setBalance", [a, hex(10**18)]) for a in addrs])
        nonce = int(rpc.call("eth_getTransactionCount", [deployer, "pending"]), 16)
        for start in range(0, len(plans), wave):
            stop = min(start + wave, len(plans))
            mints = [
                tx(deployer, token_addr, mint.calldata(addrs[i], amounts[i]), "mint", nonce + i)
                for i in range(start, stop)
            ]
            _send_all(rpc, mints)
            blocks += _mine_until_empty(rpc)
            txs = []
            for i in range(start, stop):
                p, a = plans[i], addrs[i]
                size = position_size(p, prices[p.market])
                limit = MAX_UINT if size > 0 else 0
                txs += [
                    tx(a, token_addr, approve.calldata(ch_addr, MAX_UINT), "approve", 0),
                    tx(a, ch_addr, deposit.calldata(amounts[i]), "deposit", 1),
                    tx(a, ch_addr, trade.calldata(market_ids[p.market], size, limit), "trade", 2),
                ]
            _send_all(rpc, txs)
            blocks += _mine_until_empty(rpc)
            sent += len(mints) + len(txs)
            progress(f"seeded {stop:,}/{len(plans):,} accounts ({len(blocks)} blocks)")
    finally:
        rpc.call("anvil_autoImpersonateAccount", [False])
        rpc.call("anvil_setNextBlockBaseFeePerGas", [hex(MEASURE_BASE_FEE)])
        rpc.call("evm_mine")
        rpc.call("evm_setAutomine", [True])
    return addrs, sent


# ---- The run for one book size ----


def _status_read(keeper: Any, accounts: Sequence[str]) -> tuple[list[Any], dict[str, str]]:
    from margin_maintenance.keeper import decisions

    return keeper.reader.margin_status(
        decisions.status_chunks(accounts, keeper.settings.status_chunk)
    )


def time_phases(keeper: Any) -> Counter[str]:
    """Wrap the keeper instance's read, preview and send steps to add their seconds to the
    returned counter (the class and other keepers are untouched)."""
    phases: Counter[str] = Counter()

    def wrap(obj: Any, name: str, label: str) -> None:
        fn = getattr(obj, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[label] += time.perf_counter() - t

        setattr(obj, name, timed)

    wrap(keeper.reader, "margin_status", "status read")
    wrap(keeper, "read_previews", "previews")
    wrap(keeper, "send_batches", "send")
    return phases


@contextlib.contextmanager
def timed_receipts(provider: Any, phases: Counter[str]) -> Iterator[None]:
    """Time the provider's `get_receipt` (the keeper waiting for its batches to be mined)
    on this provider instance only, while the block runs."""
    original = provider.get_receipt

    def get_receipt(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            phases["receipts"] += time.perf_counter() - t

    object.__setattr__(provider, "get_receipt", get_receipt)
    try:
        yield
    finally:
        provider.__dict__.pop("get_receipt", None)


def split_send(phases: dict[str, float]) -> dict[str, float]:
    """Raw phase seconds -> the reported ones (send less the receipt waits inside it)."""
    out = {k: v for k, v in phases.items() if k not in ("send", "receipts")}
    if "send" in phases:
        waited = phases.get("receipts", 0.0)
        out["estimate+sign+send"] = phases["send"] - waited
        out["await receipts"] = waited
    return out


def drive_keeper(
    keeper: Any,
    rpc: Rpc,
    price_tx: str,
    *,
    phases: Counter[str] | None = None,
    timeout_s: float = 180.0,
    poll_s: float = 0.02,
) -> tuple[int, float, list[Any], list[float], list[dict[str, float]]]:
    """Wait for the price update's block, then call `keeper.on_block` for every new head
    until an iteration finds nothing liquidatable (as the bot does, minus Silverback).
    Returns (price block, seconds from seeing it to the last liquidation receipt, iteration
    results, seconds per `on_block` call, phase seconds per call)."""
    phases = phases if phases is not None else Counter()
    deadline = time.monotonic() + timeout_s
    receipt = None
    while receipt is None:
        if time.monotonic() > deadline:
            raise TimeoutError("price update never mined")
        receipt = rpc.call("eth_getTransactionReceipt", [price_tx])
        if receipt is None:
            time.sleep(poll_s)
    t0 = time.perf_counter()
    price_block = int(receipt["blockNumber"], 16)
    if int(receipt["status"], 16) != 1:
        raise RuntimeError("price update reverted")
    results: list[Any] = []
    durations: list[float] = []
    per_call: list[dict[str, float]] = []
    last_liquidation = t0
    done = price_block - 1
    while True:
        head = rpc.block_number()
        if head <= done:
            if time.monotonic() > deadline:
                raise TimeoutError("keeper did not clear the book in time")
            time.sleep(poll_s)
            continue
        phases.clear()
        start = time.perf_counter()
        batch = keeper.on_block(head)
        end = time.perf_counter()
        durations.append(end - start)
        per_call.append(dict(phases))
        results += batch
        done = head
        if any(r.liquidated for r in batch):
            last_liquidation = end
        if any(not r.liquidatable and r.read_error is None for r in batch):
            return price_block, last_liquidation - t0, results, durations, per_call


@contextlib.contextmanager
def ape_on(uri: str) -> Iterator[Any]:
    """Ape connected to the anvil at `uri` (ethereum:local:foundry, not started by Ape)."""
    from ape import networks

    previous = os.environ.get("APE_FOUNDRY_HOST")
    os.environ["APE_FOUNDRY_HOST"] = uri
    try:
        with networks.parse_network_choice("ethereum:local:foundry") as provider:
            yield provider
    finally:
        if previous is None:
            os.environ.pop("APE_FOUNDRY_HOST", None)
        else:
            os.environ["APE_FOUNDRY_HOST"] = previous


def run_size(
    project: Any,
    test_accounts: Any,
    n: int,
    *,
    runs: int = 5,
    block_times: Sequence[int] = (1,),
    params: BookParams | None = None,
    workdir: Path,
    progress: Callable[[str], None] = lambda _: None,
) -> ScaleResult:
    """One book size on a fresh anvil (started and stopped here): seed, read, and clear one
    price update at each block time from the same snapshot."""
    from ape import chain

    from margin_maintenance.keeper.core import Keeper, index_scope
    from margin_maintenance.keeper.index import AccountIndex
    from margin_maintenance.keeper.settings import KeeperSettings

    params = params or BookParams()
    plans = plan_book(n, params)
    workdir.mkdir(parents=True, exist_ok=True)
    with run_anvil(workdir / f"anvil-{n}.log") as uri, ape_on(uri):
        rpc = Rpc(uri)
        progress(f"{n:,} accounts: anvil at {uri}, deploying")
        deployer, signer = test_accounts[0], test_accounts[5]
        sp = SystemParams()
        sysm = deploy_system(project, deployer, deployer, sp)
        ch, token, unit = sysm.clearinghouse, sysm.token, sysm.unit
        token.mint(deployer, 5_100_000 * unit, sender=deployer)
        token.approve(ch, MAX_UINT, sender=deployer)
        ch.add_liquidity(5_000_000 * unit, 0, sender=deployer)
        ch.fund_insurance(100_000 * unit, sender=deployer)

        t = time.perf_counter()
        prices = [m.price_usd for m in sp.markets]
        addrs, n_txs = seed_book(rpc, sysm, str(deployer.address), plans, prices, progress)
        seed_s = time.perf_counter() - t
        progress(f"{n:,} accounts seeded in {seed_s:.0f} s ({n_txs:,} transactions)")

        scope = index_scope(chain.chain_id, str(ch.address), sysm.start_block)
        settings = KeeperSettings(dry_run=False, min_profit=0.0)
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "keeper.sqlite"
            keeper = Keeper(ch, AccountIndex(db, sysm.start_block, scope), settings, signer)
            try:
                t = time.perf_counter()
                keeper.catch_up()
                index_s = time.perf_counter() - t
                if set(keeper.index.accounts()) != set(addrs):
                    raise RuntimeError("the keeper's index is not the seeded book")
                status, http, calls = measure_status(keeper, n, runs)
            finally:
                keeper.close()
            progress(
                f"{n:,} accounts: status read median {status.median * 1000:.0f} ms "
                f"({calls} eth_calls in {http} HTTP request(s))"
            )
            clears = []
            for bt in block_times:
                snapshot = rpc.call("evm_snapshot")
                copy = Path(tmp) / f"keeper-{bt}.sqlite"
                _copy_sqlite(db, copy)
                keeper = Keeper(ch, AccountIndex(copy, sysm.start_block, scope), settings, signer)
                try:
                    keeper.catch_up()
                    clear = measure_clear(keeper, rpc, sysm, str(deployer.address), bt, params)
                finally:
                    keeper.close()
                    rpc.call("evm_setIntervalMining", [0])
                    rpc.call("evm_setAutomine", [True])
                    rpc.call("evm_revert", [snapshot])
                clears.append(clear)
                progress(
                    f"{n:,} accounts, {bt}-s blocks: {clear.liquidated:,} liquidated in "
                    f"{clear.blocks_to_clear} block(s), {clear.seconds_to_clear:.1f} s, "
                    f"{clear.gas_per_liquidation:,.0f} gas each"
                )
    return ScaleResult(
        accounts=n,
        doomed_planned=sum(p.doomed for p in plans),
        predicted_liquidatable=predicted_liquidatable(plans, params),
        seed_seconds=seed_s,
        seed_txs=n_txs,
        index_seconds=index_s,
        status=status,
        status_http_requests=http,
        status_eth_calls=calls,
        clears=clears,
    )


def _copy_sqlite(src: Path, dst: Path) -> None:
    import sqlite3

    with (
        contextlib.closing(sqlite3.connect(src)) as a,
        contextlib.closing(sqlite3.connect(dst)) as b,
    ):
        a.backup(b)


def measure_status(keeper: Any, n: int, runs: int) -> tuple[Stats, int, int]:
    """(seconds over `runs` reads after a warm-up, HTTP requests and eth_calls per read)."""
    accounts = keeper.index.accounts()
    rows, failed = _status_read(keeper, accounts)  # warm-up (connection, caches)
    if failed or len(rows) != n:
        raise RuntimeError(f"status read failed: {len(rows)} rows, {len(failed)} errors")
    if any(r.liquidatable for r in rows) or any(r.maintenance == 0 for r in rows):
        raise RuntimeError("the seeded book is not all healthy accounts with a position")
    samples = []
    with count_rpc() as counts:
        for _ in range(runs):
            t = time.perf_counter()
            _status_read(keeper, accounts)
            samples.append(time.perf_counter() - t)
    return Stats.of(samples), counts["_http"] // runs, counts["eth_call"] // runs


def measure_clear(
    keeper: Any, rpc: Rpc, sysm: Any, deployer: str, block_time: int, params: BookParams
) -> ClearResult:
    """Post the price move with interval mining on and drive the keeper until it is done."""
    from margin_maintenance.keeper.reads import Method

    agg = sysm.aggregators[ETH]
    price = SystemParams().markets[ETH].price_usd * (1 + params.eth_move)
    data = Method(agg.set_price.abis[0]).calldata(feed_answer(price))
    phases = time_phases(keeper)
    rpc.call("evm_setIntervalMining", [block_time])
    head_before = rpc.block_number()
    with count_rpc(exclude=[rpc.session]) as counts, timed_receipts(keeper.chain.provider, phases):
        price_tx = rpc.call(
            "eth_sendTransaction", [{"from": deployer, "to": str(agg.address), "data": data}]
        )
        price_block, seconds, results, durations, per_call = drive_keeper(
            keeper, rpc, price_tx, phases=phases
        )
    rpc.call("evm_setIntervalMining", [0])
    rpc.call("evm_setAutomine", [True])
    if price_block <= head_before:
        raise RuntimeError("price update landed in an old block")

    tx_hashes = [h for r in results for h in r.tx_hashes]
    receipts = rpc.batch([("eth_getTransactionReceipt", [h]) for h in tx_hashes])
    liquidated = gas_total = max_batch = 0
    blocks: set[int] = set()
    for rc in receipts:
        k = sum(1 for lg in rc["logs"] if lg["topics"] and lg["topics"][0] == LIQUIDATED_TOPIC)
        gas = int(rc["gasUsed"], 16)
        liquidated += k
        gas_total += gas
        max_batch = max(max_batch, gas)
        if k:
            blocks.add(int(rc["blockNumber"], 16))
    block_info = rpc.batch([("eth_getBlockByNumber", [hex(b), False]) for b in sorted(blocks)])
    gas_limit = int(rpc.call("eth_getBlockByNumber", ["latest", False])["gasLimit"], 16)
    rows, _ = _status_read(keeper, keeper.index.accounts())
    http_total = counts.pop("_http", 0)
    return ClearResult(
        block_time=block_time,
        price_block=price_block,
        liquidatable_at_update=len(results[0].liquidatable),
        liquidated=liquidated,
        still_liquidatable=sum(r.liquidatable for r in rows),
        blocks_to_clear=(max(blocks) - price_block) if blocks else 0,
        liquidation_blocks=sorted(blocks),
        seconds_to_clear=seconds,
        iterations=len(results),
        batches=len(receipts),
        gas_total=gas_total,
        gas_per_liquidation=gas_total / liquidated if liquidated else 0.0,
        max_batch_gas=max_batch,
        max_block_gas=max((int(b["gasUsed"], 16) for b in block_info), default=0),
        block_gas_limit=gas_limit,
        rpc_requests=http_total,
        rpc_methods=dict(counts),
        iteration_seconds=durations,
        iteration_phases=[split_send(p) for p in per_call],
        iteration_liquidated=[len(r.liquidated) for r in results],
    )


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
