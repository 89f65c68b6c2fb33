"""No feed can freeze the engine (issue 13, attack 6).

Before: a 60-USD BTC position beside a 9x ETH long. While the BTC feed was stale every read
of that account reverted, so it could not be liquidated on any market and its bad debt grew
(709 where a timely liquidation had none); one such entry reverted a whole `liquidate_many`;
its owner could neither close the live ETH position nor withdraw; and since the pool's value
priced every market with open interest, no LP anywhere could add or remove liquidity.

Now each feed keeps its last valid price: for `stale_window` seconds past its heartbeat that
price, moved `stale_haircut_bps` against whoever is judged, marks the market (the account's
position for its health, the LPs for the pool's value); trades on that market wait for a
fresh price. Past the window an account holding the market is skipped by `liquidate_many`
with `LiquidationSkipped` (a single `liquidate` reverts with the feed's reason), and the
pool's value waits for the market's settlement.
"""

from __future__ import annotations

import ape
import pytest
from support.constants import (
    BTC,
    ETH,
    HEARTBEAT,
    IM_BPS,
    LIQ_FEE_BPS,
    MM_BPS,
    STALE_HAIRCUT_BPS,
    STALE_WINDOW,
    TRADE_FEE_BPS,
    USDC,
    WAD,
)
from support.deployers import assert_backed, assert_conserved
from support.trading import units as usd

from margin_maintenance.model import mark_down, mark_up, pnl

PAST_HEARTBEAT = HEARTBEAT + 60  # the BTC feed's age when it is stale, within the window
BTC_UNITS = 0.001  # 60 USD of BTC


@pytest.fixture
def stale_book(ch, vault, fund, deposit, open_position, lp, trader):
    """The attack's account: 2,000 of collateral, long 9 ETH (9x) and long 0.001 BTC."""
    vault.add_liquidity(fund(lp, 100_000), 0, sender=lp)
    deposit(trader, 2_000)
    open_position(trader, ETH, 9)
    open_position(trader, BTC, BTC_UNITS)
    return trader


def btc_goes_stale(chain, warp, set_price, eth_usd: float, age: int = PAST_HEARTBEAT) -> None:
    """`age` seconds after BTC's last answer ETH answers `eth_usd`; BTC has not answered."""
    btc_at = chain.blocks.head.timestamp
    warp(btc_at + age)
    set_price(ETH, eth_usd)


def test_feed__stale_within_window__marks_against_the_judged(system, chain, warp, set_price):
    feed = system.feeds[BTC]
    price = 60_000 * WAD
    assert (feed.stale_window(), feed.stale_haircut_bps()) == (STALE_WINDOW, STALE_HAIRCUT_BPS)
    assert feed.mark(True) == feed.mark(False) == price  # fresh: the price itself
    updated = feed.price_data()[1]
    btc_goes_stale(chain, warp, set_price, 2_000)
    down, up = mark_down(price, STALE_HAIRCUT_BPS), mark_up(price, STALE_HAIRCUT_BPS)
    assert (down, up) == (57_000 * WAD, 63_000 * WAD)
    assert (feed.mark(True), feed.mark(False)) == (down, up)  # a long lower, a short higher
    now = chain.blocks.head.timestamp
    assert tuple(feed.pool_marks()) == (up, down, now, True)  # longs up, shorts down, now
    with ape.reverts("oracle: stale price"):
        feed.latest_price()  # nothing trades at a stale price
    warp(updated + HEARTBEAT + STALE_WINDOW + 1)  # past the window: no mark at all
    assert (feed.mark(True), feed.mark(False)) == (0, 0)
    assert tuple(feed.pool_marks()) == (0, 0, updated, False)


