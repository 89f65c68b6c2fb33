"""Oracle safety (SPEC section 4): the mock Chainlink aggregator and the WAD price-feed adapter.

Prices move only through the mock aggregator (`set_price`, `set_answer_at`, `set_round`), time
only through `chain.pending_timestamp` (the `warp` fixture mines a block at an exact time, and
views made after it see that block's time on py-evm and on anvil alike).
"""

from __future__ import annotations

import ape
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.constants import (
    ETH_PRICE,
    FEED_DECIMALS,
    HEARTBEAT,
    MAX_UINT,
    NOT_OWNER,
    WAD,
    ZERO_ADDRESS,
)
from support.deployers import deploy_aggregator, deploy_feed

ONE_USD = 10**FEED_DECIMALS  # one USD in the default (8-decimal) aggregator units
ETH_ANSWER = ETH_PRICE * ONE_USD
SEQUENCER_GRACE = 3_600  # seconds to wait after the L2 sequencer comes back (Chainlink's advice)
FLOOR = 100 * ONE_USD  # bounded feed: answers at or below it are rejected
CEILING = 10_000 * ONE_USD  # bounded feed: answers at or above it are rejected
INT192_MAX = 2**191 - 1  # the mock stores answers as int192, like Chainlink's OCR aggregators
INT192_MIN = -(2**191)
UINT64_MAX = 2**64 - 1  # the mock stores timestamps in 64 bits

# Feeds are deployed once per test (outside the Hypothesis loop); every example sets its own
# answer first, so examples share nothing but the contracts.
FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
WAD_UP_DECIMALS = (0, 6, 8, 18)  # scaled up: price == answer * 10**(18 - d)
WAD_DOWN_DECIMALS = (24, 36)  # scaled down: price == answer // 10**(d - 18)


def _ceiling(decimals: int) -> int:
    """A trillion USD in `decimals` units: the ceiling of the fuzzed feeds."""
    return 10 ** (decimals + 12)


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture
def aggregator(make_aggregator):
    return make_aggregator()  # 8 decimals, ETH_PRICE, stamped with the deploy block time


@pytest.fixture
def feed(make_feed, aggregator):
    return make_feed(aggregator)  # heartbeat HEARTBEAT, floor 1, no ceiling, no sequencer


@pytest.fixture
def bounded_feed(make_feed, aggregator):
    return make_feed(aggregator, min_answer=FLOOR, max_answer=CEILING)


@pytest.fixture
def sequencer(make_sequencer):
    return make_sequencer()  # up since its deploy block


@pytest.fixture
def l2_feed(make_feed, aggregator, sequencer):
    return make_feed(aggregator, sequencer=sequencer, grace=SEQUENCER_GRACE)


@pytest.fixture(scope="module")
def feeds_by_decimals(project, deployer):
    """{decimals: (aggregator, feed)} for the property tests: floor 0, ceiling a trillion USD."""
    feeds = {}
    for decimals in WAD_UP_DECIMALS + WAD_DOWN_DECIMALS:
        agg = deploy_aggregator(
            project, deployer, decimals, ETH_PRICE * 10**decimals, f"ETH / USD ({decimals})"
        )
        price_feed = deploy_feed(
            project, deployer, agg, HEARTBEAT, min_answer=0, max_answer=_ceiling(decimals)
        )
        feeds[decimals] = (agg, price_feed)
    return feeds


@pytest.fixture(scope="module")
def fuzz_bounded(project, deployer):
    """(aggregator, feed) with FLOOR/CEILING bounds, for the bounds property test."""
    agg = deploy_aggregator(project, deployer, FEED_DECIMALS, ETH_ANSWER, "ETH / USD")
    price_feed = deploy_feed(project, deployer, agg, HEARTBEAT, FLOOR, CEILING)
    return agg, price_feed


# --------------------------------------------------------------------------------------------
# MockAggregator
# --------------------------------------------------------------------------------------------


