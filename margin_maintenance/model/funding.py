"""Funding and the skew premium, bit for bit as `contracts/modules/funding.vy` computes them.

One number per market, the skew scale S (whole base units), prices the fill and drives the
funding rate; the index is accrued funding per base unit in WAD price units, so a position's
PnL with its funding is `size * ((price - index) - adjusted entry)`. Vyper's signed `//`
truncates towards zero (`vdiv`); every other rounding is as the contract's. A settled market's
funding is frozen with rate and velocity 0 (the index keeps its value, the premium stays).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .constants import WAD, constant

DAY = constant("DAY")  # seconds in the funding day
RATE_ONE = constant("RATE_ONE")  # a rate of 100% of the price per day
MAX_RATE = constant("MAX_RATE")
MAX_INDEX = constant("MAX_INDEX")
MAX_SKEW_SCALE = constant("MAX_SKEW_SCALE")
MAX_VELOCITY_BPS = constant("MAX_VELOCITY_BPS")
VELOCITY_UNIT = constant("VELOCITY_UNIT")  # bps per day per day -> RATE_ONE units
_F_RATE, _F_INDEX, _F_SCALE, _F_VELOCITY = (
    constant("F_RATE"),
    constant("F_INDEX"),
    constant("F_SCALE"),
    constant("F_VELOCITY"),
)


def vdiv(a: int, b: int) -> int:
    """Vyper's signed `//`: truncates towards zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def clamp(x: int, bound: int) -> int:
    return max(min(x, bound), -bound)


@dataclass(frozen=True)
class Funding:
    """`funding.Funding`: one market's record and parameters."""

    updated_at: int = 0
    rate: int = 0  # RATE_ONE = 100% of the price per day; positive: longs pay
    index: int = 0  # WAD price units per base unit
    skew_scale: int = 0  # whole base units
    max_velocity: int = 0  # bps of the price per day, per day

    @property
    def rate_wad(self) -> int:
        """The rate as `market_funding` reports it: WAD of the price per day."""
        return self.rate * (WAD // RATE_ONE)


def _field(word: int, offset: int, bits: int, signed: bool) -> int:
    raw = (word >> offset) & ((1 << bits) - 1)
    return raw - (1 << bits) if signed and raw >> (bits - 1) else raw


def unpack(word: int) -> Funding:
    return Funding(
        updated_at=word & (2**40 - 1),
        rate=_field(word, _F_RATE, 48, True),
        index=_field(word, _F_INDEX, 104, True),
        skew_scale=_field(word, _F_SCALE, 48, False),
        max_velocity=word >> _F_VELOCITY,
    )


def pack(f: Funding) -> int:
    return (
        f.updated_at
        | ((f.rate & (2**48 - 1)) << _F_RATE)
        | ((f.index & (2**104 - 1)) << _F_INDEX)
        | (f.skew_scale << _F_SCALE)
        | (f.max_velocity << _F_VELOCITY)
    )


def skew(long_oi: int, short_oi: int) -> int:
    return long_oi - short_oi


def velocity(f: Funding, skew_: int) -> int:
    """clamp(skew / S, -1, 1) * max velocity, RATE_ONE units per day, truncated."""
    scale = f.skew_scale * WAD
    return vdiv(clamp(skew_, scale) * f.max_velocity * VELOCITY_UNIT, scale)


def accrue(f: Funding, skew_: int, price: int, now: int) -> Funding:
    """`funding._accrue`: the record brought to `now` at `price` on the skew left since."""
    if now <= f.updated_at:
        return f
    elapsed = now - f.updated_at
    rate = clamp(f.rate + vdiv(velocity(f, skew_) * elapsed, DAY), MAX_RATE)
    step = vdiv((f.rate + rate) * elapsed * price, 2 * DAY * RATE_ONE)
    return replace(f, updated_at=now, rate=rate, index=clamp(f.index + step, MAX_INDEX))


class FillOutOfRange(ValueError):
    """The premium takes the fill to zero or below ("clearinghouse: fill price out of
    range") or above MAX_PRICE ("clearinghouse: price overflow")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def fill_price(price: int, skew_before: int, skew_after: int, skew_scale: int) -> int:
    """`funding._fill_price`: oracle * (1 + (before + after) / (2S)), against the trader."""
    num = price * (skew_before + skew_after)
    den = 2 * skew_scale * WAD
    premium = vdiv(num, den)
    if premium * den != num:
        if skew_after > skew_before and num > 0:
            premium += 1  # a buy rounds up
        elif skew_after < skew_before and num < 0:
            premium -= 1  # a sell rounds down
    fill = price + premium
    if fill <= 0:
        raise FillOutOfRange("clearinghouse: fill price out of range")
    if fill > constant("MAX_PRICE"):
        raise FillOutOfRange("clearinghouse: price overflow")
    return fill


def close_cost(price: int, skew_: int, size: int, close: int, skew_scale: int) -> int:
    """`funding._close_cost`: the per-unit skew premium a liquidation's close of `close` pays
    when it grows the skew against the position (0 when the premium would pay it)."""
    mean2 = close - 2 * skew_ if size > 0 else 2 * skew_ + close
    if mean2 <= 0:
        return 0
    den = 2 * skew_scale * WAD
    return min(-(-price * mean2 // den), price)
