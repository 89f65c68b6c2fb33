"""Time to react (issue 13): a rate change that raises a market's requirements while the market
has positions waits RISK_DELAY in the configurator (queued with an event, cancellable, applied by
anyone after the delay), so no account becomes liquidatable by surprise. A change that raises
nothing, or one on a market without positions, applies at once."""

from __future__ import annotations

import ape
import pytest
from support.constants import (
    BTC,
    ETH,
    IM_BPS,
    KEEPER_SHARE_BPS,
    LIQ_FEE_BPS,
    MIN_KEEPER_REWARD_USD,
    MM_BPS,
    NOT_OWNER,
    TRADE_FEE_BPS,
    USDC,
)
from support.lp import refresh_prices

from margin_maintenance.model import RISK_DELAY, RISK_GRACE, risk_change_waits

BASE = (IM_BPS, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS)
# Maintenance 13% of 8,000 is 1,040 > the trader's 996 of collateral: applied at once, this
# would make the account liquidatable the block it lands.
STRICTER = (2_000, 1_300, LIQ_FEE_BPS, TRADE_FEE_BPS)


@pytest.fixture
def book(seeded_pool, deposit, open_position, trader):
    """The trader: 1,000 deposited, long 4 ETH at 2,000 (notional 8,000, equity 996)."""
    deposit(trader, 1_000)
    open_position(trader, ETH, 4)
    return trader


def rates(ch, market_id):
    m = ch.market(market_id)
    return (
        m.initial_margin_bps,
        m.maintenance_margin_bps,
        m.liquidation_fee_bps,
        m.trading_fee_bps,
    )


def test_raise__market_with_positions__queued_not_applied(ch, configurator, deployer, book):
    tx = configurator.set_market_risk(ETH, *STRICTER, sender=deployer)

    [log] = tx.decode_logs(configurator.MarketRiskQueued)
    assert (log.market_id, log.initial_margin_bps) == (ETH, 2_000)
    assert log.maintenance_margin_bps == 1_300
    assert (log.liquidation_fee_bps, log.trading_fee_bps) == (LIQ_FEE_BPS, TRADE_FEE_BPS)
    assert log.eta == tx.timestamp + RISK_DELAY
    assert not tx.decode_logs(configurator.MarketRiskUpdated)
    assert rates(ch, ETH) == BASE
    assert tuple(configurator.pending_risk(ETH)) == (*STRICTER, log.eta)
    assert not ch.is_liquidatable(book)


def test_apply__before_the_delay__reverts(configurator, deployer, stranger, book, chain):
    tx = configurator.set_market_risk(ETH, *STRICTER, sender=deployer)
    chain.pending_timestamp = tx.timestamp + RISK_DELAY - 1
    with ape.reverts("configurator: risk delay"):
        configurator.apply_market_risk(ETH, sender=stranger)


def test_apply__after_the_delay__anyone_applies_and_the_trader_had_a_day(
    ch, system, configurator, deployer, stranger, book, deposit
):
    """The trader sees the queued change and adds margin; after the delay a stranger applies
    it and the account, topped up, is still healthy; a trader who did nothing would not be."""
    configurator.set_market_risk(ETH, *STRICTER, sender=deployer)
    deposit(book, 500)  # the reaction: 1,496 of collateral against 1,040
    refresh_prices(system, deployer, RISK_DELAY)

    tx = configurator.apply_market_risk(ETH, sender=stranger)

    [log] = tx.decode_logs(configurator.MarketRiskUpdated)
    assert (log.market_id, log.initial_margin_bps) == (ETH, 2_000)
    assert log.maintenance_margin_bps == 1_300
    assert rates(ch, ETH) == STRICTER
    assert configurator.pending_risk(ETH).eta == 0
    assert not ch.is_liquidatable(book)
    with ape.reverts("configurator: no risk change"):
        configurator.apply_market_risk(ETH, sender=stranger)


def test_apply__trader_did_not_react__liquidatable_only_after_the_delay(
    ch, system, configurator, deployer, stranger, book
):
    configurator.set_market_risk(ETH, *STRICTER, sender=deployer)
    assert not ch.is_liquidatable(book)
    refresh_prices(system, deployer, RISK_DELAY)
    assert not ch.is_liquidatable(book)  # still the old rates until someone applies
    configurator.apply_market_risk(ETH, sender=stranger)
    assert ch.is_liquidatable(book)


@pytest.mark.parametrize(
    "changed",
    [
        (IM_BPS + 1, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS),
        (IM_BPS, MM_BPS + 1, LIQ_FEE_BPS, TRADE_FEE_BPS),
        (IM_BPS, MM_BPS, LIQ_FEE_BPS + 1, TRADE_FEE_BPS),
        (IM_BPS, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS + 1),
    ],
    ids=["initial", "maintenance", "liquidation-fee", "trading-fee"],
)
def test_raise__any_one_rate__queued(ch, configurator, deployer, book, changed):
    oi = ch.market(ETH).open_interest_long
    assert risk_change_waits(BASE, changed, oi) and not risk_change_waits(BASE, changed, 0)
    tx = configurator.set_market_risk(ETH, *changed, sender=deployer)
    assert tx.decode_logs(configurator.MarketRiskQueued)
    assert rates(ch, ETH) == BASE


