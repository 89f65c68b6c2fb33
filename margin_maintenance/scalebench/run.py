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
    price_tx: str | None,
    *,
    phases: Counter[str] | None = None,
    timeout_s: float = 180.0,
    poll_s: float = 0.02,
    signed_at: tuple[int, float] | None = None,
    first: list[float] | None = None,
) -> tuple[int, float, list[Any], list[float], list[dict[str, float]]]:
    """Wait for the price update's block, then call `keeper.on_block` for every new head
    until an iteration finds nothing liquidatable (as the bot does, minus Silverback).
    Returns (price block, seconds from seeing it to the last liquidation receipt, iteration
    results, seconds per `on_block` call, phase seconds per call). A signed price is off
    chain: `signed_at` = (the head when the service got it, that moment's perf_counter) and
    the keeper runs from the next block. `first` receives the seconds to the first
    liquidation receipt."""
    phases = phases if phases is not None else Counter()
    deadline = time.monotonic() + timeout_s
    if signed_at is not None:
        price_block, t0 = signed_at
        done = price_block
    else:
        assert price_tx is not None
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
        done = price_block - 1
    results: list[Any] = []
    durations: list[float] = []
    per_call: list[dict[str, float]] = []
    last_liquidation = t0
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
            if first is not None and not first:
                first.append(end - t0)
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
    oracle: str = "push",
) -> ScaleResult:
    """One book size on a fresh anvil (started and stopped here): seed, read, and clear one
    price update at each block time from the same snapshot. `oracle` "signed": the markets
    read signed prices, the push feeds go stale, and the move comes from an attestation
    service (in this process, on loopback) that the keeper brings on chain."""
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
        sp = SystemParams(signed_prices=oracle == "signed")
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
                # A signed run gets its own service: the last one's reports are newer than
                # the chain once the snapshot is restored.
                service = start_service(sysm, int(chain.chain_id)) if oracle == "signed" else None
                run_settings = settings
                if service is not None:
                    run_settings = KeeperSettings(
                        dry_run=False, min_profit=0.0, attest_url=service.url
                    )
                keeper = Keeper(
                    ch, AccountIndex(copy, sysm.start_block, scope), run_settings, signer
                )
                try:
                    keeper.catch_up()
                    if service is not None:
                        clear = measure_clear_signed(
                            keeper, rpc, sysm, deployer, service.url, bt, params
                        )
                    else:
                        clear = measure_clear(keeper, rpc, sysm, str(deployer.address), bt, params)
                finally:
                    keeper.close()
                    if service is not None:
                        service.stop()
                    rpc.call("evm_setIntervalMining", [0])
                    rpc.call("evm_setAutomine", [True])
                    rpc.call("evm_revert", [snapshot])
                clears.append(clear)
                progress(
                    f"{n:,} accounts ({oracle}), {bt}-s blocks: {clear.liquidated:,} liquidated in "
                    f"{clear.blocks_to_clear} block(s), {clear.seconds_to_clear:.1f} s, "
                    f"{clear.gas_per_liquidation:,.0f} gas each"
                )
    return ScaleResult(
        oracle=oracle,
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
    return _clear_result(
        keeper, rpc, block_time, price_block, seconds, results, durations, per_call, counts
    )


def _clear_result(
    keeper: Any,
    rpc: Rpc,
    block_time: int,
    price_block: int,
    seconds: float,
    results: list[Any],
    durations: list[float],
    per_call: list[dict[str, float]],
    counts: Counter[str],
    first_liquidation_s: float = 0.0,
) -> ClearResult:
    """The figures of one clearing, from the keeper's receipts and a last status read."""
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
        first_liquidation_s=first_liquidation_s,
    )


def start_service(sysm: Any, chain_id: int) -> Any:
    """An attestation service for `sysm` (its k-of-n keys), on loopback, in this process."""
    from margin_maintenance.attest.service import Attestor, AttestServer, ManualSource

    att = Attestor(sysm.signer_set, chain_id, str(sysm.verifier.address), sysm.symbols)
    return AttestServer(att, ManualSource()).start()


def measure_clear_signed(
    keeper: Any,
    rpc: Rpc,
    sysm: Any,
    deployer: Any,
    url: str,
    block_time: int,
    params: BookParams,
) -> ClearResult:
    """The push feeds go a heartbeat stale; a signed price at the unmoved level is stored
    (so the book is judged at fresh prices, not the stale window's haircut); then the move
    reaches the attestation service only, with interval mining on, and the keeper brings it
    in its `liquidate_with_prices` batches."""
    from margin_maintenance.attest.service import fetch_update, post_price

    markets = SystemParams().markets
    heartbeat = max(m.heartbeat_s for m in markets)
    rpc.call("evm_increaseTime", [heartbeat + 60])
    rpc.call("evm_mine")
    now = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    for m in markets:
        post_price(url, m.symbol, m.price_usd, now)
    sysm.clearinghouse.update_prices(fetch_update(url, sysm.feed_ids), sender=deployer)
    phases = time_phases(keeper)
    rpc.call("evm_setIntervalMining", [block_time])
    moved = markets[ETH].price_usd * (1 + params.eth_move)
    first: list[float] = []
    with count_rpc(exclude=[rpc.session]) as counts, timed_receipts(keeper.chain.provider, phases):
        # The first interval block after the stored price: its time is later, so the new
        # report is newer than the stored one and not from the future for any later block.
        head = rpc.call("eth_getBlockByNumber", ["latest", False])
        while int(head["timestamp"], 16) <= now:
            time.sleep(0.02)
            head = rpc.call("eth_getBlockByNumber", ["latest", False])
        post_price(url, markets[ETH].symbol, moved, int(head["timestamp"], 16))
        signed_at = (int(head["number"], 16), time.perf_counter())
        price_block, seconds, results, durations, per_call = drive_keeper(
            keeper, rpc, None, phases=phases, signed_at=signed_at, first=first
        )
    rpc.call("evm_setIntervalMining", [0])
    rpc.call("evm_setAutomine", [True])
    return _clear_result(
        keeper,
        rpc,
        block_time,
        price_block,
        seconds,
        results,
        durations,
        per_call,
        counts,
        first[0] if first else 0.0,
    )
