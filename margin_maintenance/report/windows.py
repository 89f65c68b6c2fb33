"""Prices and windows: oracle updates, replay windows, and which crash file (rows, rescale, market
time) each window replayed.

Part of `margin_maintenance.report` (see its docstring).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from margin_maintenance.crashdata import PricePoint, parse_scenario_name, plan_replay

WAD = 10**18
MIN_WINDOW_STEPS = 3  # driven price updates in a row that make a replay window


# ---- Prices and windows ----


@dataclass(frozen=True)
class PriceUpdate:
    """One `AnswerUpdated` of a market's aggregator."""

    market: str  # market symbol, e.g. "ETH-USD"
    block_number: int
    log_index: int
    timestamp: int  # the round's updated_at (the block time when posted with set_price)
    answer: int  # aggregator decimals


def price_updates(logs: Mapping[str, Iterable[Mapping[str, Any]]]) -> list[PriceUpdate]:
    """`AnswerUpdated` event dicts (and signed prices brought on chain, in the same shape)
    per market symbol as `PriceUpdate`s, in chain order, each no older than the market's
    newest before it."""
    out = [
        PriceUpdate(
            market=symbol,
            block_number=int(e["block_number"]),
            log_index=int(e["log_index"]),
            timestamp=int(e["updated_at"]),
            answer=int(e["current"]),
        )
        for symbol, evs in logs.items()
        for e in evs
    ]
    out.sort(key=lambda u: (u.block_number, u.log_index))
    # A market serves its newest answer: an update older than one already seen (a lagging
    # push answer after a signed price, say) changes nothing.
    newest: dict[str, int] = {}
    kept = []
    for u in out:
        if u.timestamp >= newest.get(u.market, 0):
            kept.append(u)
            newest[u.market] = u.timestamp
    return kept


def driven_updates(updates: Sequence[PriceUpdate]) -> list[PriceUpdate]:
    """Updates that change their market's answer (the first update of a market counts)."""
    last: dict[str, int] = {}
    out = []
    for u in updates:
        if last.get(u.market) != u.answer:
            out.append(u)
        last[u.market] = u.answer
    return out


@dataclass(frozen=True)
class Segment:
    """A block range the report has a column for: the setup, a crash window, the whole run."""

    label: str
    start_block: int
    end_block: int  # inclusive
    market: str | None = None  # the replayed market of a crash window

    def holds(self, block: int) -> bool:
        return self.start_block <= block <= self.end_block


def detect_windows(
    updates: Sequence[PriceUpdate],
    end_block: int,
    names: Sequence[str] = (),
    min_steps: int = MIN_WINDOW_STEPS,
) -> list[Segment]:
    """The crash windows in `updates` (see the module docstring), labelled by `names` in order,
    else "<market> crash" (numbered when a market has several)."""
    runs: list[tuple[str, int, int]] = []  # (market, first block, driven updates)
    for u in driven_updates(updates):
        if runs and runs[-1][0] == u.market:
            market, first, n = runs[-1]
            runs[-1] = (market, first, n + 1)
        else:
            runs.append((u.market, u.block_number, 1))
    kept = [(m, b) for m, b, n in runs if n >= min_steps]
    per_market: dict[str, int] = {}
    for m, _ in kept:
        per_market[m] = per_market.get(m, 0) + 1
    seen: dict[str, int] = {}
    windows = []
    for i, (market, first) in enumerate(kept):
        last = kept[i + 1][1] - 1 if i + 1 < len(kept) else end_block
        seen[market] = seen.get(market, 0) + 1
        label = f"{market} crash" + (f" #{seen[market]}" if per_market[market] > 1 else "")
        if i < len(names) and names[i]:
            label = names[i]
        windows.append(Segment(label, first, max(first, last), market))
    return windows


def plan_segments(windows: Sequence[Segment], start_block: int, end_block: int) -> list[Segment]:
    """The report's columns: the setup before the first window (when there is one), each
    window, and the whole run."""
    out: list[Segment] = []
    first = windows[0].start_block if windows else end_block + 1
    if first > start_block:
        out.append(Segment("setup" if windows else "run", start_block, first - 1))
    out.extend(windows)
    if windows:
        out.append(Segment("whole run", start_block, end_block))
    return out


@dataclass(frozen=True)
class PriceMove:
    """The replayed market's answer over a window (aggregator decimals)."""

    market: str
    start: int  # last answer before the window
    low: int
    high: int
    end: int

    @property
    def drawdown(self) -> float:
        """Low against start, as a negative fraction."""
        return self.low / self.start - 1 if self.start else 0.0


def price_move(updates: Sequence[PriceUpdate], market: str, seg: Segment) -> PriceMove | None:
    """How `market`'s answer moved over `seg` (None: no update of it up to the segment end)."""
    before = [u.answer for u in updates if u.market == market and u.block_number < seg.start_block]
    inside = [u.answer for u in updates if u.market == market and seg.holds(u.block_number)]
    if not before and not inside:
        return None
    start = before[-1] if before else inside[0]
    path = [start, *inside]
    return PriceMove(market, start, min(path), max(path), path[-1])


