"""`margin_maintenance.model` against the contracts, bit for bit, on random inputs.

The pure maths of `contracts/modules/margin_math.vy` is reached through a harness
(`contracts/test/MarginMathHarness.vy`, which only exposes the module's internals); the
engine-level rules (the account load, the liquidation plan, the keeper reward and bad-debt
settlement) are compared with the live engine in tests/test_liquidation.py, whose every
liquidation is checked against `model.liquidate`. Constants are read from the sources: a test
here checks that what the model parsed is what the contracts compiled to.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from ape.exceptions import ContractLogicError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.strategies import (
    ABS_SIZES,
    BPS_RATES,
    PRICES,
    SIZES,
    SMALL_PRICES,
    TOKEN_SCALES,
)

from margin_maintenance import model
from margin_maintenance.model import funding as fm
from margin_maintenance.model.constants import MAX_SIZE, constants

PARITY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def harness(project, accounts):
    return accounts[0].deploy(project.MarginMathHarness)


def test_constants__parsed_from_sources__match_the_engine(ch):
    """The model's constants are the compiled engine's (where the engine exposes them)."""
    parsed = constants()
    assert parsed["WAD"] == 10**18 and parsed["BPS"] == 10_000
    assert parsed["MAX_POSITIONS"] == 8 and parsed["MAX_BATCH"] == 64
    assert ch.token_scale() == model.WAD // 10**6  # the 6-decimal mock USDC


@PARITY
@given(abs_size=ABS_SIZES, price=PRICES, scale=TOKEN_SCALES)
def test_notional__random_inputs__model_equals_margin_math(harness, abs_size, price, scale):
    assert harness.notional_up(abs_size, price, scale) == model.notional_up(abs_size, price, scale)
    down = harness.notional_down(abs_size, price, scale)
    assert down == model.notional_down(abs_size, price, scale)


@PARITY
@given(amount=st.integers(0, 2**200), rate=BPS_RATES)
def test_bps_up__random_inputs__model_equals_margin_math(harness, amount, rate):
    assert harness.bps_up(amount, rate) == model.bps_up(amount, rate)


@PARITY
@given(size=SIZES, entry=SMALL_PRICES, price=SMALL_PRICES, scale=TOKEN_SCALES)
def test_pnl__random_inputs__model_equals_margin_math(harness, size, entry, price, scale):
    assert harness.pnl(size, entry, price, scale) == model.pnl(size, entry, price, scale)


@PARITY
@given(
    equity=st.integers(-(10**30), 10**30),
    fee=st.integers(0, 10**28),
    extra=st.integers(1, 10**28),
)
def test_liquidation_fraction__random_inputs__model_equals_margin_math(harness, equity, fee, extra):
    initial = fee + extra  # the engine's invariant: IMR > FEE (fee < mm < im per market)
    got = harness.liquidation_fraction(equity, initial, fee)
    assert got == model.liquidation_fraction(equity, initial, fee)


@PARITY
@given(size=SIZES, entry=PRICES)
def test_pack_position__random_inputs__model_equals_margin_math_and_round_trips(
    harness, size, entry
):
    word = harness.pack_position(size, entry)
    assert word == model.pack_position(size, entry)
    assert tuple(harness.unpack_position(word)) == model.unpack_position(word) == (size, entry)


# ---- Funding (contracts/modules/funding.vy) ----

INDICES = st.integers(-fm.MAX_INDEX, fm.MAX_INDEX)
ENTRIES = st.integers(-(2**126), 2**126)  # a funding-adjusted entry: price less an index
SKEWS = st.integers(-MAX_SIZE, MAX_SIZE)
FUNDING = st.builds(
    fm.Funding,
    updated_at=st.integers(0, 2**40 - 1),
    rate=st.integers(-fm.MAX_RATE, fm.MAX_RATE),
    index=INDICES,
    skew_scale=st.integers(1, fm.MAX_SKEW_SCALE),
    max_velocity=st.integers(0, fm.MAX_VELOCITY_BPS),
)


@PARITY
@given(size=SIZES, entry=ENTRIES)
def test_pack_position__signed_entry__round_trips(harness, size, entry):
    word = harness.pack_position(size, entry)
    assert word == model.pack_position(size, entry)
    assert tuple(harness.unpack_position(word)) == model.unpack_position(word) == (size, entry)


@PARITY
@given(size=SIZES, entry=ENTRIES, mark=ENTRIES, scale=TOKEN_SCALES)
def test_pnl__funding_adjusted_marks__model_equals_margin_math(harness, size, entry, mark, scale):
    assert harness.pnl(size, entry, mark, scale) == model.pnl(size, entry, mark, scale)


@PARITY
@given(f=FUNDING, skew=SKEWS, price=PRICES, elapsed=st.integers(0, 10 * 365 * 86_400))
def test_accrue__random_records__model_equals_funding_module(harness, f, skew, price, elapsed):
    now = min(f.updated_at + elapsed, 2**40 - 1)
    word, index = harness.accrue_funding(fm.pack(f), skew, price, now)
    want = fm.accrue(f, skew, price, now)
    assert (fm.unpack(word), index) == (want, want.index)
    assert abs(want.rate) <= fm.MAX_RATE and abs(want.index) <= fm.MAX_INDEX
    assert harness.funding_velocity(fm.pack(f), skew) == fm.velocity(f, skew)


@PARITY
@given(price=PRICES, before=SKEWS, delta=SKEWS, scale=st.integers(1, fm.MAX_SKEW_SCALE))
def test_fill_price__random_trades__model_equals_funding_module(
    harness, price, before, delta, scale
):
    try:
        want: int | str = fm.fill_price(price, before, before + delta, scale)
    except fm.FillOutOfRange as e:
        want = e.reason
    try:
        got: int | str = harness.fill_price(price, before, before + delta, scale)
    except ContractLogicError as e:
        got = e.revert_message
    assert got == want
    if isinstance(want, int) and delta != 0:  # a buy never below the exact fill, a sell never above
        exact = Fraction(price) * (1 + Fraction(2 * before + delta, 2 * scale * model.WAD))
        assert (want >= exact) if delta > 0 else (want <= exact)
