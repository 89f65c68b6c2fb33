"""The LP pool's share maths, bit for bit as `LPVault` does it: a virtual offset against the
first-depositor inflation attack, both directions rounded down (nobody gets more than they
paid for or more than their shares are worth). The vault prices against the engine's
`pool_state()`: entries and exits at one net value (`net_value`), exits within
`free_liquidity`, entries refused while the value is negative.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import VIRTUAL_ASSETS, VIRTUAL_SHARES, constant

DUST_RATIO = constant("DUST_RATIO")  # LPVault: shares worth under 1 / DUST_RATIO are dust


@dataclass(frozen=True)
class PoolState:
    """`IPoolHooks.PoolState`, token units."""

    pool_assets: int
    total_debt: int
    reserve: int  # share of open notional LPs cannot withdraw
    trader_profit: int  # unrealised trader profit, market side by market side
    trader_loss: int  # unrealised trader loss, market side by market side
    paused: bool = False
    claims: int = 0  # realised profit owed to accounts, not paid yet
    trader_collateral: int = 0  # positive collateral of all accounts
    exposed: bool = False  # some market has open interest
    priced_at: int = 0  # oldest price time among markets with open interest (now when none)


def net_value(ps: PoolState) -> int:
    """`LPVault._net_value`: assets plus collectable paper losses (at most what traders
    hold) less paper profit, debt and claims; negative when the pool owes more than it has."""
    collectable = min(ps.trader_loss, ps.trader_collateral)
    return ps.pool_assets + collectable - (ps.trader_profit + ps.total_debt + ps.claims)


def deposit_nav(ps: PoolState) -> int | None:
    """`LPVault._deposit_nav`: the net value; None where the vault refuses deposits
    ("vault: pool insolvent")."""
    value = net_value(ps)
    return value if value >= 0 else None


def redeem_nav(ps: PoolState) -> int:
    """`LPVault._redeem_nav`: the net value, nothing when it is negative."""
    return max(net_value(ps), 0)


def free_liquidity(ps: PoolState) -> int:
    """`LPVault._free`: what LPs may withdraw now (reserve, trader profit, debt and claims
    locked)."""
    return max(0, ps.pool_assets - (ps.total_debt + ps.reserve + ps.trader_profit + ps.claims))


def worthless(supply: int, nav: int, execution_fee: int) -> bool:
    """`LPVault._worthless`: the shares are worth under a millionth of the first share price
    and less than the execution fee in all, so the next deposit cancels them and buys into a
    fresh supply (never when supply is 0; refused while the pool is exposed)."""
    return nav * DUST_RATIO < supply and nav < execution_fee


def entry_supply(supply: int, nav: int, execution_fee: int) -> int:
    """The supply a deposit buys into (`LPVault._entry_supply`): 0 when it cancels the old."""
    return 0 if worthless(supply, nav, execution_fee) else supply


def to_shares(assets: int, supply: int, nav: int) -> int:
    """`LPVault._to_shares`: shares minted for `assets`."""
    return assets * (supply + VIRTUAL_SHARES) // (nav + VIRTUAL_ASSETS)


def to_assets(shares: int, supply: int, nav: int) -> int:
    """`LPVault._to_assets`: assets paid for `shares`."""
    return shares * (nav + VIRTUAL_ASSETS) // (supply + VIRTUAL_SHARES)
