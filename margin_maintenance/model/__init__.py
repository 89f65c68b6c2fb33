"""The one exact Python mirror of the engine's rules (SPEC sections 2-3).

Every function names the contract function it mirrors and matches it bit for bit;
`tests/test_model_parity.py` drives the model and a harness of the contracts with the same
random inputs. Constants come from the Vyper sources (`constants.py`), never retyped. Tests,
the simulator and the audit import this package; none keeps a copy of the maths.
"""

from .admin import RISK_DELAY, RISK_GRACE, funding_change_waits, risk_change_waits
from .constants import BPS, MAX_POSITIONS, VIRTUAL_ASSETS, VIRTUAL_SHARES, WAD, constant
from .liquidation import (
    LiquidationParams,
    Outcome,
    backed,
    closes_at,
    keeper_reward,
    liquidate,
    partial_reachable,
    plan,
    planned_fraction,
    remaining_legs,
)
from .margin import (
    Leg,
    Margin,
    MarketRates,
    bps_up,
    ceil_div,
    liquidation_fraction,
    margin,
    notional_down,
    notional_up,
    pack_position,
    pnl,
    unpack_position,
)
from .oracle import account_mark, mark_down, mark_up, pool_marks
from .pool import (
    DUST_RATIO,
    PoolState,
    deposit_nav,
    entry_supply,
    free_liquidity,
    net_value,
    redeem_nav,
    to_assets,
    to_shares,
    worthless,
)

__all__ = [
    "DUST_RATIO",
    "entry_supply",
    "worthless",
    "RISK_DELAY",
    "RISK_GRACE",
    "risk_change_waits",
    "funding_change_waits",
    "account_mark",
    "mark_down",
    "mark_up",
    "pool_marks",
    "backed",
    "BPS",
    "MAX_POSITIONS",
    "VIRTUAL_ASSETS",
    "VIRTUAL_SHARES",
    "WAD",
    "Leg",
    "LiquidationParams",
    "Margin",
    "MarketRates",
    "Outcome",
    "PoolState",
    "bps_up",
    "ceil_div",
    "closes_at",
    "constant",
    "deposit_nav",
    "free_liquidity",
    "keeper_reward",
    "liquidate",
    "liquidation_fraction",
    "margin",
    "notional_down",
    "notional_up",
    "net_value",
    "pack_position",
    "partial_reachable",
    "plan",
    "planned_fraction",
    "pnl",
    "redeem_nav",
    "remaining_legs",
    "to_assets",
    "to_shares",
    "unpack_position",
]
