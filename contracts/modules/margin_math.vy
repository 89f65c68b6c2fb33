# pragma version 0.4.3
"""
@title Margin maths
@license MIT
@notice Pure, stateless helpers shared by the clearinghouse: notional and PnL in
        collateral-token units, basis-point requirements, the partial-liquidation
        fraction, and the one-slot packing of a position. Every rounding
        direction favours the protocol: requirements and fees round up, trader
        PnL rounds down (towards minus infinity), payouts round down.
"""

from . import constants as k

WAD: constant(uint256) = k.WAD
BPS: constant(uint256) = k.BPS
HALF: constant(uint256) = 2**128  # 2**128: width of each half of a packed position


@pure
@internal
def _notional_down(abs_size: uint256, price_wad: uint256, token_scale: uint256) -> uint256:
    """
    @dev |size| * price in collateral-token units, rounded down (for payouts).
         abs_size < 2**127 and price < 2**128, so the product < 2**255 cannot wrap.
    """
    return unsafe_mul(abs_size, price_wad) // (WAD * token_scale)


@pure
@internal
def _notional_up(abs_size: uint256, price_wad: uint256, token_scale: uint256) -> uint256:
    """
    @dev |size| * price in collateral-token units, rounded up (for requirements and fees).
    """
    d: uint256 = WAD * token_scale
    p: uint256 = unsafe_mul(abs_size, price_wad)  # < 2**255, see _notional_down
    return unsafe_div(unsafe_add(p, unsafe_sub(d, 1)), d)  # p + d - 1 < 2**256: d <= 1e36


@pure
@internal
def _bps_up(amount: uint256, rate_bps: uint256) -> uint256:
    """
    @dev amount * rate / BPS, rounded up.
    """
    return (amount * rate_bps + unsafe_sub(BPS, 1)) // BPS


@pure
@internal
def _pnl(size: int256, entry: int256, mark: int256, token_scale: uint256) -> int256:
    """
    @dev PnL of `size` entered at `entry`, marked at `mark`, in token units, rounded towards
         minus infinity (a loss rounds up in size). With funding both are funding-adjusted
         (price less the funding index, `funding.vy`), so the PnL includes the funding
         accrued since the entry. |size| < 2**127 and |mark - entry| < 2**127 (prices below
         MAX_PRICE = 2**126 - 1, indices below 2**103): the product cannot wrap.
    """
    raw: int256 = unsafe_mul(size, mark - entry)
    d: int256 = convert(WAD * token_scale, int256)
    q: int256 = unsafe_div(raw, d)  # truncates towards zero; d > 0
    if raw < 0 and unsafe_mul(q, d) != raw:
        q = unsafe_sub(q, 1)  # floor for negatives; q > -2**255
    return q


@pure
@internal
def _liquidation_fraction(equity: int256, initial_req: uint256, fee_total: uint256) -> uint256:
    """
    @dev Smallest fraction f (WAD) of every position to close so that the equity left
         after the liquidation fee covers the initial requirement of what remains:
         E - f*FEE >= (1 - f)*IMR  =>  f = (IMR - E) / (IMR - FEE), rounded up and
         clamped to [0, WAD]. IMR > FEE holds because every market has fee < mm < im.
    """
    imr: int256 = convert(initial_req, int256)
    if equity >= imr:
        return 0
    den: uint256 = initial_req - fee_total  # > 0, see above
    num: uint256 = convert(imr - equity, uint256)
    if num >= den:
        return WAD
    return (num * WAD + unsafe_sub(den, 1)) // den


@pure
@internal
def _pack_position(size: int256, entry: int256) -> uint256:
    """
    @dev One storage slot per position: size as 128-bit two's complement in the high half,
         the (funding-adjusted) entry as 128-bit two's complement in the low half. Callers
         bound |size| <= k.MAX_SIZE and |entry| < 2**127 (a price <= MAX_PRICE less an
         index within +-2**103).
    """
    # bytes32 keeps the two's complement bits a direct conversion of a negative would refuse
    return ((self._bits(size) & (HALF - 1)) << 128) | (self._bits(entry) & (HALF - 1))


@pure
@internal
def _bits(x: int256) -> uint256:
    return convert(convert(x, bytes32), uint256)


@pure
@internal
def _unpack_position(word: uint256) -> (int256, int256):
    return self._half(word >> 128), self._half(word & (HALF - 1))


@pure
@internal
def _half(raw: uint256) -> int256:
    # a 128-bit two's complement field
    if raw < HALF // 2:
        return convert(raw, int256)
    return convert(raw, int256) - convert(HALF, int256)
