"""Drive a planned crash replay through a market's mock aggregator on the connected chain.

Each step sets the chain clock to the step's time (`chain.pending_timestamp`, i.e.
`evm_setNextBlockTimestamp` on anvil) and posts the answer with `set_price`, which stamps the
round with that block time. The other markets are re-posted at their current answer whenever
they would otherwise go stale (older than half their feed's heartbeat), as a live Chainlink
feed's heartbeat would; without it every account holding them could not be priced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from margin_maintenance.crashdata import ReplayStep
from margin_maintenance.system import System


@dataclass(frozen=True)
class ReplayResult:
    steps: int
    first_block_time: int
    last_block_time: int
    first_answer: int
    last_answer: int
    min_answer: int
    refreshes: int  # heartbeat re-posts of the other markets


def needs_refresh(now: int, updated_at: int, max_staleness: int) -> bool:
    """True when a feed's answer is older than half its heartbeat at time `now`."""
    return now - updated_at > max_staleness // 2


def current_answer(system: System, market_index: int) -> int:
    """The market aggregator's latest answer (feed decimals)."""
    return int(system.aggregators[market_index].latestAnswer())


def run_replay(
    system: System,
    market_index: int,
    steps: Sequence[ReplayStep],
    owner: Any,
    *,
    refresh_others: bool = True,
    on_step: Callable[[ReplayStep, int], None] | None = None,
    after_step: Callable[[], None] | None = None,
) -> ReplayResult:
    """Post every step's answer to `system.aggregators[market_index]` at its time (offsets from
    the first step, which lands one second after the current head). `owner` owns the
    aggregators. A step whose time is already past (others mined blocks meanwhile) lands one
    second after the head instead."""
    from ape import chain

    if not steps:
        raise ValueError("nothing to replay")
    agg = system.aggregators[market_index]
    others = [
        (a, int(f.max_staleness()), int(a.latestTimestamp()))
        for i, (a, f) in enumerate(zip(system.aggregators, system.feeds, strict=True))
        if i != market_index
    ]
    start = int(chain.blocks.head.timestamp) + 1
    first_time = last_time = 0
    refreshes = 0
    for n, step in enumerate(steps):
        target = max(start + step.offset_s, int(chain.blocks.head.timestamp) + 1)
        chain.pending_timestamp = target
        tx = agg.set_price(step.answer, sender=owner)
        block_time = int(chain.blocks[tx.block_number].timestamp)
        if n == 0:
            first_time = block_time
        last_time = block_time
        if refresh_others:
            for k, (other, staleness, updated_at) in enumerate(others):
                if needs_refresh(block_time, updated_at, staleness):
                    rtx = other.set_price(int(other.latestAnswer()), sender=owner)
                    others[k] = (other, staleness, int(chain.blocks[rtx.block_number].timestamp))
                    refreshes += 1
        if on_step is not None:
            on_step(step, block_time)
        if after_step is not None:
            after_step()
    answers = [s.answer for s in steps]
    return ReplayResult(
        steps=len(steps),
        first_block_time=first_time,
        last_block_time=last_time,
        first_answer=answers[0],
        last_answer=answers[-1],
        min_answer=min(answers),
        refreshes=refreshes,
    )


def wait_until_settled(
    count_liquidatable: Callable[[], int],
    timeout_s: float,
    poll_s: float = 0.1,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> int:
    """Poll `count_liquidatable` until it returns 0 or `timeout_s` passes; return the last count.
    Gives an outside keeper the time a real one has between two oracle updates."""
    import time

    clock = clock or time.monotonic
    sleep = sleep or time.sleep
    deadline = clock() + timeout_s
    left = count_liquidatable()
    while left > 0 and clock() < deadline:
        sleep(poll_s)
        left = count_liquidatable()
    return left


__all__ = ["ReplayResult", "current_answer", "needs_refresh", "run_replay", "wait_until_settled"]
