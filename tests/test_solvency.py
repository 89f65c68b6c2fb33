"""Solvency against an attacker (issue 13): each attack replayed with its figures.

Attack 1, unbacked debt pays trader profit. A trade may realise a loss beyond the account's
collateral while another position carries the account; the pool is credited with the whole
loss although only the collateral arrived. Before the backed rule the next winner was paid
from that credit, that is from the other traders' collateral: here B withdrew 14,039 against
the 11,100 the pair deposited and the bystander, who never traded, could take out only 8,061 of
his 10,000. Now profit is paid only from the backed pool (pool assets less every other
account's debt), the difference is logged as a haircut, and every flat account withdraws in
full.

The shortfall is not forfeited: it is the winner's claim, paid first out of later pool income
(`settle_claim`), and the LPs' value is net of it.

Attack 3, deposits ignored the pool's liabilities: a newcomer bought into a pool whose traders'
paper profit exceeded its assets. Now one net value prices entry and exit (assets, plus the
paper losses the traders' collateral can pay, less paper profit, debt and claims), and a pool
that owes more than it has takes no deposit.

Attack 4, netted exits stranded winners: PnL was netted within a market, so a winner's profit
hid behind a loser's loss and the LP withdrew the winner's money. Now each market side is summed
on its own: the winner's profit stays locked and is paid in full.

Attack 5, closing the winning leg first. A trade settles one position; the reduction check took
settlement to be equity-neutral, which a haircut is not: a lone LP (1,000) with long 40 ETH and
short 1 BTC closed its ETH winner, was paid 1,070 of 20,000, fell to -2,950 of equity and let
the insurance fund pay it. Now a haircut counts as the equity loss it is.

Attack 7, pause locked all LP capital: an exit within free liquidity now executes while paused
(tests/test_pool_admin.py, the pause tests).

Attack 8 (first half), the price bound was checked only in `trade`, while the packed position
and the unchecked maths rely on it everywhere: now every account load and the pool's valuation
refuse a price above MAX_PRICE with the same reason, instead of packing a corrupt entry.
"""

from __future__ import annotations

import ape
from support.constants import (
    BTC,
    ETH,
    IM_BPS,
    LIQ_FEE_BPS,
    MAX_PRICE,
    MAX_UINT,
    MM_BPS,
    TRADE_FEE_BPS,
    USDC,
    WAD,
)
from support.deployers import assert_backed, assert_conserved
from support.lp import REQUEST_TIMEOUT, deposit_by_request, refresh_prices, withdraw_by_request
from support.trading import notional_up
from support.trading import units as usd

from margin_maintenance.model import bps_up

# The attack-1 pair at ETH 2,000 / BTC 60,000: A long 10 ETH + short 1 BTC (its BTC short will
# carry an ETH loss beyond its collateral), B short 12 ETH.
CARRIED = (8_100, {ETH: 10, BTC: -1})


def book(deposit, open_position, *entries) -> None:
    """Deposit and open positions: entries of (account, (usd, {market: units}))."""
    for who, (usd_in, legs) in entries:
        deposit(who, usd_in)
        for market, units in legs.items():
            open_position(who, market, units)


def fee(units: float, price: float) -> int:
    return bps_up(notional_up(round(units * WAD), round(price * WAD)), TRADE_FEE_BPS)


