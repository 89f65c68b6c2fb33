"""The counterparty pool and administration (SPEC sections 2 and 5): LP shares, free liquidity,
the insurance fund, every owner setter with its bounds and event, two-step ownership, and the
guardian's pause (which blocks new risk and LP withdrawals, never closing, deposits,
withdrawals or liquidation).

Share maths is checked against a Python model written here: shares = assets * (supply + 1e6)
// (pool + 1) and assets = shares * (pool + 1) // (supply + 1e6), both rounded down.
"""

from __future__ import annotations

import ape
import pytest
from support.constants import (
    BPS,
    BTC,
    ETH,
    ETH_WAD,
    FEED_DECIMALS,
    FEED_UNIT,
    IM_BPS,
    KEEPER_SHARE_BPS,
    LIQ_FEE_BPS,
    MAX_MARKETS,
    MAX_MIN_KEEPER_REWARD,
    MAX_PARTIAL_BPS,
    MAX_PRICE,
    MAX_RESERVE_BPS,
    MAX_SIZE,
    MAX_TRADING_FEE_BPS,
    MIN_KEEPER_REWARD_USD,
    MIN_NOTIONAL_USD,
    MM_BPS,
    NOT_OWNER,
    POOL_RESERVE_BPS,
    TRADE_FEE_BPS,
    USDC,
    WAD,
    ZERO_ADDRESS,
)
from support.deployers import assert_conserved
from support.lp import REQUEST_TIMEOUT, deposit_by_request, refresh_prices, withdraw_by_request
from support.trading import buy, move, notional_up, pnl, sell, units

from margin_maintenance.model import VIRTUAL_ASSETS, VIRTUAL_SHARES, bps_up, to_assets, to_shares

# ---- Helpers (the engine's maths and trade helpers: support.trading) ----


@pytest.fixture
def everyone(accounts):
    return list(accounts)


@pytest.fixture
def lp2(accounts):
    return accounts[7]


@pytest.fixture
def add_liquidity(fund, ch, vault):
    def _add(who, usd: float, min_shares: int = 0):
        amount = fund(who, usd)
        return vault.add_liquidity(amount, min_shares, sender=who)

    return _add


@pytest.fixture
def new_feed(make_aggregator, make_feed):
    """A fresh adapter over a fresh aggregator at `usd` (or at an exact `answer`)."""

    def _new(usd: float = 100, decimals: int = FEED_DECIMALS, answer: int | None = None):
        if answer is None:
            answer = round(usd * 10**decimals)
        return make_feed(make_aggregator(decimals, answer, "NEW / USD"))

    return _new


# --------------------------------------------------------------------------------------------
# Liquidity
# --------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_add_liquidity__first_provider__shares_at_virtual_offset_and_logged(
    ch, vault, token, fund, lp, everyone
):
    amount = fund(lp, 1_000_000)
    expected = to_shares(amount, 0, 0)
    assert expected == amount * VIRTUAL_SHARES
    assert vault.convert_to_shares(amount) == expected

    tx = vault.add_liquidity(amount, expected, sender=lp)  # min_shares == quote is accepted

    assert vault.balanceOf(lp) == expected
    assert vault.totalSupply() == expected
    assert ch.pool_assets() == amount
    [log] = tx.decode_logs(ch.LiquidityAdded)
    assert log.event_arguments["provider"] == lp.address  # `.provider` is Ape's
    assert (log.assets, log.shares) == (amount, expected)
    assert vault.convert_to_assets(expected) == to_assets(expected, expected, amount) == amount
    assert_conserved(ch, token, everyone)


def test_add_liquidity__after_fees_accrued__shares_by_formula(
    ch, token, vault, deposit, add_liquidity, seeded_pool, trader, lp2, everyone
):
    deposit(trader, 10_000)
    buy(ch, trader, ETH, 10 * WAD)
    sell(ch, trader, ETH, 10 * WAD)  # two 10-USD fees: the pool grew, shares are dearer
    pool, supply = ch.pool_assets(), vault.totalSupply()
    assert pool == seeded_pool + units(20)

    amount = units(12_345.678901)
    expected = to_shares(amount, supply, pool)
    tx = add_liquidity(lp2, 12_345.678901)

    assert vault.balanceOf(lp2) == expected < amount * VIRTUAL_SHARES
    assert tx.decode_logs(ch.LiquidityAdded)[0].shares == expected
    assert ch.pool_assets() == pool + amount
    assert_conserved(ch, token, everyone)


def test_add_liquidity__zero_amount__reverts(ch, vault, fund, lp):
    fund(lp, 10)
    with ape.reverts("vault: zero amount"):
        vault.add_liquidity(0, 0, sender=lp)


def test_add_liquidity__min_shares_above_quote__reverts_slippage(ch, vault, fund, lp):
    amount = fund(lp, 1_000)
    with ape.reverts("vault: slippage"):
        vault.add_liquidity(amount, to_shares(amount, 0, 0) + 1, sender=lp)


