"""The two satellites around the engine that hold no rule of their own: the LP vault (shares and
their maths; the tokens stay in the engine) and the production lens (every view in one call).

The vault's share maths are checked against `margin_maintenance.model.pool` applied to the
engine's own `pool_state()`, with open positions in profit and in loss, so the vault, the
engine and the model agree bit for bit; the lens is checked field by field against the
engine's own views, with more markets than its old test-only copy allowed.
"""

from __future__ import annotations

import ape
import pytest
from support.constants import BTC, ETH, USDC, WAD, ZERO_ADDRESS
from support.deployers import deploy_unbound_vault
from support.lp import refresh_prices

from margin_maintenance.model import (
    PoolState,
    deposit_nav,
    free_liquidity,
    net_value,
    redeem_nav,
    to_assets,
    to_shares,
)
from margin_maintenance.system import deploy_engine


def pool_state(ch) -> PoolState:
    return PoolState(*ch.pool_state())


# ---- Wiring: each names the other, once ----


def test_wiring__deployed_system__vault_and_engine_name_each_other(ch, vault):
    assert ch.lp_token() == vault.address
    assert vault.engine() == ch.address
    assert vault.owner() == ZERO_ADDRESS  # bind renounced the deployer: nobody can rebind


def test_engine__zero_vault__deploy_reverts(project, deployer, token, configurator):
    with ape.reverts("clearinghouse: zero lp vault"):
        deploy_engine(project, deployer, token, ZERO_ADDRESS, configurator)


@pytest.fixture
def unbound_vault(project, deployer):
    return deploy_unbound_vault(project, deployer)


def test_bind__engine_names_another_vault__reverts_wrong_engine(unbound_vault, ch, deployer):
    with ape.reverts("vault: wrong engine"):
        unbound_vault.bind(ch, sender=deployer)  # ch names the system's own vault


def test_bind__not_a_contract__reverts_wrong_engine(unbound_vault, deployer, stranger):
    with ape.reverts("vault: wrong engine"):
        unbound_vault.bind(stranger, sender=deployer)


def test_bind__stranger__reverts_not_owner(unbound_vault, ch, stranger):
    with ape.reverts("ownable: caller is not the owner"):
        unbound_vault.bind(ch, sender=stranger)


def test_unbound_vault__every_entry_point__reverts_not_bound(unbound_vault, lp):
    for call in (
        lambda: unbound_vault.add_liquidity(USDC, 0, sender=lp),
        lambda: unbound_vault.remove_liquidity(1, 0, sender=lp),
        lambda: unbound_vault.free_liquidity(),
        lambda: unbound_vault.convert_to_shares(USDC),
        lambda: unbound_vault.convert_to_assets(1),
    ):
        with ape.reverts("vault: not bound"):
            call()


def test_pool_hooks__lp_calls_engine_directly__reverts_not_vault(ch, fund, lp):
    """The engine's pool hooks answer to the vault alone: an LP cannot credit the pool
    without shares being priced, nor be paid without burning them."""
    fund(lp, 1_000)
    for call in (
        lambda: ch.pool_pull(lp, USDC, sender=lp),
        lambda: ch.pool_add(lp, USDC, 10**6, sender=lp),
        lambda: ch.pool_pay(lp, USDC, 10**6, sender=lp),
    ):
        with ape.reverts("clearinghouse: not vault"):
            call()


# ---- The vault's maths: the model on the engine's pool_state ----


@pytest.fixture
def open_book(ch, vault, deposit, seeded_pool, open_position, set_price, trader, trader2):
    """A long ETH in profit and a short BTC in loss, so the pool owes and is owed."""
    deposit(trader, 20_000)
    deposit(trader2, 20_000)
    open_position(trader, ETH, 10)
    open_position(trader2, BTC, -0.5)
    set_price(ETH, 2_150)
    set_price(BTC, 61_000)


def test_pool_state__open_book__profit_loss_and_reserve_as_the_model(ch, open_book):
    ps = pool_state(ch)
    assert ps.trader_profit > 0 and ps.trader_loss > 0 and ps.reserve > 0
    assert ps.pool_assets == ch.pool_assets() and ps.total_debt == ch.total_debt()
    assert ps.trader_profit == ch.trader_unrealized_pnl(ETH) + 1  # rounded against LPs
    assert ps.trader_loss == -ch.trader_unrealized_pnl(BTC)
    assert not ps.paused


