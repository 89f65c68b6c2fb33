"""Trade helpers and the engine's maths at the deployed token scale, for the tests that trade
through `Clearinghouse.trade` and move prices through the mock aggregators.

The maths is `margin_maintenance.model`'s (checked bit for bit against the contracts in
tests/test_model_parity.py) with the test system's token scale filled in. `ch`, `system` and
the accounts are Ape objects; nothing here imports Ape itself.
"""

from __future__ import annotations

from typing import Any

from margin_maintenance import model
from support.constants import FEED_DECIMALS, MAX_UINT, TOKEN_SCALE, USDC

# ---- The margin maths at the deployed token scale ----


def notional_up(size: int, price_wad: int) -> int:
    """|size| * price in token units, rounded up (requirements and fees)."""
    return model.notional_up(abs(size), price_wad, TOKEN_SCALE)


def notional_down(size: int, price_wad: int) -> int:
    """|size| * price in token units, rounded down (the minimum-notional check)."""
    return model.notional_down(abs(size), price_wad, TOKEN_SCALE)


def pnl(size: int, entry_wad: int, price_wad: int) -> int:
    """Unrealised PnL in token units, rounded towards minus infinity."""
    return model.pnl(size, entry_wad, price_wad, TOKEN_SCALE)


def units(amount: float) -> int:
    """Whole tokens -> token units."""
    return round(amount * USDC)


# ---- Trades and prices ----


def buy(ch: Any, who: Any, market_id: int, size: int, limit: int = MAX_UINT) -> Any:
    """Buy `size` (WAD base units) at any price up to `limit`; the receipt."""
    return ch.trade(market_id, size, limit, sender=who)


def sell(ch: Any, who: Any, market_id: int, size: int, limit: int = 0) -> Any:
    """Sell `size` (WAD base units) at any price down to `limit`; the receipt."""
    return ch.trade(market_id, -size, limit, sender=who)


def move(system: Any, deployer: Any, market_id: int, answer: int) -> int:
    """Set a market's aggregator answer (FEED_DECIMALS units) exactly; the price in WAD."""
    system.aggregators[market_id].set_price(answer, sender=deployer)
    return answer * 10 ** (18 - FEED_DECIMALS)