def test_attack1__unbacked_debt__pays_no_profit_and_the_bystander_withdraws_in_full(
    ch, token, vault, fund, deposit, open_position, set_price, lp, trader, trader2, stranger
):
    a, b, bystander = trader, trader2, stranger
    everyone = [a, b, bystander, lp]
    vault.add_liquidity(fund(lp, 1_000), 0, sender=lp)  # pool 1,000
    deposit(bystander, 10_000)  # never trades
    book(deposit, open_position, (a, CARRIED), (b, (3_000, {ETH: -12})))
    set_price(ETH, 1_000)
    set_price(BTC, 48_000)

    # A closes ETH: -10,000 realised against 8,100 less fees; the BTC short carries it.
    ch.trade(ETH, -10 * WAD, 0, sender=a)
    debt = usd(10_000) + fee(10, 2_000) + fee(1, 60_000) + fee(10, 1_000) - usd(8_100)
    assert ch.collateral(a) == -debt == -usd(1_945)
    assert not ch.is_liquidatable(a) and ch.total_debt() == debt
    pool = ch.pool_assets()
    assert pool == usd(11_057)  # 1,000 + the loss in full + fees: 1,945 of it is A's debt

    # B closes ETH: owed 12,000, paid only what tokens back: 11,057 - 1,945 = 9,112, and its
    # own fee on this close (6), which the pool receives first and pays straight back.
    tx = ch.trade(ETH, 12 * WAD, MAX_UINT, sender=b)
    cut = tx.decode_logs(ch.ProfitHaircut)[0]
    assert (cut.account, cut.owed, cut.paid) == (b.address, usd(12_000), usd(9_118))
    assert cut.paid == pool + fee(12, 1_000) - debt
    b_out = ch.collateral(b)
    assert b_out == usd(3_000) - fee(12, 2_000) + usd(9_118) - fee(12, 1_000) == usd(12_100)
    assert ch.pool_assets() >= ch.total_debt()
    assert_conserved(ch, token, everyone)

    # B takes everything out (before the rule: 14,039); the bystander then takes his 10,000.
    ch.withdraw(b_out, sender=b)
    ch.withdraw(usd(10_000), sender=bystander)
    assert ch.collateral(bystander) == 0 and token.balanceOf(bystander) == usd(10_000)
    assert token.balanceOf(b) - usd(3_000) == usd(9_100)  # B's gain: the LP's capital, less fees
    # What is left backs A's debt exactly, and the pair got out no more than the pool held.
    assert ch.pool_assets() - ch.total_debt() == 0
    assert token.balanceOf(b) + ch.collateral(a) <= usd(3_000 + 8_100 + 1_000)
    assert_backed(ch, token, everyone)
    assert_conserved(ch, token, everyone)


def test_attack5__close_the_winning_leg_first__refused_when_the_haircut_deepens_the_shortfall(
    ch, token, vault, fund, deposit, open_position, set_price, lp, liquidator
):
    attacker = lp  # the pool's only LP also trades
    vault.add_liquidity(fund(attacker, 1_000), 0, sender=attacker)
    ch.fund_insurance(fund(liquidator, 5_000), sender=liquidator)
    deposit(attacker, 14_100)
    open_position(attacker, ETH, 40)
    open_position(attacker, BTC, -1)
    set_price(ETH, 2_500)  # the ETH long is owed 20,000
    set_price(BTC, 78_000)  # the BTC short has lost 18,000
    assert ch.equity(attacker) == usd(16_030)
    assert ch.maintenance_requirement(attacker) == usd(8_900 + 1)  # + the 1 USDC reward reserve
    assert not ch.is_liquidatable(attacker)
    before = (ch.collateral(attacker), ch.insurance_fund(), ch.pool_assets())

    # Paid 1,070 of 20,000, the close would leave equity at -2,950: the haircut deepens the
    # shortfall by far more than the 5,000 of maintenance the close frees.
    with ape.reverts("clearinghouse: would be liquidatable"):
        ch.trade(ETH, -40 * WAD, 0, sender=attacker)
    assert (ch.collateral(attacker), ch.insurance_fund(), ch.pool_assets()) == before

    # Closing the losing leg first is a plain reduction and is allowed; the account stays whole.
    ch.trade(BTC, WAD, MAX_UINT, sender=attacker)
    assert ch.equity(attacker) == usd(16_030) - fee(1, 78_000)
    assert_conserved(ch, token, [attacker, liquidator])