def test_lowering__market_with_positions__applies_at_once(ch, configurator, deployer, book):
    lower = (IM_BPS - 200, MM_BPS - 100, LIQ_FEE_BPS - 50, TRADE_FEE_BPS - 1)
    assert not risk_change_waits(BASE, lower, ch.market(ETH).open_interest_long)
    tx = configurator.set_market_risk(ETH, *lower, sender=deployer)
    assert tx.decode_logs(configurator.MarketRiskUpdated)
    assert not tx.decode_logs(configurator.MarketRiskQueued)
    assert rates(ch, ETH) == lower


def test_raise__market_without_positions__applies_at_once(ch, configurator, deployer, book):
    """No position on BTC, so no one to surprise: the change is live at once."""
    assert ch.market(BTC).open_interest_long + ch.market(BTC).open_interest_short == 0
    tx = configurator.set_market_risk(BTC, *STRICTER, sender=deployer)
    assert tx.decode_logs(configurator.MarketRiskUpdated)
    assert rates(ch, BTC) == STRICTER
    assert configurator.pending_risk(BTC).eta == 0


def test_queue__again__replaces_the_pending_change(ch, system, configurator, deployer, book, chain):
    first = configurator.set_market_risk(ETH, *STRICTER, sender=deployer)
    chain.pending_timestamp = first.timestamp + 100
    milder = (1_500, 800, LIQ_FEE_BPS, TRADE_FEE_BPS)
    second = configurator.set_market_risk(ETH, *milder, sender=deployer)
    assert tuple(configurator.pending_risk(ETH)) == (*milder, second.timestamp + RISK_DELAY)
    # The first change's eta does not apply the second one early.
    chain.pending_timestamp = first.timestamp + RISK_DELAY
    with ape.reverts("configurator: risk delay"):
        configurator.apply_market_risk(ETH, sender=deployer)
    refresh_prices(system, deployer, 200)
    configurator.apply_market_risk(ETH, sender=deployer)
    assert rates(ch, ETH) == milder


def assert_dropped(ch, system, configurator, deployer, tx, in_force) -> None:
    """`tx` dropped ETH's queued change (logged): a day later nothing is left to apply and
    `in_force` are the rates."""
    [log] = tx.decode_logs(configurator.MarketRiskCancelled)
    assert log.market_id == ETH
    assert configurator.pending_risk(ETH).eta == 0
    refresh_prices(system, deployer, RISK_DELAY)
    with ape.reverts("configurator: no risk change"):
        configurator.apply_market_risk(ETH, sender=deployer)
    assert rates(ch, ETH) == in_force


def test_cancel__owner__dropped_and_logged(ch, system, configurator, deployer, book):
    configurator.set_market_risk(ETH, *STRICTER, sender=deployer)
    tx = configurator.cancel_market_risk(ETH, sender=deployer)
    assert_dropped(ch, system, configurator, deployer, tx, BASE)


def test_cancel__stranger_or_nothing_queued__reverts(configurator, deployer, stranger, book):
    with ape.reverts("configurator: no risk change"):
        configurator.cancel_market_risk(ETH, sender=deployer)
    configurator.set_market_risk(ETH, *STRICTER, sender=deployer)
    with ape.reverts(NOT_OWNER):
        configurator.cancel_market_risk(ETH, sender=stranger)


def test_apply__bounds_checked_again__partial_bound_now_unreachable(
    ch, system, configurator, deployer, book
):
    """A partial bound lowered while the change waited (the current rates allow it) makes the
    queued rates' partial liquidation unreachable: the change is refused when applied."""
    pending = (2_000, 600, LIQ_FEE_BPS, TRADE_FEE_BPS)  # needs a partial bound above 73.7%
    configurator.set_market_risk(ETH, *pending, sender=deployer)
    configurator.set_liquidation_params(
        KEEPER_SHARE_BPS, 6_000, MIN_KEEPER_REWARD_USD * USDC, sender=deployer
    )
    refresh_prices(system, deployer, RISK_DELAY)
    with ape.reverts("configurator: partial bound unreachable"):
        configurator.apply_market_risk(ETH, sender=deployer)
    assert rates(ch, ETH) == BASE


def test_immediate_change__drops_the_pending_one(ch, system, configurator, deployer, book):
    """The owner's latest decision stands: a change applied at once (here a lowering) drops
    a queued rise, so no one can apply the older decision later."""
    configurator.set_market_risk(ETH, *STRICTER, sender=deployer)
    lower = (IM_BPS, MM_BPS - 100, LIQ_FEE_BPS, TRADE_FEE_BPS)
    tx = configurator.set_market_risk(ETH, *lower, sender=deployer)
    assert_dropped(ch, system, configurator, deployer, tx, lower)


def test_apply__after_the_grace_period__expired(ch, configurator, deployer, book, chain):
    tx = configurator.set_market_risk(ETH, *STRICTER, sender=deployer)
    chain.pending_timestamp = tx.timestamp + RISK_DELAY + RISK_GRACE + 1
    with ape.reverts("configurator: risk change expired"):
        configurator.apply_market_risk(ETH, sender=deployer)
    assert rates(ch, ETH) == BASE
    configurator.cancel_market_risk(ETH, sender=deployer)  # the owner clears it
