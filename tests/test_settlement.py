"""Dead-market settlement (issue 13, attack 6, past the stale window).

A feed past its heartbeat and its stale window gives no mark: accounts holding its market
cannot be read (a batch skips them) and the pool has no value. The owner proposes a final
price, a `SettledPriceFeed` within SETTLE_BAND_BPS (10%) of the dead feed's last valid price;
SETTLE_DELAY (a day) later anyone makes it the market's feed. From then on the market takes no
new risk (maximum open interest 0), its positions keep the settlement price until closed or
liquidated, and the pool is valued again.
"""

from __future__ import annotations

import ape
import pytest
from support.constants import (
    BTC,
    ETH,
    HEARTBEAT,
    MAX_UINT,
    NOT_OWNER,
    STALE_WINDOW,
    WAD,
)

from margin_maintenance.model import pnl

SETTLE_DELAY = 86_400
LAST = 60_000 * WAD  # the BTC feed's last valid price


@pytest.fixture
def dead_btc(ch, vault, fund, deposit, open_position, chain, warp, set_price, lp, trader):
    """A trader long 0.1 BTC and long 1 ETH; then BTC stops answering past its window."""
    vault.add_liquidity(fund(lp, 100_000), 0, sender=lp)
    deposit(trader, 5_000)
    open_position(trader, BTC, 0.1)
    open_position(trader, ETH, 1)
    warp(chain.blocks.head.timestamp + HEARTBEAT + STALE_WINDOW + 10)
    set_price(ETH, 2_000)
    with ape.reverts("clearinghouse: market unpriced"):
        ch.pool_state()
    return trader


@pytest.fixture
def settled_feed(project, deployer, system):
    def _make(price: int = 59_000 * WAD, replaces=None):
        target = replaces if replaces is not None else system.feeds[BTC]
        return project.SettledPriceFeed.deploy(price, target, sender=deployer)

    return _make


def refresh_eth(chain, warp, set_price, dt: int) -> None:
    warp(chain.blocks.head.timestamp + dt)
    set_price(ETH, 2_000)