def test_attack8__price_above_max_after_listing__refused_wherever_the_engine_reads_it(
    ch, token, vault, fund, deposit, configurator, deployer, make_aggregator, make_feed, lp, trader
):
    # A feed without a ceiling (max answer 2**255 - 1), 18 decimals: its answer is the WAD price.
    agg = make_aggregator(18, 100 * WAD, "NEW / USD")
    configurator.add_market(
        make_feed(agg), IM_BPS, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS, 10**6 * WAD, USDC,
        sender=deployer,
    )  # fmt: skip
    new = ch.market_count() - 1
    vault.add_liquidity(fund(lp, 100_000), 0, sender=lp)
    deposit(trader, 1_000)
    ch.trade(new, WAD, MAX_UINT, sender=trader)
    agg.set_price(MAX_PRICE + 1, sender=deployer)

    for read in (
        lambda: ch.margin_status([trader]),
        lambda: ch.liquidation_preview(trader),
        lambda: ch.pool_state(),
    ):
        with ape.reverts("clearinghouse: price overflow"):
            read()
    with ape.reverts("clearinghouse: price overflow"):
        ch.liquidate(trader, sender=lp)
    with ape.reverts("clearinghouse: price overflow"):
        ch.withdraw(usd(1), sender=trader)
    with ape.reverts("clearinghouse: price overflow"):
        vault.remove_liquidity(vault.balanceOf(lp) // 2, 0, sender=lp)
    with ape.reverts("clearinghouse: price overflow"):
        ch.trade(new, -WAD, 0, sender=trader)
    agg.set_price(100 * WAD, sender=deployer)  # back in range: everything works again
    ch.trade(new, -WAD, 0, sender=trader)
    assert ch.position(trader, new) == (0, 0)
    assert_conserved(ch, token, [trader, lp])


def test_liquidate_many__caller_in_debt__same_as_one_liquidation_after_another(
    chain, ch, token, vault, fund, deposit, open_position, set_price, accounts, lp, trader, trader2
):
    """A keeper in debt (a cross-margin loss carried by another position) is paid rewards that
    repay that debt and so grow the backed pool the next accounts' profits come from: a batch
    must credit them at once, or it pays those accounts less than sequential liquidations."""
    keeper, b, y, x = trader, trader2, accounts[6], accounts[7]
    vault.add_liquidity(fund(lp, 1_000), 0, sender=lp)
    ch.fund_insurance(fund(lp, 500), sender=lp)
    book(
        deposit,
        open_position,
        (keeper, CARRIED),
        (b, (3_500, {ETH: -14})),
        (y, (110, {ETH: 0.4})),  # will be under water: pays the keeper the minimum reward
        (x, (4_300, {ETH: -6, BTC: 0.5})),  # a winning leg the thin backed pool cannot pay
    )
    set_price(ETH, 1_000)
    set_price(BTC, 48_000)
    ch.trade(ETH, -10 * WAD, 0, sender=keeper)  # keeper's collateral -1,945, still healthy
    ch.trade(BTC, -WAD // 2, 0, sender=x)  # x realises its BTC loss: debt, carried by ETH
    ch.trade(ETH, 14 * WAD, MAX_UINT, sender=b)  # takes the whole backed pool
    set_price(ETH, 1_650)  # x's profit shrinks to 2,100: x and y become liquidatable
    assert ch.collateral(keeper) < 0 and not ch.is_liquidatable(keeper)
    assert ch.collateral(x) < 0
    assert ch.is_liquidatable(y) and ch.is_liquidatable(x)
    everyone = [keeper, b, y, x, lp]

    def state() -> tuple:
        return tuple(ch.collateral(a) for a in everyone) + (
            ch.pool_assets(),
            ch.insurance_fund(),
            ch.total_debt(),
        )

    sid = chain.provider.snapshot()
    one_by_one = [ch.liquidate(a, sender=keeper) for a in (y, x)]
    expected = state()
    cuts = [log for tx in one_by_one for log in tx.decode_logs(ch.ProfitHaircut)]
    assert [log.account for log in cuts] == [x.address]  # the backed pool caps x's profit
    chain.provider.restore(sid)

    tx = ch.liquidate_many([y, x], sender=keeper)
    assert state() == expected
    assert [(c.owed, c.paid) for c in tx.decode_logs(ch.ProfitHaircut)] == [
        (c.owed, c.paid) for c in cuts
    ]
    assert_conserved(ch, token, everyone)


def test_attack1__the_unpaid_profit__is_a_claim_paid_from_later_pool_income(
    ch, token, vault, fund, deposit, open_position, set_price, lp, trader, trader2, stranger
):
    a, b = trader, trader2
    vault.add_liquidity(fund(lp, 1_000), 0, sender=lp)
    book(deposit, open_position, (a, CARRIED), (b, (3_000, {ETH: -12})))
    set_price(ETH, 1_000)
    set_price(BTC, 48_000)
    ch.trade(ETH, -10 * WAD, 0, sender=a)
    ch.trade(ETH, 12 * WAD, MAX_UINT, sender=b)  # owed 12,000, paid 9,118 (its fee included)
    assert ch.claims(b) == ch.total_claims() == usd(12_000 - 9_118)
    with ape.reverts("clearinghouse: no claim"):
        ch.settle_claim(stranger, sender=stranger)
    # The LP's value is net of the claim: nothing of the pool is theirs while it is owed.
    assert vault.convert_to_assets(vault.balanceOf(lp)) == 0
    assert vault.free_liquidity() == 0
    # Nothing backs it yet (B's own closing fee was paid straight back into its profit) ...
    with ape.reverts("clearinghouse: claim not backed"):
        ch.settle_claim(b, sender=stranger)
    # ... later income (a stranger's trading fees) pays the claim first.
    deposit(stranger, 1_000)
    ch.trade(ETH, WAD, MAX_UINT, sender=stranger)
    ch.trade(ETH, -WAD, 0, sender=stranger)
    income = 2 * fee(1, 1_000)
    before = ch.collateral(b)
    tx = ch.settle_claim(b, sender=stranger)  # anyone may call; the claimant is paid
    event = tx.decode_logs(ch.ClaimSettled)[0]
    assert (event.account, event.paid) == (b.address, income)
    assert event.remaining == usd(2_882) - income == ch.claims(b)
    assert ch.collateral(b) == before + income
    assert ch.pool_assets() == ch.total_debt()  # what is left backs A's debt exactly
    with ape.reverts("clearinghouse: claim not backed"):
        ch.settle_claim(b, sender=stranger)
    assert_backed(ch, token, [a, b, lp, stranger])
    assert_conserved(ch, token, [a, b, lp, stranger])


def test_attack1__account_in_debt_behind_a_claim__its_own_profit_repays_its_debt(
    ch, token, vault, fund, deposit, open_position, set_price, lp, trader, trader2
):
    """After B's close, A (collateral -1,945, short 1 BTC with 12,000 of paper profit) could
    neither close ("close leaves bad debt": B's claim came first and the fee was unpaid) nor be
    liquidated (healthy on paper). Its own profit repaying its own debt and fee is a wash for
    everyone else, so the close goes through: A ends at 0 collateral with the rest as a claim
    behind B's, and the pool still holds every unit of debt it was credited with (none left)."""
    a, b = trader, trader2
    vault.add_liquidity(fund(lp, 1_000), 0, sender=lp)
    book(deposit, open_position, (a, CARRIED), (b, (3_000, {ETH: -12})))
    set_price(ETH, 1_000)
    set_price(BTC, 48_000)
    ch.trade(ETH, -10 * WAD, 0, sender=a)
    ch.trade(ETH, 12 * WAD, MAX_UINT, sender=b)
    debt, b_claim = usd(1_945), ch.claims(b)
    assert ch.collateral(a) == -debt and b_claim == usd(2_882)
    assert not ch.is_liquidatable(a)

    tx = ch.trade(BTC, WAD, MAX_UINT, sender=a)  # closes the short at 48,000: owed 12,000
    cut = tx.decode_logs(ch.ProfitHaircut)[0]
    closing_fee = fee(1, 48_000)
    assert (cut.account, cut.owed, cut.paid) == (a.address, usd(12_000), debt + closing_fee)
    assert ch.collateral(a) == 0 and ch.account_market_ids(a) == []
    assert ch.claims(a) == usd(12_000) - debt - closing_fee
    assert ch.total_claims() == b_claim + ch.claims(a)
    assert ch.total_debt() == 0 and ch.pool_assets() == 0
    assert_backed(ch, token, [a, b, lp])
    assert_conserved(ch, token, [a, b, lp])


def test_attack3__deposit_into_a_pool_that_owes_more__refused(
    ch, token, vault, system, deployer, fund, deposit, open_position, set_price, accounts, lp
):
    lp2 = accounts[7]
    vault.add_liquidity(fund(lp, 100_000), 0, sender=lp)
    traders = [accounts[i] for i in (2, 3, 5, 6, 8)]
    for t in traders:
        book(deposit, open_position, (t, (20_000, {ETH: 9})))  # 45 ETH long in all
    assert ch.pool_assets() == usd(100_000) + 5 * fee(9, 2_000)
    set_price(ETH, 5_000)  # the longs' paper profit: 135,000, more than the pool holds
    ps = ch.pool_state()
    assert ps.trader_profit == usd(135_000) + 1 and ps.trader_loss == 0
    # Before: 100,000 bought shares worth 32,652 at once. Now the pool is refused new money.
    amount = fund(lp2, 100_000)
    with ape.reverts("vault: pool insolvent"):
        vault.convert_to_shares(amount)
    with ape.reverts("vault: pool exposed"):  # open interest: LP capital moves by request
        vault.add_liquidity(amount, 0, sender=lp2)
    with ape.reverts("vault: pool insolvent"):
        deposit_by_request(system, deployer, lp2, amount)
    # Nothing was bought: the tokens wait in escrow until lp2 cancels the request.
    assert token.balanceOf(vault) == amount and vault.balanceOf(lp2) == 0
    # The old LP's shares are worth nothing while the profit is owed (before: 33,058).
    assert vault.convert_to_assets(vault.balanceOf(lp)) == 0


def test_attack4__netted_exit__the_winner_is_paid_in_full_and_the_lp_keeps_only_fees(
    ch, token, vault, system, deployer, fund, deposit, open_position, set_price, lp, trader, trader2
):
    winner, loser = trader, trader2
    vault.add_liquidity(fund(lp, 100_000), 0, sender=lp)
    book(deposit, open_position, (winner, (10_000, {ETH: 25})), (loser, (40_000, {ETH: -25})))
    set_price(ETH, 3_000)  # winner +25,000, loser -25,000: net 0
    assert ch.trader_unrealized_pnl(ETH) == 0
    # Before, net PnL 0 let the LP withdraw 85%. Now the winner's 25,000 stays locked.
    shares = vault.balanceOf(lp)
    with ape.reverts("vault: insufficient free liquidity"):
        withdraw_by_request(system, deployer, lp, shares * 85 // 100)
    refresh_prices(system, deployer, REQUEST_TIMEOUT)  # the refused request, cancelled
    vault.cancel_request(vault.request_count() - 1, sender=lp)
    free = vault.free_liquidity()
    assert free == ch.pool_assets() - usd(25_000) - 1 - bps_up(
        notional_up(50 * WAD, 3_000 * WAD), 1_000
    )
    # The LP takes what is free: at the net value, which counts the loser's collectable loss.
    taken_shares = shares * free // vault.convert_to_assets(shares)
    withdraw_by_request(system, deployer, lp, taken_shares)
    assert 0 < token.balanceOf(lp) <= free
    # The winner closes and is paid all 25,000 (before: 15,007).
    tx = ch.trade(ETH, -25 * WAD, 0, sender=winner)
    assert not tx.decode_logs(ch.ProfitHaircut)
    assert ch.collateral(winner) == usd(10_000 + 25_000) - fee(25, 2_000) - fee(25, 3_000)
    ch.trade(ETH, 25 * WAD, MAX_UINT, sender=loser)
    vault.remove_liquidity(vault.balanceOf(lp), 0, sender=lp)  # flat book: an instant exit
    # The LP ends with its capital plus the fees (before: +10,117, the winner's profit).
    fees = fee(25, 2_000) * 2 + fee(25, 3_000) * 2
    assert token.balanceOf(lp) - usd(100_000) <= fees
    assert token.balanceOf(lp) >= usd(100_000)
    assert_conserved(ch, token, [winner, loser, lp])
