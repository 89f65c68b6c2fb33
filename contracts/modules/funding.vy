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
        - Frozen: rate 0 and velocity 0 (a settlement writes them): the index keeps its
          last value; the premium stays the live market's.
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
PARAMS: constant(uint256) = ~(2**192 - 1)  # the skew scale and velocity fields


# The accrual runs for every funded position an account load marks, so it works on the packed
# word with unchecked arithmetic whose bounds are stated at each step (a checked version cost
# about 3,000 gas more per liquidation).


@pure
@internal
def _field(word: uint256, offset: uint256, bits: uint256) -> int256:
    # a two's complement field: shifted to the top, then arithmetically back down
    top: uint256 = word << (256 - offset - bits)
    return convert(convert(top, bytes32), int256) >> (256 - bits)


@pure
@internal
def _rate(word: uint256) -> int256:
    return self._field(word, F_RATE, 48)


@pure
@internal
def _skew_scale(word: uint256) -> uint256:
    return (word >> F_SCALE) & MASK48


@pure
@internal
def _pack(updated_at: uint256, rate: int256, index: int256, params: uint256) -> uint256:
    """
    @dev `params`: a word whose skew scale and velocity fields are kept (the rest is masked).
         |rate| <= MAX_RATE, |index| <= MAX_INDEX and updated_at < 2**40 fit their fields.
    """
    r: uint256 = convert(convert(rate, bytes32), uint256) & MASK48
    i: uint256 = convert(convert(index, bytes32), uint256) & MASK104
    return updated_at | (r << F_RATE) | (i << F_INDEX) | (params & PARAMS)


@pure
@internal
def _params(skew_scale: uint256, max_velocity_bps: uint256) -> uint256:
    return (skew_scale << F_SCALE) | (max_velocity_bps << F_VELOCITY)


@pure
@internal
def _skew(oi: uint256) -> int256:
    # long OI - short OI (each < 2**127), WAD base units
    return convert(oi & codec.MASK128, int256) - convert(oi >> 128, int256)


@pure
@internal
def _velocity(word: uint256, skew: int256) -> int256:
    """
    @dev clamp(skew / S, -1, 1) * max velocity, in RATE_ONE units per day, truncated.
    """
    # S < 2**48 and WAD < 2**60: scale < 2**108; |p| <= scale; the velocity's bps < 2**16 and
    # VELOCITY_UNIT < 2**27: the product is below 2**151. scale > 0 (funding on: S >= 1).
    scale: int256 = convert(unsafe_mul(self._skew_scale(word), k.WAD), int256)
    p: int256 = max(min(skew, scale), -scale)
    v: int256 = unsafe_mul(unsafe_mul(p, convert(word >> F_VELOCITY, int256)), VELOCITY_UNIT)
    return unsafe_div(v, scale)


@pure
@internal
def _accrue(word: uint256, skew: int256, price: uint256, now: uint256) -> (uint256, int256):
    """
    @dev The funding word brought to `now` and its index: the rate drifts at the velocity of
         `skew` (clamped to +-MAX_RATE) and the index grows by the mean rate over the
         elapsed time, at `price` (WAD, <= MAX_PRICE); both truncated towards zero. The
         fields are decoded inline (`_rate`, `_velocity` and `_pack` spelled out):
         this runs for every funded position an account load marks.
    """
    # the index: bits 88-191, sign-extended (shifted to the top, arithmetically back down)
    index: int256 = convert(convert(word << 64, bytes32), int256) >> 152
    updated: uint256 = word & MASK40
    params: uint256 = word >> F_SCALE  # skew scale | velocity << 48
    if now <= updated:
        return word, index
    # now < 2**40 (block times): elapsed < 2**40.
    elapsed: int256 = convert(unsafe_sub(now, updated), int256)
    rate0: int256 = convert(convert(word << 168, bytes32), int256) >> 208  # bits 40-87
    # the velocity, `_velocity`: S < 2**48 and WAD < 2**60, so scale < 2**108 and |p| <=
    # scale; the velocity's bps < 2**16 and VELOCITY_UNIT < 2**27: the product is below
    # 2**151; |velocity| <= 10**12 (RATE_ONE at the largest bps), so the drift is below 2**80.
    scale: int256 = convert(unsafe_mul(params & MASK48, k.WAD), int256)
    p: int256 = max(min(skew, scale), -scale)
    velocity: int256 = unsafe_div(
        unsafe_mul(unsafe_mul(p, convert(params >> 48, int256)), VELOCITY_UNIT), scale
    )
    drift: int256 = unsafe_div(unsafe_mul(velocity, elapsed), 86_400)
    rate: int256 = max(min(unsafe_add(rate0, drift), MAX_RATE), -MAX_RATE)
    # |rate0 + rate| < 2**41, elapsed < 2**40, price < 2**126: the product is below 2**207.
    step: int256 = unsafe_div(
        unsafe_mul(unsafe_mul(unsafe_add(rate0, rate), elapsed), convert(price, int256)),
        2 * 86_400 * RATE_ONE,
    )
    # |index| <= MAX_INDEX < 2**103 and |step| < 2**207: no wrap; clamped back to the field.
    index = max(min(unsafe_add(index, step), MAX_INDEX), -MAX_INDEX)
    r: uint256 = convert(convert(rate, bytes32), uint256) & MASK48
    i: uint256 = convert(convert(index, bytes32), uint256) & MASK104
    return now | (r << F_RATE) | (i << F_INDEX) | (params << F_SCALE), index


@pure
@internal
def _fill_price(
    price: uint256, skew_before: int256, skew_after: int256, skew_scale: uint256
) -> uint256:
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


@pure
@internal
def _close_cost(price: uint256, skew: int256, size: int256, close: uint256, skew_scale: uint256) -> uint256:
    """
    @dev What closing `close` of a position of `size` at the mark `price` would pay in skew
         premium if the close grew the skew against it (token-free, WAD price units times
         size: the caller converts), or 0 when the premium would pay it: a liquidation pays
         the premium a trade would, never the rebate (so a liquidation is never a cheaper
         exit than a close, and a hedged pair cannot take the premium twice). Per unit
         `price * |skew_before + skew_after| / (2S)`, rounded up and capped at `price` (the
         configurator keeps it within 50%); returns that per-unit premium.
    """
    # The close's trade moves the skew by -sign(size) * close: before + after = 2 skew -+ close.
    # |skew| < 2**127 (each side's OI is) and close <= |size| < 2**127: no wrap.
    mean2: int256 = unsafe_add(skew, skew)
    if size > 0:
        mean2 = unsafe_sub(convert(close, int256), mean2)  # a sell: fills below the mark
    else:
        mean2 = unsafe_add(mean2, convert(close, int256))  # a buy: fills above the mark
    if mean2 <= 0:  # the close is paid
        return 0
    # 0 < mean2 < 2**129 and price < 2**126: the product is below 2**255; 2 S WAD < 2**110.
    den: uint256 = unsafe_mul(unsafe_add(skew_scale, skew_scale), k.WAD)
    per: uint256 = unsafe_div(
        unsafe_add(unsafe_mul(price, convert(mean2, uint256)), unsafe_sub(den, 1)), den
    )
    return min(per, price)
