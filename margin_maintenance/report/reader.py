"""The thin Ape reader: events, block times and LP samples from the chain, assembled into a
RunReport.

Part of `margin_maintenance.report` (see its docstring).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from margin_maintenance.crashdata import PricePoint
from margin_maintenance.events import CLIENT_EVENTS, fetch_events

from .figures import (
    MAX_LP_SAMPLES,
    LPSample,
    RunReport,
    Snapshot,
    compute_figures,
    ledger_path,
    lp_blocks,
    share_price_blocks,
)
from .windows import (
    MIN_WINDOW_STEPS,
    CrashClock,
    PriceUpdate,
    Segment,
    crash_label,
    detect_windows,
    match_crash,
    plan_segments,
    price_updates,
)

log = logging.getLogger(__name__)


def blocks_needing_time(
    events: Sequence[Mapping[str, Any]], segments: Sequence[Segment], path: Sequence[Snapshot]
) -> set[int]:
    """Blocks whose time the plot needs: liquidations, the steps of the insurance fund and
    of bad debt, segment bounds."""
    blocks = {int(e["block_number"]) for e in events if e["event"] == "Liquidated"}
    last: tuple[int, int, int] | None = None
    for s in path:
        key = (s.insurance_fund, s.bad_debt, s.socialised)
        if key != last:
            blocks.add(s.block)
        last = key
    for seg in segments:
        blocks |= {seg.start_block, seg.end_block}
    return blocks


def sample_blocks(
    segments: Sequence[Segment],
    events: Sequence[Mapping[str, Any]],
    updates: Sequence[PriceUpdate],
    cap: int = MAX_LP_SAMPLES,
) -> list[int]:
    """Blocks to read an `LPSample` at: every segment's share-price blocks, and each
    window's `lp_blocks`."""
    blocks: set[int] = set()
    for seg in segments:
        blocks |= {b for b in share_price_blocks(seg, events) if b is not None}
        if seg.market is not None:
            blocks |= set(lp_blocks(seg, events, updates, cap))
    return sorted(blocks)


def assemble_report(
    start_block: int,
    end_block: int,
    events: list[dict[str, Any]],
    updates: list[PriceUpdate],
    price_decimals: dict[str, int],
    symbols: dict[int, str],
    segments: list[Segment],
    clocks: list[CrashClock | None],
    block_times: dict[int, int],
    lp_samples: dict[int, LPSample],
    decimals: int = 6,
    unit: str = "USDC",
) -> RunReport:
    """The report from what was read (pure: the reader's last step, and the tests' entry)."""
    path = ledger_path(events)
    figures = [compute_figures(s, events, path, None, updates, lp_samples) for s in segments]
    return RunReport(
        start_block=start_block,
        end_block=end_block,
        segments=segments,
        figures=figures,
        events=events,
        updates=updates,
        price_decimals=price_decimals,
        path=path,
        block_times=block_times,
        symbols=symbols,
        clocks=clocks,
        lp_samples=lp_samples,
        decimals=decimals,
        unit=unit,
    )


def plan_windows(
    updates: Sequence[PriceUpdate],
    start_block: int,
    end_block: int,
    crashes: Mapping[str, Sequence[PricePoint]],
    price_decimals: Mapping[str, int],
    names: Sequence[str] = (),
    min_steps: int = MIN_WINDOW_STEPS,
) -> tuple[list[Segment], list[CrashClock | None]]:
    """The report's segments and each window's crash clock. A window without a `--name` is
    labelled after its crash file ("2020-03-12 ETH crash") when one matched and that label is
    not taken."""
    windows = detect_windows(updates, end_block, names, min_steps)
    clocks = [
        match_crash(updates, w, crashes, price_decimals.get(w.market or "", 8)) for w in windows
    ]
    labels = [w.label for w in windows]
    for i, (w, clock) in enumerate(zip(windows, clocks, strict=True)):
        if clock is not None and not (i < len(names) and names[i]):
            label = crash_label(clock)
            if label not in labels:
                labels[i] = label
                windows[i] = Segment(label, w.start_block, w.end_block, w.market)
    return plan_segments(windows, start_block, end_block), clocks


def load_crashes(directory: str | Path | None = None) -> dict[str, list[PricePoint]]:
    """Every crash file's rows by name ({} when the folder is missing; a bad file is
    skipped with a warning)."""
    from margin_maintenance.crashdata import CrashDataError, list_scenarios, load_prices

    out: dict[str, list[PricePoint]] = {}
    try:
        scenarios = list_scenarios(directory)
    except CrashDataError as err:
        log.warning("no crash files to match windows against: %s", err)
        return out
    for sc in scenarios:
        try:
            out[sc.name] = load_prices(sc.path)
        except CrashDataError as err:
            log.warning("skipping %s: %s", sc.path, err)
    return out


RPC_BATCH = 200  # requests per JSON-RPC batch in the reader


