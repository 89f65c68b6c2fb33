# pragma version 0.4.3
"""
@title Market feed on signed prices, with the push feed behind it
@license MIT
@notice One per market, the engine's `IPriceFeed` like `PriceFeed`: every read takes the
        newer of the market's latest signed report (PriceVerifier, accepted in this or any
        earlier transaction) and its push feed (a `PriceFeed` adapter on the Chainlink
        aggregator). A trade (`latest_price`) takes a signed price no older than
        `trade_max_age`; an account's marks and the pool's (`mark`, `pool_marks`,
        `price_data`) take one no older than `liquidation_max_age`, which is longer: a
        trader chooses among fewer reports than a liquidator may use. Without a usable signed
        price every read is the push feed's own, with its stale window and conservative
        marks.

        Sequencer rule (an L2 with an uptime feed on the push adapter): a trade on a signed
        price still waits for the sequencer and its grace period (`sequencer_up`), as every
        push-priced trade does, since the traders could not react while it was down; marks
        and liquidations on a fresh signed price do not wait. The signed report is itself
        evidence of the market price, and a gate that holds liquidations back when the chain
        comes back is what deepens bad debt (Aave v3.7 removed its sentinel from
        liquidations for this reason).
"""

from interfaces import IPriceFeed

implements: IPriceFeed


interface IVerifier:
    def latest(feed_id: bytes32) -> (uint256, uint256): view


interface IPushFeed:
    def latest_price() -> uint256: view
    def price_data() -> (uint256, uint256, bool): view
    def mark(long: bool) -> uint256: view
    def pool_marks() -> (uint256, uint256, uint256, bool): view
    def aggregator() -> address: view
    def sequencer_up() -> bool: view


verifier: public(immutable(address))
feed_id: public(immutable(bytes32))
push: public(immutable(address))  # the market's PriceFeed adapter
trade_max_age: public(immutable(uint256))
liquidation_max_age: public(immutable(uint256))


@deploy
def __init__(
    verifier_: address,
    feed_id_: bytes32,
    push_: address,
    trade_max_age_: uint256,
    liquidation_max_age_: uint256,
):
    assert verifier_ != empty(address) and push_ != empty(address), "signed feed: zero address"
    assert feed_id_ != empty(bytes32), "signed feed: zero feed id"
    assert trade_max_age_ > 0 and trade_max_age_ <= liquidation_max_age_, "signed feed: bad ages"
    verifier = verifier_
    feed_id = feed_id_
    push = push_
    trade_max_age = trade_max_age_
    liquidation_max_age = liquidation_max_age_


@view
@external
def signed() -> (uint256, uint256):
    """
    @notice The latest accepted report: (price in WAD, publish time).
    """
    return staticcall IVerifier(verifier).latest(feed_id)


@view
@external
def latest_price() -> uint256:
    """
    @notice The trade price: a signed price no older than `trade_max_age` and newer than the
            push answer, with the sequencer up; otherwise the push feed's `latest_price`
            (which reverts with its reason when stale).
    """
    price: uint256 = 0
    at: uint256 = 0
    price, at = self._signed(trade_max_age)
    if price != 0:
        data: (uint256, uint256, bool) = staticcall IPushFeed(push).price_data()
        if at >= data[1]:
            assert staticcall IPushFeed(push).sequencer_up(), "oracle: sequencer down or in its grace period"
            return price
        if data[2]:  # the push answer is newer and valid: it is what latest_price returns
            return data[0]
    return staticcall IPushFeed(push).latest_price()


@view
@external
def price_data() -> (uint256, uint256, bool):
    """
    @notice (price in WAD, its time, ok): the signed price when usable and newer than the
            push answer, else the push feed's `price_data`.
    """
    price: uint256 = 0
    at: uint256 = 0
    price, at = self._signed(liquidation_max_age)
    data: (uint256, uint256, bool) = staticcall IPushFeed(push).price_data()
    if price != 0 and at >= data[1]:
        return price, at, True
    return data


@view
@external
def mark(long: bool) -> uint256:
    """
    @notice An account's position is judged at the signed price when usable and newer than
            the push answer, else at the push feed's mark (its stale window included).
    """
    price: uint256 = 0
    at: uint256 = 0
    price, at = self._signed(liquidation_max_age)
    if price != 0:
        data: (uint256, uint256, bool) = staticcall IPushFeed(push).price_data()
        if at >= data[1]:
            return price
        if data[2]:  # the push answer is newer and fresh: its mark is its price (one read)
            return data[0]
    return staticcall IPushFeed(push).mark(long)


@view
@external
def pool_marks() -> (uint256, uint256, uint256, bool):
    """
    @notice The pool's marks: the signed price for both sides when usable and newer than the
            push answer, else the push feed's.
    """
    price: uint256 = 0
    at: uint256 = 0
    price, at = self._signed(liquidation_max_age)
    if price != 0:
        data: (uint256, uint256, bool) = staticcall IPushFeed(push).price_data()
        if at >= data[1]:
            return price, price, at, True
        if data[2]:  # the push answer is newer and fresh: both marks are its price
            return data[0], data[0], data[1], True
    return staticcall IPushFeed(push).pool_marks()


@view
@external
def aggregator() -> address:
    return staticcall IPushFeed(push).aggregator()


@view
@internal
def _signed(max_age: uint256) -> (uint256, uint256):
    # The latest signed price and its time when no older than max_age, else (0, its time).
    price: uint256 = 0
    at: uint256 = 0
    price, at = staticcall IVerifier(verifier).latest(feed_id)
    if price == 0 or at > block.timestamp or block.timestamp - at > max_age:
        return 0, at
    return price, at