def test_deploy__mock_aggregator__opens_first_round(chain, aggregator, deployer):
    now = chain.blocks.head.timestamp
    assert aggregator.owner() == deployer
    assert aggregator.decimals() == FEED_DECIMALS
    assert aggregator.description() == "ETH / USD"
    assert aggregator.version() == 4
    assert aggregator.latest_round() == 1
    assert aggregator.latestRoundData() == (1, ETH_ANSWER, now, now, 1)
    assert aggregator.latestAnswer() == ETH_ANSWER
    assert aggregator.latestTimestamp() == now


# The mock aggregator's owner-only setters, each with arguments that open a new round.
AGGREGATOR_SETTERS = [
    ("set_price", (ETH_ANSWER,)),
    ("set_answer_at", (ETH_ANSWER, 1)),
    ("set_round", (ETH_ANSWER, 1, 1, 0)),
]


@pytest.mark.integration
@pytest.mark.parametrize(("setter", "args"), AGGREGATOR_SETTERS)
def test_move_aggregator__caller_not_owner__reverts(aggregator, stranger, setter, args):
    with ape.reverts(NOT_OWNER):
        getattr(aggregator, setter)(*args, sender=stranger)
    assert aggregator.latest_round() == 1


@pytest.mark.parametrize(("setter", "args"), AGGREGATOR_SETTERS)
def test_move_aggregator__caller_is_owner__opens_round(aggregator, deployer, setter, args):
    getattr(aggregator, setter)(*args, sender=deployer)
    assert aggregator.latest_round() == 2
    assert aggregator.latestAnswer() == ETH_ANSWER


def test_set_price__after_ownership_transfer__only_new_owner_moves_it(
    aggregator, deployer, stranger
):
    aggregator.transfer_ownership(stranger, sender=deployer)
    with ape.reverts(NOT_OWNER):
        aggregator.set_price(1_500 * ONE_USD, sender=deployer)
    aggregator.set_price(1_500 * ONE_USD, sender=stranger)
    assert aggregator.latestAnswer() == 1_500 * ONE_USD


def test_set_price__owner__stamps_round_with_block_time(aggregator, deployer):
    tx = aggregator.set_price(2_100 * ONE_USD, sender=deployer)
    stamp = tx.timestamp
    assert aggregator.latestRoundData() == (2, 2_100 * ONE_USD, stamp, stamp, 2)


def test_set_round__answered_in_round_given__keeps_it(aggregator, deployer):
    aggregator.set_round(1_900 * ONE_USD, 10, 20, 1, sender=deployer)
    assert aggregator.latestRoundData() == (2, 1_900 * ONE_USD, 10, 20, 1)


def test_get_round_data__past_rounds__returns_history(aggregator, deployer):
    first_round = aggregator.latestRoundData()
    second_stamp = aggregator.set_price(2_100 * ONE_USD, sender=deployer).timestamp
    aggregator.set_answer_at(2_200 * ONE_USD, 1_234, sender=deployer)
    aggregator.set_round(2_300 * ONE_USD, 5_000, 0, 0, sender=deployer)

    assert aggregator.getRoundData(1) == first_round
    assert aggregator.getRoundData(2) == (2, 2_100 * ONE_USD, second_stamp, second_stamp, 2)
    assert aggregator.getRoundData(3) == (3, 2_200 * ONE_USD, 1_234, 1_234, 3)
    assert aggregator.getRoundData(4) == (4, 2_300 * ONE_USD, 5_000, 0, 4)
    assert aggregator.latestRoundData() == aggregator.getRoundData(4)


@pytest.mark.parametrize(
    "answer", [INT192_MAX, INT192_MIN, -5, 0], ids=["int192_max", "int192_min", "minus_5", "zero"]
)
def test_set_price__answer_within_int192__reads_back_exactly(aggregator, deployer, answer):
    tx = aggregator.set_price(answer, sender=deployer)
    assert aggregator.latestAnswer() == answer
    assert aggregator.latestRoundData() == (2, answer, tx.timestamp, tx.timestamp, 2)


