"""Crash simulator: margin-call cascades and solvency thresholds from real crash data.

Every crash window in `data/crashes/` is replayed through the mock oracle of the real
contracts on a local chain, against a deterministic trader population (population.py), one LP
and the reference keeper's own decision functions (keeper/decisions.py, keeper/reads.py), run
in-process. Sweeps over the maintenance margin, the liquidation fee, the insurance fund and the
keeper's latency find, for each crash, the solvency thresholds: the smallest maintenance margin
and the smallest insurance fund with no socialised loss.

The module has two halves:

* Pure model (no chain): configuration and sweeps, the price-impact model, an exact mirror of
  the engine's margin maths (to decide which accounts the keeper needs to read at a step and to
  classify induced liquidations), result records, threshold extraction, report rendering and
  plots. Unit-tested on plain values.
* Chain I/O (`ChainSimulator`, `run_simulation`): one deploy and seed, a provider snapshot,
  and one restore per scenario; prices posted through the aggregator, liquidations sent with
  `liquidate_many`, every figure taken from the events of the transactions, and checked against
  the chain's own log (`eth_getLogs`) after each scenario.

One price row is one oracle update and one block. A scenario's steps:

1. the price of row t is the rescaled close times the impact multiplier M_t;
2. liquidation batches the keeper planned at row t - latency land (at this row's price);
3. the keeper reads `margin_status`, previews, ranks (`select_targets`), checks gas
   (`plan_batches`) and schedules the batches for row t + latency (latency 0: now);
4. with the impact model on, M_{t+1} = M_t * (1 - k * net_sold_usd_t / depth_usd), where
   net_sold_usd_t is the liquidated long notional less the liquidated short notional of the
   driven market at row t (long liquidations sell, so they push the price down).

Nobody trades during a replay and there is no funding, so the chain's state can only change at
a liquidation. The simulator therefore posts a price only at rows where the mirror finds an
account within `screen_buffer` of its maintenance requirement (or a planned batch lands), and
the keeper reads only those accounts; everything else is the chain's own answer.
`SimConfig(screen=False)` posts every row and reads every account at every row (the test suite
checks that both give the same figures).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from margin_maintenance.crashdata import (
    PricePoint,
    Scenario,
    list_scenarios,
    load_prices,
    max_drawdown,
    plan_replay,
    resolve_scenario,
)
from margin_maintenance.keeper import decisions
from margin_maintenance.model import bps_up, notional_up, pnl
from margin_maintenance.population import (
    Population,
    PopulationParams,
    generate_population,
    summarize,
)

log = logging.getLogger(__name__)

WAD = 10**18
BPS = 10_000
TOKEN_DECIMALS = 6  # the mock USDC the simulator deploys
AXES: tuple[str, ...] = ("mm_bps", "fee_bps", "insurance_usd", "latency")
AXIS_TITLES = {
    "mm_bps": "maintenance margin (bps)",
    "fee_bps": "liquidation fee (bps)",
    "insurance_usd": "insurance fund (USD)",
    "latency": "keeper latency (blocks)",
}
# Markets the simulator lists: start price (USD) and open-interest cap (whole units per side).
MARKETS: dict[str, tuple[float, int]] = {
    "ETH-USD": (2_000.0, 1_000_000),
    "BTC-USD": (60_000.0, 50_000),
}
REPORT_FILE = "report.md"
RESULTS_FILE = "results.json"


class SimulationError(RuntimeError):
    """The simulation cannot run as configured, or the chain disagrees with its own records."""


# ---- Configuration (pure) ----


@dataclass(frozen=True)
class SweepPoint:
    """One parameter set: rates of every market, the insurance fund at the start, latency."""

    mm_bps: int = 500
    fee_bps: int = 100
    insurance_usd: float = 10_000.0
    latency: int = 0  # price rows (blocks) between the keeper's read and its batch landing

    def value(self, axis: str) -> float:
        return float(getattr(self, axis))

    @property
    def label(self) -> str:
        return (
            f"mm {self.mm_bps} / fee {self.fee_bps} / ins {self.insurance_usd:,.0f}"
            f" / lat {self.latency}"
        )


@dataclass(frozen=True)
class Sweep:
    """One axis at a time around `base`: each axis's values with the others at base."""

    base: SweepPoint = SweepPoint()
    mm_bps: tuple[int, ...] = (200, 300, 500, 700)
    fee_bps: tuple[int, ...] = (50, 100)
    insurance_usd: tuple[float, ...] = (0.0, 10_000.0, 50_000.0)
    latency: tuple[int, ...] = (0, 1, 3)

    def values(self, axis: str) -> tuple[float, ...]:
        return tuple(getattr(self, axis))

    def points(self) -> list[tuple[SweepPoint, tuple[str, ...]]]:
        """Distinct points in a fixed order (base first), each with the axes it lies on
        (the base lies on every axis whose values include the base value)."""
        order: list[SweepPoint] = [self.base]
        axes: dict[SweepPoint, list[str]] = {self.base: []}
        for axis in AXES:
            for v in self.values(axis):
                p = replace(self.base, **{axis: type(getattr(self.base, axis))(v)})
                if p not in axes:
                    axes[p] = []
                    order.append(p)
                axes[p].append(axis)
        return [(p, tuple(axes[p])) for p in order]


@dataclass(frozen=True)
class ImpactModel:
    """Liquidated notional moves the next oracle price: multiplier *= 1 - k * net / depth.
    `k = 0` (the default) turns it off. The impact is permanent: later rows keep the real
    percentage moves from the moved level."""

    k: float = 0.0
    depth_usd: float = 1_000_000.0  # notional that moves the price by k * 100%
    floor: float = 0.05  # a single row's factor never goes below this (prices stay positive)

    def __post_init__(self) -> None:
        if self.k < 0 or self.depth_usd <= 0 or not 0 < self.floor <= 1:
            raise ValueError("impact needs k >= 0, depth_usd > 0 and 0 < floor <= 1")

    @property
    def on(self) -> bool:
        return self.k > 0

    def factor(self, net_sold_usd: float) -> float:
        """Multiplier for the next price after `net_sold_usd` of liquidations (long notional
        closed minus short notional closed; negative = net buying, the price goes up)."""
        if not self.on or net_sold_usd == 0:
            return 1.0
        return max(self.floor, 1.0 - self.k * net_sold_usd / self.depth_usd)


