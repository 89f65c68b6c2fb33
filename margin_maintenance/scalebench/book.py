"""The bench's book of accounts: pure and unit-tested (sizes, leverage, which accounts one ETH move
makes liquidatable).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils import keccak, to_checksum_address

from margin_maintenance.system import WAD

from .settings import BTC, ETH

# ---- The book: pure, unit-tested ----


@dataclass(frozen=True)
class AccountPlan:
    """One seeded account: collateral (whole tokens) and one position at the start price."""

    index: int
    market: int  # position in SystemParams().markets (ETH 0, BTC 1)
    side: int  # +1 long, -1 short
    leverage: float  # notional / collateral at the start price
    collateral_usd: float
    doomed: bool  # planned to be liquidatable after the bench's price move


@dataclass(frozen=True)
class BookParams:
    """The leverage mix and the price move that makes `doomed_share` of the book liquidatable."""

    doomed_share: float = 0.10
    doomed_leverage: float = 9.0  # ETH longs; cross maintenance at -6.4%
    safe_leverage: tuple[float, float] = (2.0, 3.0)  # a 3x long crosses only at -29.8%
    eth_share_of_safe: float = 0.6
    long_share_of_safe: float = 0.6
    collateral_usd: tuple[float, float] = (500.0, 5_000.0)  # log-uniform
    eth_move: float = -0.10  # the price update: ETH -10%
    seed: int = 7


def plan_book(n: int, params: BookParams | None = None) -> list[AccountPlan]:
    """`n` accounts, exactly round(n * doomed_share) of them doomed, deterministic in `seed`."""
    p = params or BookParams()
    rng = random.Random(p.seed)
    n_doomed = round(n * p.doomed_share)
    doomed = set(rng.sample(range(n), n_doomed)) if n else set()
    lo, hi = p.collateral_usd
    plans = []
    for i in range(n):
        collateral = round(math.exp(rng.uniform(math.log(lo), math.log(hi))), 2)
        if i in doomed:
            plans.append(AccountPlan(i, ETH, 1, p.doomed_leverage, collateral, True))
            continue
        market = ETH if rng.random() < p.eth_share_of_safe else BTC
        side = 1 if rng.random() < p.long_share_of_safe else -1
        leverage = round(rng.uniform(*p.safe_leverage), 3)
        plans.append(AccountPlan(i, market, side, leverage, collateral, False))
    return plans


def crossing_move(leverage: float, maintenance_bps: int = 500, trading_fee_bps: int = 5) -> float:
    """The adverse price move (a fraction, positive) at which a fresh position of `leverage`
    reaches its maintenance requirement: 1 - fee*L - L*x = mm*L*(1 - x) for a long."""
    mm, fee = maintenance_bps / 10_000, trading_fee_bps / 10_000
    return (1 - fee * leverage - mm * leverage) / (leverage * (1 - mm))


def liquidatable_after(
    plan: AccountPlan,
    moves: Sequence[float],
    maintenance_bps: int = 500,
    trading_fee_bps: int = 5,
) -> bool:
    """Whether `plan`'s account is below maintenance after each market moves by `moves[m]`
    (fractions, -0.1 = -10%); the same arithmetic as the engine, without its rounding."""
    move = moves[plan.market]
    notional = plan.collateral_usd * plan.leverage
    equity = plan.collateral_usd - notional * trading_fee_bps / 10_000 + plan.side * notional * move
    maintenance = notional * (1 + move) * maintenance_bps / 10_000
    return equity < maintenance


def predicted_liquidatable(plans: Sequence[AccountPlan], params: BookParams) -> int:
    moves = [params.eth_move, 0.0]
    return sum(liquidatable_after(p, moves) for p in plans)


def position_size(plan: AccountPlan, price_usd: float) -> int:
    """Signed WAD base units for the plan's notional at `price_usd`."""
    units = plan.collateral_usd * plan.leverage / price_usd
    return plan.side * round(units * WAD)


def account_address(index: int, salt: str = "margin-maintenance/scale") -> str:
    """A deterministic address for seeded account `index` (no key: anvil impersonates it)."""
    return to_checksum_address(keccak(text=f"{salt}/{index}")[-20:])
