# pragma version 0.4.3
"""
@title Funding and skew pricing: the maths of one market's funding word
@license MIT
@notice Pure and stateless, like `margin_math`: the engine's markets, accounts, trading and
        liquidation modules call it with the words they read. One number per market, the
        skew scale S (whole base units), prices both the fill and the funding:

        - Fill price: `oracle * (1 + (skew_before + skew_after) / (2 * S))`, rounded against
          the trader (buys up, sells down). Trades that grow the skew pay, trades that shrink
          it are paid. Liquidations close at the mark, with no premium.
        - Funding velocity: `clamp(skew / S, -1, 1) * max_velocity` per day; the rate drifts
          by it, within +-MAX_RATE (100% of the price per day).
        - Funding index: accrued funding per base unit, in WAD price units. Between two
          records it grows by the mean of the rates at both ends times the elapsed days
          times the price it is recorded at. A long of size s owes s * (index now - index at
          its last settlement); a short receives it. A positive rate: longs pay shorts.

        The skew between two records is the open interest the first of them left, so the
        velocity needs no storage of its own. Positions store their entry less the index at
        their last settlement (`margin_math`), so a position's PnL with its funding is
        `size * ((price - index) - adjusted entry)`: the market's entry sums and the pool's
        exposure carry funding with no per-side slot of their own.
@custom:security Bounds (the configurator checks the parameters; this module clamps state):
        |rate| <= MAX_RATE; |index| <= MAX_INDEX (2**103 - 1 WAD, 10**13 USD per unit: the
        index saturates there, and funding stops rather than overflows; tokens stay conserved
        because every position and the pool read the same index); elapsed time in 40 bits.
"""

from . import codec
from . import constants as k

DAY: constant(uint256) = 86_400  # seconds in the funding day
RATE_ONE: constant(int256) = 10**12  # a funding rate of 100% of the price per day
MAX_RATE: constant(int256) = RATE_ONE  # |funding rate| cap: 100% of the price per day
MAX_INDEX: constant(int256) = 2**103 - 1  # |funding index| cap, WAD price units per base unit
MAX_SKEW_SCALE: constant(uint256) = 2**48 - 1  # whole base units (the word's field)
MAX_VELOCITY_BPS: constant(uint256) = 10_000  # max velocity: 100% of the price per day, per day
# bps per day per day -> RATE_ONE units per day per day
VELOCITY_UNIT: constant(int256) = RATE_ONE // 10_000

F_RATE: constant(uint256) = 40  # bit offset of the funding rate
F_INDEX: constant(uint256) = 88  # bit offset of the funding index
F_SCALE: constant(uint256) = 192  # bit offset of the skew scale
F_VELOCITY: constant(uint256) = 240  # bit offset of the max funding velocity
MASK40: constant(uint256) = 2**40 - 1
MASK48: constant(uint256) = 2**48 - 1
MASK104: constant(uint256) = 2**104 - 1


struct Funding:
    updated_at: uint256  # block time of the last record
    rate: int256  # RATE_ONE = 100% of the price per day; positive: longs pay
    index: int256  # accrued funding per base unit, WAD price units
    skew_scale: uint256  # whole base units (0: funding off)
    max_velocity: uint256  # bps of the price per day, per day


@pure
@internal
def _signed(raw: uint256, bits: uint256) -> int256:
    # two's complement of a `bits`-wide field
    if raw >> (bits - 1) == 0:
        return convert(raw, int256)
    return convert(raw, int256) - convert(1 << bits, int256)


@pure
@internal
def _unpack(word: uint256) -> Funding:
    return Funding(
        updated_at=word & MASK40,
        rate=self._signed((word >> F_RATE) & MASK48, 48),
        index=self._signed((word >> F_INDEX) & MASK104, 104),
        skew_scale=(word >> F_SCALE) & MASK48,
        max_velocity=word >> F_VELOCITY,
    )


@pure
@internal
def _pack(f: Funding) -> uint256:
    """
    @dev Fields within their bounds (clamped by `_accrue`, checked by the configurator).
    """
    return (
        f.updated_at
        | ((convert(convert(f.rate, bytes32), uint256) & MASK48) << F_RATE)
        | ((convert(convert(f.index, bytes32), uint256) & MASK104) << F_INDEX)
        | (f.skew_scale << F_SCALE)
        | (f.max_velocity << F_VELOCITY)
    )


@pure
@internal
def _skew(oi: uint256) -> int256:
    # long OI - short OI (each < 2**127), WAD base units
    return convert(oi & codec.MASK128, int256) - convert(oi >> 128, int256)


@pure
@internal
def _velocity(f: Funding, skew: int256) -> int256:
    """
    @dev clamp(skew / S, -1, 1) * max velocity, in RATE_ONE units per day, truncated.
    """
    scale: int256 = convert(f.skew_scale * k.WAD, int256)
    p: int256 = max(min(skew, scale), -scale)  # |p| <= S * WAD < 2**108
    return p * convert(f.max_velocity, int256) * VELOCITY_UNIT // scale


@pure
@internal
def _accrue(f: Funding, skew: int256, price: uint256, now: uint256) -> Funding:
    """
    @dev The funding record brought to `now`: the rate drifts at the velocity of `skew`
         (clamped to +-MAX_RATE) and the index grows by the mean rate over the elapsed
         time, at `price` (WAD, <= MAX_PRICE); both truncated towards zero.
    """
    if now <= f.updated_at:
        return f
    elapsed: int256 = convert(now - f.updated_at, int256)  # < 2**40 (time fits the field)
    rate: int256 = f.rate + self._velocity(f, skew) * elapsed // convert(DAY, int256)
    rate = max(min(rate, MAX_RATE), -MAX_RATE)
    # |rate sum| <= 2**41, elapsed < 2**40, price < 2**126: the product is below 2**207.
    step: int256 = (f.rate + rate) * elapsed * convert(price, int256) // (
        2 * convert(DAY, int256) * RATE_ONE
    )
    index: int256 = max(min(f.index + step, MAX_INDEX), -MAX_INDEX)
    return Funding(
        updated_at=now,
        rate=rate,
        index=index,
        skew_scale=f.skew_scale,
        max_velocity=f.max_velocity,
    )


@pure
@internal
def _fill_price(price: uint256, skew_before: int256, skew_after: int256, skew_scale: uint256) -> uint256:
    """
    @dev The premium-adjusted fill of a trade that moves the skew from `skew_before` to
         `skew_after`, rounded against the trader (up for a buy, down for a sell). Reverts
         when the premium would take the price to zero or below, or above MAX_PRICE.
    """
    # |skew_before + skew_after| < 2**129 and price < 2**126: the product fits int256.
    num: int256 = convert(price, int256) * (skew_before + skew_after)
    den: int256 = 2 * convert(skew_scale * k.WAD, int256)
    premium: int256 = num // den  # truncated towards zero
    if skew_after > skew_before and premium * den != num and num > 0:
        premium += 1  # a buy rounds up
    elif skew_after < skew_before and premium * den != num and num < 0:
        premium -= 1  # a sell rounds down
    fill: int256 = convert(price, int256) + premium
    assert fill > 0, "clearinghouse: fill price out of range"
    assert fill <= convert(k.MAX_PRICE, int256), "clearinghouse: price overflow"
    return convert(fill, uint256)
