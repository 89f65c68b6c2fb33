"""Real crash-window price series (`data/crashes/*.csv` in this repository) and replay schedules.

Every file has two columns, `timestamp,price`: the unix second at which a candle closed and its
close price (see SOURCES.md in the data folder). Candle wicks are not in the files, so a
close-only replay understates the intrabar extreme.

A replay keeps the percentage moves of the series and rescales the level so the first row equals
the market's current price on chain, then maps the series' clock onto the chain's, optionally
compressed (N times faster).
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_ENV = "MM_DATA_DIR"  # overrides where the crash CSVs are read from
DEFAULT_DATA_DIR = REPO_ROOT / "data" / "crashes"  # shipped with the repository
TIMESTAMP_COLUMNS = ("timestamp", "timestamp_s", "time", "unix")
PRICE_COLUMNS = ("price", "close", "price_usd")
INTERVAL_RE = re.compile(r"^\d+[smhd]$")


class CrashDataError(ValueError):
    """A crash file is missing or malformed, or a scenario name is unknown or ambiguous."""


class PricePoint(NamedTuple):
    timestamp_s: int  # unix seconds (candle close)
    price_usd: float  # close price (USD or USDT, as the file says)


@dataclass(frozen=True)
class Scenario:
    """One crash file, described by its name:
    `<base>_<quote>[_<venue>...]_<interval>_<date>_<label>`."""

    name: str  # file stem, e.g. eth_usdt_binance_1h_2020-03-12_black_thursday
    path: Path
    base: str  # "ETH"
    quote: str  # "USDT"
    venue: str  # "binance", "binance_perp", or "" when the file does not say
    interval: str  # "1h", "10m", ...
    date: str  # "2020-03-12" (crash day, or month "2022-05")
    label: str  # "black_thursday"

    @property
    def symbol(self) -> str:
        """The market this series naturally drives (`ETH-USD`)."""
        return f"{self.base}-USD"


def data_dir(directory: str | Path | None = None) -> Path:
    """`directory`, else $MM_DATA_DIR, else the repository's own `data/crashes`."""
    if directory is not None:
        return Path(directory)
    if env := os.environ.get(DATA_ENV):
        return Path(env)
    return DEFAULT_DATA_DIR


def parse_scenario_name(path: Path) -> Scenario:
    parts = path.stem.split("_")
    base, quote = (parts + ["", ""])[:2]
    i = next((k for k in range(2, len(parts)) if INTERVAL_RE.match(parts[k])), None)
    if i is None or i + 1 >= len(parts):
        return Scenario(path.stem, path, base.upper(), quote.upper(), "", "", "", "")
    return Scenario(
        name=path.stem,
        path=path,
        base=base.upper(),
        quote=quote.upper(),
        venue="_".join(parts[2:i]),
        interval=parts[i],
        date=parts[i + 1],
        label="_".join(parts[i + 2 :]),
    )


def list_scenarios(directory: str | Path | None = None) -> list[Scenario]:
    """Every `*.csv` in the data folder, sorted by name."""
    d = data_dir(directory)
    if not d.is_dir():
        raise CrashDataError(f"no crash data folder at {d} (set ${DATA_ENV})")
    return [parse_scenario_name(p) for p in sorted(d.glob("*.csv"))]


def resolve_scenario(name: str, directory: str | Path | None = None) -> Scenario:
    """A scenario by path, exact stem or file name, or a unique substring of the stem."""
    p = Path(name)
    if p.suffix == ".csv" and p.is_file():
        return parse_scenario_name(p)
    scenarios = list_scenarios(directory)
    stem = p.name.removesuffix(".csv")
    exact = [s for s in scenarios if s.name == stem]
    if exact:
        return exact[0]
    found = [s for s in scenarios if stem.lower() in s.name.lower()]
    if len(found) == 1:
        return found[0]
    if not found:
        names = "\n  ".join(s.name for s in scenarios)
        raise CrashDataError(f"no crash file matches {name!r}; available:\n  {names}")
    names = "\n  ".join(s.name for s in found)
    raise CrashDataError(f"{name!r} is ambiguous; it matches:\n  {names}")


def _column(fieldnames: Sequence[str], candidates: Sequence[str], path: Path) -> str:
    lower = {f.strip().lower(): f for f in fieldnames}
    for c in candidates:
        if c in lower:
            return lower[c]
    raise CrashDataError(f"{path}: no column among {list(candidates)} (has {list(fieldnames)})")


