"""Scenario configuration (pure): the sweep, the price-impact and keeper models, the crash
selection.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from margin_maintenance.keeper import decisions
from margin_maintenance.population import (
    PopulationParams,
)

from .oracle import OracleModel
from .settings import AXES, BPS, TOKEN_DECIMALS, SimulationError

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
class FundingModel:
    """Funding and the skew premium in the simulator, calibrated from public figures (the crash
    files hold prices only, so both are set here, not fitted):

    - skew scale: the skew worth `scale_usd` at the market's start price. Synthetix sizes its
      scales so that a 100,000 USD trade moves the fill by about as much as it would move a
      centralised book (its parameter updates quote 7-36 bps per 100,000 USD); at 50M USD a
      100,000 USD trade on a balanced book pays 100,000 / (2 * 50M) = 10 bps.
    - velocity: `velocity_bps` per day per day at a skew of one scale, so that a skew of a few
      percent of the scale reaches the usual perp funding of about 0.01% per 8 hours
      (0.03% a day) within a day (3% of the scale: 9 bps a day per day). The seeded book of
      `ape run funding` (30 traders) is skewed by 0.1-0.2% of the scale, and a crash's
      liquidations move it towards the shorts; its 5-day windows end at -0.04 to -0.05% a day
      (docs/sim/funding.md), inside the ranges perps print (crash extremes reach 0.1-0.3% per
      8 hours, which this book's skew does not).
    """

    scale_usd: float = 50_000_000.0
    velocity_bps: int = 300

    def skew_scale_units(self, price_usd: float) -> int:
        return max(1, round(self.scale_usd / price_usd))


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
    oracle: OracleModel = OracleModel()  # pull: the push base point and latency axis beside it
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
    # Funding on every market (None: off). Funding accrues with block time, so a run with it
    # steps the chain clock with the crash file's timestamps and posts every row (no
    # screening: the one-position mirror does not follow funding); `realtime` does the same
    # without funding, the run funding is compared against.
    funding: FundingModel | None = None
    realtime: bool = False

    @property
    def clocked(self) -> bool:
        """Block time follows the file's timestamps and every row is posted."""
        return self.realtime or self.funding is not None

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