@dataclass(frozen=True)
class KeeperModel:
    """The keeper's cost model and batch limits (the bot's defaults, see keeper/settings.py)."""

    gas_price_gwei: float = 1.0
    eth_usd: float = 2_000.0  # for gas costs only (fixed, not the replayed price)
    token_usd: float = 1.0
    per_account_gas: int = 35_000
    base_gas: int = 60_000
    block_gas_limit: int = 30_000_000
    block_gas_fill_bps: int = 9_000
    batch_cap: int = decisions.MAX_BATCH
    max_batches_per_block: int = 8
    min_profit_usd: float = 0.0

    def cost_model(self) -> decisions.CostModel:
        return decisions.CostModel(
            gas_price_wei=round(self.gas_price_gwei * 10**9),
            eth_usd=self.eth_usd,
            token_usd=self.token_usd,
            token_decimals=TOKEN_DECIMALS,
            per_account_gas=self.per_account_gas,
            base_gas=self.base_gas,
            min_profit_usd=self.min_profit_usd,
        )

    def capacity(self) -> tuple[int, int]:
        """(accounts per batch, batches per block), as the bot sizes them."""
        usable = self.block_gas_limit * self.block_gas_fill_bps // BPS
        size = decisions.batch_size_for(
            usable, self.per_account_gas, self.base_gas, cap=self.batch_cap
        )
        if size == 0:
            raise SimulationError("the block gas limit fits no liquidation")
        per_batch = decisions.batch_gas(size, self.per_account_gas, self.base_gas)
        return size, max(1, min(self.max_batches_per_block, usable // per_batch))


@dataclass(frozen=True)
class CrashSpec:
    """A crash file (name, unique part of it or path) and the rows to replay."""

    name: str
    skip: int = 0
    rows: int | None = None  # None: to the end of the file


@dataclass(frozen=True)
class SimConfig:
    seed: int = 7
    population: PopulationParams = PopulationParams(traders=60, lp_deposit_usd=2_000_000.0)
    crashes: tuple[CrashSpec, ...] | None = None  # None: every file in the data folder
    window_rows: int = 0  # > 0: replay this many rows around each file's largest drop
    sweep: Sweep = Sweep()
    impact: ImpactModel = ImpactModel()
    keeper: KeeperModel = KeeperModel()
    initial_margin_bps: int = 1_000  # fixed: the population's leverage stays the same
    trading_fee_bps: int = 5
    max_partial_bps: int = 9_000  # partials stay reachable for every swept mm and fee
    keeper_share_bps: int = 5_000
    min_keeper_reward_usd: float = 1.0
    screen: bool = True  # post prices and read accounts only near maintenance (see module doc)
    screen_buffer: float = 0.001  # an account is read when the price is this close to trigger
    verify: bool = True  # check every scenario's figures against eth_getLogs
    data_dir: str | None = None
    first_index: int = 3_000  # mnemonic index of the first seeded account

    def validate(self) -> None:
        """Raise ValueError when a swept point would be refused by the engine's setters."""
        for point, _ in self.sweep.points():
            check_rates(
                self.initial_margin_bps,
                point.mm_bps,
                point.fee_bps,
                self.trading_fee_bps,
                self.max_partial_bps,
            )
            if point.latency < 0 or point.insurance_usd < 0:
                raise ValueError(f"{point.label}: latency and insurance must not be negative")
        if self.window_rows < 0:
            raise ValueError("window_rows must not be negative")


def check_rates(
    im_bps: int, mm_bps: int, fee_bps: int, trade_bps: int, max_partial_bps: int
) -> None:
    """The clearinghouse's `_set_risk` bounds, including "partial bound unreachable": an
    account that just crossed maintenance needs f = (im - mm) / (im - fee) closed, which must
    be below the partial bound or every liquidation would be full."""
    if not 0 < mm_bps < im_bps <= BPS:
        raise ValueError(f"need 0 < mm ({mm_bps}) < im ({im_bps}) <= {BPS}")
    if not fee_bps < mm_bps:
        raise ValueError(f"liquidation fee {fee_bps} must be below mm {mm_bps}")
    if not trade_bps <= fee_bps:
        raise ValueError(f"trading fee {trade_bps} must not exceed the liquidation fee {fee_bps}")
    if not 0 < max_partial_bps <= BPS:
        raise ValueError(f"bad partial bound {max_partial_bps}")
    if max_partial_bps * (im_bps - fee_bps) <= (im_bps - mm_bps) * BPS:
        raise ValueError(
            f"partial bound {max_partial_bps} unreachable at im {im_bps} / mm {mm_bps} / fee "
            f"{fee_bps}: needs more than {(im_bps - mm_bps) * BPS / (im_bps - fee_bps):.0f}"
        )


def default_config(
    seed: int = 7, impact_k: float = 0.0, depth_usd: float = 1_000_000.0
) -> SimConfig:
    """Every crash file, 60 traders, the default sweep (9 points per crash)."""
    return SimConfig(seed=seed, impact=ImpactModel(impact_k, depth_usd))


QUICK_CRASH = "eth_usdt_binance_1h_2020-03-12_black_thursday"


def quick_config(seed: int = 7, impact_k: float = 0.0, depth_usd: float = 1_000_000.0) -> SimConfig:
    """One crash file (ETH Black Thursday, hourly), 20 traders, two values per axis."""
    return SimConfig(
        seed=seed,
        population=PopulationParams(traders=20, lp_deposit_usd=1_000_000.0),
        crashes=(CrashSpec(QUICK_CRASH),),
        sweep=Sweep(
            base=SweepPoint(500, 100, 10_000.0, 0),
            mm_bps=(300, 500),
            fee_bps=(50, 100),
            insurance_usd=(0.0, 10_000.0),
            latency=(0, 1),
        ),
        impact=ImpactModel(impact_k, depth_usd),
    )


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


# ---- Margin mirror (pure, exact) ----


@dataclass
class MirrorAccount:
    """One trader as the engine sees it: collateral and a single position."""

    address: str
    market: int  # market id
    size: int  # signed WAD base units
    entry: int  # WAD price
    collateral: int  # token units

    @property
    def open(self) -> bool:
        return self.size != 0


def equity(a: MirrorAccount, price_wad: int, token_scale: int) -> int:
    return a.collateral + (pnl(a.size, a.entry, price_wad, token_scale) if a.size else 0)


def maintenance(a: MirrorAccount, price_wad: int, mm_bps: int, token_scale: int) -> int:
    return bps_up(notional_up(abs(a.size), price_wad, token_scale), mm_bps)


def is_liquidatable(a: MirrorAccount, price_wad: int, mm_bps: int, token_scale: int) -> bool:
    """The engine's `is_liquidatable` for a one-position account."""
    return a.open and equity(a, price_wad, token_scale) < maintenance(
        a, price_wad, mm_bps, token_scale
    )


def trigger_price_wad(a: MirrorAccount, mm_bps: int, token_scale: int) -> float:
    """The price at which equity meets maintenance (ignoring unit rounding): below it a long
    is liquidatable, above it a short. Negative for a long that can never be (c > notional)."""
    d = WAD * token_scale
    r = mm_bps / BPS
    if a.size > 0:
        return (a.size * a.entry - a.collateral * d) / (a.size * (1 - r))
    if a.size < 0:
        s = -a.size
        return (a.collateral * d + s * a.entry) / (s * (1 + r))
    return math.nan


def near_maintenance(
    a: MirrorAccount, price_wad: int, mm_bps: int, token_scale: int, buffer: float
) -> bool:
    """True when `price_wad` is within `buffer` (a fraction of the price) of the account's
    trigger, or past it: the keeper should read this account now."""
    if not a.open:
        return False
    trigger = trigger_price_wad(a, mm_bps, token_scale)
    if a.size > 0:
        return price_wad <= trigger * (1 + buffer)
    return price_wad >= trigger * (1 - buffer)


def apply_events(a: MirrorAccount, events: Iterable[Mapping[str, Any]]) -> None:
    """Move the mirror with the account's own events (the ledger rules of audit.py): a
    PositionChanged sets size and entry (the engine re-marks a touched position at the
    execution price) and moves collateral by realised PnL less fee; a liquidation takes its
    fee; bad debt settlement credits what insurance and pool covered."""
    me = a.address.lower()
    for e in events:
        name = e["event"]
        if str(e.get("account", "")).lower() != me:
            continue
        if name == "PositionChanged":
            a.collateral += int(e["realized_pnl"]) - int(e["fee"])
            a.size = int(e["new_size"])
            a.entry = int(e["price"]) if a.size else 0
        elif name == "Liquidated":
            a.collateral -= int(e["fee"])
        elif name == "BadDebtSettled":
            a.collateral += int(e["insurance_covered"]) + int(e["socialised"])


# ---- Results (pure) ----


@dataclass(frozen=True)
class LiquidationRecord:
    """One `Liquidated` event and what came with it (token units unless named)."""

    step: int  # row the batch landed at
    observed: int  # row the keeper read the account at
    account: str
    market_id: int
    side: int  # +1 long, -1 short (of the position before the liquidation)
    fraction: int  # WAD
    full: bool
    closed_notional: int
    fee: int
    keeper_reward: int
    insurance_delta: int
    price_usd: float
    sold_usd: float  # signed: long notional closed is sold (+), short notional bought (-)
    bad_debt: int = 0
    insurance_covered: int = 0
    socialised: int = 0
    uncovered: int = 0
    haircut: int = 0  # profit owed but not paid (ProfitHaircut)
    generation: int = 0  # 0 = the market's move; g > 0 = needed the impact of generation g-1


@dataclass
class ScenarioResult:
    crash: str  # file stem
    label: str
    point: SweepPoint
    axes: tuple[str, ...]
    rows: int
    onchain_steps: int = 0  # rows whose price was posted
    price: list[float] = field(default_factory=list)  # the oracle path (USD), impact included
    raw_price: list[float] = field(default_factory=list)  # the rescaled file, no impact
    liquidations: list[LiquidationRecord] = field(default_factory=list)
    planned: int = 0  # accounts put in batches by the keeper
    healthy_at_landing: int = 0  # planned, but healthy again when the batch landed
    unprofitable: int = 0  # reads of a liquidatable account whose reward would not pay gas
    reverts: int = 0
    left_liquidatable: int = 0  # accounts still liquidatable after the last row
    underwater_left: int = 0  # their negative equity: bad debt nobody settled (yet)
    insurance_start: int = 0
    insurance_end: int = 0
    lp_value_start: int = 0  # pool assets less traders' unrealised PnL
    lp_value_end: int = 0
    verified: bool = False  # figures matched eth_getLogs
    blocks: tuple[int, int] = (0, 0)  # (first, last) block of the scenario; not reported

    # -- derived figures --

    @property
    def n_liquidations(self) -> int:
        return len(self.liquidations)

    @property
    def n_full(self) -> int:
        return sum(1 for r in self.liquidations if r.full)

    @property
    def accounts_liquidated(self) -> int:
        return len({r.account for r in self.liquidations})

    @property
    def closed_notional(self) -> int:
        return sum(r.closed_notional for r in self.liquidations)

    @property
    def keeper_rewards(self) -> int:
        return sum(r.keeper_reward for r in self.liquidations)

    @property
    def insurance_topups(self) -> int:
        return sum(-r.insurance_delta for r in self.liquidations if r.insurance_delta < 0)

    @property
    def bad_debt(self) -> int:
        return sum(r.bad_debt for r in self.liquidations)

    @property
    def insurance_covered(self) -> int:
        return sum(r.insurance_covered for r in self.liquidations)

    @property
    def socialised(self) -> int:
        return sum(r.socialised for r in self.liquidations)

    @property
    def uncovered(self) -> int:
        return sum(r.uncovered for r in self.liquidations)

    @property
    def haircut(self) -> int:
        return sum(r.haircut for r in self.liquidations)

    @property
    def lp_loss(self) -> int:
        """Loss past the insurance fund: socialised to LPs, left uncovered, or still sitting
        in an unliquidated account under water at the end. The solvency criterion."""
        return self.socialised + self.uncovered + self.underwater_left

    @property
    def cascade_depth(self) -> int:
        return max((r.generation for r in self.liquidations), default=0)

    @property
    def induced(self) -> int:
        return sum(1 for r in self.liquidations if r.generation > 0)

    @property
    def lp_pnl(self) -> int:
        return self.lp_value_end - self.lp_value_start

    @property
    def min_price_ratio(self) -> float:
        return min(self.price) / self.price[0] if self.price else 1.0

    def series(self) -> dict[str, list[float]]:
        """Per row, in USD: insurance fund, cumulative bad debt and socialised loss."""
        by_step: dict[int, list[LiquidationRecord]] = {}
        for r in self.liquidations:
            by_step.setdefault(r.step, []).append(r)
        ins, bad, soc = self.insurance_start, 0, 0
        out: dict[str, list[float]] = {"insurance": [], "bad_debt": [], "socialised": []}
        for t in range(self.rows):
            for r in by_step.get(t, ()):
                ins += r.insurance_delta - r.insurance_covered
                bad += r.bad_debt
                soc += r.socialised
            out["insurance"].append(usd(ins))
            out["bad_debt"].append(usd(bad))
            out["socialised"].append(usd(soc))
        return out

    def summary(self) -> dict[str, Any]:
        """The reported figures (token units, exact)."""
        return {
            "crash": self.crash,
            "point": asdict(self.point),
            "axes": list(self.axes),
            "rows": self.rows,
            "onchain_steps": self.onchain_steps,
            "liquidations": self.n_liquidations,
            "full": self.n_full,
            "accounts_liquidated": self.accounts_liquidated,
            "planned": self.planned,
            "healthy_at_landing": self.healthy_at_landing,
            "unprofitable": self.unprofitable,
            "reverts": self.reverts,
            "left_liquidatable": self.left_liquidatable,
            "underwater_left": self.underwater_left,
            "closed_notional": self.closed_notional,
            "keeper_rewards": self.keeper_rewards,
            "insurance_topups": self.insurance_topups,
            "insurance_start": self.insurance_start,
            "insurance_end": self.insurance_end,
            "bad_debt": self.bad_debt,
            "insurance_covered": self.insurance_covered,
            "socialised": self.socialised,
            "uncovered": self.uncovered,
            "haircut": self.haircut,
            "lp_pnl": self.lp_pnl,
            "cascade_depth": self.cascade_depth,
            "induced": self.induced,
            "min_price_ratio": round(self.min_price_ratio, 6),
            "verified": self.verified,
        }

    def to_dict(self) -> dict[str, Any]:
        d = self.summary()
        d["liquidation_events"] = [asdict(r) for r in self.liquidations]
        return d


def usd(token_units: int) -> float:
    return token_units / 10**TOKEN_DECIMALS


def generation_of(induced: bool, earlier: Iterable[int]) -> int:
    """A liquidation the market's own move explains is generation 0; one that needed the
    price impact of earlier liquidations is one more than the deepest of them."""
    if not induced:
        return 0
    return 1 + max(earlier, default=0)


# ---- Thresholds (pure) ----


@dataclass(frozen=True)
class Threshold:
    """The smallest swept value from which every larger value had zero socialised loss."""

    axis: str
    value: float | None  # None: none in the sweep (or the axis was not swept)
    zero_loss: tuple[float, ...]  # every swept value with zero loss
    non_monotone: bool  # a smaller value had zero loss too, with a loss in between
    swept: bool = True

    def text(self, fmt: Callable[[float], str]) -> str:
        if not self.swept:
            return "not swept"
        if self.value is None:
            return "none in sweep" + (" (*)" if self.non_monotone else "")
        return fmt(self.value) + (" (*)" if self.non_monotone else "")


def solvency_threshold(axis: str, losses: Iterable[tuple[float, int]]) -> Threshold:
    """`losses`: (swept value, loss) pairs of one crash along one axis. The threshold is the
    smallest value from which every larger swept value had zero loss."""
    pairs = sorted(losses)
    zero = tuple(v for v, loss in pairs if loss == 0)
    value: float | None = None
    for v, loss in reversed(pairs):
        if loss != 0:
            break
        value = v
    non_monotone = bool(zero) and (value is None or zero[0] < value)
    return Threshold(axis, value, zero, non_monotone, swept=bool(pairs))


def implied_insurance(result: ScenarioResult) -> int:
    """Smallest starting insurance fund with no socialised loss, from one run's event trail
    (the path does not depend on the fund, except that top-ups of the minimum keeper reward
    stop when the fund is empty): the fund plus every socialised and uncovered amount when
    there were any, else the fund less its lowest level after covering bad debt."""
    short = result.lp_loss
    if short > 0:
        return result.insurance_start + short
    if result.bad_debt == 0:
        return 0
    fund, lowest = result.insurance_start, result.insurance_start
    for r in result.liquidations:
        fund += r.insurance_delta - r.insurance_covered
        if r.bad_debt:
            lowest = min(lowest, fund)
    return max(0, result.insurance_start - lowest)


@dataclass
class CrashSummary:
    path: CrashPath
    base: ScenarioResult
    thresholds: dict[str, Threshold]
    implied_insurance: int


@dataclass
class SimulationResults:
    config: SimConfig
    population: Population
    crashes: list[CrashPath]
    scenarios: list[ScenarioResult]

    def for_crash(self, name: str) -> list[ScenarioResult]:
        return [s for s in self.scenarios if s.crash == name]

    def summaries(self) -> list[CrashSummary]:
        base = self.config.sweep.base
        out = []
        for path in self.crashes:
            runs = self.for_crash(path.name)
            base_run = next(s for s in runs if s.point == base)
            thresholds = {
                axis: solvency_threshold(
                    axis, [(s.point.value(axis), s.lp_loss) for s in runs if axis in s.axes]
                )
                for axis in ("mm_bps", "insurance_usd")
            }
            out.append(CrashSummary(path, base_run, thresholds, implied_insurance(base_run)))
        return out

    def to_dict(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "seed": cfg.seed,
            "token_decimals": TOKEN_DECIMALS,  # every *_units figure is in these token units
            "config": _plain(asdict(cfg)),
            "crashes": [
                {
                    "name": p.name,
                    "label": p.label,
                    "symbol": p.symbol,
                    "skip": p.skip,
                    "rows": p.rows,
                    "drawdown": round(p.drawdown, 6),
                    "largest_drop": round(p.largest_drop, 6),
                }
                for p in self.crashes
            ],
            "thresholds": {
                c.path.name: {
                    "mm_bps": c.thresholds["mm_bps"].value,
                    "insurance_usd": c.thresholds["insurance_usd"].value,
                    "implied_insurance": c.implied_insurance,
                }
                for c in self.summaries()
            },
            "scenarios": [s.to_dict() for s in self.scenarios],
        }


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


# ---- Report rendering (pure) ----


def _money(token_units: int) -> str:
    return f"{usd(token_units):,.2f}"


def _usd0(x: float) -> str:
    return f"{x:,.0f}"


def _mm(x: float) -> str:
    return f"{x:.0f} bps"


def _ins(x: float) -> str:
    return f"{x:,.0f} USD"


def _row(cells: Iterable[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _axis_value(axis: str, v: float) -> str:
    if axis == "insurance_usd":
        return f"{v:,.0f}"
    return f"{v:.0f}"


def render_report(res: SimulationResults, plots: Mapping[str, str] | None = None) -> str:
    """The markdown report. Deterministic: no times, no addresses, no block numbers, so the
    same seed and configuration give the same bytes. `plots` maps a key ("sweep" or a crash
    name) to a PNG path relative to the report."""
    plots = plots or {}
    cfg = res.config
    pop = summarize(res.population)
    sweep = cfg.sweep
    base = sweep.base
    summaries = res.summaries()
    lines: list[str] = []
    add = lines.append
    add("# Crash simulation: margin-call cascades and solvency thresholds")
    add("")
    add(
        f"Seed {cfg.seed}. {pop.traders} traders ({pop.longs} long / {pop.shorts} short; "
        + ", ".join(f"{m} {n}" for m, n in pop.per_market.items())
        + f"), leverage {cfg.population.leverage_min:g}x-{cfg.population.leverage_max:g}x "
        f"(mean {pop.mean_leverage:.2f}x), collateral {_usd0(pop.total_collateral_usd)} USD, "
        f"notional {_usd0(pop.total_notional_usd)} USD; LP capital "
        f"{_usd0(pop.lp_capital_usd)} USD."
    )
    add("")
    add(
        f"Engine: initial margin {cfg.initial_margin_bps} bps (fixed), trading fee "
        f"{cfg.trading_fee_bps} bps, partial bound {cfg.max_partial_bps} bps, keeper share "
        f"{cfg.keeper_share_bps} bps of the fee, minimum keeper reward "
        f"{cfg.min_keeper_reward_usd:g} USD. Base point: {base.label}. One axis at a time: "
        + "; ".join(
            f"{AXIS_TITLES[a]} {', '.join(_axis_value(a, v) for v in sweep.values(a))}"
            for a in AXES
        )
        + "."
    )
    add("")
    imp = cfg.impact
    add(
        "Price impact: "
        + (
            f"k = {imp.k:g}, depth {_usd0(imp.depth_usd)} USD (price *= 1 - k * net liquidated "
            "notional / depth after each row, permanently)."
            if imp.on
            else "off (k = 0)."
        )
        + (
            " Prices posted only at rows where an account is within "
            f"{cfg.screen_buffer:.1%} of maintenance (nothing else can change state)."
            if cfg.screen
            else " Every row posted, every account read at every row."
        )
    )
    add("")
    verified = all(s.verified for s in res.scenarios)
    add(
        f"{len(res.scenarios)} scenarios over {len(res.crashes)} crash windows; "
        + (
            "every scenario's liquidations, keeper rewards, bad debt and socialised loss "
            "matched the chain's own events (eth_getLogs)."
            if verified
            else "figures NOT checked against eth_getLogs."
        )
    )
    add("")
    if "sweep" in plots:
        add(f"![loss past the insurance fund across the sweep]({plots['sweep']})")
        add("")

    add("## Solvency thresholds")
    add("")
    add(
        "Smallest maintenance margin and smallest insurance fund with zero socialised loss "
        "(each swept with the other parameters at the base point, the smallest value from "
        "which every larger one had none; (*) marks a non-monotone sweep). Socialised loss "
        "here is bad debt past the insurance fund: `BadDebtSettled.socialised` (plus "
        "`uncovered`, and any under-water account the keeper left unliquidated at the end). "
        "The implied insurance is read from the base run's event trail: the starting fund "
        "plus everything socialised, or less its lowest level after covering bad debt."
    )
    add("")
    add(
        _row(
            [
                "crash",
                "rows",
                "max drawdown",
                "largest row drop",
                "mm threshold",
                "insurance threshold",
                "implied insurance (USD)",
                "base: bad debt",
                "base: socialised",
            ]
        )
    )
    add("|---|---:|---:|---:|---|---|---:|---:|---:|")
    for c in summaries:
        add(
            _row(
                [
                    c.path.label,
                    c.path.rows,
                    f"{c.path.drawdown:.1%}",
                    f"{c.path.largest_drop:.1%}",
                    c.thresholds["mm_bps"].text(_mm),
                    c.thresholds["insurance_usd"].text(_ins),
                    _money(c.implied_insurance),
                    _money(c.base.bad_debt),
                    _money(c.base.socialised),
                ]
            )
        )
    add("")

    add("## Findings")
    add("")
    for line in findings(res, summaries):
        add(f"- {line}")
    add("")

    add("## Every scenario")
    add("")
    add(
        "Amounts in USD. liq = Liquidated events (full ones in brackets); rewards = keeper "
        "rewards; top-ups = minimum-reward top-ups paid by the fund; LP PnL = change of pool "
        "assets less traders' unrealised PnL; depth = cascade depth (liquidations caused by "
        "liquidations, generations); stale = planned but healthy when the batch landed; "
        "unsettled = accounts still liquidatable after the last row (their negative equity)."
    )
    add("")
    add(
        _row(
            [
                "crash",
                "axis",
                "point",
                "liq (full)",
                "closed notional",
                "rewards",
                "top-ups",
                "insurance end",
                "bad debt",
                "socialised",
                "uncovered",
                "unsettled",
                "LP PnL",
                "depth",
                "stale",
                "posted rows",
            ]
        )
    )
    add("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in res.scenarios:
        add(
            _row(
                [
                    s.label,
                    ", ".join(a.split("_")[0] for a in s.axes) or "-",
                    s.point.label,
                    f"{s.n_liquidations} ({s.n_full})",
                    _money(s.closed_notional),
                    _money(s.keeper_rewards),
                    _money(s.insurance_topups),
                    _money(s.insurance_end),
                    _money(s.bad_debt),
                    _money(s.socialised),
                    _money(s.uncovered),
                    f"{s.left_liquidatable} ({_money(s.underwater_left)})",
                    _money(s.lp_pnl),
                    s.cascade_depth,
                    s.healthy_at_landing,
                    f"{s.onchain_steps}/{s.rows}",
                ]
            )
        )
    add("")

    add("## Crash windows")
    add("")
    for c in summaries:
        p = c.path
        add(f"### {p.label}")
        add("")
        add(
            f"`{p.name}`: rows {p.skip}-{p.skip + p.rows - 1} of the file, {p.symbol} "
            f"rescaled to start at {p.answers[0] / 1e8:,.2f}; max drawdown {p.drawdown:.1%}, "
            f"largest row-to-row drop {p.largest_drop:.1%}. Base run: "
            f"{c.base.n_liquidations} liquidations ({c.base.n_full} full) of "
            f"{c.base.accounts_liquidated} accounts, keeper rewards "
            f"{_money(c.base.keeper_rewards)}, bad debt {_money(c.base.bad_debt)}, "
            f"socialised {_money(c.base.socialised)}, cascade depth {c.base.cascade_depth}."
        )
        add("")
        if p.name in plots:
            add(f"![{p.label}]({plots[p.name]})")
            add("")

    add("## Method")
    add("")
    for line in METHOD_NOTES:
        add(f"- {line}")
    add("")
    return "\n".join(lines)


METHOD_NOTES = (
    "Each crash file is replayed row by row through the market's mock Chainlink aggregator on "
    "a local chain (the real Clearinghouse, PriceFeed and LP token), rescaled so its first row "
    "equals the market's price: the level is the market's, the percentage moves are real. "
    "Candle wicks are not in the files, so close-only replay understates intrabar extremes.",
    "Population (population.py): leverage drawn from a Beta distribution skewed high, "
    "log-normal collateral, a fixed long share, markets equally likely; every trader opens one "
    "position at the start price. One LP funds the counterparty pool. The market the file does "
    "not drive keeps its price (re-posted before it goes stale).",
    "One deploy and seed, then a provider snapshot restored before every scenario; the swept "
    "parameters are applied with the owner's setters (`set_market_risk` on every market, "
    "`fund_insurance`). The partial bound is raised so partial liquidations stay reachable at "
    "every swept rate (the setter rejects a bound a partial cannot meet).",
    "The keeper is the reference bot's decision code run in-process: `margin_status` and "
    "`liquidation_preview` through its batched reader, then `liquidatable_candidates`, "
    "`select_targets`, `plan_batches` (gas at the configured price) and `liquidate_many`.",
    "Keeper latency L: batches the keeper plans at row t land at row t + L, at that row's "
    "price; accounts already in flight are not planned again, and ones that recovered are "
    "skipped by the contract (counted as stale). Batches due after the last row land at it.",
    "Cascade depth: a liquidation is generation 0 when the account is liquidatable at the "
    "row's price without impact (its state at that row); otherwise it needed the impact of "
    "earlier liquidations and is one generation deeper than the deepest of them.",
    "Thresholds: for each crash, the mm axis (others at the base point) and the insurance "
    "axis; the smallest swept value from which every larger one had zero socialised loss "
    "(BadDebtSettled.socialised summed, plus uncovered debt and under-water accounts left "
    "unliquidated); 'none in sweep' when even the largest had some.",
    "Every figure comes from the events of the keeper's transactions and is checked after "
    "each scenario against the chain's log (eth_getLogs) rebuilt by audit.py's ledger.",
)


def findings(res: SimulationResults, summaries: Sequence[CrashSummary]) -> list[str]:
    """Headline sentences derived from the numbers (deterministic)."""
    out: list[str] = []
    base = res.config.sweep.base
    mm_vals = res.config.sweep.mm_bps
    if summaries and mm_vals:
        none = [c.path.label for c in summaries if c.thresholds["mm_bps"].value is None]
        lowest = [
            c.path.label
            for c in summaries
            if c.thresholds["mm_bps"].value is not None
            and c.thresholds["mm_bps"].value <= min(mm_vals)
        ]
        out.append(
            f"{len(lowest)} of {len(summaries)} crash window(s) had no socialised loss even at "
            f"the lowest swept maintenance margin ({min(mm_vals)} bps)."
        )
        if none:
            out.append(
                f"No swept maintenance margin (up to {max(mm_vals)} bps) avoided socialised "
                "loss in: " + ", ".join(none) + "."
            )
        worst = max(summaries, key=lambda c: (c.base.socialised, c.base.bad_debt, c.path.name))
        out.append(
            f"Worst base-point run: {worst.path.label} (largest row drop "
            f"{worst.path.largest_drop:.1%}): bad debt {_money(worst.base.bad_debt)} USD, "
            f"socialised {_money(worst.base.socialised)} USD, implied insurance "
            f"{_money(worst.implied_insurance)} USD."
        )
    mm_runs = [s for s in res.scenarios if "mm_bps" in s.axes]
    if len({s.point.mm_bps for s in mm_runs}) > 1:
        parts = []
        for v in sorted({s.point.mm_bps for s in mm_runs}):
            runs = [s for s in mm_runs if s.point.mm_bps == v]
            parts.append(
                f"{v} bps: {sum(s.n_liquidations for s in runs)} liquidations, bad debt "
                f"{_money(sum(s.bad_debt for s in runs))}, socialised "
                f"{_money(sum(s.socialised for s in runs))}"
            )
        out.append("Maintenance margin (summed over the crashes): " + "; ".join(parts) + " USD.")
        inverted = []
        for c in summaries:
            runs = sorted(
                (s.point.mm_bps, s.bad_debt)
                for s in res.for_crash(c.path.name)
                if "mm_bps" in s.axes
            )
            worse = [
                (lo, hi)
                for i, lo in enumerate(runs)
                for hi in runs[i + 1 :]
                if hi[1] > lo[1] and hi[1] > 0
            ]
            if worse:
                lo, hi = max(worse, key=lambda p: p[1][1] - p[0][1])
                inverted.append(
                    f"{c.path.label} ({lo[0]} bps: {_money(lo[1])}, {hi[0]} bps: {_money(hi[1])})"
                )
        if inverted:
            im, fee = res.config.initial_margin_bps, res.config.sweep.base.fee_bps
            lo_mm, hi_mm = min(mm_vals), max(mm_vals)
            out.append(
                f"In {len(inverted)} of {len(summaries)} crash windows a higher maintenance "
                "margin left more bad debt than a lower one: "
                + "; ".join(inverted)
                + ". A partial liquidation only restores the initial margin, so the fraction "
                f"closed at the crossing, (im - mm) / (im - fee), is "
                f"{(im - hi_mm) / (im - fee):.0%} at {hi_mm} bps but "
                f"{(im - lo_mm) / (im - fee):.0%} at {lo_mm} bps: a higher mm leaves more of "
                "the position open to the next gap."
            )
    left = [s for s in res.scenarios if s.left_liquidatable]
    if left:
        worst_left = max(left, key=lambda s: (s.underwater_left, s.crash))
        out.append(
            f"{len(left)} scenario(s) ended with liquidatable accounts nobody liquidated, worst "
            f"{worst_left.label} ({worst_left.point.label}): {worst_left.left_liquidatable} "
            f"account(s) {_money(worst_left.underwater_left)} USD under water. Once the "
            "insurance fund is empty a bankrupt account pays no reward (the minimum reward is "
            "topped up only from the fund), so a keeper that checks gas leaves it open."
        )
    lat = [s for s in res.scenarios if "latency" in s.axes]
    if len({s.point.latency for s in lat}) > 1:
        slow = max(res.config.sweep.latency)
        fast = min(res.config.sweep.latency)
        bad_fast = sum(s.bad_debt for s in lat if s.point.latency == fast)
        bad_slow = sum(s.bad_debt for s in lat if s.point.latency == slow)
        out.append(
            f"Keeper latency: bad debt summed over the crashes {_money(bad_fast)} USD at "
            f"{fast} block(s), {_money(bad_slow)} USD at {slow}."
        )
    fee = [s for s in res.scenarios if "fee_bps" in s.axes]
    if len({s.point.fee_bps for s in fee}) > 1:
        parts = []
        for v in sorted({s.point.fee_bps for s in fee}):
            runs = [s for s in fee if s.point.fee_bps == v]
            parts.append(
                f"{v} bps: rewards {_money(sum(s.keeper_rewards for s in runs))}, bad debt "
                f"{_money(sum(s.bad_debt for s in runs))}"
            )
        out.append("Liquidation fee (summed over the crashes): " + "; ".join(parts) + " USD.")
    if res.config.impact.on:
        deepest = max(res.scenarios, key=lambda s: (s.cascade_depth, s.induced, s.crash))
        total_induced = sum(s.induced for s in res.scenarios if s.point == base)
        out.append(
            f"Price impact on: {total_induced} induced liquidations at the base point; deepest "
            f"cascade {deepest.cascade_depth} generation(s) in {deepest.label} "
            f"({deepest.point.label})."
        )
    return out


# ---- Plots (matplotlib Agg) ----


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


PNG_METADATA = {"Software": None}  # no version stamp: same inputs, same bytes


def plot_crash(result: ScenarioResult, path: CrashPath, out: Path) -> Path:
    """Price path with liquidation markers; insurance fund, bad debt and socialised loss."""
    plt = _pyplot()
    hours = path.hours()
    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(10, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    ax1.plot(hours, result.raw_price, color="0.6", lw=1, label="rescaled close (no impact)")
    if result.price != result.raw_price:
        ax1.plot(hours, result.price, color="C0", lw=1.4, label="oracle price (with impact)")
    else:
        ax1.plot(hours, result.price, color="C0", lw=1.4, label="oracle price")
    groups = (
        ("partial", "^", "C1", lambda r: not r.full),
        ("full, no bad debt", "v", "C3", lambda r: r.full and r.bad_debt == 0),
        ("full with bad debt", "X", "k", lambda r: r.bad_debt > 0),
    )
    for name, marker, color, pick in groups:
        rs = [r for r in result.liquidations if pick(r)]
        if rs:
            ax1.scatter(
                [hours[r.step] for r in rs],
                [r.price_usd for r in rs],
                marker=marker,
                s=[20 + 60 * min(1.0, usd(r.closed_notional) / 50_000) for r in rs],
                color=color,
                alpha=0.8,
                zorder=3,
                label=f"{name} ({len(rs)})",
            )
    ax1.set_ylabel(f"{path.symbol} (USD)")
    ax1.set_title(f"{path.label}: {result.point.label}", fontsize=11)
    ax1.legend(loc="best", fontsize=8)
    ax1.grid(alpha=0.3)
    s = result.series()
    ax2.plot(hours, s["insurance"], color="C2", label="insurance fund")
    ax2.plot(hours, s["bad_debt"], color="k", label="bad debt (cumulative)")
    ax2.plot(hours, s["socialised"], color="C3", ls="--", label="socialised (cumulative)")
    ax2.set_ylabel("USD")
    ax2.set_xlabel("hours since the first row")
    ax2.legend(loc="best", fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, metadata=PNG_METADATA)
    plt.close(fig)
    return out


def plot_sweep(res: SimulationResults, out: Path) -> Path:
    """Heatmaps, one per axis: loss past the insurance fund (`ScenarioResult.lp_loss`) per
    crash (rows) and swept value (columns), the solvency threshold outlined on the mm and
    insurance axes."""
    import numpy as np

    plt = _pyplot()
    summaries = {c.path.name: c for c in res.summaries()}
    axes_shown = [a for a in AXES if len(res.config.sweep.values(a)) > 0]
    n_rows = len(res.crashes)
    fig, axs = plt.subplots(
        1,
        len(axes_shown),
        figsize=(3.2 * len(axes_shown) + 3, 0.42 * n_rows + 2.2),
        squeeze=False,
    )
    vmax = max((usd(s.lp_loss) for s in res.scenarios), default=0.0) or 1.0
    for j, axis in enumerate(axes_shown):
        ax = axs[0][j]
        values = sorted(set(res.config.sweep.values(axis)))
        grid = np.full((n_rows, len(values)), np.nan)
        for i, p in enumerate(res.crashes):
            for s in res.for_crash(p.name):
                if axis in s.axes:
                    grid[i, values.index(s.point.value(axis))] = usd(s.lp_loss)
        ax.imshow(grid, aspect="auto", cmap="Reds", vmin=0, vmax=vmax)
        for i in range(n_rows):
            for k in range(len(values)):
                v = grid[i, k]
                if not np.isnan(v):
                    ax.text(
                        k,
                        i,
                        f"{v:,.0f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if v > 0.6 * vmax else "black",
                    )
        if axis in ("mm_bps", "insurance_usd"):
            for i, p in enumerate(res.crashes):
                t = summaries[p.name].thresholds[axis].value
                if t is not None:
                    k = values.index(t)
                    ax.add_patch(
                        plt.Rectangle((k - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="C2", lw=2.5)
                    )
        ax.set_xticks(range(len(values)))
        ax.set_xticklabels([_axis_value(axis, v) for v in values], fontsize=8)
        ax.set_xlabel(AXIS_TITLES[axis], fontsize=9)
        ax.set_yticks(range(n_rows))
        ax.set_yticklabels([p.label for p in res.crashes] if j == 0 else [], fontsize=8)
    fig.suptitle(
        "Loss past the insurance fund (USD: socialised, plus bad debt left unsettled) per crash "
        "and swept value; green box = solvency threshold",
        fontsize=10,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, metadata=PNG_METADATA)
    plt.close(fig)
    return out


def write_outputs(res: SimulationResults, out_dir: Path) -> Path:
    """report.md, results.json and the PNGs under `out_dir`; returns the report's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots: dict[str, str] = {}
    plot_sweep(res, out_dir / "sweep_heatmap.png")
    plots["sweep"] = "sweep_heatmap.png"
    for c in res.summaries():
        rel = f"plots/{c.path.name}.png"
        plot_crash(c.base, c.path, out_dir / rel)
        plots[c.path.name] = rel
    (out_dir / RESULTS_FILE).write_text(json.dumps(res.to_dict(), indent=1, sort_keys=True) + "\n")
    report = out_dir / REPORT_FILE
    report.write_text(render_report(res, plots))
    return report


# ---- Chain I/O ----


def select_crashes(cfg: SimConfig) -> list[tuple[Scenario, list[PricePoint], int, int | None]]:
    """(scenario, rows, skip, rows to replay) for every configured crash."""
    specs = cfg.crashes
    if specs is None:
        specs = tuple(CrashSpec(s.name) for s in list_scenarios(cfg.data_dir))
    out = []
    for spec in specs:
        scenario = resolve_scenario(spec.name, cfg.data_dir)
        points = load_prices(scenario.path)
        skip, rows = spec.skip, spec.rows
        if rows is None and cfg.window_rows and spec.skip == 0:
            skip, rows = window_around_drop(points, cfg.window_rows), cfg.window_rows
        out.append((scenario, points, skip, rows))
    return out


class ChainSimulator:
    """The deployed system, the seeded population and the snapshot every scenario starts from.

    `setup()` deploys (system.py), seeds (population.py) and snapshots; `run(path, point)`
    restores the snapshot, applies the point and replays the path."""

    def __init__(self, project: Any, config: SimConfig, deployer: Any, keeper: Any) -> None:
        config.validate()
        self.project = project
        self.cfg = config
        self.deployer = deployer
        self.keeper = keeper
        self.population = generate_population(config.seed, tuple(MARKETS), config.population)
        self.system: Any = None
        self.snapshot_id: Any = None
        self.base_accounts: list[MirrorAccount] = []
        self.accounts: list[MirrorAccount] = []  # the last scenario's mirror
        self.token_scale = 10 ** (18 - TOKEN_DECIMALS)
        self._fast = False  # raw web3 transactions (in-process chain only)

    # -- setup --

    def setup(self, progress: Callable[[str], None] | None = None) -> None:
        from ape import chain

        from margin_maintenance.deployment import with_chain_market_ids
        from margin_maintenance.keeper.reads import ChainReader, ClearinghouseReader, Method
        from margin_maintenance.population import seed_population
        from margin_maintenance.system import MarketParams, SystemParams, deploy_system

        cfg, base = self.cfg, self.cfg.sweep.base
        markets = tuple(
            MarketParams(
                symbol,
                price,
                initial_margin_bps=cfg.initial_margin_bps,
                maintenance_margin_bps=base.mm_bps,
                liquidation_fee_bps=base.fee_bps,
                trading_fee_bps=cfg.trading_fee_bps,
                max_open_interest_units=oi,
            )
            for symbol, (price, oi) in MARKETS.items()
        )
        params = SystemParams(
            token_decimals=TOKEN_DECIMALS,
            keeper_share_bps=cfg.keeper_share_bps,
            max_partial_bps=cfg.max_partial_bps,
            min_keeper_reward=cfg.min_keeper_reward_usd,
            markets=markets,
        )
        system = with_chain_market_ids(
            deploy_system(self.project, self.deployer, self.deployer, params)
        )
        self.system = system
        ch, token = system.clearinghouse, system.token
        seeded = seed_population(
            system,
            self.deployer,
            self.population,
            first_index=cfg.first_index,
            progress=progress,
        )
        if seeded.failed:
            log.warning("%d trader(s) could not open: %s", len(seeded.failed), seeded.failed)
        # Insurance budget for every scenario: minted and approved once, funded per scenario.
        budget = round(max(p.insurance_usd for p, _ in cfg.sweep.points()) * 10**TOKEN_DECIMALS)
        if budget:
            token.mint(self.deployer, budget, sender=self.deployer)
            token.approve(ch, 2**256 - 1, sender=self.deployer)
        self.reader = ClearinghouseReader.for_contract(ch, chain.provider)
        self._raw = ChainReader.for_contract(ch, chain.provider)
        self._m_position = Method(ch.position.abis[0])
        self._m_collateral = Method(ch.collateral.abis[0])
        self._m_pool = Method(ch.pool_assets.abis[0])
        self._m_insurance = Method(ch.insurance_fund.abis[0])
        self._m_upnl = Method(ch.trader_unrealized_pnl.abis[0])
        self._m_set_price = Method(system.aggregators[0].set_price.abis[0])
        self._m_liq_many = Method(ch.liquidate_many.abis[0])
        self._fast = _in_process(chain.provider)
        self._agg_decimals = [int(a.decimals()) for a in system.aggregators]
        self._staleness = [int(f.max_staleness()) for f in system.feeds]
        self._start_answers = [int(a.latestAnswer()) for a in system.aggregators]
        market_of = dict(zip(system.symbols, system.market_ids, strict=True))
        self.base_accounts = [
            MirrorAccount(t.address, market_of[t.market], 0, 0, 0) for t in seeded.traders
        ]
        self.read_accounts(self.base_accounts)
        chain.mine(1)  # a block of its own: snapshot ids on py-evm are block hashes
        self.snapshot_id = chain.provider.snapshot()

    def start_answer(self, symbol: str) -> tuple[int, int]:
        """(answer, decimals) of a market at the snapshot."""
        k = self.system.symbols.index(symbol)
        return self._start_answers[k], self._agg_decimals[k]

    # -- small chain helpers --

    def _call(self, method: Any, *args: Any) -> tuple[Any, ...]:
        from margin_maintenance.keeper.reads import ReadError

        raw = self._raw.call_many([method.calldata(*args)])[0]
        if isinstance(raw, ReadError):
            raise SimulationError(f"read failed: {raw}")
        return method.result(raw)

    def read_accounts(self, accounts: Sequence[MirrorAccount]) -> None:
        """Set the mirror of `accounts` to the chain's collateral and position."""
        from margin_maintenance.keeper.reads import ReadError

        calls: list[str] = []
        for a in accounts:
            calls.append(self._m_collateral.calldata(a.address))
            calls.append(self._m_position.calldata(a.address, a.market))
        raws = self._raw.call_many(calls)
        for i, a in enumerate(accounts):
            c_raw, p_raw = raws[2 * i], raws[2 * i + 1]
            if isinstance(c_raw, ReadError) or isinstance(p_raw, ReadError):
                raise SimulationError(f"cannot read {a.address}: {c_raw} {p_raw}")
            a.collateral = int(self._m_collateral.result(c_raw)[0])
            size, entry = self._m_position.fields(p_raw)  # struct Position(size, entry_price)
            a.size, a.entry = int(size), int(entry)

    def _transact(self, to: Any, calldata: str, sender: Any, gas: int) -> list[Any] | None:
        """Send a transaction straight through web3 (on the in-process chain every test
        account is unlocked; about 3x faster than Ape's path, which estimates gas and builds a
        rich receipt). Returns the receipt's raw logs, or None when it reverted."""
        from ape import chain
        from ape.exceptions import ApeException
        from web3.exceptions import Web3Exception

        w3 = chain.provider.web3
        try:
            h = w3.eth.send_transaction(
                {"from": sender.address, "to": to.address, "data": calldata, "gas": gas}
            )
            receipt = w3.eth.wait_for_transaction_receipt(h)
        except (ApeException, Web3Exception, ValueError) as err:
            log.warning("transaction to %s reverted: %s", to.address, err)
            return None
        return list(receipt["logs"]) if receipt["status"] == 1 else None

    def _post(self, k: int, answer: int) -> int:
        """Post `answer` to market k's aggregator; returns the block timestamp."""
        from ape import chain

        agg = self.system.aggregators[k]
        if self._fast:
            calldata = self._m_set_price.calldata(answer)
            if self._transact(agg, calldata, self.deployer, 200_000) is None:
                raise SimulationError(f"set_price({answer}) reverted")
        else:
            agg.set_price(answer, sender=self.deployer)
        return int(chain.provider.web3.eth.get_block("latest")["timestamp"])

    def _liquidate_many(self, accounts: Sequence[str]) -> list[dict[str, Any]] | None:
        """`liquidate_many(accounts)` from the keeper; its decoded client events, or None
        when it reverted."""
        from ape import chain
        from ape.exceptions import ApeException

        from margin_maintenance.events import log_to_dict

        ch = self.system.clearinghouse
        abis = [ch.PositionChanged.abi, ch.Liquidated.abi, ch.BadDebtSettled.abi]
        abis.append(ch.ProfitHaircut.abi)
        if self._fast:
            gas = min(self.cfg.keeper.block_gas_limit, 300_000 + 250_000 * len(accounts))
            raw = self._transact(ch, self._m_liq_many.calldata(list(accounts)), self.keeper, gas)
            if raw is None:
                return None
            decoded = chain.provider.network.ecosystem.decode_logs(raw, *abis)
        else:
            try:
                tx = ch.liquidate_many(list(accounts), sender=self.keeper)
            except ApeException as err:
                log.warning("liquidate_many reverted: %s", err)
                return None
            decoded = tx.decode_logs(abis)
        return [log_to_dict(x) for x in decoded]

    def _start_wad(self, market_id: int) -> int:
        """A market's price at the snapshot, WAD (the undriven market keeps it)."""
        i = self.system.market_ids.index(market_id)
        return self._start_answers[i] * 10 ** (18 - self._agg_decimals[i])

    def _lp_value(self) -> int:
        value = int(self._call(self._m_pool)[0])
        for m in self.system.market_ids:
            value -= int(self._call(self._m_upnl, m)[0])
        return value

    # -- one scenario --

    def run(self, path: CrashPath, point: SweepPoint, axes: tuple[str, ...]) -> ScenarioResult:
        from ape import chain

        cfg, system = self.cfg, self.system
        ch = system.clearinghouse
        chain.provider.restore(self.snapshot_id)
        self.snapshot_id = chain.provider.snapshot()  # anvil consumes ids; py-evm: same hash
        first_block = int(chain.blocks.head.number or 0) + 1

        base = cfg.sweep.base
        if (point.mm_bps, point.fee_bps) != (base.mm_bps, base.fee_bps):
            for m in system.market_ids:
                system.configurator.set_market_risk(
                    m,
                    cfg.initial_margin_bps,
                    point.mm_bps,
                    point.fee_bps,
                    cfg.trading_fee_bps,
                    sender=self.deployer,
                )
        if point.insurance_usd > 0:
            ch.fund_insurance(round(point.insurance_usd * 10**TOKEN_DECIMALS), sender=self.deployer)

        k = system.symbols.index(path.symbol)
        market_id = system.market_ids[k]
        others = [i for i in range(len(system.symbols)) if i != k]
        price_scale = 10 ** (18 - self._agg_decimals[k])
        accounts = [replace(a) for a in self.base_accounts]
        by_address = {a.address.lower(): a for a in accounts}
        driven = [a for a in accounts if a.market == market_id]
        mm_bps, scale = point.mm_bps, self.token_scale

        result = ScenarioResult(path.name, path.label, point, axes, path.rows)
        last_posted: dict[int, int] = {}  # market index -> block time of our last post

        def post(t: int, answer: int) -> None:
            block_time = self._post(k, answer)
            last_posted[k] = block_time
            result.onchain_steps += 1
            for o in others:  # heartbeat: re-post the other market before it goes stale
                if block_time - last_posted.get(o, -(10**12)) > self._staleness[o] // 2:
                    last_posted[o] = self._post(o, self._start_answers[o])

        # Start: both markets fresh at the first row's price, then the starting figures.
        multiplier = 1.0
        post(0, path.answers[0])
        result.insurance_start = int(self._call(self._m_insurance)[0])
        result.lp_value_start = self._lp_value()

        size, n_batches = cfg.keeper.capacity()
        cost = cfg.keeper.cost_model()
        min_reward = round(cfg.min_keeper_reward_usd * 10**TOKEN_DECIMALS)
        pending: dict[int, list[tuple[int, list[tuple[str, bool]]]]] = {}  # due row -> batches
        inflight: set[str] = set()  # planned, not landed yet
        deferred: set[str] = set()  # liquidatable, but not worth the gas when last read
        gens: list[tuple[int, int]] = []  # (row landed, generation) of every liquidation
        last_row = path.rows - 1

        def land(batch: list[tuple[str, bool]], t: int, observed: int, price_wad: int) -> float:
            inflight.difference_update(a.lower() for a, _ in batch)
            return self._land(batch, t, observed, result, by_address, gens, price_wad, market_id)

        for t in range(path.rows):
            raw_answer = path.answers[t]
            answer = max(1, round(raw_answer * multiplier))
            result.raw_price.append(raw_answer / 10 ** self._agg_decimals[k])
            result.price.append(answer / 10 ** self._agg_decimals[k])
            price_wad = answer * price_scale
            due = pending.pop(t, [])
            if cfg.screen:
                flagged = [
                    a
                    for a in driven
                    if a.address.lower() not in inflight
                    and near_maintenance(a, price_wad, mm_bps, scale, cfg.screen_buffer)
                ]
                # An account skipped as unprofitable wakes the keeper again only once it could
                # pay a reward: equity left, or a fund that can top the reward up.
                wake = [
                    a
                    for a in flagged
                    if a.address.lower() not in deferred
                    or equity(a, price_wad, scale) > 0
                    or result.insurance_start
                    + sum(r.insurance_delta - r.insurance_covered for r in result.liquidations)
                    >= min_reward
                ]
                if not (due or wake or t == last_row):
                    continue
            else:
                flagged = [a for a in accounts if a.open and a.address.lower() not in inflight]
            if t > 0:
                post(t, answer)

            # Batches planned `latency` rows ago land now, at this row's price.
            sold_usd = 0.0
            for observed, batch in due:
                sold_usd += land(batch, t, observed, price_wad)

            # The keeper reads, ranks and plans (the bot's own functions).
            if flagged:
                batches, skipped = self._plan(flagged, size, n_batches, cost, result)
                deferred = (deferred | {a.lower() for a in skipped}) & {
                    a.address.lower() for a in flagged
                }
                raw_wad = raw_answer * price_scale
                for b in batches:
                    deferred.difference_update(a.lower() for a in b)
                    tagged = [
                        (
                            acct,
                            cfg.impact.on
                            and not is_liquidatable(
                                by_address[acct.lower()], raw_wad, mm_bps, scale
                            ),
                        )
                        for acct in b
                    ]
                    land_at = min(t + point.latency, last_row)
                    if land_at == t:
                        sold_usd += land(tagged, t, t, price_wad)
                    else:
                        pending.setdefault(land_at, []).append((t, tagged))
                        inflight.update(a.lower() for a in b)
            multiplier *= cfg.impact.factor(sold_usd)

        # Accounts still liquidatable after the last row (every due batch has landed by then,
        # so these are the ones not worth the gas) and the equity they are under water by: a
        # loss the LPs still carry.
        final_wad = answer * price_scale  # the last row is always posted
        for a in accounts:
            px = final_wad if a.market == market_id else self._start_wad(a.market)
            if is_liquidatable(a, px, mm_bps, scale):
                result.left_liquidatable += 1
                result.underwater_left += max(0, -equity(a, px, scale))
        self.accounts = accounts  # the mirror after the run (the tests compare it with chain)
        result.insurance_end = int(self._call(self._m_insurance)[0])
        result.lp_value_end = self._lp_value()
        result.blocks = (first_block, int(chain.blocks.head.number or 0))
        self._check_books(result)
        if cfg.verify:
            verify_against_chain(ch, result)
        return result

    def _plan(
        self,
        flagged: Sequence[MirrorAccount],
        size: int,
        n_batches: int,
        cost: decisions.CostModel,
        result: ScenarioResult,
    ) -> tuple[list[list[str]], list[str]]:
        """The bot's pipeline over `flagged`: (batches to send, accounts not worth the gas)."""
        addresses = [a.address for a in flagged]
        rows, unread = self.reader.margin_status(decisions.status_chunks(addresses))
        if unread:
            raise SimulationError(f"margin_status failed: {next(iter(unread.values()))}")
        candidates = decisions.liquidatable_candidates(rows)
        if not candidates:
            return [], []
        capacity = size * n_batches
        previews, failed = self.reader.previews([c.account for c in candidates[: 2 * capacity]])
        if failed:
            raise SimulationError(f"liquidation_preview failed: {next(iter(failed.values()))}")
        targets = decisions.select_targets(candidates, previews, capacity)
        batches, skipped = decisions.plan_batches(targets, size, n_batches, cost)
        planned = [[t.account for t in b] for b in batches]
        result.planned += sum(len(b) for b in planned)
        result.unprofitable += len(skipped)
        return planned, [t.account for t in skipped]

    def _land(
        self,
        batch: Sequence[tuple[str, bool]],
        step: int,
        observed: int,
        result: ScenarioResult,
        by_address: dict[str, MirrorAccount],
        gens: list[tuple[int, int]],
        price_wad: int,
        market_id: int,
    ) -> float:
        """Send one liquidate_many; record its events; returns the driven market's net sold
        notional (USD) for the impact model."""
        accounts = [a for a, _ in batch]
        induced = {a.lower(): flag for a, flag in batch}
        logs = self._liquidate_many(accounts)
        if logs is None:
            result.reverts += 1
            return 0.0
        by_account: dict[str, list[dict[str, Any]]] = {}
        for e in logs:
            by_account.setdefault(str(e["account"]).lower(), []).append(e)
        sold = 0.0
        # Impact of a liquidation moves the rows after the one it landed at.
        earlier = [g for landed, g in gens if landed < observed]
        for a in accounts:
            evs = by_account.get(a.lower(), [])
            liq = [e for e in evs if e["event"] == "Liquidated"]
            if not liq:
                result.healthy_at_landing += 1
                continue
            e = liq[0]
            moves = [x for x in evs if x["event"] == "PositionChanged"]
            bad = [x for x in evs if x["event"] == "BadDebtSettled"]
            cuts = [x for x in evs if x["event"] == "ProfitHaircut"]
            sold_a = sum(
                -int(x["size_delta"]) * int(x["price"]) / WAD / WAD
                for x in moves
                if int(x["market_id"]) == market_id
            )
            sold += sold_a
            side = 1 if moves and int(moves[0]["size_delta"]) < 0 else -1
            gen = generation_of(induced.get(a.lower(), False), earlier)
            gens.append((step, gen))
            result.liquidations.append(
                LiquidationRecord(
                    step=step,
                    observed=observed,
                    account=str(e["account"]),
                    market_id=int(moves[0]["market_id"]) if moves else market_id,
                    side=side,
                    fraction=int(e["fraction"]),
                    full=bool(e["full"]),
                    closed_notional=int(e["closed_notional"]),
                    fee=int(e["fee"]),
                    keeper_reward=int(e["keeper_reward"]),
                    insurance_delta=int(e["insurance_delta"]),
                    price_usd=price_wad / WAD,
                    sold_usd=round(sold_a, 6),
                    bad_debt=sum(int(x["bad_debt"]) for x in bad),
                    insurance_covered=sum(int(x["insurance_covered"]) for x in bad),
                    socialised=sum(int(x["socialised"]) for x in bad),
                    uncovered=sum(int(x["uncovered"]) for x in bad),
                    haircut=sum(int(x["owed"]) - int(x["paid"]) for x in cuts),
                    generation=gen,
                )
            )
        for a in accounts:
            apply_events(by_address[a.lower()], by_account.get(a.lower(), []))
        return sold

    def _check_books(self, result: ScenarioResult) -> None:
        """The fund at the end must be the start plus the recorded deltas."""
        expected = result.insurance_start + sum(
            r.insurance_delta - r.insurance_covered for r in result.liquidations
        )
        if expected != result.insurance_end:
            raise SimulationError(
                f"{result.crash} {result.point.label}: insurance {result.insurance_end} on "
                f"chain, {expected} from the records"
            )


def _in_process(provider: Any) -> bool:
    """Ape's in-process py-evm chain, where every test account is unlocked in the node."""
    try:
        from ape_test.provider import LocalProvider
    except ImportError:  # pragma: no cover - ape_test ships with ape
        return False
    return isinstance(provider, LocalProvider)


def verify_against_chain(ch: Any, result: ScenarioResult) -> dict[str, tuple[int, int]]:
    """Rebuild the scenario's blocks from `eth_getLogs` (audit.py's ledger) and compare with
    the result; raises SimulationError on any difference. Returns {item: (ours, chain)}."""
    from margin_maintenance.audit import rebuild
    from margin_maintenance.events import fetch_events

    first, last = result.blocks
    ledger = rebuild(fetch_events(ch, start_block=first, stop_block=last))
    pairs = {
        "liquidations": (result.n_liquidations, ledger.counts["Liquidated"]),
        "keeper_rewards": (result.keeper_rewards, ledger.keeper_rewards_total),
        "bad_debt": (result.bad_debt, ledger.bad_debt_total),
        "socialised": (result.socialised, ledger.socialised_total),
        "haircut": (result.haircut, ledger.haircut_total),
        "bad_debt_events": (
            sum(1 for r in result.liquidations if r.bad_debt),
            ledger.counts["BadDebtSettled"],
        ),
    }
    wrong = {k: v for k, v in pairs.items() if v[0] != v[1]}
    if wrong:
        raise SimulationError(f"{result.crash} {result.point.label}: differs from chain: {wrong}")
    result.verified = True
    return pairs


def run_simulation(
    project: Any,
    config: SimConfig,
    *,
    deployer: Any | None = None,
    keeper: Any | None = None,
    on_setup: Callable[[str], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_scenario: Callable[[ScenarioResult, ChainSimulator], None] | None = None,
) -> SimulationResults:
    """Deploy, seed, and run every (crash, sweep point) on the connected chain.
    `on_start(total)` once the scenario count is known, `on_scenario(result, sim)` after each
    one (before the next restore: the scenario's blocks are still on chain)."""
    from ape import accounts as ape_accounts

    config.validate()
    deployer = deployer or ape_accounts.test_accounts[0]
    keeper = keeper or ape_accounts.test_accounts[1]
    crashes = select_crashes(config)
    unknown = sorted({s.symbol for s, *_ in crashes} - set(MARKETS))
    if unknown:
        raise SimulationError(f"no market for {unknown}: the simulator lists {list(MARKETS)}")
    sim = ChainSimulator(project, config, deployer, keeper)
    sim.setup(on_setup)
    paths = []
    for scenario, points, skip, rows in crashes:
        answer, decimals = sim.start_answer(scenario.symbol)
        paths.append(build_path(scenario, points, answer, decimals, skip, rows))
    sweep_points = config.sweep.points()
    if on_start is not None:
        on_start(len(paths) * len(sweep_points))
    results: list[ScenarioResult] = []
    for path in paths:
        for point, axes in sweep_points:
            r = sim.run(path, point, axes)
            results.append(r)
            if on_scenario is not None:
                on_scenario(r, sim)
    return SimulationResults(config, sim.population, paths, results)


__all__ = [
    "AXES",
    "ChainSimulator",
    "CrashPath",
    "CrashSpec",
    "ImpactModel",
    "KeeperModel",
    "LiquidationRecord",
    "MirrorAccount",
    "ScenarioResult",
    "SimConfig",
    "SimulationError",
    "SimulationResults",
    "Sweep",
    "SweepPoint",
    "Threshold",
    "build_path",
    "check_rates",
    "default_config",
    "generation_of",
    "implied_insurance",
    "is_liquidatable",
    "near_maintenance",
    "plot_crash",
    "plot_sweep",
    "quick_config",
    "render_report",
    "run_simulation",
    "solvency_threshold",
    "trigger_price_wad",
    "verify_against_chain",
    "window_around_drop",
    "write_outputs",
]
