# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Margin maths harness (tests only)
@license MIT
@notice Exposes the internal functions of `modules/margin_math.vy` so that
        tests/test_model_parity.py can compare them with margin_maintenance.model on random
        inputs. Never deployed outside tests.
"""

from ..modules import funding
from ..modules import margin_math as mm


@pure
@external
def notional_down(abs_size: uint256, price_wad: uint256, token_scale: uint256) -> uint256:
    return mm._notional_down(abs_size, price_wad, token_scale)


@pure
@external
def notional_up(abs_size: uint256, price_wad: uint256, token_scale: uint256) -> uint256:
    return mm._notional_up(abs_size, price_wad, token_scale)


@pure
@external
def bps_up(amount: uint256, rate_bps: uint256) -> uint256:
    return mm._bps_up(amount, rate_bps)


@pure
@external
def pnl(size: int256, entry_wad: int256, mark_wad: int256, token_scale: uint256) -> int256:
    return mm._pnl(size, entry_wad, mark_wad, token_scale)


@pure
@external
def liquidation_fraction(equity: int256, initial_req: uint256, fee_total: uint256) -> uint256:
    return mm._liquidation_fraction(equity, initial_req, fee_total)


@pure
@external
def pack_position(size: int256, entry_wad: int256) -> uint256:
    return mm._pack_position(size, entry_wad)


@pure
@external
def unpack_position(word: uint256) -> (int256, int256):
    return mm._unpack_position(word)


@pure
@external
def accrue_funding(word: uint256, skew: int256, price: uint256, now: uint256) -> (uint256, int256):
    return funding._accrue(word, skew, price, now)


@pure
@external
def funding_velocity(word: uint256, skew: int256) -> int256:
    return funding._velocity(word, skew)


@pure
@external
def fill_price(price: uint256, skew_before: int256, skew_after: int256, skew_scale: uint256) -> uint256:
    return funding._fill_price(price, skew_before, skew_after, skew_scale)
