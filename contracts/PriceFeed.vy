# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Price-feed adapter
@license MIT
@notice Turns one Chainlink-style aggregator into a validated WAD price
        (1e18 = 1 USD per whole base unit). `latest_price` reverts, with the
        reason, on a non-positive answer, an incomplete round, a stale answer
        (older than `max_staleness` seconds), an answer at or beyond the
        configured floor/ceiling (the aggregator's own min/max clamps, behind
        the lending losses of the LUNA crash), and, when an L2 sequencer-uptime
        feed is configured, while the sequencer is down or within the grace
        period after it came back.

        A feed that only stops updating freezes nothing: for `stale_window` seconds
        past `max_staleness` (or while the sequencer is down) its last valid price is
        still used, moved `stale_haircut_bps` against whoever is judged: against the
        position when an account's health is judged (`mark`), against the LPs when the
        pool's value is judged (`pool_marks`). Trades at that price are never allowed
        (`latest_price` still reverts). Past the window the market needs settlement.
@custom:security Every parameter is immutable: a change of feed or bounds is a
        new adapter, set on the market by the owner (and logged there). Reads
        cost no storage slot of this contract, only the aggregator's.
"""

from interfaces import IAggregatorV3
from interfaces import IPriceFeed

implements: IPriceFeed

WAD_DECIMALS: constant(uint8) = 18  # decimals of the price this adapter returns
MAX_FEED_DECIMALS: constant(uint8) = 36  # largest aggregator precision accepted
BPS: constant(uint256) = 10_000
MAX_HAIRCUT_BPS: constant(uint256) = 5_000  # a stale mark moves at most 50%
# Prices above this are not marked (the engine's own bound, MAX_PRICE = 2**126 - 1, is far below it).
MAX_MARKED: constant(uint256) = max_value(uint256) // (2 * BPS)

aggregator: public(immutable(address))  # Chainlink AggregatorV3 (or the mock)
feed_decimals: public(immutable(uint8))  # aggregator's `decimals()`, read once at deploy
max_staleness: public(immutable(uint256))  # seconds an answer stays fresh (the heartbeat)
min_answer: public(immutable(int256))  # floor, in aggregator units: answers <= it are rejected
max_answer: public(immutable(int256))  # ceiling, in aggregator units: answers >= it rejected
sequencer_feed: public(immutable(address))  # L2 sequencer-uptime feed; empty = none
sequencer_grace_period: public(immutable(uint256))  # seconds after the sequencer is back
stale_window: public(immutable(uint256))  # seconds past max_staleness with conservative marks
stale_haircut_bps: public(immutable(uint256))  # how far those marks move against the judged
# @dev WAD = answer * scale_up / scale_down; one of the two is 1.
scale_up: immutable(uint256)  # 10**(18 - decimals) when decimals <= 18, else 1
scale_down: immutable(uint256)  # 10**(decimals - 18) when decimals > 18, else 1


@deploy
def __init__(
    aggregator_: address,
    max_staleness_: uint256,
    min_answer_: int256,
    max_answer_: int256,
    sequencer_feed_: address,
    sequencer_grace_period_: uint256,
    stale_window_: uint256,
    stale_haircut_bps_: uint256,
):
    """
    @param aggregator_ The Chainlink-style aggregator to read.
    @param max_staleness_ Seconds after which an answer is stale (> 0).
    @param min_answer_ Floor in aggregator units (>= 0); answers at or below it revert.
    @param max_answer_ Ceiling in aggregator units (> floor); answers at or above it revert.
    @param sequencer_feed_ L2 sequencer-uptime feed, or empty(address) on L1/local.
    @param sequencer_grace_period_ Seconds to wait after the sequencer comes back up.
    @param stale_window_ Seconds past `max_staleness_` during which the last valid price
           is still used for conservative marks (0: none, a stale feed stops its market).
    @param stale_haircut_bps_ How far a conservative mark moves (<= 5,000 bps).
    """
    assert aggregator_ != empty(address), "oracle: zero aggregator"
    assert max_staleness_ > 0, "oracle: zero staleness"
    assert min_answer_ >= 0, "oracle: negative floor"
    assert max_answer_ > min_answer_ + 1, "oracle: ceiling below floor"
    d: uint8 = staticcall IAggregatorV3(aggregator_).decimals()
    assert d <= MAX_FEED_DECIMALS, "oracle: too many decimals"
    assert stale_haircut_bps_ <= MAX_HAIRCUT_BPS, "oracle: haircut too large"

    aggregator = aggregator_
    feed_decimals = d
    max_staleness = max_staleness_
    min_answer = min_answer_
    max_answer = max_answer_
    sequencer_feed = sequencer_feed_
    sequencer_grace_period = sequencer_grace_period_
    stale_window = stale_window_
    stale_haircut_bps = stale_haircut_bps_
    up: uint256 = 1
    down: uint256 = 1
    if d <= WAD_DECIMALS:
        up = 10 ** convert(WAD_DECIMALS - d, uint256)
    else:
        down = 10 ** convert(d - WAD_DECIMALS, uint256)
    scale_up = up
    scale_down = down


@view
@external
def latest_price() -> uint256:
    """
    @notice The validated price in WAD, or a revert that says why there is none.
    """
    if sequencer_feed != empty(address):
        self._check_sequencer()

    answer: int256 = 0
    updated_at: uint256 = 0
    complete: bool = False
    answer, updated_at, complete = self._round()

    assert answer > 0, "oracle: non-positive price"
    assert complete, "oracle: incomplete round"
    assert updated_at <= block.timestamp, "oracle: price from the future"
    # unsafe_sub: updated_at <= block.timestamp was asserted on the line above.
    assert unsafe_sub(block.timestamp, updated_at) <= max_staleness, "oracle: stale price"
    assert answer > min_answer and answer < max_answer, "oracle: price out of bounds"

    # Checked arithmetic: an answer too large for a WAD price reverts rather than wraps.
    price: uint256 = convert(answer, uint256) * scale_up // scale_down
    # A feed with more than 18 decimals can truncate a tiny positive answer to zero.
    assert price > 0, "oracle: non-positive price"
    return price


@view
@external
def sequencer_up() -> bool:
    """
    @notice Whether the L2 sequencer is up and past its grace period (always, without an
            uptime feed): the gate a signed-price trade waits for too.
    """
    if sequencer_feed == empty(address):
        return True
    return self._sequencer_up()


@view
@external
def price_data() -> (uint256, uint256, bool):
    """
    @notice The same checks as `latest_price`, without a revert: (price in WAD, the
            answer's update time, ok). `ok` is false when `latest_price` would revert, and
            the price is then 0 whenever the answer itself is unusable (non-positive,
            incomplete, from the future, out of bounds, too large); a valid answer that is
            only stale, or read while the sequencer is down, keeps its last price.
    """
    return self._data()


@view
@external
def mark(long: bool) -> uint256:
    """
    @notice The price an account's position is judged at (WAD): the price when fresh;
            within the stale window, the last valid price moved `stale_haircut_bps`
            against the position (down for a long, up for a short, each rounded against
            it); 0 when there is none (past the window, or no usable answer: then
            `latest_price` says why).
    """
    price: uint256 = 0
    updated_at: uint256 = 0
    fresh: bool = False
    price, updated_at, fresh = self._data()
    if fresh:
        return price
    if not self._in_window(price, updated_at):
        return 0
    if long:
        return self._down(price)
    return self._up(price)


@view
@external
def pool_marks() -> (uint256, uint256, uint256, bool):
    """
    @notice The prices the pool's value is judged at, against the LPs: (the longs'
            price, the shorts' price, priced at, ok). Fresh: the price twice and its update
            time. Within the stale window: the longs marked up and the shorts down (their
            profit at its largest, their loss at its smallest), priced now (a conservative
            mark waits for no update). Otherwise (0, 0, update time, false).
    """
    price: uint256 = 0
    updated_at: uint256 = 0
    fresh: bool = False
    price, updated_at, fresh = self._data()
    if fresh:
        return price, price, updated_at, True
    if not self._in_window(price, updated_at):
        return 0, 0, updated_at, False
    return self._up(price), self._down(price), block.timestamp, True


@view
@internal
def _data() -> (uint256, uint256, bool):
    # (price, update time, fresh): price 0 when the answer is unusable; a usable answer
    # that is stale or read while the sequencer is down keeps its price, not fresh.
    answer: int256 = 0
    updated_at: uint256 = 0
    complete: bool = False
    answer, updated_at, complete = self._round()
    if answer <= min_answer or answer >= max_answer or not complete:
        return 0, updated_at, False
    if updated_at > block.timestamp:
        return 0, updated_at, False
    # min_answer >= 0: the answer is positive. A checked product would revert; bound it.
    if convert(answer, uint256) > max_value(uint256) // scale_up:
        return 0, updated_at, False
    price: uint256 = convert(answer, uint256) * scale_up // scale_down
    if price == 0:
        return 0, updated_at, False
    fresh: bool = unsafe_sub(block.timestamp, updated_at) <= max_staleness
    if sequencer_feed != empty(address) and fresh:
        fresh = self._sequencer_up()
    return price, updated_at, fresh

@view
@internal
def _in_window(price: uint256, updated_at: uint256) -> bool:
    # A valid last price (the answer is usable, only stale or read while the sequencer is
    # down) no older than the heartbeat plus the window. `_data` returns a zero price for an
    # unusable answer and checked updated_at <= block.timestamp for a usable one.
    return (
        price != 0
        and price <= MAX_MARKED
        and unsafe_sub(block.timestamp, updated_at) <= max_staleness + stale_window
    )


@view
@internal
def _down(price: uint256) -> uint256:
    return price * (BPS - stale_haircut_bps) // BPS


@view
@internal
def _up(price: uint256) -> uint256:
    return (price * (BPS + stale_haircut_bps) + BPS - 1) // BPS


@view
@internal
def _round() -> (int256, uint256, bool):
    round_id: uint80 = 0
    answer: int256 = 0
    started_at: uint256 = 0
    updated_at: uint256 = 0
    answered_in_round: uint80 = 0
    round_id, answer, started_at, updated_at, answered_in_round = staticcall IAggregatorV3(
        aggregator
    ).latestRoundData()
    return answer, updated_at, updated_at != 0 and answered_in_round >= round_id


@view
@internal
def _sequencer_round() -> (int256, uint256):
    round_id: uint80 = 0
    status: int256 = 0
    started_at: uint256 = 0
    updated_at: uint256 = 0
    answered_in_round: uint80 = 0
    round_id, status, started_at, updated_at, answered_in_round = staticcall IAggregatorV3(
        sequencer_feed
    ).latestRoundData()
    return status, started_at


@view
@internal
def _check_sequencer():
    status: int256 = 0
    started_at: uint256 = 0
    status, started_at = self._sequencer_round()
    # Chainlink's uptime feed: 0 = up, 1 = down; started_at = when the status last changed.
    assert status == 0, "oracle: sequencer down"
    assert started_at != 0, "oracle: sequencer status unknown"
    assert block.timestamp > started_at + sequencer_grace_period, "oracle: sequencer grace period"


@view
@internal
def _sequencer_up() -> bool:
    status: int256 = 0
    started_at: uint256 = 0
    status, started_at = self._sequencer_round()
    return status == 0 and started_at != 0 and block.timestamp > started_at + sequencer_grace_period