@pytest.mark.parametrize(
    "answer", [INT192_MAX + 1, INT192_MIN - 1, 2**255 - 1], ids=["over_max", "under_min", "huge"]
)
def test_set_price__answer_beyond_int192__reverts(aggregator, deployer, answer):
    with ape.reverts("aggregator: answer out of range"):
        aggregator.set_price(answer, sender=deployer)


def test_set_round__timestamps_at_uint64_max__reads_back_exactly(aggregator, deployer):
    aggregator.set_round(ETH_ANSWER, UINT64_MAX, UINT64_MAX, 0, sender=deployer)
    assert aggregator.latestRoundData() == (2, ETH_ANSWER, UINT64_MAX, UINT64_MAX, 2)
    assert aggregator.latestTimestamp() == UINT64_MAX


@pytest.mark.parametrize(
    ("started_at", "updated_at"),
    [(UINT64_MAX + 1, 1), (1, UINT64_MAX + 1)],
    ids=["started_at", "updated_at"],
)
def test_set_round__timestamp_beyond_uint64__reverts(aggregator, deployer, started_at, updated_at):
    with ape.reverts("aggregator: timestamp out of range"):
        aggregator.set_round(ETH_ANSWER, started_at, updated_at, 0, sender=deployer)


@pytest.mark.parametrize("round_id", [0, 2, 2**80 - 1], ids=["zero", "next", "max"])
def test_get_round_data__unknown_round__reverts(aggregator, round_id):
    with ape.reverts("aggregator: no data present"):
        aggregator.getRoundData(round_id)


@pytest.mark.integration
def test_set_price__owner__emits_new_round_and_answer_updated(aggregator, deployer):
    tx = aggregator.set_price(2_100 * ONE_USD, sender=deployer)

    [new_round] = tx.decode_logs(aggregator.NewRound)
    assert new_round.round_id == 2
    assert new_round.started_by == deployer
    assert new_round.started_at == tx.timestamp

    [answer_updated] = tx.decode_logs(aggregator.AnswerUpdated)
    assert answer_updated.current == 2_100 * ONE_USD
    assert answer_updated.round_id == 2
    assert answer_updated.updated_at == tx.timestamp

    assert [log.event_name for log in tx.events] == ["NewRound", "AnswerUpdated"]


def test_set_answer_at__explicit_time__events_carry_that_time(aggregator, deployer):
    tx = aggregator.set_answer_at(-5, 1_234, sender=deployer)
    new_round, answer_updated = tx.events
    assert (new_round.event_name, new_round.round_id, new_round.started_at) == (
        "NewRound",
        2,
        1_234,
    )
    assert answer_updated.event_name == "AnswerUpdated"
    assert (answer_updated.current, answer_updated.round_id) == (-5, 2)
    assert answer_updated.updated_at == 1_234


# --------------------------------------------------------------------------------------------
# PriceFeed: constructor
# --------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_deploy_feed__zero_aggregator__reverts(make_feed):
    with ape.reverts("oracle: zero aggregator"):
        make_feed(ZERO_ADDRESS)


def test_deploy_feed__all_parameters__stores_them(make_feed, aggregator, sequencer):
    price_feed = make_feed(
        aggregator,
        max_staleness=60,
        min_answer=0,
        max_answer=CEILING,
        sequencer=sequencer,
        grace=SEQUENCER_GRACE,
    )
    assert price_feed.aggregator() == aggregator
    assert price_feed.feed_decimals() == FEED_DECIMALS
    assert price_feed.max_staleness() == 60
    assert price_feed.min_answer() == 0
    assert price_feed.max_answer() == CEILING
    assert price_feed.sequencer_feed() == sequencer
    assert price_feed.sequencer_grace_period() == SEQUENCER_GRACE


def test_deploy_feed__no_sequencer__stores_empty_sequencer(feed):
    assert feed.sequencer_feed() == ZERO_ADDRESS


