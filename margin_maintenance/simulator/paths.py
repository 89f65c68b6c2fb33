"""Crash paths (pure): a crash file cut to its window and rescaled to the market's price."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from margin_maintenance.crashdata import (
    PricePoint,
    Scenario,
    max_drawdown,
    plan_replay,
)

from .settings import SimulationError

# ---- Crash paths (pure) ----


@dataclass(frozen=True)
class CrashPath:
    """The rows of one crash window, rescaled to the market's price on chain."""

    name: str  # file stem
    label: str  # short, for tables and plots
    symbol: str  # market driven, e.g. "ETH-USD"
    interval: str
    skip: int  # first row replayed
    source_ts: tuple[int, ...]
    source_price: tuple[float, ...]
    answers: tuple[int, ...]  # aggregator answers (feed decimals), first = the market's price

    @property
    def rows(self) -> int:
        return len(self.answers)

    @property
    def drawdown(self) -> float:
        return max_drawdown(
            [PricePoint(t, p) for t, p in zip(self.source_ts, self.source_price, strict=True)]
        )

    @property
    def largest_drop(self) -> float:
        """The largest fall from one row to the next, as a fraction."""
        return max(
            (1 - b / a for a, b in zip(self.source_price, self.source_price[1:], strict=False)),
            default=0.0,
        )

    def hours(self) -> list[float]:
        return [(t - self.source_ts[0]) / 3600 for t in self.source_ts]


def crash_label(s: Scenario) -> str:
    venue = s.venue.replace("_", " ") if s.venue else s.quote.lower()
    return f"{s.base} {s.interval} {s.date} {venue}"


def window_around_drop(points: Sequence[PricePoint], rows: int) -> int:
    """First row of a `rows`-long window centred on the largest row-to-row drop."""
    n = len(points)
    if rows <= 0 or rows >= n:
        return 0
    drops = [1 - b.price_usd / a.price_usd for a, b in zip(points, points[1:], strict=False)]
    worst = max(range(len(drops)), key=lambda i: (drops[i], -i)) + 1
    return max(0, min(n - rows, worst - rows // 2))


def build_path(
    scenario: Scenario,
    points: Sequence[PricePoint],
    start_answer: int,
    decimals: int,
    skip: int = 0,
    rows: int | None = None,
) -> CrashPath:
    """Rows `skip .. skip + rows - 1`, the first pinned to `start_answer` (crashdata.plan_replay:
    the level is the market's, the percentage moves are the file's)."""
    steps = plan_replay(points, start_answer, 1.0, skip, rows, decimals)
    if len(steps) < 2:
        raise SimulationError(f"{scenario.name}: fewer than two rows to replay")
    src = points[skip : skip + len(steps)]
    return CrashPath(
        name=scenario.name,
        label=crash_label(scenario),
        symbol=scenario.symbol,
        interval=scenario.interval,
        skip=skip,
        source_ts=tuple(p.timestamp_s for p in src),
        source_price=tuple(p.price_usd for p in src),
        answers=tuple(s.answer for s in steps),
    )
