"""The LP pool's share maths, bit for bit as `LPVault` does it: a virtual offset against the
first-depositor inflation attack, both directions rounded down (nobody gets more than they
paid for or more than their shares are worth). The vault prices against the engine's
`pool_state()`: entries at `deposit_nav`, exits at `redeem_nav`, within `free_liquidity`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import VIRTUAL_ASSETS, VIRTUAL_SHARES


@dataclass(frozen=True)
class PoolState:
    """`IPoolHooks.PoolState`, token units."""

    pool_assets: int
    total_debt: int
    reserve: int  # share of open notional LPs cannot withdraw
    trader_profit: int  # unrealised trader profit, market by market
    trader_loss: int  # unrealised trader loss, market by market
    paused: bool = False


def deposit_nav(ps: PoolState) -> int:
    """`LPVault._deposit_nav`: realised assets plus the traders' unrealised losses."""
    return ps.pool_assets + ps.trader_loss


def redeem_nav(ps: PoolState) -> int:
    """`LPVault._redeem_nav`: realised assets less unrealised trader profit and account debt."""
    return max(0, ps.pool_assets - (ps.trader_profit + ps.total_debt))


def free_liquidity(ps: PoolState) -> int:
    """`LPVault._free`: what LPs may withdraw now (reserve, trader profit and debt locked)."""
    return max(0, ps.pool_assets - (ps.total_debt + ps.reserve + ps.trader_profit))


def to_shares(assets: int, supply: int, nav: int) -> int:
    """`LPVault._to_shares`: shares minted for `assets`."""
    return assets * (supply + VIRTUAL_SHARES) // (nav + VIRTUAL_ASSETS)


def to_assets(shares: int, supply: int, nav: int) -> int:
    """`LPVault._to_assets`: assets paid for `shares`."""
    return shares * (nav + VIRTUAL_ASSETS) // (supply + VIRTUAL_SHARES)