def _batched(calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
    """JSON-RPC `(method, params)` calls sent in batches through the chain layer
    (`margin_maintenance.chain.rpc.JsonRpc`) to the connected provider's HTTP endpoint; raises
    where there is none (the in-process chain) or any request failed, so the caller can fall
    back to single Ape calls. Results are the raw JSON-RPC answers (hex strings, dicts)."""
    from ape import chain

    from margin_maintenance.chain.rpc import JsonRpc

    uri = getattr(chain.provider, "http_uri", None)
    if not uri:
        raise RuntimeError("the provider has no HTTP endpoint to batch on")
    return JsonRpc(uri).batch(calls, chunk=RPC_BATCH)


def read_block_times(blocks: Sequence[int]) -> dict[int, int]:
    """Block number -> timestamp, in batches where the provider allows it."""
    from ape import chain

    try:
        heads = _batched([("eth_getBlockByNumber", [hex(b), False]) for b in blocks])
        return {b: int(h["timestamp"], 16) for b, h in zip(blocks, heads, strict=True)}
    except Exception as err:  # no batching (in-process chain) or a failed request
        log.debug("block times one by one: %s", err)
    return {b: int(chain.blocks[b].timestamp) for b in blocks}


def read_lp_samples(system: Any, blocks: Sequence[int]) -> dict[int, LPSample]:
    """`LPSample` (share price, and the open profit, collectable open losses and claims of
    the engine's `pool_state()`) at the end of each block: eth_call batches where the
    provider allows it, else one Ape call at a time."""
    from margin_maintenance.keeper.reads import Method
    from margin_maintenance.model import PoolState

    ch, vault = system.clearinghouse, system.vault
    one_share = 10 ** int(vault.decimals())
    price, pool = Method(vault.convert_to_assets.abis[0]), Method(ch.pool_state.abis[0])
    calls = [(str(vault.address), price.calldata(one_share)), (str(ch.address), pool.calldata())]
    try:
        raw = _batched(
            [("eth_call", [{"to": to, "data": d}, hex(b)]) for b in blocks for to, d in calls]
        )
        out: dict[int, LPSample] = {}
        for k, b in enumerate(blocks):
            try:
                share_price = int(price.result(bytes.fromhex(raw[2 * k][2:]))[0])
                fields = pool.fields(bytes.fromhex(raw[2 * k + 1][2:]))
            except Exception as err:  # e.g. empty return data before the engine existed
                log.warning("LP sample at block %s unreadable: %s", b, err)
                out[b] = LPSample(None)
                continue
            out[b] = LPSample.from_pool(share_price, PoolState(*fields))
        return out
    except Exception as err:  # no batching, or a call failed (e.g. a market unpriced)
        log.debug("LP samples one call at a time: %s", err)
    out = {}
    for b in blocks:
        try:
            share_price: int | None = int(vault.convert_to_assets(one_share, block_id=b))
        except Exception as err:  # e.g. a node that pruned the state of block b
            log.warning("convert_to_assets at block %s failed: %s", b, err)
            share_price = None
        try:
            ps = PoolState(*ch.pool_state(block_id=b))
        except Exception as err:  # e.g. a market past its stale window
            log.warning("pool_state at block %s failed: %s", b, err)
            out[b] = LPSample(share_price)
            continue
        out[b] = LPSample.from_pool(share_price, ps)
    return out


def read_report(
    system: Any,
    start_block: int,
    block: int | None = None,
    names: Sequence[str] = (),
    min_steps: int = MIN_WINDOW_STEPS,
    data_dir: str | Path | None = None,
) -> RunReport:
    """Fetch the clearinghouse's and the aggregators' events up to `block` (default: the head
    now), find the windows and their crash files, read block times, and the LP share price
    and the pool's open terms (`pool_state()`) at the blocks `sample_blocks` names."""
    from ape import chain

    block = chain.blocks.height if block is None else block
    ch = system.clearinghouse
    events = fetch_events(ch, CLIENT_EVENTS, start_block, block)
    answer_logs = {
        symbol: fetch_events(agg, ("AnswerUpdated",), start_block, block)
        for symbol, agg in zip(system.symbols, system.aggregators, strict=True)
    }
    price_decimals = {
        symbol: int(agg.decimals())
        for symbol, agg in zip(system.symbols, system.aggregators, strict=True)
    }
    if system.verifier is not None and len(system.feed_ids) == len(system.symbols):
        # Signed prices brought on chain count as the market's answers too (a signed market
        # reads the newer of the two; `price_updates` keeps the newer).
        by_feed = dict(zip(system.feed_ids, system.symbols, strict=True))
        for e in fetch_events(system.verifier, ("PriceAttested",), start_block, block):
            raw = e["feed_id"]
            symbol = by_feed.get(bytes.fromhex(raw[2:]) if isinstance(raw, str) else bytes(raw))
            if symbol is None:
                continue
            answer_logs[symbol] = [
                *answer_logs[symbol],
                {
                    "block_number": e["block_number"],
                    "log_index": e["log_index"],
                    "updated_at": e["publish_time"],
                    "current": int(e["price"]) * 10 ** price_decimals[symbol] // 10**18,
                },
            ]
    updates = price_updates(answer_logs)
    segments, clocks = plan_windows(
        updates, start_block, block, load_crashes(data_dir), price_decimals, names, min_steps
    )

    samples = read_lp_samples(system, sample_blocks(segments, events, updates))
    path = ledger_path(events)
    needed = blocks_needing_time(events, segments, path) | set(samples)
    block_times = read_block_times(sorted(b for b in needed if b >= 0))
    try:
        unit = str(system.token.symbol())
    except Exception:  # a token without symbol()
        unit = "tokens"
    return assemble_report(
        start_block,
        block,
        events,
        updates,
        price_decimals,
        dict(zip(system.market_ids, system.symbols, strict=True)),
        segments,
        clocks,
        block_times,
        samples,
        int(system.token.decimals()),
        unit,
    )
