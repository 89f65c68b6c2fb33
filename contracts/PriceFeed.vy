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
@custom:security Every parameter is immutable: a change of feed or bounds is a
        new adapter, set on the market by the owner (and logged there). Reads
        cost no storage slot of this contract, only the aggregator's.
"""

from interfaces import IAggregatorV3
from interfaces import IPriceFeed

implements: IPriceFeed

WAD_DECIMALS: constant(uint8) = 18  # decimals of the price this adapter returns
MAX_FEED_DECIMALS: constant(uint8) = 36  # largest aggregator precision accepted

aggregator: public(immutable(address))  # Chainlink AggregatorV3 (or the mock)
feed_decimals: public(immutable(uint8))  # aggregator's `decimals()`, read once at deploy
max_staleness: public(immutable(uint256))  # seconds an answer stays fresh (the heartbeat)
min_answer: public(immutable(int256))  # floor, in aggregator units: answers <= it are rejected
max_answer: public(immutable(int256))  # ceiling, in aggregator units: answers >= it rejected
sequencer_feed: public(immutable(address))  # L2 sequencer-uptime feed; empty = none
sequencer_grace_period: public(immutable(uint256))  # seconds after the sequencer is back
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
):
    """
    @param aggregator_ The Chainlink-style aggregator to read.
    @param max_staleness_ Seconds after which an answer is stale (> 0).
    @param min_answer_ Floor in aggregator units (>= 0); answers at or below it revert.
    @param max_answer_ Ceiling in aggregator units (> floor); answers at or above it revert.
    @param sequencer_feed_ L2 sequencer-uptime feed, or empty(address) on L1/local.
    @param sequencer_grace_period_ Seconds to wait after the sequencer comes back up.
    """
    assert aggregator_ != empty(address), "oracle: zero aggregator"
    assert max_staleness_ > 0, "oracle: zero staleness"
    assert min_answer_ >= 0, "oracle: negative floor"
    assert max_answer_ > min_answer_ + 1, "oracle: ceiling below floor"
    d: uint8 = staticcall IAggregatorV3(aggregator_).decimals()
    assert d <= MAX_FEED_DECIMALS, "oracle: too many decimals"

    aggregator = aggregator_
    feed_decimals = d
    max_staleness = max_staleness_
    min_answer = min_answer_
    max_answer = max_answer_
    sequencer_feed = sequencer_feed_
    sequencer_grace_period = sequencer_grace_period_
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
def price_data() -> (uint256, uint256, bool):
    """
    @notice The same checks as `latest_price`, without a revert: (price in WAD, the
            answer's update time, ok). `ok` is false when `latest_price` would revert, and
            the price is then 0 whenever the answer itself is unusable (non-positive,
            incomplete, from the future, out of bounds, too large); a valid answer that is
            only stale, or read while the sequencer is down, keeps its last price, so the
            engine can mark it conservatively.
    """
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