def test_attack6__stale_btc__the_9x_eth_long_is_liquidated_on_time_without_bad_debt(
    ch, token, chain, warp, set_price, stale_book, liquidator, lp
):
    trader = stale_book
    btc_goes_stale(chain, warp, set_price, 1_850)  # ETH -7.5%: below maintenance
    # The BTC long is judged 5% lower than its last price; the account is liquidatable.
    btc_mark = mark_down(60_000 * WAD, STALE_HAIRCUT_BPS)
    eth = 1_850 * WAD
    size_btc = round(BTC_UNITS * WAD)
    equity = ch.collateral(trader) + pnl(9 * WAD, 2_000 * WAD, eth, 10**12)
    equity += pnl(size_btc, 60_000 * WAD, btc_mark, 10**12)
    assert ch.equity(trader) == equity
    assert ch.is_liquidatable(trader)

    tx = ch.liquidate(trader, sender=liquidator)  # before: "oracle: stale price"

    [liq] = tx.decode_logs(ch.Liquidated)
    assert liq.account == trader.address
    assert not tx.decode_logs(ch.BadDebtSettled)  # before: 709 of bad debt at ETH 1,700
    assert ch.collateral(trader) >= 0 and not ch.is_liquidatable(trader)
    assert_backed(ch, token, [trader, liquidator, lp])
    assert_conserved(ch, token, [trader, liquidator, lp])


def test_attack6__stale_btc__owner_closes_eth_and_withdraws_but_cannot_trade_btc(
    ch, chain, warp, set_price, stale_book
):
    trader = stale_book
    btc_goes_stale(chain, warp, set_price, 2_000)
    with ape.reverts("oracle: stale price"):
        ch.trade(BTC, -round(BTC_UNITS * WAD), 0, sender=trader)  # waits for a fresh price
    ch.trade(ETH, -9 * WAD, 0, sender=trader)  # before: reverted on the BTC read
    assert ch.position(trader, ETH) == (0, 0)
    ch.withdraw(usd(1_000), sender=trader)  # before: reverted too
    # What stays must cover the BTC leg's initial requirement at its conservative mark.
    with ape.reverts("clearinghouse: insufficient margin"):
        ch.withdraw(ch.collateral(trader), sender=trader)


def test_attack6__stale_btc__lp_requests_still_execute(
    ch, token, vault, system, deployer, chain, warp, set_price, stale_book, stranger, fund
):
    lp2 = stranger
    amount = fund(lp2, 10_000)
    token.approve(vault, amount, sender=lp2)
    vault.request_deposit(amount, 0, sender=lp2)
    btc_goes_stale(chain, warp, set_price, 2_000)  # ETH updated; BTC counts at its mark
    # The stale market counts as priced now (at its conservative mark), ETH after its update.
    assert ch.pool_state().priced_at > vault.requests(0).created
    assert vault.executable(0)  # before: every LP flow reverted on the BTC read
    vault.execute_request(0, sender=deployer)
    assert vault.balanceOf(lp2) > 0


def test_attack6__past_the_window__batch_skips_the_unpriced_entry_and_goes_on(
    ch,
    chain,
    warp,
    set_price,
    stale_book,
    deposit,
    open_position,
    configurator,
    deployer,
    make_aggregator,
    make_feed,
    accounts,
    liquidator,
):
    # A third market whose feed has no stale window: a stale answer leaves it unpriced.
    agg = make_aggregator(8, 100 * 10**8, "DEAD / USD")
    configurator.add_market(
        make_feed(agg), IM_BPS, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS, 10**6 * WAD, USDC,
        sender=deployer,
    )  # fmt: skip
    dead = ch.market_count() - 1
    holder, other = accounts[7], accounts[8]
    deposit(holder, 1_000)
    open_position(holder, ETH, 4)  # 8x on ETH
    open_position(holder, dead, 1)
    deposit(other, 900)
    open_position(other, ETH, 4)  # 9x: liquidatable at ETH 1,850
    trader = stale_book
    btc_goes_stale(chain, warp, set_price, 1_850)  # the dead market's feed is stale too
    assert ch.is_liquidatable(trader) and ch.is_liquidatable(other)
    with ape.reverts("oracle: stale price"):
        ch.liquidate(holder, sender=liquidator)  # one account: the feed's reason

    tx = ch.liquidate_many([trader, holder, other], sender=liquidator)

    [skipped] = tx.decode_logs(ch.LiquidationSkipped)
    assert skipped.account == holder.address  # before: the whole batch reverted
    assert {log.account for log in tx.decode_logs(ch.Liquidated)} == {
        trader.address,
        other.address,
    }
    with ape.reverts("clearinghouse: market unpriced"):
        ch.pool_state()  # the pool waits for the dead market's settlement
    assert ch.position(holder, dead)[0] == WAD