def test_add_liquidity__dust_into_grown_pool__reverts_zero_shares(
    ch, vault, fund, deposit, trader, lp
):
    deposit(trader, 10_000)
    buy(ch, trader, ETH, 10 * WAD)  # no LP yet: the pool is two 10-USD fees, supply 0
    sell(ch, trader, ETH, 10 * WAD)  # flat again: instant entries are open
    assert to_shares(1, 0, ch.pool_assets()) == 0
    fund(lp, 1)
    with ape.reverts("vault: zero shares"):
        vault.add_liquidity(1, 0, sender=lp)


@pytest.mark.integration
def test_remove_liquidity__all_shares__assets_by_formula_and_logged(
    ch, vault, token, deposit, seeded_pool, trader, lp, everyone
):
    deposit(trader, 10_000)
    buy(ch, trader, ETH, 10 * WAD)
    sell(ch, trader, ETH, 10 * WAD)  # the pool earned 20 USD of fees, no open interest
    shares, pool = vault.balanceOf(lp), ch.pool_assets()
    expected = to_assets(shares, shares, pool)
    assert vault.convert_to_assets(shares) == expected
    assert vault.free_liquidity() == pool

    tx = vault.remove_liquidity(shares, expected, sender=lp)  # min_assets == quote is accepted

    assert token.balanceOf(lp) == expected
    assert seeded_pool < expected <= pool  # fees earned; the virtual share keeps its sliver
    assert vault.balanceOf(lp) == vault.totalSupply() == 0
    assert ch.pool_assets() == pool - expected
    [log] = tx.decode_logs(ch.LiquidityRemoved)
    assert log.event_arguments["provider"] == lp.address  # `.provider` is Ape's
    assert (log.assets, log.shares) == (expected, shares)
    assert_conserved(ch, token, everyone)


def test_remove_liquidity__zero_shares__reverts(ch, vault, seeded_pool, lp):
    with ape.reverts("vault: zero amount"):
        vault.remove_liquidity(0, 0, sender=lp)


def test_remove_liquidity__min_assets_above_quote__reverts_slippage(ch, vault, seeded_pool, lp):
    shares = vault.balanceOf(lp) // 2
    quote = vault.convert_to_assets(shares)
    with ape.reverts("vault: slippage"):
        vault.remove_liquidity(shares, quote + 1, sender=lp)


def test_remove_liquidity__dust_shares__reverts_zero_assets(ch, vault, seeded_pool, lp):
    assert vault.convert_to_assets(VIRTUAL_SHARES - 1) == 0
    with ape.reverts("vault: zero assets"):
        vault.remove_liquidity(VIRTUAL_SHARES - 1, 0, sender=lp)


def test_remove_liquidity__shares_not_held__reverts(ch, vault, seeded_pool, stranger):
    with ape.reverts("erc20: burn amount exceeds balance"):
        vault.remove_liquidity(10**18, 0, sender=stranger)


def test_free_liquidity__open_interest_and_trader_profit__locked(
    ch, vault, token, system, deployer, deposit, seeded_pool, trader, trader2, lp, everyone
):
    deposit(trader, 50_000)
    deposit(trader2, 50_000)
    buy(ch, trader, ETH, 200 * WAD)  # 400,000 USD long
    sell(ch, trader2, ETH, 50 * WAD)  # 100,000 USD short
    pool = ch.pool_assets()
    gross = 250 * WAD
    reserve = bps_up(notional_up(gross, ETH_WAD), POOL_RESERVE_BPS)
    assert vault.free_liquidity() == pool - reserve  # traders flat: only the reserve is locked

    price = move(system, deployer, ETH, 2_100 * FEED_UNIT)  # longs +20,000, shorts -5,000
    trader_pnl = pnl(200 * WAD, ETH_WAD, price) + pnl(-50 * WAD, ETH_WAD, price)
    assert ch.trader_unrealized_pnl(ETH) == trader_pnl == units(15_000)
    # The longs' profit is locked whole, never netted against the shorts' loss (that loss
    # may never be collected), with one unit to spare (the aggregate truncates to zero).
    longs_profit = pnl(200 * WAD, ETH_WAD, price)
    shorts_loss = -pnl(-50 * WAD, ETH_WAD, price)
    assert (longs_profit, shorts_loss) == (units(20_000), units(5_000))
    free = pool - bps_up(notional_up(gross, price), POOL_RESERVE_BPS) - longs_profit - 1
    assert vault.free_liquidity() == free

    # A redeeming LP takes a share of the net value: the pool plus the shorts' collectable
    # loss less the longs' profit.
    redeem_nav = pool + shorts_loss - longs_profit - 1
    shares = vault.balanceOf(lp)
    too_many = to_shares(free, shares, redeem_nav) + 2 * VIRTUAL_SHARES
    assert vault.convert_to_assets(too_many) == to_assets(too_many, shares, redeem_nav) > free
    with ape.reverts("vault: pool exposed"):  # open interest: exits go through requests
        vault.remove_liquidity(too_many, 0, sender=lp)
    with ape.reverts("vault: insufficient free liquidity"):
        withdraw_by_request(system, deployer, lp, too_many)
    # The refused request stays open (its shares in escrow) until its owner cancels it.
    refresh_prices(system, deployer, REQUEST_TIMEOUT)
    vault.cancel_request(vault.request_count() - 1, sender=lp)
    within = to_shares(free, shares, redeem_nav)
    paid = to_assets(within, shares, redeem_nav)
    assert free - 2 <= paid <= free  # all of it, to rounding
    log = withdraw_by_request(system, deployer, lp, within)
    assert log.assets + log.fee == paid  # the executor's fee comes out of the redemption
    assert token.balanceOf(lp) == paid - log.fee
    assert vault.free_liquidity() == free - paid
    assert_conserved(ch, token, everyone)