def test_vault_views__open_book__equal_the_model_on_pool_state(ch, vault, open_book):
    ps, supply = pool_state(ch), vault.totalSupply()
    for assets in (1, 999, 12_345 * USDC):
        assert vault.convert_to_shares(assets) == to_shares(assets, supply, deposit_nav(ps))
    for shares in (10**6, supply // 3, supply):
        assert vault.convert_to_assets(shares) == to_assets(shares, supply, redeem_nav(ps))
    assert vault.free_liquidity() == free_liquidity(ps)
    # One net value both ways: the paper losses count (the traders hold enough to pay them)
    # and the paper profit is owed, so no round trip gains from the gap between two values.
    assert deposit_nav(ps) == redeem_nav(ps) == net_value(ps)
    assert ps.trader_collateral > ps.trader_loss
    assert net_value(ps) == ps.pool_assets + ps.trader_loss - ps.trader_profit - ps.total_debt


def test_requests__open_book__minted_and_paid_as_quoted(
    ch, vault, token, system, deployer, fund, open_book, lp2, stranger
):
    """With open interest LP capital moves by request; executed after fresh prices (at the
    same answers here) it mints and pays exactly what the views quoted, less the fee."""
    amount = fund(lp2, 50_000)
    fee = vault.execution_fee()
    quote = vault.convert_to_shares(amount - fee)
    token.approve(vault, amount, sender=lp2)
    vault.request_deposit(amount, quote, sender=lp2)
    refresh_prices(system, deployer)
    tx = vault.execute_request(0, sender=stranger)
    [added] = tx.decode_logs(ch.LiquidityAdded)  # emitted by the engine, not the vault
    assert (added.assets, added.shares) == (amount - fee, quote)
    assert quote == vault.balanceOf(lp2)
    paid = vault.convert_to_assets(quote)
    before = token.balanceOf(lp2)
    vault.request_withdrawal(quote, paid - fee, sender=lp2)
    refresh_prices(system, deployer)
    tx = vault.execute_request(1, sender=stranger)
    removed, fee_paid = tx.decode_logs(ch.LiquidityRemoved)  # the owner's part, then the fee
    assert (fee_paid.assets, fee_paid.shares) == (fee, 0)
    assert (removed.assets, removed.shares) == (paid - fee, quote)
    assert token.balanceOf(lp2) - before == paid - fee < amount  # the round trip never profits
    assert token.balanceOf(stranger) == 2 * fee


@pytest.fixture
def lp2(accounts):
    return accounts[7]


# ---- The lens: everything in one call, every market ----


def test_lens__six_markets__every_market_and_account_as_the_engine_reads(
    project, ch, vault, configurator, system, deployer, open_book, trader, trader2, lp
):
    for _ in range(4):  # six markets: the old test-only lens stopped at four
        configurator.add_market(system.feeds[0], 1_000, 500, 100, 5, WAD, USDC, sender=deployer)
    lens = project.ClearinghouseLens.deploy(sender=deployer)
    probe = 10 ** int(vault.decimals())
    view, accounts = lens.snapshot(ch, [trader, trader2, lp], probe)

    assert (view.engine, view.vault, view.token) == (
        ch.address,
        vault.address,
        system.token.address,
    )
    assert view.token_balance == system.token.balanceOf(ch)
    assert PoolState(*view.pool) == pool_state(ch)
    assert view.insurance_fund == ch.insurance_fund()
    assert view.free_liquidity == vault.free_liquidity()
    assert (view.lp_supply, view.share_price) == (
        vault.totalSupply(),
        vault.convert_to_assets(probe),
    )
    assert (view.keeper_share_bps, view.max_partial_bps, view.min_keeper_reward) == tuple(
        ch.liquidation_params()
    )
    assert view.pool_reserve_bps == ch.pool_reserve_bps()
    assert [m.market_id for m in view.markets] == list(range(6)) == list(range(ch.market_count()))
    for m in view.markets:
        assert tuple(m.info) == tuple(ch.market(m.market_id))
        assert m.mark_price == ch.mark_price(m.market_id)
        assert m.trader_pnl == ch.trader_unrealized_pnl(m.market_id)

    statuses = ch.margin_status([trader, trader2, lp])
    for acc, status in zip(accounts, statuses, strict=True):
        a = acc.account
        assert acc.collateral == ch.collateral(a)
        assert tuple(acc.status) == tuple(status)
        assert acc.liquidatable == ch.is_liquidatable(a) == status.liquidatable
        assert [p.market_id for p in acc.positions] == list(ch.account_market_ids(a))
        for p in acc.positions:
            assert (p.size, p.entry_price) == tuple(ch.position(a, p.market_id))
        assert acc.lp_shares == vault.balanceOf(a)
        assert acc.token_balance == system.token.balanceOf(a)
    assert [len(acc.positions) for acc in accounts] == [1, 1, 0]

    table = [tuple(p) for p in lens.position_table(ch, [trader, lp], 6)]
    assert table[:6] == [tuple(ch.position(trader, m)) for m in range(6)]
    assert table[6:] == [(0, 0)] * 6


def test_lens__stale_price__reverts_like_the_engine(
    project, chain, ch, system, deployer, open_book, warp
):
    """The lens adds no tolerance of its own: where a price view reverts, so does it."""
    lens = project.ClearinghouseLens.deploy(sender=deployer)
    warp(chain.blocks.head.timestamp + system.feeds[ETH].max_staleness() + 1)
    with pytest.raises(ape.exceptions.ContractLogicError):
        ch.mark_price(ETH)
    with pytest.raises(ape.exceptions.ContractLogicError):
        lens.engine_view(ch, 10**12)
