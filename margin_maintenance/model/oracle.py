"""The price-feed adapter's marks for a stale feed, bit for bit as `PriceFeed.vy` makes them.

Within `stale_window` seconds past its heartbeat a feed's last valid price is still used,
moved `stale_haircut_bps` against whoever is judged: against the position for an account's
health (`account_mark`), against the LPs for the pool's value (`pool_marks`). Fresh prices
pass through unchanged.
"""

from __future__ import annotations

from .constants import BPS


def mark_down(price: int, haircut_bps: int) -> int:
    """`PriceFeed._down`: the price moved down, rounded down."""
    return price * (BPS - haircut_bps) // BPS


def mark_up(price: int, haircut_bps: int) -> int:
    """`PriceFeed._up`: the price moved up, rounded up."""
    return (price * (BPS + haircut_bps) + BPS - 1) // BPS


def account_mark(price: int, haircut_bps: int, long: bool, stale: bool) -> int:
    """`PriceFeed.mark`: a long judged lower and a short higher while the feed is stale."""
    if not stale:
        return price
    return mark_down(price, haircut_bps) if long else mark_up(price, haircut_bps)


def pool_marks(price: int, haircut_bps: int, stale: bool) -> tuple[int, int]:
    """`PriceFeed.pool_marks` prices (the longs', the shorts'): against the LPs, so the
    longs marked up and the shorts down while the feed is stale."""
    if not stale:
        return price, price
    return mark_up(price, haircut_bps), mark_down(price, haircut_bps)