def test_free_liquidity__trader_losses__not_locked(
    ch, vault, system, deployer, deposit, seeded_pool, trader
):
    deposit(trader, 50_000)
    buy(ch, trader, ETH, 100 * WAD)
    price = move(system, deployer, ETH, 1_900 * FEED_UNIT)  # traders -10,000: nothing to pay
    assert ch.trader_unrealized_pnl(ETH) == -units(10_000)
    reserve = bps_up(notional_up(100 * WAD, price), POOL_RESERVE_BPS)
    assert vault.free_liquidity() == ch.pool_assets() - reserve


def test_free_liquidity__account_debt__locked(
    ch, vault, token, system, deployer, deposit, seeded_pool, trader, everyone
):
    deposit(trader, 1_200)
    buy(ch, trader, ETH, 4 * WAD)
    buy(ch, trader, BTC, WAD // 20)
    move(system, deployer, ETH, 1_650 * FEED_UNIT)  # ETH -1,400
    btc_price = move(system, deployer, BTC, 80_000 * FEED_UNIT)  # BTC +1,000
    sell(ch, trader, ETH, 4 * WAD)  # the ETH loss exceeds collateral; BTC profit carries it
    debt = -ch.collateral(trader)
    assert debt > 0 and ch.total_debt() == debt
    assert not ch.is_liquidatable(trader)

    reserve = bps_up(notional_up(WAD // 20, btc_price), POOL_RESERVE_BPS)
    trader_pnl = ch.trader_unrealized_pnl(BTC)
    assert trader_pnl == units(1_000)
    # + 1: trader profit is locked with one unit to spare
    assert vault.free_liquidity() == ch.pool_assets() - reserve - trader_pnl - 1 - debt
    assert_conserved(ch, token, everyone)

    deposit(trader, 300)  # a deposit repays the debt first
    assert ch.total_debt() == 0
    assert ch.collateral(trader) == units(300) - debt
    assert vault.free_liquidity() == ch.pool_assets() - reserve - trader_pnl - 1
    assert_conserved(ch, token, everyone)


def test_remove_liquidity__traders_in_profit__redeemer_bears_share_of_loss(
    ch, vault, token, system, deployer, fund, deposit, trader, lp, lp2, everyone
):
    for provider in (lp, lp2):
        vault.add_liquidity(fund(provider, 500_000), 0, sender=provider)
    deposit(trader, 20_000)
    buy(ch, trader, ETH, 50 * WAD)
    move(system, deployer, ETH, 3_000 * FEED_UNIT)  # the pool owes the trader 50,000 USD
    owed = ch.trader_unrealized_pnl(ETH)
    assert owed == units(50_000)
    pool, supply, shares = ch.pool_assets(), vault.totalSupply(), vault.balanceOf(lp)
    fair = shares * (pool - owed + VIRTUAL_ASSETS) // (supply + VIRTUAL_SHARES)

    withdraw_by_request(system, deployer, lp, shares)  # open interest: a request
    sell(ch, trader, ETH, 50 * WAD)  # the loss is realised; only lp2 is left to bear it

    assert token.balanceOf(lp) <= fair  # about 475,000, not the 500,000 of realised assets
    assert_conserved(ch, token, everyone)


def test_redemption_value__trade_realises_loss_into_debt__falls_by_debt_less_fee_then_recovers(
    ch, vault, token, system, deployer, seeded_pool, deposit, trader, trader2, everyone
):
    """A trade may realise a loss beyond the account's collateral while another position
    carries the account (cross margin): the loss becomes account debt. The redemption value
    subtracts account debt in full while the market that owes the other position's profit is
    also counted, so it falls by the new debt less the fee, and recovers when the profit is
    realised. The realised share price (pool assets per share) never falls. Found by
    `make fuzz`: the state machine's rule now bounds such a fall by the new debt."""
    deposit(trader2, 5_000)
    buy(ch, trader2, ETH, 10 * WAD)  # keeps the ETH market's traders net in profit
    deposit(trader, 1_100)
    sell(ch, trader, ETH, 2 * WAD)
    buy(ch, trader, BTC, WAD // 10)
    eth = move(system, deployer, ETH, 2_700 * FEED_UNIT)  # the short loses 1,400
    move(system, deployer, BTC, 80_000 * FEED_UNIT)  # the BTC long gains 2,000
    probe = 10**12
    supply = vault.totalSupply()
    value_before, realised_before = vault.convert_to_assets(probe), ch.pool_assets()

    tx = buy(ch, trader, ETH, 2 * WAD)  # close the losing leg; the BTC leg carries the account

    fee = tx.decode_logs(ch.PositionChanged)[0].fee
    debt = -ch.collateral(trader)
    assert debt > fee > 0 and ch.total_debt() == debt and not ch.is_liquidatable(trader)
    assert ch.pool_assets() == realised_before - pnl(-2 * WAD, ETH_WAD, eth) + fee  # grew
    fall = (debt - fee) * probe // (supply + VIRTUAL_SHARES)
    assert value_before - vault.convert_to_assets(probe) in (fall, fall + 1)  # rounding

    sell(ch, trader, BTC, WAD // 10)  # the BTC profit is realised and repays the debt

    assert ch.total_debt() == 0 and vault.convert_to_assets(probe) >= value_before
    assert_conserved(ch, token, everyone)


def test_add_liquidity__traders_losing__newcomer_pays_for_paper_gains(
    ch, vault, token, system, deployer, fund, deposit, trader, lp, lp2, everyone
):
    vault.add_liquidity(fund(lp, 500_000), 0, sender=lp)
    deposit(trader, 20_000)
    buy(ch, trader, ETH, 50 * WAD)
    move(system, deployer, ETH, 1_800 * FEED_UNIT)  # the trader owes the pool 10,000 USD
    owing = -ch.trader_unrealized_pnl(ETH)
    assert owing == units(10_000)
    pool, supply = ch.pool_assets(), vault.totalSupply()
    amount = fund(lp2, 100_000)
    fee = vault.execution_fee()
    expected = (amount - fee) * (supply + VIRTUAL_SHARES) // (pool + owing + VIRTUAL_ASSETS)
    assert vault.convert_to_shares(amount - fee) == expected

    deposit_by_request(system, deployer, lp2, amount)  # open interest: a request

    assert vault.balanceOf(lp2) == expected  # fewer than at the realised share price
    assert expected < (amount - fee) * (supply + VIRTUAL_SHARES) // (pool + VIRTUAL_ASSETS)
    assert_conserved(ch, token, everyone)


def test_fund_insurance__amount__credited_and_logged(ch, token, fund, stranger, everyone):
    amount = fund(stranger, 2_500)

    tx = ch.fund_insurance(amount, sender=stranger)

    assert ch.insurance_fund() == amount
    [log] = tx.decode_logs(ch.InsuranceFunded)
    assert (log.funder, log.amount) == (stranger.address, amount)
    assert_conserved(ch, token, everyone)


def test_fund_insurance__zero_amount__reverts(ch, fund, stranger):
    fund(stranger, 1)
    with ape.reverts("clearinghouse: zero amount"):
        ch.fund_insurance(0, sender=stranger)


# --------------------------------------------------------------------------------------------
# Owner setters: access, bounds, events
# --------------------------------------------------------------------------------------------

# Who may call each setter is asserted cell by cell in test_access_matrix.py.


def test_add_market__valid__listed_and_logged(
    ch, deployer, new_feed, deposit, seeded_pool, trader, configurator
):
    feed = new_feed(150)

    tx = configurator.add_market(
        feed, 2_000, 1_000, 300, 20, 5_000 * WAD, units(25), sender=deployer
    )

    assert ch.market_count() == 3
    [added] = tx.decode_logs(configurator.MarketAdded)
    assert (added.market_id, added.feed) == (2, feed.address)
    [risk] = tx.decode_logs(configurator.MarketRiskUpdated)
    assert (risk.market_id, risk.initial_margin_bps, risk.maintenance_margin_bps) == (
        2,
        2_000,
        1_000,
    )
    assert (risk.liquidation_fee_bps, risk.trading_fee_bps) == (300, 20)
    [limits] = tx.decode_logs(configurator.MarketLimitsUpdated)
    assert (limits.market_id, limits.max_open_interest, limits.min_position_notional) == (
        2,
        5_000 * WAD,
        units(25),
    )
    info = ch.market(2)
    assert info.feed == feed.address
    assert (info.initial_margin_bps, info.maintenance_margin_bps) == (2_000, 1_000)
    assert (info.liquidation_fee_bps, info.trading_fee_bps) == (300, 20)
    assert (info.max_open_interest, info.min_position_notional) == (5_000 * WAD, units(25))
    assert (info.open_interest_long, info.open_interest_short) == (0, 0)

    deposit(trader, 1_000)
    tx = buy(ch, trader, 2, WAD)  # tradeable at once, at its own fee
    assert tx.decode_logs(ch.PositionChanged)[0].fee == bps_up(units(150), 20)


def test_add_market__zero_feed__reverts(ch, deployer, configurator):
    with ape.reverts("configurator: zero feed"):
        configurator.add_market(
            ZERO_ADDRESS, IM_BPS, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS, WAD, USDC, sender=deployer
        )


def test_add_market__feed_price_above_max__reverts(ch, deployer, new_feed, configurator):
    feed = new_feed(decimals=18, answer=MAX_PRICE + 1)  # 2**128 WAD: beyond what a position stores
    with ape.reverts("configurator: bad feed price"):
        configurator.add_market(
            feed, IM_BPS, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS, WAD, USDC, sender=deployer
        )


def test_add_market__stale_feed__reverts(ch, chain, deployer, new_feed, configurator):
    feed = new_feed(100)
    chain.pending_timestamp = chain.pending_timestamp + 3_600 + 10
    chain.mine()
    with ape.reverts("oracle: stale price"):
        configurator.add_market(
            feed, IM_BPS, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS, WAD, USDC, sender=deployer
        )


# (im, mm, liq, trade) out of bounds, with the reason.
BAD_RISK = [
    ((1_000, 0, 0, 0), "configurator: bad margin rates"),
    ((1_000, 1_000, 100, 5), "configurator: bad margin rates"),
    ((1_000, 1_001, 100, 5), "configurator: bad margin rates"),
    ((BPS + 1, 500, 100, 5), "configurator: bad margin rates"),
    ((1_000, 500, 500, 5), "configurator: liquidation fee >= maintenance"),
    ((1_000, 500, 600, 5), "configurator: liquidation fee >= maintenance"),
    ((2_000, 1_000, 600, MAX_TRADING_FEE_BPS + 1), "configurator: trading fee too high"),
    ((1_000, 500, 100, 101), "configurator: trading fee above liquidation fee"),
    ((1_000, 500, 0, 1), "configurator: trading fee above liquidation fee"),
    # (im - mm) / (im - fee) = 900 / 901 needs more closed than the 80% partial bound allows.
    ((1_000, 100, 99, 5), "configurator: partial bound unreachable"),
]


# (max open interest, minimum notional) that add_market and set_market_limits refuse.
BAD_LIMITS = [
    (0, USDC, "configurator: bad open interest cap"),
    (MAX_SIZE + 1, USDC, "configurator: bad open interest cap"),
    (WAD, 0, "configurator: bad minimum notional"),
    (WAD, 2**128, "configurator: bad minimum notional"),
]


@pytest.mark.parametrize("rates, reason", BAD_RISK)
def test_add_market__bad_rates__reverts(ch, system, deployer, rates, reason, configurator):
    with ape.reverts(reason):
        configurator.add_market(system.feeds[0], *rates, WAD, USDC, sender=deployer)
    assert ch.market_count() == 2


@pytest.mark.parametrize("max_oi, min_notional, reason", BAD_LIMITS)
def test_add_market__bad_limits__reverts(
    ch, system, deployer, max_oi, min_notional, reason, configurator
):
    with ape.reverts(reason):
        configurator.add_market(
            system.feeds[0],
            IM_BPS,
            MM_BPS,
            LIQ_FEE_BPS,
            TRADE_FEE_BPS,
            max_oi,
            min_notional,
            sender=deployer,
        )


def test_add_market__64_listed__next_reverts_too_many_markets(ch, system, deployer, configurator):
    feed = system.feeds[0]
    for _ in range(MAX_MARKETS - 2):
        configurator.add_market(
            feed, IM_BPS, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS, WAD, USDC, sender=deployer
        )
    assert ch.market_count() == MAX_MARKETS
    assert ch.market(MAX_MARKETS - 1).feed == feed.address
    with ape.reverts("configurator: too many markets"):
        configurator.add_market(
            feed, IM_BPS, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS, WAD, USDC, sender=deployer
        )


def test_set_market_risk__valid__updated_and_logged(ch, system, deployer, configurator):
    widest = (BPS, BPS - 1, BPS - 2, MAX_TRADING_FEE_BPS)  # (im, mm, liq, trade)
    tx = configurator.set_market_risk(BTC, *widest, sender=deployer)

    [log] = tx.decode_logs(configurator.MarketRiskUpdated)
    assert (log.market_id, log.initial_margin_bps, log.maintenance_margin_bps) == (
        BTC,
        BPS,
        BPS - 1,
    )
    assert (log.liquidation_fee_bps, log.trading_fee_bps) == (BPS - 2, MAX_TRADING_FEE_BPS)
    info = ch.market(BTC)
    assert (info.initial_margin_bps, info.maintenance_margin_bps) == (BPS, BPS - 1)
    assert (info.liquidation_fee_bps, info.trading_fee_bps) == (BPS - 2, MAX_TRADING_FEE_BPS)
    assert info.feed == system.feeds[BTC].address  # the feed bits are kept


@pytest.mark.parametrize("rates, reason", BAD_RISK)
def test_set_market_risk__out_of_bounds__reverts(ch, deployer, rates, reason, configurator):
    with ape.reverts(reason):
        configurator.set_market_risk(ETH, *rates, sender=deployer)
    assert ch.market(ETH).initial_margin_bps == IM_BPS


def test_set_market_risk__unknown_market__reverts(ch, deployer, configurator):
    with ape.reverts("configurator: unknown market"):
        configurator.set_market_risk(2, IM_BPS, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS, sender=deployer)


def test_set_market_limits__valid__updated_and_logged(ch, deployer, configurator):
    tx = configurator.set_market_limits(
        ETH, MAX_SIZE, 2**128 - 1, sender=deployer
    )  # widest allowed

    [log] = tx.decode_logs(configurator.MarketLimitsUpdated)
    assert (log.market_id, log.max_open_interest, log.min_position_notional) == (
        ETH,
        MAX_SIZE,
        2**128 - 1,
    )
    info = ch.market(ETH)
    assert (info.max_open_interest, info.min_position_notional) == (MAX_SIZE, 2**128 - 1)


@pytest.mark.parametrize("max_oi, min_notional, reason", BAD_LIMITS)
def test_set_market_limits__out_of_bounds__reverts(
    ch, deployer, max_oi, min_notional, reason, configurator
):
    with ape.reverts(reason):
        configurator.set_market_limits(ETH, max_oi, min_notional, sender=deployer)


def test_set_market_limits__unknown_market__reverts(ch, deployer, configurator):
    with ape.reverts("configurator: unknown market"):
        configurator.set_market_limits(2, WAD, USDC, sender=deployer)


def test_set_market_feed__valid__replaced_and_logged(
    ch, token, deployer, new_feed, deposit, seeded_pool, trader, everyone, configurator
):
    feed = new_feed(2_500)

    tx = configurator.set_market_feed(ETH, feed, sender=deployer)

    [log] = tx.decode_logs(configurator.MarketFeedUpdated)
    assert (log.market_id, log.feed) == (ETH, feed.address)
    info = ch.market(ETH)
    assert info.feed == feed.address
    assert (info.initial_margin_bps, info.trading_fee_bps) == (IM_BPS, TRADE_FEE_BPS)  # rates kept
    deposit(trader, 1_000)
    tx = buy(ch, trader, ETH, WAD)
    assert tx.decode_logs(ch.PositionChanged)[0].price == 2_500 * WAD
    assert_conserved(ch, token, everyone)


def test_set_market_feed__zero_feed__reverts(ch, deployer, configurator):
    with ape.reverts("configurator: zero feed"):
        configurator.set_market_feed(ETH, ZERO_ADDRESS, sender=deployer)


def test_set_market_feed__unknown_market__reverts(ch, system, deployer, configurator):
    with ape.reverts("configurator: unknown market"):
        configurator.set_market_feed(2, system.feeds[0], sender=deployer)


def test_set_market_feed__price_above_max__reverts(ch, deployer, new_feed, configurator):
    feed = new_feed(decimals=18, answer=MAX_PRICE + 1)
    with ape.reverts("configurator: bad feed price"):
        configurator.set_market_feed(ETH, feed, sender=deployer)


def test_liquidation_params__deployed__view_matches_system(ch):
    assert ch.liquidation_params() == (
        KEEPER_SHARE_BPS,
        MAX_PARTIAL_BPS,
        MIN_KEEPER_REWARD_USD * USDC,
    )


def test_set_liquidation_params__valid__updated_and_logged(ch, deployer, configurator):
    max_reward = MAX_MIN_KEEPER_REWARD * USDC  # the bound: 1,000 whole tokens

    tx = configurator.set_liquidation_params(BPS, BPS, max_reward, sender=deployer)

    [log] = tx.decode_logs(configurator.LiquidationParamsUpdated)
    assert (log.keeper_share_bps, log.max_partial_bps, log.min_keeper_reward) == (
        BPS,
        BPS,
        max_reward,
    )
    assert ch.liquidation_params() == (BPS, BPS, max_reward)
    # The other ends of the bounds: with im 10%, mm 5%, fee 1% the least fraction a
    # liquidation needs is 5/9, so the smallest bound that keeps a partial close reachable
    # is 5,556 bps (5,556 * 900 > 500 * 10,000).
    configurator.set_liquidation_params(0, 5_556, 0, sender=deployer)
    assert ch.liquidation_params() == (0, 5_556, 0)


@pytest.mark.parametrize(
    "params, reason",
    [
        ((BPS + 1, 5_000, USDC), "configurator: bad keeper share"),
        ((5_000, 0, USDC), "configurator: bad partial bound"),
        ((5_000, BPS + 1, USDC), "configurator: bad partial bound"),
        ((5_000, 1, USDC), "configurator: partial bound unreachable"),
        ((5_000, 5_000, USDC), "configurator: partial bound unreachable"),
        ((5_000, 5_555, USDC), "configurator: partial bound unreachable"),
        ((5_000, 8_000, MAX_MIN_KEEPER_REWARD * USDC + 1), "configurator: minimum reward too high"),
    ],
)
def test_set_liquidation_params__out_of_bounds__reverts(ch, deployer, params, reason, configurator):
    with ape.reverts(reason):
        configurator.set_liquidation_params(*params, sender=deployer)


def test_set_pool_reserve__valid__updated_and_logged(ch, deployer, configurator):
    tx = configurator.set_pool_reserve(MAX_RESERVE_BPS, sender=deployer)
    [log] = tx.decode_logs(configurator.PoolReserveUpdated)
    assert log.pool_reserve_bps == MAX_RESERVE_BPS
    assert ch.pool_reserve_bps() == MAX_RESERVE_BPS
    configurator.set_pool_reserve(0, sender=deployer)
    assert ch.pool_reserve_bps() == 0


def test_set_pool_reserve__above_100_percent__reverts(ch, deployer, configurator):
    with ape.reverts("configurator: bad pool reserve"):
        configurator.set_pool_reserve(MAX_RESERVE_BPS + 1, sender=deployer)


def test_set_pool_reserve__zero__open_interest_no_longer_locks(
    ch, vault, deployer, deposit, seeded_pool, trader, configurator
):
    deposit(trader, 10_000)
    buy(ch, trader, ETH, 10 * WAD)
    assert vault.free_liquidity() < ch.pool_assets()
    configurator.set_pool_reserve(0, sender=deployer)
    assert vault.free_liquidity() == ch.pool_assets()


def test_set_guardian__new_guardian__pauses_and_old_cannot(
    ch, deployer, guardian, stranger, configurator
):
    assert ch.guardian() == guardian.address

    tx = configurator.set_guardian(stranger, sender=deployer)

    [log] = tx.decode_logs(configurator.GuardianUpdated)
    assert log.guardian == stranger.address
    assert ch.guardian() == stranger.address
    with ape.reverts("configurator: not guardian"):
        configurator.pause(sender=guardian)
    configurator.pause(sender=stranger)
    assert ch.paused()


# --------------------------------------------------------------------------------------------
# Two-step ownership
# --------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_transfer_ownership__accepted_by_pending_owner__owner_changes(
    ch, deployer, stranger, trader, configurator
):
    tx = configurator.transfer_ownership(stranger, sender=deployer)
    [started] = tx.decode_logs(configurator.OwnershipTransferStarted)
    assert (started.previous_owner, started.new_owner) == (deployer.address, stranger.address)
    assert configurator.owner() == deployer.address  # nothing moves until the new owner accepts
    assert configurator.pending_owner() == stranger.address
    with ape.reverts("ownable_2step: caller is not the new owner"):
        configurator.accept_ownership(sender=trader)
    with ape.reverts("ownable_2step: caller is not the new owner"):
        configurator.accept_ownership(sender=deployer)

    tx = configurator.accept_ownership(sender=stranger)

    [moved] = tx.decode_logs(configurator.OwnershipTransferred)
    assert (moved.previous_owner, moved.new_owner) == (deployer.address, stranger.address)
    assert configurator.owner() == stranger.address
    assert configurator.pending_owner() == ZERO_ADDRESS
    configurator.set_pool_reserve(2_000, sender=stranger)  # the new owner administers
    with ape.reverts(NOT_OWNER):
        configurator.set_pool_reserve(1_000, sender=deployer)  # the old one no longer can
    with ape.reverts("ownable_2step: caller is not the new owner"):
        configurator.accept_ownership(sender=stranger)  # nothing pending any more


def test_transfer_ownership__replaced_or_cancelled__old_pending_cannot_accept(
    ch, deployer, stranger, trader, configurator
):
    configurator.transfer_ownership(stranger, sender=deployer)
    configurator.transfer_ownership(trader, sender=deployer)  # replaces the pending owner
    with ape.reverts("ownable_2step: caller is not the new owner"):
        configurator.accept_ownership(sender=stranger)
    configurator.transfer_ownership(ZERO_ADDRESS, sender=deployer)  # cancels
    with ape.reverts("ownable_2step: caller is not the new owner"):
        configurator.accept_ownership(sender=trader)
    assert configurator.owner() == deployer.address


# --------------------------------------------------------------------------------------------
# Pause
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["guardian", "deployer"])
def test_pause__guardian_or_owner__paused_and_logged(ch, request, who, configurator):
    caller = request.getfixturevalue(who)

    tx = configurator.pause(sender=caller)

    assert ch.paused()
    [log] = tx.decode_logs(configurator.PauseChanged)
    assert (log.by, log.paused) == (caller.address, True)


def test_unpause__guardian__reverts_and_stays_paused(ch, guardian, configurator):
    configurator.pause(sender=guardian)
    with ape.reverts(NOT_OWNER):
        configurator.unpause(sender=guardian)
    assert ch.paused()


@pytest.mark.integration
def test_pause__new_risk__blocked_while_closing_and_collateral_flow(
    ch,
    system,
    deployer,
    vault,
    token,
    fund,
    guardian,
    deposit,
    seeded_pool,
    trader,
    trader2,
    lp,
    everyone,
    configurator,
):
    deposit(trader, 2_000)
    buy(ch, trader, ETH, 2 * WAD)
    configurator.pause(sender=guardian)

    for market_id, size in [(ETH, WAD // 10), (BTC, WAD // 100)]:
        with ape.reverts("clearinghouse: paused"):
            buy(ch, trader2, market_id, size)  # open
        with ape.reverts("clearinghouse: paused"):
            sell(ch, trader2, market_id, size)
    with ape.reverts("clearinghouse: paused"):
        buy(ch, trader, ETH, WAD // 10)  # increase
    with ape.reverts("clearinghouse: paused"):
        sell(ch, trader, ETH, 3 * WAD)  # flip (even to a smaller size)
    # LP capital is never locked: exits within free liquidity still execute (SPEC: pause blocks
    # new risk only); new LP capital waits, since it would be priced at a price under doubt.
    shares = vault.balanceOf(lp) // 10
    assets = vault.convert_to_assets(shares)
    assert 0 < assets <= vault.free_liquidity()
    log = withdraw_by_request(system, deployer, lp, shares, assets - vault.execution_fee())
    assert log.assets == assets - vault.execution_fee()
    fund(lp, 10)
    with ape.reverts("vault: paused"):
        vault.add_liquidity(units(10), 0, sender=lp)

    sell(ch, trader, ETH, WAD)  # reduce
    sell(ch, trader, ETH, WAD)  # close
    assert ch.position(trader, ETH) == (0, 0)
    deposit(trader2, 100)  # deposits
    ch.withdraw(units(50), sender=trader2)  # withdrawals
    ch.withdraw(ch.collateral(trader), sender=trader)
    assert ch.collateral(trader) == 0
    assert_conserved(ch, token, everyone)


def test_pause__liquidatable_account__liquidation_still_works(
    ch, token, guardian, deposit, seeded_pool, set_price, trader, liquidator, everyone, configurator
):
    deposit(trader, 1_000)
    buy(ch, trader, ETH, 4 * WAD)
    set_price(ETH, 1_800)
    assert ch.is_liquidatable(trader)
    configurator.pause(sender=guardian)

    tx = ch.liquidate(trader, sender=liquidator)

    assert len(tx.decode_logs(ch.Liquidated)) == 1
    assert not ch.is_liquidatable(trader)
    assert ch.collateral(liquidator) > 0
    assert_conserved(ch, token, everyone)


def test_pause__market_listed_or_repriced_while_paused__stays_paused(
    ch, deployer, guardian, new_feed, deposit, trader, configurator
):
    deposit(trader, 1_000)
    configurator.pause(sender=guardian)
    configurator.add_market(
        new_feed(100),
        IM_BPS,
        MM_BPS,
        LIQ_FEE_BPS,
        TRADE_FEE_BPS,
        WAD * 10**6,
        USDC,
        sender=deployer,
    )
    configurator.set_market_risk(ETH, 2_000, 1_000, 200, 10, sender=deployer)
    configurator.set_market_feed(BTC, new_feed(50_000), sender=deployer)

    for market_id, size in [(ETH, WAD // 10), (BTC, WAD // 1_000), (2, WAD)]:
        with ape.reverts("clearinghouse: paused"):
            buy(ch, trader, market_id, size)


def test_unpause__owner__trading_resumes(
    ch,
    system,
    vault,
    token,
    deployer,
    guardian,
    deposit,
    seeded_pool,
    trader,
    lp,
    everyone,
    configurator,
):
    deposit(trader, 1_000)
    configurator.pause(sender=guardian)

    tx = configurator.unpause(sender=deployer)

    [log] = tx.decode_logs(configurator.PauseChanged)
    assert (log.by, log.paused) == (deployer.address, False)
    assert not ch.paused()
    buy(ch, trader, ETH, WAD)
    withdraw_by_request(system, deployer, lp, vault.balanceOf(lp) // 10)
    assert_conserved(ch, token, everyone)


def test_add_liquidity__paused__reverts_and_nothing_moves(
    ch, token, vault, fund, guardian, lp2, configurator
):
    # Pause holds new LP capital back (it would be priced while prices are in doubt), as it
    # holds back new trading risk; exits are not held (see the pause test above).
    amount = fund(lp2, 1_000)
    configurator.pause(sender=guardian)
    with ape.reverts("vault: paused"):
        vault.add_liquidity(amount, 0, sender=lp2)
    assert token.balanceOf(lp2) == amount and vault.balanceOf(lp2) == 0
    assert ch.pool_assets() == 0


# --------------------------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------------------------


def test_market__default_markets__view_matches_listing(ch, system, deposit, seeded_pool, trader):
    deposit(trader, 10_000)
    buy(ch, trader, ETH, 3 * WAD)
    sell(ch, trader, BTC, WAD // 10)
    expected = {
        ETH: (system.feeds[ETH].address, 10**6 * WAD, 3 * WAD, 0),
        BTC: (system.feeds[BTC].address, 50_000 * WAD, 0, WAD // 10),
    }
    for market_id, (feed, max_oi, oi_long, oi_short) in expected.items():
        info = ch.market(market_id)
        assert info.feed == feed
        assert (info.initial_margin_bps, info.maintenance_margin_bps) == (IM_BPS, MM_BPS)
        assert (info.liquidation_fee_bps, info.trading_fee_bps) == (LIQ_FEE_BPS, TRADE_FEE_BPS)
        assert info.max_open_interest == max_oi
        assert info.min_position_notional == units(MIN_NOTIONAL_USD)
        assert (info.open_interest_long, info.open_interest_short) == (oi_long, oi_short)


def test_market__unknown_market__reverts(ch):
    with ape.reverts("clearinghouse: unknown market"):
        ch.market(2)
