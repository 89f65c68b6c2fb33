# pragma version 0.4.3
"""
@title Settlement price: the final price of a market whose feed died
@license MIT
@notice What a market's feed becomes when the owner settles it through the configurator
        (`propose_settlement`, then `settle_market` after SETTLE_DELAY): one fixed price,
        always current, at which the market's positions are closed by their owners or
        liquidated and the pool is valued. Its PnL no longer moves, so it puts no price risk
        on anyone. Anyone may deploy one; the configurator accepts it only for the feed it
        names in `replaces`, while that feed is past its stale window, and only within
        SETTLE_BAND_BPS of that feed's last valid price.
"""

from interfaces import IPriceFeed

implements: IPriceFeed

price: public(immutable(uint256))  # the settlement price, WAD
replaces: public(immutable(address))  # the dead feed this settles


@deploy
def __init__(price_: uint256, replaces_: address):
    assert price_ > 0, "settlement: zero price"
    assert replaces_ != empty(address), "settlement: zero feed"
    price = price_
    replaces = replaces_


@view
@external
def latest_price() -> uint256:
    return price


@view
@external
def price_data() -> (uint256, uint256, bool):
    return price, block.timestamp, True


@view
@external
def mark(long: bool) -> uint256:
    return price


@view
@external
def pool_marks() -> (uint256, uint256, uint256, bool):
    return price, price, block.timestamp, True


@view
@external
def aggregator() -> address:
    return staticcall IPriceFeed(replaces).aggregator()
