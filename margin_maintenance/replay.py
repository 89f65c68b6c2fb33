"""Drive a planned crash replay through a market's mock aggregator on the connected chain.

Each step sets the chain clock to the step's time (`chain.pending_timestamp`, i.e.
`evm_setNextBlockTimestamp` on anvil) and posts the answer with `set_price`, which stamps the
round with that block time. The other markets are re-posted at their current answer whenever
they would otherwise go stale (older than half their feed's heartbeat), as a live Chainlink
feed's heartbeat would; without it every account holding them could not be priced.

With signed prices (`attest`), each step's price is first offered to the attestation service,
signed as of the step's block time, and the push feed lags `push_lag_s` behind: at each step
the aggregator shows the newest earlier step at least that old, stamped with that step's own
time (`set_answer_at`), the way a push feed that misses its updates in a crash does (before
the first step it shows the answer it had, stamped a lag before the start). Only the keeper
brings the signed prices on chain (`liquidate_with_prices`).
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


def lagged_answer(history: Sequence[tuple[int, int]], until: int) -> tuple[int, int] | None:
    """The newest (time, answer) of `history` (in time order) at or before `until`."""
    found = None
    for entry in history:
        if entry[0] > until:
            break
        found = entry
    return found


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
    attest: Callable[[ReplayStep, int], None] | None = None,
    push_lag_s: int = 0,
) -> ReplayResult:
    """Post every step's answer to `system.aggregators[market_index]` at its time (offsets from
    the first step, which lands one second after the current head). `owner` owns the
    aggregators. A step whose time is already past (others mined blocks meanwhile) lands one
    second after the head instead. `attest(step, time)` offers the step's price to a signing
    service before the block at `time`; with `push_lag_s` the aggregator lags that far behind
    (see the module's notes)."""
    from ape import chain

    if not steps:
        raise ValueError("nothing to replay")
    agg = system.aggregators[market_index]
    others = [
        (a, int(system.push_feed(i).max_staleness()), int(a.latestTimestamp()))
        for i, a in enumerate(system.aggregators)
        if i != market_index
    ]
    start = int(chain.blocks.head.timestamp) + 1
    first_time = last_time = 0
    refreshes = 0
    # (time, answer) of each step, for a lagging push feed; before the first step it shows the
    # answer it has now, as posted a lag ago (a feed that lags is behind from the start).
    history: list[tuple[int, int]] = [(start - push_lag_s, int(agg.latestAnswer()))]
    pushed: tuple[int, int] | None = None
    for n, step in enumerate(steps):
        target = max(start + step.offset_s, int(chain.blocks.head.timestamp) + 1)
        if attest is not None:
            attest(step, target)
        chain.pending_timestamp = target
        if push_lag_s > 0:
            history.append((target, step.answer))
            lagged = lagged_answer(history, target - push_lag_s)
            if lagged is not None and lagged != pushed:
                tx = agg.set_answer_at(lagged[1], lagged[0], sender=owner)
                pushed = lagged
                block_time = int(chain.blocks[tx.block_number].timestamp)
            else:
                chain.mine(1, timestamp=target)
                block_time = int(chain.blocks.head.timestamp)
        else:
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


__all__ = [
    "ReplayResult",
    "current_answer",
    "lagged_answer",
    "needs_refresh",
    "run_replay",
    "wait_until_settled",
]