def test_settle__after_the_delay__the_market_prices_again_and_closes_at_the_settlement(
    ch, configurator, vault, chain, warp, set_price, dead_btc, settled_feed, deployer, stranger
):
    trader = dead_btc
    feed = settled_feed()
    tx = configurator.propose_settlement(BTC, feed, sender=deployer)
    [ev] = tx.decode_logs(configurator.SettlementProposed)
    assert (ev.price, ev.last_price) == (59_000 * WAD, LAST)
    assert ev.eta == tx.timestamp + SETTLE_DELAY
    with ape.reverts("configurator: settlement delay"):
        configurator.settle_market(BTC, sender=stranger)
    refresh_eth(chain, warp, set_price, SETTLE_DELAY)

    tx = configurator.settle_market(BTC, sender=stranger)  # anyone, once the delay is over

    [done] = tx.decode_logs(configurator.MarketSettled)
    assert (done.market_id, done.feed, done.price) == (BTC, feed.address, 59_000 * WAD)
    info = ch.market(BTC)
    assert info.feed == feed.address and info.max_open_interest == 0
    ps = ch.pool_state()  # valued again: the BTC long at the settlement price
    assert ps.exposed
    with ape.reverts("clearinghouse: open interest cap"):
        ch.trade(BTC, WAD // 100, MAX_UINT, sender=trader)  # no new risk
    collateral = ch.collateral(trader)
    tx = ch.trade(BTC, -(WAD // 10), 0, sender=trader)  # closed at 59,000
    [closed] = tx.decode_logs(ch.PositionChanged)
    assert closed.price == 59_000 * WAD
    assert closed.realized_pnl == pnl(WAD // 10, LAST, 59_000 * WAD, 10**12)
    assert ch.collateral(trader) == collateral + closed.realized_pnl - closed.fee
    assert configurator.settlements(BTC).feed == "0x" + "00" * 20


def test_propose_settlement__bad_proposals__clear_reverts(
    ch, configurator, system, dead_btc, settled_feed, deployer, stranger
):
    with ape.reverts(NOT_OWNER):
        configurator.propose_settlement(BTC, settled_feed(), sender=stranger)
    for price in (53_999 * WAD, 66_001 * WAD):  # outside 10% of the last 60,000
        with ape.reverts("configurator: outside settle band"):
            configurator.propose_settlement(BTC, settled_feed(price), sender=deployer)
    with ape.reverts("configurator: settles another feed"):
        other = settled_feed(replaces=system.feeds[ETH])
        configurator.propose_settlement(BTC, other, sender=deployer)
    with ape.reverts("configurator: market not dead"):  # ETH answers: nothing to settle
        configurator.propose_settlement(
            ETH, settled_feed(2_000 * WAD, system.feeds[ETH]), sender=deployer
        )
    with ape.reverts("configurator: no settlement"):
        configurator.settle_market(BTC, sender=stranger)
    with ape.reverts("configurator: no settlement"):
        configurator.cancel_settlement(BTC, sender=deployer)


def test_settlement__cancelled_or_feed_revived__not_made(
    configurator, system, deployer, chain, warp, set_price, dead_btc, settled_feed, stranger
):
    configurator.propose_settlement(BTC, settled_feed(), sender=deployer)
    with ape.reverts(NOT_OWNER):
        configurator.cancel_settlement(BTC, sender=stranger)
    tx = configurator.cancel_settlement(BTC, sender=deployer)
    assert tx.decode_logs(configurator.SettlementCancelled)[0].market_id == BTC
    with ape.reverts("configurator: no settlement"):
        configurator.settle_market(BTC, sender=stranger)

    configurator.propose_settlement(BTC, settled_feed(), sender=deployer)
    refresh_eth(chain, warp, set_price, SETTLE_DELAY)
    set_price(BTC, 61_000)  # the feed came back: it prices the market again
    with ape.reverts("configurator: market not dead"):
        configurator.settle_market(BTC, sender=stranger)
    assert configurator.settlements(BTC).feed != "0x" + "00" * 20


def test_settled_feed__zero_inputs__refused(project, deployer, system):
    with ape.reverts("settlement: zero price"):
        project.SettledPriceFeed.deploy(0, system.feeds[BTC], sender=deployer)
    with ape.reverts("settlement: zero feed"):
        project.SettledPriceFeed.deploy(WAD, "0x" + "00" * 20, sender=deployer)


def test_settle__funding_market__recorded_at_the_settlement_then_frozen(
    ch, configurator, vault, fund, deposit, chain, warp, set_price, settled_feed, deployer, lp,
    trader, stranger,
):  # fmt: skip
    """Settled, a market's funding is recorded up to then at the settlement price (held
    through the outage, the position owes that funding) and frozen: no rate and no drift, so
    closing a year later pays the same funding; the premium stays the live market's (the
    long that paid it to open is paid it back on its close). No other feed is taken."""
    from margin_maintenance.model import funding as fm

    vault.add_liquidity(fund(lp, 100_000), 0, sender=lp)
    deposit(trader, 5_000)
    configurator.set_market_limits(BTC, 5 * WAD, 10 * 10**6, sender=deployer)
    configurator.set_market_funding(BTC, 10, 3_000, sender=deployer)  # flat: applies at once
    opened = ch.trade(BTC, WAD // 10, MAX_UINT, sender=trader)  # skew +0.1 BTC
    f = fm.Funding(opened.timestamp, 0, 0, 10, 3_000)
    warp(chain.blocks.head.timestamp + HEARTBEAT + STALE_WINDOW + 10)
    set_price(ETH, 2_000)
    configurator.propose_settlement(BTC, settled_feed(), sender=deployer)
    refresh_eth(chain, warp, set_price, SETTLE_DELAY)
    tx = configurator.settle_market(BTC, sender=stranger)
    [frozen] = tx.decode_logs(configurator.MarketFundingUpdated)
    assert (frozen.skew_scale, frozen.max_funding_velocity) == (10, 0)
    f = fm.accrue(f, WAD // 10, 59_000 * WAD, tx.timestamp)
    info = ch.market_funding(BTC)
    assert (info.funding_index, info.funding_rate, info.funding_velocity) == (f.index, 0, 0)
    assert (info.skew_scale, info.max_funding_velocity) == (10, 0)
    assert f.index > 0  # the long paid for the outage
    owed = ch.accrued_funding(trader)
    assert owed == pnl(WAD // 10, f.index, 0, 10**12) < 0
    refresh_eth(chain, warp, set_price, 365 * 86_400)
    assert ch.accrued_funding(trader) == owed  # a year later: nothing more
    fill = fm.fill_price(59_000 * WAD, WAD // 10, 0, 10)  # the close shrinks the skew: paid
    assert ch.fill_price(BTC, -(WAD // 10)) == fill > 59_000 * WAD
    tx = ch.trade(BTC, -(WAD // 10), 0, sender=trader)
    [settled] = tx.decode_logs(ch.FundingSettled)
    assert settled.funding == owed
    assert tx.decode_logs(ch.PositionChanged)[0].price == fill
    with ape.reverts("configurator: market settled"):
        configurator.set_market_funding(BTC, 10, 300, sender=deployer)
    with ape.reverts("configurator: market settled"):
        configurator.set_market_feed(BTC, ch.market(ETH).feed, sender=deployer)
