"""Margin maths, bit for bit as the engine does it (`contracts/modules/margin_math.vy` and the
account load of `modules/accounts.vy`). Every function names what it mirrors; amounts are token
units, prices WAD, sizes signed WAD base units, rates basis points. Rounding favours the
protocol: requirements and fees up, trader PnL towards minus infinity, payouts down.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .constants import BPS, HALF, WAD


def ceil_div(a: int, b: int) -> int:
    """a / b rounded up, for a >= 0 and b > 0."""
    return -(-a // b)


def notional_down(abs_size: int, price_wad: int, token_scale: int) -> int:
    """`margin_math._notional_down`: |size| * price in token units, rounded down."""
    return abs_size * price_wad // (WAD * token_scale)


def notional_up(abs_size: int, price_wad: int, token_scale: int) -> int:
    """`margin_math._notional_up`: |size| * price in token units, rounded up."""
    return ceil_div(abs_size * price_wad, WAD * token_scale)


def bps_up(amount: int, rate_bps: int) -> int:
    """`margin_math._bps_up`: amount * rate / BPS, rounded up."""
    return ceil_div(amount * rate_bps, BPS)


def pnl(size: int, entry_wad: int, mark_wad: int, token_scale: int) -> int:
    """`margin_math._pnl`: size * (mark - entry) in token units, towards minus infinity (with
    funding both are funding-adjusted: a price less the funding index)."""
    return size * (mark_wad - entry_wad) // (WAD * token_scale)


def liquidation_fraction(equity: int, initial: int, fee_total: int) -> int:
    """`margin_math._liquidation_fraction`: f = (IMR - E) / (IMR - FEE) in WAD, rounded up,
    clamped to [0, WAD]."""
    if equity >= initial:
        return 0
    num, den = initial - equity, initial - fee_total
    if num >= den:
        return WAD
    return ceil_div(num * WAD, den)


def pack_position(size: int, entry_wad: int) -> int:
    """`margin_math._pack_position`: size and the (funding-adjusted, signed) entry as 128-bit
    two's complement halves, size high."""
    return ((size & (HALF - 1)) << 128) | (entry_wad & (HALF - 1))


def _half(raw: int) -> int:
    return raw if raw < HALF // 2 else raw - HALF


def unpack_position(word: int) -> tuple[int, int]:
    """`margin_math._unpack_position`: (size, entry)."""
    return _half(word >> 128), _half(word & (HALF - 1))


@dataclass(frozen=True)
class MarketRates:
    """A market's risk configuration (`Clearinghouse.market`)."""

    initial_margin_bps: int
    maintenance_margin_bps: int
    liquidation_fee_bps: int
    trading_fee_bps: int = 0
    min_position_notional: int = 0  # token units (compared rounded down)


@dataclass(frozen=True)
class Leg:
    """One open position marked at the oracle (`Clearinghouse.Leg`)."""

    market_id: int
    size: int  # signed WAD base units
    entry: int  # WAD, less the funding index at the last settlement
    price: int  # WAD, the oracle price now
    rates: MarketRates
    index: int = 0  # the market's funding index now, at `price` (0: funding off)

    @property
    def mark(self) -> int:
        """The price less the funding index: what the entry is compared with."""
        return self.price - self.index

    @property
    def pnl_wad(self) -> int:
        return self.size * (self.mark - self.entry)


@dataclass(frozen=True)
class Margin:
    """`Clearinghouse.AccountState` without the legs: what `_load_known` sums."""

    collateral: int
    equity: int  # collateral + unrealised PnL
    initial: int  # initial requirement, rounded up leg by leg, with the reserve
    maintenance: int  # maintenance requirement, rounded up leg by leg, with the reserve
    liq_fee: int  # liquidation fee on every position's full notional, rounded up leg by leg
    positions: int
    reserve: int = 0  # the keeper reward both requirements reserve (`AccountState.reserve`)
    gas_reward: int = 0  # its gas-priced part, unclamped (`AccountState.gas_reward`)

    @property
    def liquidatable(self) -> bool:
        """`Clearinghouse.is_liquidatable`: a position and equity < maintenance."""
        return self.positions > 0 and self.equity < self.maintenance


def margin(
    collateral: int,
    legs: Sequence[Leg],
    token_scale: int,
    reserve: Callable[[int], tuple[int, int]] | None = None,
) -> Margin:
    """`Clearinghouse._load_known`: equity and requirements of an account. `reserve(n)` is
    (gas reward, reserve) for n positions (`keeper.reserve_for`; none by default)."""
    equity, initial, maintenance, liq_fee = collateral, 0, 0, 0
    for leg in legs:
        n = notional_up(abs(leg.size), leg.price, token_scale)
        equity += pnl(leg.size, leg.entry, leg.mark, token_scale)
        initial += bps_up(n, leg.rates.initial_margin_bps)
        maintenance += bps_up(n, leg.rates.maintenance_margin_bps)
        liq_fee += bps_up(n, leg.rates.liquidation_fee_bps)
    gas = held = 0
    if legs and reserve is not None:
        gas, held = reserve(len(legs))
    return Margin(
        collateral, equity, initial + held, maintenance + held, liq_fee, len(legs), held, gas
    )
