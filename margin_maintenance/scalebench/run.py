"""One book size: deploy, seed, measure the status read and the keeper's clearing per block time."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from margin_maintenance.system import SystemParams, deploy_system, feed_answer

from .book import BookParams, plan_book, predicted_liquidatable
from .figures import ClearResult, ScaleResult, Stats
from .node import Rpc, count_rpc, run_anvil
from .seeding import seed_book
from .settings import ETH, LIQUIDATED_TOPIC, MAX_UINT

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
        sysm.vault.add_liquidity(5_000_000 * unit, 0, sender=deployer)
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