def test_deploy_feed__zero_staleness__reverts(make_feed, aggregator):
    with ape.reverts("oracle: zero staleness"):
        make_feed(aggregator, max_staleness=0)


def test_deploy_feed__one_second_staleness__deploys(make_feed, aggregator):
    assert make_feed(aggregator, max_staleness=1).max_staleness() == 1


def test_deploy_feed__negative_floor__reverts(make_feed, aggregator):
    with ape.reverts("oracle: negative floor"):
        make_feed(aggregator, min_answer=-1)


def test_deploy_feed__zero_floor__deploys(make_feed, aggregator):
    assert make_feed(aggregator, min_answer=0).min_answer() == 0


@pytest.mark.parametrize(
    "ceiling", [FLOOR + 1, FLOOR, FLOOR - 1], ids=["one-above", "equal", "below"]
)
def test_deploy_feed__ceiling_not_above_floor__reverts(make_feed, aggregator, ceiling):
    with ape.reverts("oracle: ceiling below floor"):
        make_feed(aggregator, min_answer=FLOOR, max_answer=ceiling)


def test_deploy_feed__ceiling_two_above_floor__deploys(make_feed, aggregator):
    # The narrowest useful band: exactly one answer (FLOOR + 1) is accepted.
    price_feed = make_feed(aggregator, min_answer=FLOOR, max_answer=FLOOR + 2)
    assert (price_feed.min_answer(), price_feed.max_answer()) == (FLOOR, FLOOR + 2)


def test_deploy_feed__37_decimal_aggregator__reverts(make_aggregator, make_feed):
    agg = make_aggregator(37)
    with ape.reverts("oracle: too many decimals"):
        make_feed(agg)


def test_deploy_feed__36_decimal_aggregator__deploys(make_aggregator, make_feed):
    agg = make_aggregator(36)
    price_feed = make_feed(agg)
    assert price_feed.feed_decimals() == 36
    assert price_feed.latest_price() == ETH_PRICE * WAD


# --------------------------------------------------------------------------------------------
# PriceFeed: normalisation to WAD
# --------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_latest_price__8_decimal_feed__returns_wad(make_aggregator, make_feed):
    agg = make_aggregator()
    price_feed = make_feed(agg)
    assert price_feed.latest_price() == ETH_PRICE * WAD


@pytest.mark.parametrize(
    ("decimals", "answer", "expected"),
    [
        (0, 2_000, 2_000 * WAD),
        (6, 2_000_123456, 2_000_123456 * 10**12),
        (8, 2_000_12345678, 2_000_12345678 * 10**10),
        (18, 2_000_123456789012345678, 2_000_123456789012345678),
        # more precise than WAD: the extra digits are cut, always down
        (24, 2_000_123456789012345678_999999, 2_000_123456789012345678),
        (36, 2_000_123456789012345678_999999999999999999, 2_000_123456789012345678),
    ],
    ids=["0dp", "6dp", "8dp", "18dp", "24dp", "36dp"],
)
def test_latest_price__aggregator_decimals__returns_exact_wad(
    make_aggregator, make_feed, decimals, answer, expected
):
    agg = make_aggregator(decimals, answer)
    price_feed = make_feed(agg)
    assert price_feed.feed_decimals() == decimals
    assert price_feed.latest_price() == expected


def test_latest_price__24_decimal_answer_of_one_wei__returns_one_wei(make_aggregator, make_feed):
    price_feed = make_feed(make_aggregator(24, 10**6))
    assert price_feed.latest_price() == 1


def test_latest_price__24_decimal_answer_below_one_wei__reverts(make_aggregator, make_feed):
    price_feed = make_feed(make_aggregator(24, 10**6 - 1))
    with ape.reverts("oracle: non-positive price"):
        price_feed.latest_price()


def test_latest_price__largest_int192_answer__returns_exact_wad(make_aggregator, make_feed):
    # Chainlink answers are int192, so even at 0 decimals the WAD product fits in uint256.
    price_feed = make_feed(make_aggregator(0, INT192_MAX))
    assert price_feed.latest_price() == INT192_MAX * WAD
    assert INT192_MAX * WAD <= MAX_UINT