def load_prices(path: str | Path) -> list[PricePoint]:
    """Rows of a crash CSV as (timestamp_s, price_usd), validated: integer timestamps strictly
    ascending, prices finite and positive."""
    path = Path(path)
    if not path.is_file():
        raise CrashDataError(f"no crash file at {path}")
    out: list[PricePoint] = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            raise CrashDataError(f"{path}: empty file")
        ts_col = _column(reader.fieldnames, TIMESTAMP_COLUMNS, path)
        px_col = _column(reader.fieldnames, PRICE_COLUMNS, path)
        for row in reader:
            line = reader.line_num
            try:
                ts = int(Decimal(row[ts_col].strip()))
                price = float(row[px_col])
            except (ArithmeticError, ValueError, TypeError, AttributeError) as err:
                raise CrashDataError(f"{path}:{line}: bad row {row}") from err
            if not math.isfinite(price) or price <= 0:
                raise CrashDataError(f"{path}:{line}: price must be positive, got {price}")
            if out and ts <= out[-1].timestamp_s:
                raise CrashDataError(f"{path}:{line}: timestamps must ascend ({ts})")
            out.append(PricePoint(ts, price))
    if not out:
        raise CrashDataError(f"{path}: no rows")
    return out


def compress(points: Sequence[PricePoint], factor: float) -> list[PricePoint]:
    """The same series `factor` times faster: each row's offset from the first is divided by
    `factor` (rounded down), prices unchanged. Offsets never go backwards."""
    if factor <= 0:
        raise ValueError("compression factor must be positive")
    if not points:
        return []
    t0 = points[0].timestamp_s
    return [PricePoint(t0 + int((p.timestamp_s - t0) // factor), p.price_usd) for p in points]


def rescale(points: Sequence[PricePoint], first_price_usd: float) -> list[PricePoint]:
    """The same percentage moves from a new starting level: row i becomes
    first_price * price_i / price_0."""
    if not points:
        return []
    k = first_price_usd / points[0].price_usd
    return [PricePoint(p.timestamp_s, p.price_usd * k) for p in points]


def max_drawdown(points: Sequence[PricePoint]) -> float:
    """Largest peak-to-trough fall of the closes, as a fraction (0.53 = 53%)."""
    peak, worst = 0.0, 0.0
    for p in points:
        peak = max(peak, p.price_usd)
        worst = max(worst, 1 - p.price_usd / peak)
    return worst


@dataclass(frozen=True)
class ReplayStep:
    row: int  # index in the source file
    source_ts: int  # the row's own timestamp
    offset_s: int  # chain seconds after the replay's first step
    answer: int  # aggregator answer to post (feed decimals), rescaled
    price_usd: float  # the rescaled price


def plan_replay(
    points: Sequence[PricePoint],
    current_answer: int,
    factor: float = 1.0,
    skip: int = 0,
    max_steps: int | None = None,
    decimals: int = 8,
) -> list[ReplayStep]:
    """The answers to post and when (as offsets from the first step), for rows
    `skip .. skip + max_steps - 1`. The first selected row is pinned to `current_answer` (the
    market's price now) and every later row keeps its ratio to it, so percentage moves are
    real. Offsets are the source deltas divided by `factor`, at least one second apart.
    `decimals` is the aggregator's (for the USD figure in each step)."""
    if current_answer <= 0:
        raise ValueError("current answer must be positive")
    if skip < 0 or (max_steps is not None and max_steps < 0):
        raise ValueError("skip and max_steps must not be negative")
    rows = list(points[skip:])
    if max_steps is not None:
        rows = rows[:max_steps]
    if not rows:
        return []
    timed = compress(rows, factor)
    base_price = Decimal(repr(rows[0].price_usd))
    t0 = timed[0].timestamp_s
    answer_per_usd = Decimal(current_answer) / base_price
    steps: list[ReplayStep] = []
    last = -1
    for i, (src, t) in enumerate(zip(rows, timed, strict=True)):
        offset = max(t.timestamp_s - t0, last + 1)
        answer = max(1, int((Decimal(repr(src.price_usd)) * answer_per_usd).to_integral_value()))
        steps.append(ReplayStep(skip + i, src.timestamp_s, offset, answer, answer / 10**decimals))
        last = offset
    return steps


__all__ = [
    "CrashDataError",
    "PricePoint",
    "ReplayStep",
    "Scenario",
    "compress",
    "data_dir",
    "list_scenarios",
    "load_prices",
    "max_drawdown",
    "parse_scenario_name",
    "plan_replay",
    "rescale",
    "resolve_scenario",
]
