"""A deterministic population of LPs and leveraged traders, and the transactions that seed it.

`generate_population` is pure: the same seed, parameters and market list give the same traders
(Python's `random.Random(seed)` is reproducible across platforms and versions). `seed_population`
is the thin I/O part: it makes each actor a test account, funds it with ETH and collateral, and
sends the deposits and trades.

Traders are test accounts at explicit mnemonic indices (`first_index` onwards) rather than
`generate_test_account()`'s next free index: that counter restarts at `number_of_accounts` in
every process, so two runs (or the seeder and a keeper) would otherwise hand out the same
accounts.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from margin_maintenance.deployment import LPRecord, TraderRecord, chain_market_ids
from margin_maintenance.system import WAD, System

log = logging.getLogger(__name__)

MAX_UINT = 2**256 - 1
DEFAULT_FIRST_INDEX = 1_000  # mnemonic index of the first seeded account
ETH_PER_ACCOUNT_WEI = 10**18  # gas money sent to every seeded account


@dataclass(frozen=True)
class PopulationParams:
    """Distributions of the population (amounts in whole collateral tokens, i.e. USD)."""

    traders: int = 200
    lp_deposit_usd: float = 2_000_000.0  # total LP capital, split evenly over `lps`
    lps: int = 1
    long_share: float = 0.7  # probability a trader is long
    leverage_min: float = 1.5
    leverage_max: float = 9.5  # below the 10x that a 10% initial margin allows, fees included
    # leverage = min + (max - min) * Beta(a, b); a > b skews towards high leverage
    # (mean of Beta(2.5, 1.2) is 0.68: about 6.9x on the default range).
    leverage_beta: tuple[float, float] = (2.5, 1.2)
    collateral_median_usd: float = 3_000.0  # log-normal: exp(mu) = median
    collateral_sigma: float = 1.1  # log-normal sigma
    collateral_min_usd: float = 500.0
    collateral_max_usd: float = 50_000.0
    market_weights: tuple[float, ...] | None = None  # per market in listing order; None = equal

    def __post_init__(self) -> None:
        if self.traders < 0 or self.lps < 0:
            raise ValueError("traders and lps must not be negative")
        if not 0 <= self.long_share <= 1:
            raise ValueError("long_share must be in [0, 1]")
        if not 1 <= self.leverage_min <= self.leverage_max:
            raise ValueError("need 1 <= leverage_min <= leverage_max")
        if not 0 < self.collateral_min_usd <= self.collateral_max_usd:
            raise ValueError("need 0 < collateral_min_usd <= collateral_max_usd")
        if min(self.leverage_beta) <= 0 or self.collateral_sigma < 0:
            raise ValueError("beta shape parameters must be positive, sigma non-negative")


@dataclass(frozen=True)
class TraderSpec:
    index: int  # position in the population (0-based)
    market: str  # symbol, e.g. "ETH-USD"
    side: int  # +1 long, -1 short
    leverage: float  # notional / collateral at the opening price
    collateral_usd: float

    @property
    def side_name(self) -> str:
        return "long" if self.side > 0 else "short"

    @property
    def notional_usd(self) -> float:
        return self.collateral_usd * self.leverage


@dataclass(frozen=True)
class Population:
    seed: int
    params: PopulationParams
    markets: tuple[str, ...]
    traders: tuple[TraderSpec, ...]
    lp_deposits_usd: tuple[float, ...]


def generate_population(
    seed: int, markets: Sequence[str], params: PopulationParams | None = None
) -> Population:
    """Draw the population from `random.Random(seed)`. Each trader draws, in this fixed order,
    market, side, leverage and collateral; the same seed, markets and parameters always give
    the same population."""
    params = params or PopulationParams()
    if not markets:
        raise ValueError("at least one market is needed")
    weights = list(params.market_weights or [1.0] * len(markets))
    if len(weights) != len(markets) or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError("market_weights must give one non-negative weight per market")
    rng = random.Random(seed)
    a, b = params.leverage_beta
    mu = math.log(params.collateral_median_usd)
    traders = []
    for i in range(params.traders):
        market = rng.choices(list(markets), weights=weights)[0]
        side = 1 if rng.random() < params.long_share else -1
        lev = params.leverage_min + (params.leverage_max - params.leverage_min) * rng.betavariate(
            a, b
        )
        col = rng.lognormvariate(mu, params.collateral_sigma)
        col = min(max(col, params.collateral_min_usd), params.collateral_max_usd)
        traders.append(TraderSpec(i, market, side, round(lev, 2), round(col, 2)))
    lp_each = round(params.lp_deposit_usd / params.lps, 2) if params.lps else 0.0
    return Population(seed, params, tuple(markets), tuple(traders), (lp_each,) * params.lps)


@dataclass(frozen=True)
class PopulationSummary:
    traders: int
    longs: int
    shorts: int
    per_market: dict[str, int]
    mean_leverage: float
    total_collateral_usd: float
    total_notional_usd: float
    lp_capital_usd: float


def summarize(pop: Population) -> PopulationSummary:
    n = len(pop.traders)
    per_market = {m: sum(1 for t in pop.traders if t.market == m) for m in pop.markets}
    return PopulationSummary(
        traders=n,
        longs=sum(1 for t in pop.traders if t.side > 0),
        shorts=sum(1 for t in pop.traders if t.side < 0),
        per_market=per_market,
        mean_leverage=sum(t.leverage for t in pop.traders) / n if n else 0.0,
        total_collateral_usd=sum(t.collateral_usd for t in pop.traders),
        total_notional_usd=sum(t.notional_usd for t in pop.traders),
        lp_capital_usd=sum(pop.lp_deposits_usd),
    )


def token_amount(usd: float, decimals: int) -> int:
    """Whole tokens as token units, rounded to the nearest unit (no float drift)."""
    return int((Decimal(repr(usd)) * 10**decimals).to_integral_value())


def size_wad(spec: TraderSpec, price_wad: int) -> int:
    """Signed position size (WAD base units) worth `leverage * collateral` at `price_wad`,
    rounded down so the opening leverage never exceeds the drawn one."""
    if price_wad <= 0:
        raise ValueError("price must be positive")
    notional = Decimal(repr(spec.collateral_usd)) * Decimal(repr(spec.leverage))
    return spec.side * int(notional * WAD * WAD / price_wad)


def acceptable_price(side: int, price_wad: int, slippage_bps: int) -> int:
    """Slippage bound for a trade at `price_wad`: above for buys, below for sells."""
    if side > 0:
        return price_wad * (10_000 + slippage_bps) // 10_000
    return price_wad * (10_000 - slippage_bps) // 10_000


# ---- I/O: seeding a chain ----


@dataclass
class SeedResult:
    """What `seed_population` did so far (filled in as it goes, so a caller can save a
    partial result if it stops half way)."""

    traders: list[TraderRecord] = field(default_factory=list)
    lps: list[LPRecord] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)  # (trader index, reason)


def mnemonic_account(index: int) -> Any:
    """The test account at mnemonic index `index` (deterministic, funded or not)."""
    from ape import accounts

    return accounts.test_accounts.containers["test"].generate_account(index=index)


def seed_population(
    system: System,
    deployer: Any,
    population: Population,
    *,
    first_index: int = DEFAULT_FIRST_INDEX,
    eth_per_account_wei: int = ETH_PER_ACCOUNT_WEI,
    slippage_bps: int = 100,
    insurance_usd: float = 0.0,
    account_at: Callable[[int], Any] = mnemonic_account,
    progress: Callable[[str], None] | None = None,
    result: SeedResult | None = None,
) -> SeedResult:
    """LPs add liquidity first (they are the counterparty), then every trader deposits its
    collateral and opens its position at the oracle price. `deployer` must own the mock token
    (it mints) and hold ETH; it also seeds the insurance fund with `insurance_usd`. A trade
    the engine refuses is logged and recorded in `failed`; the trader keeps its deposit."""
    from ape.exceptions import ContractLogicError

    result = result if result is not None else SeedResult()
    token, ch = system.token, system.clearinghouse
    decimals = int(token.decimals())
    ids = chain_market_ids(ch, system.feeds)  # not system.market_ids: see chain_market_ids
    market_id = dict(zip(system.symbols, ids, strict=True))
    feed_of = dict(zip(system.symbols, system.feeds, strict=True))
    missing = set(t.market for t in population.traders) - set(market_id)
    if missing:
        raise ValueError(f"population uses markets the deployment lacks: {sorted(missing)}")
    step = progress or (lambda _msg: None)

    def new_actor(hd_index: int, usd: float) -> Any:
        acct = account_at(hd_index)
        deployer.transfer(acct, eth_per_account_wei)
        token.mint(acct, token_amount(usd, decimals), sender=deployer)
        token.approve(ch, MAX_UINT, sender=acct)
        return acct

    if insurance_usd > 0:
        amount = token_amount(insurance_usd, decimals)
        token.mint(deployer, amount, sender=deployer)
        token.approve(ch, amount, sender=deployer)
        ch.fund_insurance(amount, sender=deployer)

    index = first_index
    for usd in population.lp_deposits_usd:
        lp = new_actor(index, usd)
        system.vault.add_liquidity(token_amount(usd, decimals), 0, sender=lp)
        result.lps.append(LPRecord(str(lp.address), index, population.seed, usd))
        step(f"LP {lp.address} added {usd:,.0f}")
        index += 1

    for spec in population.traders:
        acct = new_actor(index, spec.collateral_usd)
        ch.deposit(token_amount(spec.collateral_usd, decimals), sender=acct)
        price = int(feed_of[spec.market].latest_price())
        size = size_wad(spec, price)
        try:
            ch.trade(
                market_id[spec.market],
                size,
                acceptable_price(spec.side, price, slippage_bps),
                sender=acct,
            )
        except ContractLogicError as err:
            log.warning("trader %d (%s) could not open: %s", spec.index, acct.address, err)
            result.failed.append((spec.index, str(err)))
        result.traders.append(
            TraderRecord(
                address=str(acct.address),
                hd_index=index,
                seed=population.seed,
                market=spec.market,
                side=spec.side_name,
                leverage=spec.leverage,
                collateral_usd=spec.collateral_usd,
            )
        )
        step(f"trader {spec.index} {spec.side_name} {spec.market} {spec.leverage:.1f}x")
        index += 1
    return result


__all__ = [
    "DEFAULT_FIRST_INDEX",
    "Population",
    "PopulationParams",
    "PopulationSummary",
    "SeedResult",
    "TraderSpec",
    "acceptable_price",
    "generate_population",
    "seed_population",
    "size_wad",
    "summarize",
    "mnemonic_account",
    "token_amount",
]
