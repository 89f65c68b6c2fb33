"""Funding and the skew premium (issue 16): the fill price, the funding rate and index, their
settlement into collateral with `FundingSettled`, the views, and every bad input.

Expected values come from `margin_maintenance.model.funding` (the maths, checked against the
contract's own functions in tests/test_model_parity.py). Every transaction here lands at a
block time the test sets (`chain.pending_timestamp`), so the model accrues to the same second;
views read the head block, whose time is the last transaction's.
"""

from __future__ import annotations

import ape
import pytest
from support.constants import (
    BTC,
    ETH,
    ETH_WAD,
    MAX_UINT,
    NOT_OWNER,
    TOKEN_SCALE,
    USDC,
    WAD,
)
from support.deployers import assert_conserved

from margin_maintenance.model import funding as fm
from margin_maintenance.model import pnl

SKEW_SCALE = 1_000  # whole ETH: a 10-ETH skew is a 1% premium
VELOCITY_BPS = 300  # 3% of the price per day, per day, at a skew of SKEW_SCALE
DAY = fm.DAY


@pytest.fixture
def book(system, ch, configurator, deployer, fund, seeded_pool, trader, trader2, chain):
    """ETH with funding on; `trader` and `trader2` hold 100,000 USDC of collateral each."""
    for who in (trader, trader2):
        ch.deposit(fund(who, 100_000), sender=who)
    cap_to(configurator, deployer, ETH, SKEW_SCALE // 2)
    configurator.set_market_funding(ETH, SKEW_SCALE, VELOCITY_BPS, sender=deployer)
    return chain


def cap_to(configurator, deployer, market_id: int, units: int) -> None:
    """A market's open-interest cap per side: a skew scale must be at least twice it."""
    configurator.set_market_limits(market_id, units * WAD, 10 * USDC, sender=deployer)


def at(chain, t: int) -> int:
    """The next transaction lands at block time `t`."""
    chain.pending_timestamp = t
    return t


def refresh(system, deployer, chain, t: int, answers: dict[int, int] | None = None) -> None:
    """Fresh answers for both markets in blocks at `t` and `t + 1` (prices otherwise kept)."""
    for i, m in enumerate((ETH, BTC)):
        agg = system.aggregators[m]
        answer = (answers or {}).get(m, agg.latestRoundData()[1])
        at(chain, t + i)
        agg.set_price(answer, sender=deployer)


def size(units: float) -> int:
    return round(units * WAD)


def events(tx, name: str) -> list:
    return [log for log in tx.events if log.event_name == name]


# ---- Off by default ----


def test_market_funding__not_configured__zero_and_fill_at_oracle(ch):
    info = ch.market_funding(ETH)
    assert tuple(info) == (0, 0, 0, 0, 0, 0)
    assert ch.fill_price(ETH, size(5)) == ETH_WAD == ch.fill_price(ETH, -size(5))


def test_trade__funding_off__no_funding_event_and_fills_at_oracle(ch, deposit, seeded_pool, trader):
    deposit(trader, 10_000)
    tx = ch.trade(ETH, size(1), MAX_UINT, sender=trader)
    tx2 = ch.trade(ETH, -size(1), 0, sender=trader)
    assert events(tx, "FundingSettled") == events(tx2, "FundingSettled") == []
    assert events(tx2, "PositionChanged")[0].price == ETH_WAD
    assert ch.accrued_funding(trader) == 0


# ---- The skew premium ----


def test_trade__growing_the_skew__fills_above_oracle_and_pays(book, ch, trader, token, accounts):
    fill = fm.fill_price(ETH_WAD, 0, size(10), SKEW_SCALE)
    assert fill == ETH_WAD * 1_005 // 1_000  # (0 + 10) / (2 * 1,000) = 0.5%
    assert ch.fill_price(ETH, size(10)) == fill
    tx = ch.trade(ETH, size(10), fill, sender=trader)
    (pc,) = events(tx, "PositionChanged")
    assert pc.price == fill
    assert ch.position(trader, ETH).entry_price == fill
    # marked at the oracle, the premium is an unrealised loss of 10 * 10 USD
    fee = -(-size(10) * fill * 5 // (WAD * TOKEN_SCALE * 10_000))
    assert ch.equity(trader) == 100_000 * USDC - fee - 100 * USDC
    assert_conserved(ch, token, accounts)


def test_trade__slippage_bound__applies_to_the_fill(book, ch, trader):
    with ape.reverts("clearinghouse: slippage"):
        ch.trade(ETH, size(10), ETH_WAD, sender=trader)  # the oracle price is not enough


def test_trade__shrinking_the_skew__fills_better_than_oracle(book, ch, trader, trader2):
    ch.trade(ETH, size(10), MAX_UINT, sender=trader)
    # selling 5 against a 10 long skew: (10 + 5) / 2,000 = 0.75% above the oracle
    fill = fm.fill_price(ETH_WAD, size(10), size(5), SKEW_SCALE)
    assert fill > ETH_WAD
    tx = ch.trade(ETH, -size(5), fill, sender=trader2)
    assert events(tx, "PositionChanged")[0].price == fill


def test_fill_price__inexact_premium__rounds_against_the_trader(book, ch, configurator, deployer):
    cap_to(configurator, deployer, ETH, 1)
    configurator.set_market_funding(ETH, 3, VELOCITY_BPS, sender=deployer)
    exact = ETH_WAD // (2 * 3 * WAD)  # 333.33... wei per wei of skew: truncated
    assert ch.fill_price(ETH, 1) == fm.fill_price(ETH_WAD, 0, 1, 3) == ETH_WAD + exact + 1
    assert ch.fill_price(ETH, -1) == fm.fill_price(ETH_WAD, 0, -1, 3) == ETH_WAD - exact - 1


def test_set_market_funding__scale_below_twice_the_cap__reverts(book, ch, configurator, deployer):
    """The scale covers twice the cap, so the premium stays within +-50% and every position
    has a fill to close at; a cap raised beyond half the scale, or a scale cut below twice
    the open interest, is refused."""
    with ape.reverts("configurator: skew scale below twice the cap"):
        configurator.set_market_funding(ETH, SKEW_SCALE - 1, VELOCITY_BPS, sender=deployer)
    with ape.reverts("configurator: skew scale below twice the cap"):
        cap_to(configurator, deployer, ETH, SKEW_SCALE // 2 + 1)
    cap_to(configurator, deployer, ETH, 1)  # lowering the cap is always allowed
    assert configurator.skew_scale(ETH) == SKEW_SCALE


def test_set_market_funding__scale_below_twice_the_open_interest__reverts(
    book, ch, configurator, deployer, trader
):
    cap_to(configurator, deployer, ETH, 15)
    configurator.set_market_funding(ETH, 30, VELOCITY_BPS, sender=deployer)  # flat: at once
    ch.trade(ETH, size(15), MAX_UINT, sender=trader)
    cap_to(configurator, deployer, ETH, 10)  # below the open interest already there
    with ape.reverts("configurator: skew scale below twice the cap"):
        configurator.set_market_funding(ETH, 29, VELOCITY_BPS, sender=deployer)
    configurator.set_market_funding(ETH, 30, 0, sender=deployer)  # queued: positions open


def test_set_market_funding__with_positions__not_turned_on_and_steps_bounded(
    system, ch, configurator, deployer, deposit, seeded_pool, trader
):
    """Review: on a live market a new scale moves about price * skew^2 / 2 * |1/S1 - 1/S0|
    between the open positions and the pool (buy before a cut, sell after it for the larger
    rebate: +59,500 USD on a 250-ETH skew when S halves), and turning funding on gives the
    heavy side a rebate it never paid for. So funding is turned on only on a flat market, and
    a live scale moves by at most a quarter a step (each queued a day)."""
    deposit(trader, 10_000)
    ch.trade(ETH, size(1), MAX_UINT, sender=trader)
    cap_to(configurator, deployer, ETH, 50)
    with ape.reverts("configurator: market has positions"):
        configurator.set_market_funding(ETH, 1_000, VELOCITY_BPS, sender=deployer)
    ch.trade(ETH, -size(1), 0, sender=trader)
    configurator.set_market_funding(ETH, 1_000, VELOCITY_BPS, sender=deployer)  # flat: on
    ch.trade(ETH, size(1), MAX_UINT, sender=trader)
    for bad in (799, 1_251):
        with ape.reverts("configurator: skew scale step too large"):
            configurator.set_market_funding(ETH, bad, VELOCITY_BPS, sender=deployer)
    for good in (800, 1_250):
        tx = configurator.set_market_funding(ETH, good, VELOCITY_BPS, sender=deployer)
        assert tx.decode_logs(configurator.MarketFundingQueued)[0].skew_scale == good


# ---- Funding ----


def test_funding__long_skew_held_a_day__longs_pay_shorts_receive(
    book, system, ch, trader, trader2, deployer, token, accounts
):
    f = fm.Funding(ch.market_funding(ETH).updated_at, 0, 0, SKEW_SCALE, VELOCITY_BPS)
    t0 = book.pending_timestamp + 10
    refresh(system, deployer, book, t0)
    f = fm.accrue(f, 0, ETH_WAD, at(book, t0 + 2))
    ch.trade(ETH, size(30), MAX_UINT, sender=trader)
    f = fm.accrue(f, size(30), ETH_WAD, at(book, t0 + 3))
    ch.trade(ETH, -size(10), 0, sender=trader2)
    info = ch.market_funding(ETH)
    assert (info.funding_rate, info.funding_index, info.updated_at) == (f.rate_wad, f.index, t0 + 3)
    # the velocity of a 20-ETH skew: 20 / 1,000 of 3% per day per day (WAD per day per day)
    assert info.funding_velocity == 20 * 300 * 10**14 // 1_000

    t1 = t0 + 3 + DAY
    refresh(system, deployer, book, t1 - 1)  # the head block is at t1, answers fresh
    assert book.blocks.head.timestamp == t1
    now = fm.accrue(f, size(20), ETH_WAD, t1)
    info = ch.market_funding(ETH)
    assert info.funding_rate == now.rate_wad > 0
    assert info.funding_index == now.index > 0
    # longs pay, shorts receive, each from the index at its own settlement
    long_fill = ch.position(trader, ETH).entry_price
    short_fill = ch.position(trader2, ETH).entry_price
    assert short_fill > ETH_WAD  # the short shrank the skew: filled above the oracle
    long_basis = fm.accrue(f, 0, ETH_WAD, t0 + 2).index  # recorded at the long's trade
    due_long = pnl(size(30), now.index, long_basis, TOKEN_SCALE)
    due_short = pnl(-size(10), now.index, f.index, TOKEN_SCALE)
    assert ch.accrued_funding(trader) == due_long < 0
    assert ch.accrued_funding(trader2) == due_short > 0
    # equity includes it: the position's PnL at the oracle less the index
    before = ch.collateral(trader)
    held = pnl(size(30), long_fill - long_basis, ETH_WAD - now.index, TOKEN_SCALE)
    assert ch.equity(trader) == before + held

    # closing settles it, itemised in FundingSettled just before PositionChanged
    closing = fm.accrue(f, size(20), ETH_WAD, at(book, t1 + 1))
    tx = ch.trade(ETH, -size(30), 0, sender=trader)
    names = [log.event_name for log in tx.events if log.contract_address == ch.address]
    assert names == ["FundingSettled", "PositionChanged"]
    (fs,) = events(tx, "FundingSettled")
    assert fs.funding_index == closing.index
    assert fs.funding == pnl(size(30), closing.index, long_basis, TOKEN_SCALE) < 0
    (pc,) = events(tx, "PositionChanged")
    # the whole PnL at the fill, funding-adjusted: price move, premium and funding together
    assert pc.price == fm.fill_price(ETH_WAD, size(20), -size(10), SKEW_SCALE)
    want = pnl(size(30), long_fill - long_basis, pc.price - closing.index, TOKEN_SCALE)
    assert pc.realized_pnl == want
    assert ch.collateral(trader) == before + pc.realized_pnl - pc.fee
    assert ch.accrued_funding(trader) == 0
    assert_conserved(ch, token, accounts)


# ---- Bad input ----


@pytest.mark.parametrize(
    ("market", "scale", "velocity", "reason"),
    [
        (ETH, 0, VELOCITY_BPS, "configurator: zero skew scale"),
        (ETH, fm.MAX_SKEW_SCALE + 1, VELOCITY_BPS, "configurator: skew scale too large"),
        (ETH, 2 * 10**6, fm.MAX_VELOCITY_BPS + 1, "configurator: funding velocity too high"),
        (ETH, SKEW_SCALE, VELOCITY_BPS, "configurator: skew scale below twice the cap"),
        (7, SKEW_SCALE, VELOCITY_BPS, "configurator: unknown market"),
    ],
)
def test_set_market_funding__bad_input__reverts_and_changes_nothing(
    ch, configurator, deployer, market, scale, velocity, reason
):
    with ape.reverts(reason):
        configurator.set_market_funding(market, scale, velocity, sender=deployer)
    assert tuple(ch.market_funding(ETH)) == (0, 0, 0, 0, 0, 0)


def test_set_market_funding__stranger__reverts(configurator, stranger):
    with ape.reverts(NOT_OWNER):
        configurator.set_market_funding(ETH, SKEW_SCALE, VELOCITY_BPS, sender=stranger)


def test_configure_funding__not_the_configurator__reverts(ch, stranger):
    with ape.reverts("clearinghouse: not configurator"):
        ch.configure_funding(ETH, SKEW_SCALE, VELOCITY_BPS, sender=stranger)


def test_set_market_funding__bounds__accepted_and_logged(ch, configurator, deployer):
    tx = configurator.set_market_funding(
        BTC, fm.MAX_SKEW_SCALE, fm.MAX_VELOCITY_BPS, sender=deployer
    )
    (ev,) = [log for log in tx.events if log.event_name == "MarketFundingUpdated"]
    assert (ev.market_id, ev.skew_scale, ev.max_funding_velocity) == (
        BTC,
        fm.MAX_SKEW_SCALE,
        fm.MAX_VELOCITY_BPS,
    )
    info = ch.market_funding(BTC)
    assert (info.skew_scale, info.max_funding_velocity) == (fm.MAX_SKEW_SCALE, fm.MAX_VELOCITY_BPS)


def test_set_market_funding__retuned_with_positions__queued_then_records_the_funding_so_far(
    book, system, ch, configurator, deployer, trader, stranger
):
    """A new scale moves value between open positions and the pool at once (a premium paid
    at one scale is paid back at another), so with positions open it waits RISK_DELAY, in
    public, as a rate rise does; applied, the funding so far is recorded first."""
    f = fm.Funding(ch.market_funding(ETH).updated_at, 0, 0, SKEW_SCALE, VELOCITY_BPS)
    t0 = book.pending_timestamp + 10
    f = fm.accrue(f, 0, ETH_WAD, at(book, t0))
    ch.trade(ETH, size(50), MAX_UINT, sender=trader)
    tx = configurator.set_market_funding(ETH, SKEW_SCALE * 5 // 4, 0, sender=deployer)  # +25%
    [queued] = tx.decode_logs(configurator.MarketFundingQueued)
    assert (queued.skew_scale, queued.max_funding_velocity) == (SKEW_SCALE * 5 // 4, 0)
    assert queued.eta == tx.timestamp + DAY
    assert ch.market_funding(ETH).skew_scale == SKEW_SCALE  # nothing moved yet
    with ape.reverts("configurator: risk delay"):
        configurator.apply_market_funding(ETH, sender=stranger)
    refresh(system, deployer, book, queued.eta)
    f = fm.accrue(f, size(50), ETH_WAD, at(book, queued.eta + 2))
    tx = configurator.apply_market_funding(ETH, sender=stranger)  # anyone, after the delay
    assert len(tx.decode_logs(configurator.MarketFundingUpdated)) == 1
    info = ch.market_funding(ETH)
    assert (info.funding_rate, info.funding_index) == (f.rate_wad, f.index)
    assert (info.skew_scale, info.max_funding_velocity, info.funding_velocity) == (
        SKEW_SCALE * 5 // 4,
        0,
        0,
    )
    assert configurator.pending_funding(ETH).eta == 0
    with ape.reverts("configurator: no funding change"):
        configurator.apply_market_funding(ETH, sender=stranger)


def test_set_market_funding__queued_then_cancelled_or_expired__never_applies(
    book, system, ch, configurator, deployer, trader, stranger
):
    ch.trade(ETH, size(50), MAX_UINT, sender=trader)
    configurator.set_market_funding(ETH, SKEW_SCALE * 5 // 4, 0, sender=deployer)
    with ape.reverts(NOT_OWNER):
        configurator.cancel_market_funding(ETH, sender=stranger)
    tx = configurator.cancel_market_funding(ETH, sender=deployer)
    assert len(tx.decode_logs(configurator.MarketFundingCancelled)) == 1
    with ape.reverts("configurator: no funding change"):
        configurator.cancel_market_funding(ETH, sender=deployer)
    tx = configurator.set_market_funding(ETH, SKEW_SCALE * 5 // 4, 0, sender=deployer)
    eta = tx.decode_logs(configurator.MarketFundingQueued)[0].eta
    refresh(system, deployer, book, eta + 7 * DAY + 1)  # past RISK_GRACE
    with ape.reverts("configurator: risk change expired"):
        configurator.apply_market_funding(ETH, sender=stranger)
    assert ch.market_funding(ETH).skew_scale == SKEW_SCALE


def test_set_market_funding__no_positions__applies_at_once_and_drops_a_queued_one(
    book, ch, configurator, deployer, trader
):
    ch.trade(ETH, size(50), MAX_UINT, sender=trader)
    configurator.set_market_funding(ETH, SKEW_SCALE * 5 // 4, 100, sender=deployer)  # queued
    ch.trade(ETH, -size(50), 0, sender=trader)  # the market is flat again
    tx = configurator.set_market_funding(ETH, SKEW_SCALE * 2, 0, sender=deployer)
    assert len(tx.decode_logs(configurator.MarketFundingCancelled)) == 1
    assert ch.market_funding(ETH).skew_scale == SKEW_SCALE * 2
    assert configurator.pending_funding(ETH).eta == 0


# ---- Held for years: bounded, never overflowing ----


def test_funding__skew_held_ten_years_at_max_velocity__rate_capped_and_position_closes(
    book, system, ch, configurator, deployer, trader, trader2, token, accounts
):
    configurator.set_market_funding(ETH, SKEW_SCALE, fm.MAX_VELOCITY_BPS, sender=deployer)
    ch.trade(ETH, size(5), MAX_UINT, sender=trader)  # 100x less than the deposit's reach
    ch.trade(ETH, -size(1), 0, sender=trader2)
    t = book.pending_timestamp + 10 * 365 * DAY
    refresh(system, deployer, book, t)
    info = ch.market_funding(ETH)
    assert info.funding_rate == fm.MAX_RATE * (WAD // fm.RATE_ONE)  # 100% per day: the cap
    assert 0 < info.funding_index <= fm.MAX_INDEX
    # the long owes far more than it holds: liquidatable, and the liquidation goes through
    assert ch.is_liquidatable(trader)
    tx = ch.liquidate(trader, sender=trader2)
    assert [log.event_name for log in tx.events if log.event_name == "FundingSettled"] == [
        "FundingSettled"
    ]
    assert ch.position(trader, ETH).size == 0
    assert ch.accrued_funding(trader2) > 0
    ch.trade(ETH, size(1), MAX_UINT, sender=trader2)  # the short closes with its funding
    assert ch.position(trader2, ETH).size == 0
    assert_conserved(ch, token, accounts)


def test_accrue__index_at_its_bound__saturates():
    f = fm.Funding(0, fm.MAX_RATE, fm.MAX_INDEX - 5, 1, fm.MAX_VELOCITY_BPS)
    later = fm.accrue(f, MAX_UINT // 2**130, 2**126 - 1, 2**40 - 1)
    assert later.index == fm.MAX_INDEX and later.rate == fm.MAX_RATE


# ---- Liquidation: funding alone takes an account under, and closes it at the mark ----


def test_liquidate__funding_alone_below_maintenance__closes_at_the_mark_with_funding(
    book, system, ch, configurator, deployer, trader, trader2, fund, stranger, token, accounts
):
    configurator.set_market_funding(ETH, SKEW_SCALE, fm.MAX_VELOCITY_BPS, sender=deployer)
    ch.deposit(fund(stranger, 20_000), sender=stranger)
    ch.trade(ETH, size(60), MAX_UINT, sender=stranger)  # 120,000 notional on 20,000: 6x
    t = book.pending_timestamp
    days = 0
    while not ch.is_liquidatable(stranger):
        days += 1
        refresh(system, deployer, book, t + days * DAY)
        assert days < 60
    assert system.aggregators[ETH].latestRoundData()[1] == ETH_WAD // 10**10  # price unchanged
    owed = ch.accrued_funding(stranger)
    assert owed < 0
    tx = ch.liquidate(stranger, sender=trader2)
    names = [log.event_name for log in tx.events if log.contract_address == ch.address]
    assert names[:2] == ["FundingSettled", "PositionChanged"]
    (fs,) = events(tx, "FundingSettled")
    (pc,) = events(tx, "PositionChanged")
    assert pc.price == ETH_WAD  # no premium on a liquidation
    assert fs.funding <= owed  # accrued to the liquidation's block, a second later or more
    assert ch.accrued_funding(stranger) == 0
    assert_conserved(ch, token, accounts)


def test_liquidate_many__two_accounts_one_market__one_record_for_both(
    book, system, ch, configurator, deployer, trader2, fund, accounts, token
):
    configurator.set_market_funding(ETH, SKEW_SCALE, fm.MAX_VELOCITY_BPS, sender=deployer)
    a, b = accounts[7], accounts[8]
    for who in (a, b):
        ch.deposit(fund(who, 20_000), sender=who)
        ch.trade(ETH, size(30), MAX_UINT, sender=who)
    t = book.pending_timestamp
    days = 0
    while not (ch.is_liquidatable(a) and ch.is_liquidatable(b)):
        days += 1
        refresh(system, deployer, book, t + days * DAY)
        assert days < 60
    tx = ch.liquidate_many([a, b], sender=trader2)
    settled = events(tx, "FundingSettled")
    assert [e.account for e in settled] == [a.address, b.address]
    assert (
        settled[0].funding_index == settled[1].funding_index == ch.market_funding(ETH).funding_index
    )
    assert_conserved(ch, token, accounts)


# ---- Attacker: a trader with two accounts ----


def test_premium__wash_round_trip_with_two_accounts__loses_the_fees(
    book, ch, trader, trader2, token, accounts
):
    """Buy on one account and sell on the other, then unwind: the premium one leg pays the
    other earns back, so the pair is down by the four trading fees (and rounding), never up."""
    start = ch.collateral(trader) + ch.collateral(trader2)
    fees = 0
    for who, delta in ((trader, 40), (trader2, -40), (trader, -40), (trader2, 40)):
        tx = ch.trade(ETH, size(delta), MAX_UINT if delta > 0 else 0, sender=who)
        fees += events(tx, "PositionChanged")[0].fee
    end = ch.collateral(trader) + ch.collateral(trader2)
    assert end - start <= -fees
    assert end - start >= -fees - 4  # the rest is rounding, against the traders
    assert_conserved(ch, token, accounts)


def test_trade__skew_shrinking_rebate__is_no_margin_until_realised(
    book, ch, trader, fund, accounts
):
    """Found in review: equity marks at the oracle, so the rebate a skew-shrinking fill earns
    (a 100-ETH short against a 100-ETH long skew sells 5% above it: +10,000 USD) counted
    towards the same trade's initial margin, though closing would pay it straight back. The
    initial check now takes equity at the exit (less every position's closing premium)."""
    ch.trade(ETH, size(100), MAX_UINT, sender=trader)  # the skew: +100 ETH
    a = accounts[7]
    ch.deposit(fund(a, 15_000), sender=a)  # enough with the rebate (10,105), not without it
    with ape.reverts("clearinghouse: insufficient margin"):
        ch.trade(ETH, -size(100), 0, sender=a)
    ch.deposit(fund(a, 5_200), sender=a)  # 20,200 >= 20,000 initial + 105 fee
    ch.trade(ETH, -size(100), 0, sender=a)
    assert ch.equity(a) == ch.collateral(a) + 10_000 * USDC  # the rebate, unrealised


def test_withdraw__skew_shrinking_rebate__cannot_be_withdrawn(book, ch, trader, fund, accounts):
    ch.trade(ETH, size(100), MAX_UINT, sender=trader)
    a = accounts[7]
    ch.deposit(fund(a, 25_000), sender=a)
    ch.trade(ETH, -size(100), 0, sender=a)
    # equity 34,895 (10,000 of it the rebate); at the exit 24,895 against 20,000 initial
    with ape.reverts("clearinghouse: insufficient margin"):
        ch.withdraw(6_000 * USDC, sender=a)
    ch.withdraw(4_800 * USDC, sender=a)


def test_liquidation__hedged_pair__the_premium_is_paid_back_not_taken_twice(
    book, system, ch, deployer, trader2, fund, accounts, token
):
    """Found in review: with liquidations exempt from the premium, a long and a short of the
    same size on two accounts took it twice (the long, liquidated at the mark, skipped the
    premium its close would pay; the short then closed against the skew the liquidation left
    and was paid it), about price * L**2 / (2S) from the pool. A liquidation now pays the
    premium a close growing the skew pays (never the rebate): the pair ends down the fees."""
    a, b = accounts[7], accounts[8]
    ch.deposit(fund(a, 10_000), sender=a)  # 40 ETH long filled at 2,040 (2% premium)
    ch.deposit(fund(b, 100_000), sender=b)
    start = ch.collateral(a) + ch.collateral(b)
    fees = 0
    for who, delta in ((a, 40), (b, -40)):
        fees += events(ch.trade(ETH, size(delta), MAX_UINT if delta > 0 else 0, sender=who),
                       "PositionChanged")[0].fee  # fmt: skip
    refresh(system, deployer, book, book.pending_timestamp + 5, {ETH: 1_870 * 10**8})
    assert ch.is_liquidatable(a)
    skew = size(40) - size(40)
    tx = ch.liquidate(a, sender=trader2)
    (pc,) = events(tx, "PositionChanged")
    assert pc.new_size == 0  # full: the close takes the skew from 0 to -40
    per = fm.close_cost(1_870 * WAD, skew, size(40), size(40), SKEW_SCALE)
    assert per == 1_870 * WAD * 40 // 2_000  # 2%: (40 - 0) / (2 * 1,000)
    liq_fee = events(tx, "Liquidated")[0].fee
    tx = ch.trade(ETH, size(40), MAX_UINT, sender=b)  # shrinks the skew: paid the premium
    fees += events(tx, "PositionChanged")[0].fee + liq_fee
    end = ch.collateral(a) + ch.collateral(b) + ch.claims(a) + ch.claims(b)
    assert end - start <= -fees  # the premium A paid is the one B was paid back
    assert end - start >= -fees - 3 * USDC  # rounding and the price-path term only
    assert_conserved(ch, token, accounts)


def test_liquidation_preview__premium_on_the_close__counted(
    book, system, ch, deployer, trader2, fund, accounts
):
    a, b = accounts[7], accounts[8]
    ch.deposit(fund(a, 10_000), sender=a)
    ch.deposit(fund(b, 100_000), sender=b)
    ch.trade(ETH, size(40), MAX_UINT, sender=a)
    ch.trade(ETH, -size(40), 0, sender=b)
    refresh(system, deployer, book, book.pending_timestamp + 5, {ETH: 1_870 * 10**8})
    fraction, reward, bad = ch.liquidation_preview(a)
    tx = ch.liquidate(a, sender=trader2)
    e = events(tx, "Liquidated")[0]
    assert (fraction, reward) == (e.fraction, e.keeper_reward)
    assert bad == sum(x.bad_debt for x in events(tx, "BadDebtSettled"))


# ---- Bank run with funding on ----


def test_funding__bank_run_after_a_week__every_account_closes_and_withdraws_in_full(
    book, system, ch, vault, deployer, lp, trader, trader2, fund, token, accounts
):
    """A skewed book held a week at a high velocity (the longs pay a growing rate), then
    everyone leaves at once: each trader closes, settles its funding (FundingSettled) and
    withdraws all it has; then the LP redeems every share. Nothing is left owed or stranded:
    the engine ends holding only the insurance fund, and no collateral or claim remains."""
    traders = [trader, trader2, accounts[7], accounts[8]]
    for who in traders[2:]:
        ch.deposit(fund(who, 20_000), sender=who)
    for who, units in zip(traders, (60, -20, 30, -10), strict=True):
        ch.trade(ETH, size(units), MAX_UINT if units > 0 else 0, sender=who)
    t = book.pending_timestamp
    for day in range(1, 8):
        refresh(system, deployer, book, t + day * DAY)
    settled = 0
    for who in traders:
        s = ch.position(who, ETH).size
        tx = ch.trade(ETH, -s, 0 if s > 0 else MAX_UINT, sender=who)
        (fs,) = events(tx, "FundingSettled")
        settled += fs.funding
        assert ch.accrued_funding(who) == 0
        ch.withdraw(ch.collateral(who), sender=who)
        assert ch.collateral(who) == ch.claims(who) == 0
    assert settled < 0  # the long skew paid, to the pool and the shorts
    vault.remove_liquidity(vault.balanceOf(lp), 0, sender=lp)
    assert ch.pool_assets() <= 10  # rounding dust at most
    assert token.balanceOf(ch) == ch.insurance_fund() + ch.pool_assets()
    assert_conserved(ch, token, accounts)