# ---- Market time: which crash file a window replayed ----


@dataclass(frozen=True)
class CrashClock:
    """A window's replay matched to its crash file: chain time <-> the file's candle times."""

    crash: str  # the file's stem, e.g. eth_usdt_binance_1h_2020-03-12_black_thursday
    market: str
    first_row: int  # index in the file of the first replayed row
    source_start_price: float  # that row's close (the file's unit, USD or USDT)
    start_price: float  # the on-chain price it was rescaled to (whole USD)
    anchors: tuple[tuple[int, int], ...]  # (chain time, candle time) of every matched step

    @property
    def rows(self) -> int:
        return len(self.anchors)

    @property
    def rescale(self) -> float:
        """On-chain price per unit of the file's price (every row was multiplied by this)."""
        return self.start_price / self.source_start_price

    @property
    def compression(self) -> float:
        """Candle seconds per chain second over the matched steps (1.0 for a single step)."""
        (c0, t0), (c1, t1) = self.anchors[0], self.anchors[-1]
        return (t1 - t0) / (c1 - c0) if c1 > c0 else 1.0

    @property
    def interval(self) -> str:
        """The file's candle interval ("1h"), from its name."""
        return parse_scenario_name(Path(self.crash)).interval

    def market_time(self, chain_ts: float) -> float:
        """The candle time of a chain time: exact at every step, linear between two steps,
        extrapolated at the compression outside them."""
        chain = [c for c, _ in self.anchors]
        i = bisect.bisect_right(chain, chain_ts) - 1
        if i < 0:
            c, t = self.anchors[0]
            return t + (chain_ts - c) * self.compression
        if i >= len(self.anchors) - 1:
            c, t = self.anchors[-1]
            return t + (chain_ts - c) * self.compression
        (c0, t0), (c1, t1) = self.anchors[i], self.anchors[i + 1]
        return t0 + (chain_ts - c0) * (t1 - t0) / (c1 - c0)


def replay_steps(updates: Sequence[PriceUpdate], window: Segment) -> list[PriceUpdate]:
    """The window market's updates a replay posted: the last one before the window (the
    replay's first step re-posts the current answer, so it is not driven) and every one in it."""
    own = [u for u in updates if u.market == window.market]
    before = [u for u in own if u.block_number < window.start_block]
    inside = [u for u in own if window.holds(u.block_number)]
    return before[-1:] + inside


def match_crash(
    updates: Sequence[PriceUpdate],
    window: Segment,
    crashes: Mapping[str, Sequence[PricePoint]],
    decimals: int = 8,
) -> CrashClock | None:
    """The crash file (name -> rows) and first row whose replay plan (`plan_replay`, rescaled
    to the answer before the window's first move) posts exactly the window's answers, up to its
    last driven update. The longest match wins, then the first name in sorted order. None: no
    file fits."""
    steps = replay_steps(updates, window)
    moved = next((i for i, u in enumerate(steps) if u.answer != steps[0].answer), None)
    if window.market is None or moved is None:
        return None
    # Of several posts of the starting answer (a deploy's answer, heartbeats, the replay's first
    # step) the last one before the first move is the replay's first step.
    steps = steps[moved - 1 :]
    driven = {(u.block_number, u.log_index) for u in driven_updates(updates)}
    last_driven = max(
        (i for i, u in enumerate(steps) if (u.block_number, u.log_index) in driven), default=0
    )
    answers = [u.answer for u in steps]
    a0, j = answers[0], 1  # the base, and the first step that moved
    aj = answers[j]
    best: tuple[int, str, int] | None = None  # (matched steps, name, first row)
    for name in sorted(crashes):
        points = crashes[name]
        for s in range(len(points) - last_driven):
            # a cheap filter on the first move, then the replay's own plan, answer for answer
            if abs(a0 * points[s + j].price_usd / points[s].price_usd - aj) > 2 + aj * 1e-9:
                continue
            plan = plan_replay(points, a0, 1.0, s, len(answers), decimals)
            n = 0
            while n < len(plan) and plan[n].answer == answers[n]:
                n += 1
            if n > last_driven and (best is None or n > best[0]):
                best = (n, name, s)
    if best is None:
        return None
    n, name, s = best
    points = crashes[name]
    return CrashClock(
        crash=name,
        market=window.market,
        first_row=s,
        source_start_price=points[s].price_usd,
        start_price=a0 / 10**decimals,
        anchors=tuple((steps[i].timestamp, points[s + i].timestamp_s) for i in range(n)),
    )


def crash_label(clock: CrashClock) -> str:
    """A default window label from its file: "2020-03-12 ETH crash"."""
    sc = parse_scenario_name(Path(clock.crash))
    return f"{sc.date} {sc.base} crash" if sc.date else f"{clock.market} crash"
