"""`margin_maintenance.model` against the contracts, bit for bit, on random inputs.

The pure maths of `contracts/modules/margin_math.vy` is reached through a harness
(`contracts/test/MarginMathHarness.vy`, which only exposes the module's internals); the
engine-level rules (the account load, the liquidation plan, the keeper reward and bad-debt
settlement) are compared with the live engine in tests/test_liquidation.py, whose every
liquidation is checked against `model.liquidate`. Constants are read from the sources: a test
here checks that what the model parsed is what the contracts compiled to.
"""

from __future__ import annotations

import pytest
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
from margin_maintenance.model.constants import constants

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