@FUZZ
@given(
    case=st.sampled_from(WAD_UP_DECIMALS).flatmap(
        lambda d: st.tuples(st.just(d), st.integers(1, _ceiling(d) - 1))
    )
)
def test_latest_price__any_answer_up_to_18_decimals__equals_answer_scaled_up(
    feeds_by_decimals, deployer, case
):
    decimals, answer = case
    agg, price_feed = feeds_by_decimals[decimals]
    agg.set_price(answer, sender=deployer)
    assert price_feed.latest_price() == answer * 10 ** (18 - decimals)


@FUZZ
@given(
    case=st.sampled_from(WAD_DOWN_DECIMALS).flatmap(
        lambda d: st.tuples(st.just(d), st.integers(10 ** (d - 18), _ceiling(d) - 1))
    )
)
def test_latest_price__any_answer_over_18_decimals__equals_answer_truncated(
    feeds_by_decimals, deployer, case
):
    decimals, answer = case
    agg, price_feed = feeds_by_decimals[decimals]
    agg.set_price(answer, sender=deployer)
    assert price_feed.latest_price() == answer // 10 ** (decimals - 18)


# --------------------------------------------------------------------------------------------
# PriceFeed: answer validity
# --------------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("answer", [0, -1, -ETH_ANSWER], ids=["zero", "minus_one", "negative"])
def test_latest_price__non_positive_answer__reverts(aggregator, feed, deployer, answer):
    aggregator.set_price(answer, sender=deployer)
    with ape.reverts("oracle: non-positive price"):
        feed.latest_price()


def test_latest_price__smallest_positive_answer_zero_floor__returns_price(
    make_feed, aggregator, deployer
):
    price_feed = make_feed(aggregator, min_answer=0)
    aggregator.set_price(1, sender=deployer)
    assert price_feed.latest_price() == 10 ** (18 - FEED_DECIMALS)


def test_latest_price__round_not_updated__reverts(chain, aggregator, feed, deployer):
    now = chain.blocks.head.timestamp
    aggregator.set_round(ETH_ANSWER, now, 0, 0, sender=deployer)
    with ape.reverts("oracle: incomplete round"):
        feed.latest_price()


def test_latest_price__answer_carried_from_earlier_round__reverts(
    chain, aggregator, feed, deployer
):
    now = chain.blocks.head.timestamp
    carried_from = aggregator.latest_round()
    aggregator.set_round(ETH_ANSWER, now, now, carried_from, sender=deployer)
    assert aggregator.latestRoundData()[4] < aggregator.latest_round()
    with ape.reverts("oracle: incomplete round"):
        feed.latest_price()


def test_latest_price__answered_in_its_own_round__returns_price(chain, aggregator, feed, deployer):
    now = chain.blocks.head.timestamp
    own_round = aggregator.latest_round() + 1
    aggregator.set_round(2_100 * ONE_USD, now, now, own_round, sender=deployer)
    assert feed.latest_price() == 2_100 * WAD


def test_latest_price__updated_after_block_time__reverts(chain, aggregator, feed, deployer, warp):
    updated_at = chain.blocks.head.timestamp + 100
    aggregator.set_answer_at(ETH_ANSWER, updated_at, sender=deployer)
    warp(updated_at - 1)
    with ape.reverts("oracle: price from the future"):
        feed.latest_price()


def test_latest_price__updated_exactly_at_block_time__returns_price(
    chain, aggregator, feed, deployer, warp
):
    updated_at = chain.blocks.head.timestamp + 100
    aggregator.set_answer_at(2_100 * ONE_USD, updated_at, sender=deployer)
    warp(updated_at)
    assert feed.latest_price() == 2_100 * WAD


@pytest.mark.integration
def test_latest_price__exactly_max_staleness_old__returns_price(aggregator, feed, warp):
    warp(aggregator.latestTimestamp() + HEARTBEAT)
    assert feed.latest_price() == ETH_PRICE * WAD


@pytest.mark.integration
def test_latest_price__one_second_past_max_staleness__reverts(aggregator, feed, warp):
    warp(aggregator.latestTimestamp() + HEARTBEAT + 1)
    with ape.reverts("oracle: stale price"):
        feed.latest_price()


def test_latest_price__backdated_answer_at_staleness_edge__passes_then_reverts(
    chain, aggregator, feed, deployer, warp
):
    now = chain.blocks.head.timestamp + 100
    aggregator.set_answer_at(2_100 * ONE_USD, now - HEARTBEAT, sender=deployer)
    warp(now)
    assert feed.latest_price() == 2_100 * WAD
    warp(now + 1)
    with ape.reverts("oracle: stale price"):
        feed.latest_price()


def test_latest_price__stale_then_new_round__returns_new_price(aggregator, feed, deployer, warp):
    warp(aggregator.latestTimestamp() + HEARTBEAT + 1)
    with ape.reverts("oracle: stale price"):
        feed.latest_price()
    aggregator.set_price(1_950 * ONE_USD, sender=deployer)
    assert feed.latest_price() == 1_950 * WAD


# --------------------------------------------------------------------------------------------
# PriceFeed: floor and ceiling (the aggregator's own min/max answer clamps)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [FLOOR, FLOOR - 1, CEILING, CEILING + 1],
    ids=["at_floor", "below_floor", "at_ceiling", "above_ceiling"],
)
def test_latest_price__answer_at_or_outside_bounds__reverts(
    aggregator, bounded_feed, deployer, answer
):
    aggregator.set_price(answer, sender=deployer)
    with ape.reverts("oracle: price out of bounds"):
        bounded_feed.latest_price()


@pytest.mark.parametrize(
    "answer", [FLOOR + 1, CEILING - 1], ids=["one_above_floor", "one_below_ceiling"]
)
def test_latest_price__answer_one_inside_bounds__returns_price(
    aggregator, bounded_feed, deployer, answer
):
    aggregator.set_price(answer, sender=deployer)
    assert bounded_feed.latest_price() == answer * 10 ** (18 - FEED_DECIMALS)


@pytest.mark.integration
def test_latest_price__aggregator_pinned_at_min_answer_clamp__reverts(
    make_aggregator, make_feed, deployer
):
    # LUNA/USD, May 2022: the aggregator's minAnswer (0.10 USD) kept being reported while the
    # market traded far lower; a floor equal to that clamp turns the clamp into a revert.
    clamp = ONE_USD // 10
    luna = make_aggregator(FEED_DECIMALS, 80 * ONE_USD, "LUNA / USD")
    price_feed = make_feed(luna, min_answer=clamp, max_answer=10_000 * ONE_USD)
    assert price_feed.latest_price() == 80 * WAD
    luna.set_price(clamp + 1, sender=deployer)
    assert price_feed.latest_price() == (clamp + 1) * 10 ** (18 - FEED_DECIMALS)
    luna.set_price(clamp, sender=deployer)
    with ape.reverts("oracle: price out of bounds"):
        price_feed.latest_price()


@FUZZ
@given(
    answer=st.one_of(
        st.integers(-2 * CEILING, 2 * CEILING),
        st.sampled_from([0, FLOOR - 1, FLOOR, FLOOR + 1, CEILING - 1, CEILING, CEILING + 1]),
    )
)
def test_latest_price__any_answer__price_iff_strictly_inside_bounds(fuzz_bounded, deployer, answer):
    agg, price_feed = fuzz_bounded
    agg.set_price(answer, sender=deployer)
    if answer <= 0:
        with ape.reverts("oracle: non-positive price"):
            price_feed.latest_price()
    elif answer <= FLOOR or answer >= CEILING:
        with ape.reverts("oracle: price out of bounds"):
            price_feed.latest_price()
    else:
        assert price_feed.latest_price() == answer * 10 ** (18 - FEED_DECIMALS)


# --------------------------------------------------------------------------------------------
# PriceFeed: L2 sequencer uptime
# --------------------------------------------------------------------------------------------


def test_latest_price__sequencer_up_past_grace__returns_price(
    aggregator, sequencer, l2_feed, deployer, warp
):
    warp(sequencer.latestRoundData()[2] + SEQUENCER_GRACE + 1)
    aggregator.set_price(2_100 * ONE_USD, sender=deployer)
    assert l2_feed.latest_price() == 2_100 * WAD


@pytest.mark.integration
def test_latest_price__sequencer_down__reverts(sequencer, l2_feed, deployer):
    sequencer.set_price(1, sender=deployer)
    with ape.reverts("oracle: sequencer down"):
        l2_feed.latest_price()


def test_latest_price__sequencer_down_long_past_grace__reverts(
    chain, aggregator, sequencer, l2_feed, deployer, warp
):
    went_down = chain.blocks.head.timestamp + 10
    sequencer.set_answer_at(1, went_down, sender=deployer)
    later = went_down + 10 * SEQUENCER_GRACE
    aggregator.set_answer_at(ETH_ANSWER, later, sender=deployer)
    warp(later)
    with ape.reverts("oracle: sequencer down"):
        l2_feed.latest_price()


def test_latest_price__sequencer_status_unknown__reverts(chain, sequencer, l2_feed, deployer):
    now = chain.blocks.head.timestamp
    sequencer.set_round(0, 0, now, 0, sender=deployer)
    with ape.reverts("oracle: sequencer status unknown"):
        l2_feed.latest_price()


@pytest.mark.integration
@pytest.mark.parametrize("since_up", [0, 1, SEQUENCER_GRACE], ids=["just_up", "1s", "at_grace"])
def test_latest_price__sequencer_up_within_grace__reverts(
    chain, aggregator, sequencer, l2_feed, deployer, warp, since_up
):
    back_up_at = chain.blocks.head.timestamp + 100
    sequencer.set_answer_at(0, back_up_at, sender=deployer)
    aggregator.set_answer_at(ETH_ANSWER, back_up_at, sender=deployer)
    warp(back_up_at + since_up)
    with ape.reverts("oracle: sequencer grace period"):
        l2_feed.latest_price()


@pytest.mark.integration
def test_latest_price__sequencer_up_one_second_past_grace__returns_price(
    chain, aggregator, sequencer, l2_feed, deployer, warp
):
    back_up_at = chain.blocks.head.timestamp + 100
    sequencer.set_answer_at(0, back_up_at, sender=deployer)
    aggregator.set_answer_at(2_100 * ONE_USD, back_up_at + SEQUENCER_GRACE, sender=deployer)
    warp(back_up_at + SEQUENCER_GRACE + 1)
    assert l2_feed.latest_price() == 2_100 * WAD


def test_latest_price__sequencer_outage_then_recovery__reverts_until_grace_ends(
    aggregator, sequencer, l2_feed, deployer, warp
):
    sequencer.set_price(1, sender=deployer)
    with ape.reverts("oracle: sequencer down"):
        l2_feed.latest_price()
    back_up_at = sequencer.set_price(0, sender=deployer).timestamp
    with ape.reverts("oracle: sequencer grace period"):
        l2_feed.latest_price()
    warp(back_up_at + SEQUENCER_GRACE + 1)
    aggregator.set_price(1_800 * ONE_USD, sender=deployer)
    assert l2_feed.latest_price() == 1_800 * WAD


def test_latest_price__sequencer_past_grace_but_price_stale__reverts(
    aggregator, sequencer, l2_feed, warp
):
    # the price was set before the sequencer feed was deployed, so it is older than this
    warp(sequencer.latestRoundData()[2] + SEQUENCER_GRACE + HEARTBEAT + 1)
    with ape.reverts("oracle: stale price"):
        l2_feed.latest_price()
