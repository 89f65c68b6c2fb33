"""Attack 8b (issue 13): recapitalising a pool worth about 0 multiplied the share supply.

A pool that lost all but dust still had its old supply: the next deposit bought
`assets * (supply + VIRTUAL_SHARES) / (value + VIRTUAL_ASSETS)` shares, the supply grew by about
assets / value at each wipe-out, and a few such rounds made `shares * nav` overflow for
ordinary amounts. Now the vault cancels the old shares at the next deposit when they are worth
under a millionth of the first share price (`SharesCancelled`, a new share epoch): the deposit
buys into a fresh supply, old balances read 0, and the engine logs the cancelled supply as a
redemption of 0 assets by the vault, so the ledger rebuilt from its events still matches.

The pool: an LP's 1,000 (supply 10^15), a trader long 2 ETH at 2,000 (fee 2 into the pool),
closed at ETH 2,502.2511, where its profit less the closing fee takes all but 52 units (0.000052
USDC) of the pool's 1,002.
"""

from __future__ import annotations

import ape
import pytest
from support.constants import ETH, USDC
from support.lp import refresh_prices

from margin_maintenance.audit import rebuild
from margin_maintenance.events import fetch_events
from margin_maintenance.model import VIRTUAL_SHARES, PoolState, net_value, to_shares, worthless

WIPE_PRICE = 2_502.2511  # USD: the trader's profit less its closing fee is the pool's 1,002
NEW_LP = 1_000_000  # USD the next LP deposits
# A 1,000,000 pool (supply 10^18: dust below 1 USDC by price, 0.1 USDC by the fee cap) and a
# trader long 500 ETH at 2,000 closed here: all but 0.02 USDC of the pool goes.
BIG_WIPE_PRICE = 4_003.00146073


@pytest.fixture
def wipe_out(ch, vault, fund, deposit, open_position, set_price, lp, trader):
    """wipe_out(pool, margin, units, price): an LP's `pool` USD, a trader with `margin` long
    `units` ETH at 2,000 and closed at `price`; the pool state after."""

    def _wipe(pool_usd: int, margin_usd: int, units: int, price: float) -> PoolState:
        vault.add_liquidity(fund(lp, pool_usd), 0, sender=lp)
        deposit(trader, margin_usd)
        open_position(trader, ETH, units)
        set_price(ETH, price)
        open_position(trader, ETH, -units)
        return PoolState(*ch.pool_state())

    return _wipe


@pytest.fixture
def wiped(wipe_out):
    """The pool after the wipe-out: worth dust, the old LP's 10^15 shares outstanding."""
    return wipe_out(1_000, 1_000, 2, WIPE_PRICE)


def test_wiped_pool__worth_dust__old_shares_worthless(vault, lp, wiped):
    value = net_value(wiped)
    assert 0 <= value < USDC // 1_000  # under 0.001 USDC left of 1,002
    # The closing fee reaches the pool before the profit is paid from it, so the profit is paid
    # in full and no claim is left (before that order it left a 2.5022 USDC claim).
    assert wiped.claims == wiped.pool_assets - value == 0
    supply = vault.totalSupply()
    assert supply == 1_000 * USDC * VIRTUAL_SHARES
    assert worthless(supply, value, vault.execution_fee())
    assert vault.convert_to_assets(vault.balanceOf(lp)) < USDC // 1_000


def test_deposit__worthless_pool__cancels_the_old_shares_and_starts_fresh(
    ch, vault, token, fund, lp, stranger, wiped
):
    value, old_supply = net_value(wiped), vault.totalSupply()
    amount = fund(stranger, NEW_LP)
    before = to_shares(amount, old_supply, value)  # what the old rule minted
    quote = vault.convert_to_shares(amount)

    tx = vault.add_liquidity(amount, quote, sender=stranger)

    [cancelled] = tx.decode_logs(vault.SharesCancelled)
    assert (cancelled.epoch, cancelled.shares, cancelled.value) == (1, old_supply, value)
    [removed] = tx.decode_logs(ch.LiquidityRemoved)
    assert (removed.event_arguments["provider"], removed.assets) == (vault.address, 0)
    assert removed.shares == old_supply
    minted = vault.balanceOf(stranger)
    assert minted == quote == to_shares(amount, 0, value)
    assert vault.totalSupply() == minted <= amount * VIRTUAL_SHARES
    # The old rule minted 10^9 times as many (the old supply over the virtual offset).
    assert before >= old_supply // VIRTUAL_SHARES * minted
    assert vault.share_epoch() == 1
    # The old LP's balance reads 0 and cannot move; the newcomer owns the whole pool.
    assert vault.balanceOf(lp) == 0
    with ape.reverts("erc20: transfer amount exceeds balance"):
        vault.transfer(stranger, 1, sender=lp)
    assert vault.convert_to_assets(minted) >= amount - 1
    vault.remove_liquidity(minted, 0, sender=stranger)
    assert amount - 1 <= token.balanceOf(stranger) <= amount + value


def test_deposit__worthless_pool__events_rebuild_the_supply(ch, vault, fund, stranger, wiped):
    vault.add_liquidity(fund(stranger, NEW_LP), 0, sender=stranger)
    ledger = rebuild(fetch_events(ch))
    assert ledger.lp_shares == vault.totalSupply()
    assert ledger.pool_assets == ch.pool_assets()


def test_old_balance__cleared_with_a_transfer_to_zero_when_its_holder_next_moves_shares(
    vault, fund, lp, stranger, wiped
):
    stale = vault.totalSupply()
    vault.add_liquidity(fund(stranger, NEW_LP), 0, sender=stranger)
    tx = vault.transfer(lp, 10, sender=stranger)  # the old LP receives new shares
    logs = tx.decode_logs(vault.Transfer)
    assert [(x.sender, x.receiver, x.value) for x in logs] == [
        (lp.address, "0x0000000000000000000000000000000000000000", stale),
        (stranger.address, lp.address, 10),
    ]
    assert vault.balanceOf(lp) == 10
    assert vault.holder_epoch(lp) == 1
    vault.transfer(stranger, 10, sender=lp)
    assert vault.balanceOf(lp) == 0


def test_deposit__pool_worth_more_than_dust__keeps_the_old_shares(
    vault, fund, lp, stranger, seeded_pool
):
    """A live pool is never cancelled: the threshold is a millionth of the first price."""
    amount = fund(stranger, 1_000)
    tx = vault.add_liquidity(amount, 0, sender=stranger)
    assert not tx.decode_logs(vault.SharesCancelled)
    assert vault.share_epoch() == 0
    assert vault.balanceOf(lp) == seeded_pool * VIRTUAL_SHARES


def test_old_withdrawal_request__shares_cancelled__closed_by_its_owner_at_once(
    system, vault, fund, lp, stranger, deployer, wiped
):
    """An LP who asked to withdraw before the wipe-out: its escrowed shares are cancelled too;
    the request cannot execute and its owner closes it without waiting for the timeout."""
    request_id = vault.request_count()
    vault.request_withdrawal(vault.balanceOf(lp), 0, sender=lp)
    vault.add_liquidity(fund(stranger, NEW_LP), 0, sender=stranger)
    assert vault.first_live_request() == request_id + 1
    assert vault.escrowed_shares() == 0 and vault.balanceOf(vault) == 0
    refresh_prices(system, deployer)
    assert not vault.executable(request_id)
    with ape.reverts("vault: shares cancelled"):
        vault.execute_request(request_id, sender=deployer)
    tx = vault.cancel_request(request_id, sender=lp)
    assert tx.decode_logs(vault.RequestCancelled)
    assert vault.requests(request_id).owner == "0x0000000000000000000000000000000000000000"
    assert vault.balanceOf(lp) == 0


@pytest.fixture
def wiped_big(vault, wipe_out):
    value = net_value(wipe_out(1_000_000, 200_000, 500, BIG_WIPE_PRICE))
    assert 0 < value < vault.execution_fee()  # about 0.02 USDC left of 1,000,500
    return value


def test_deposit__dust_by_price_but_above_the_fee__keeps_the_old_shares(
    vault, fund, deposit, open_position, stranger, trader2, lp, wiped_big
):
    """Worth under a millionth of the first price but more than the execution fee in all:
    the old LPs keep their value (a cancellation never takes more than dust)."""
    deposit(trader2, 1_000)
    open_position(trader2, ETH, 0.1)  # two fees of 0.2 USDC into the pool, then flat
    open_position(trader2, ETH, -0.1)
    supply = vault.totalSupply()
    value = vault.convert_to_assets(supply)
    assert vault.execution_fee() < value < USDC and value * 10**12 < supply
    tx = vault.add_liquidity(fund(stranger, NEW_LP), 0, sender=stranger)
    assert not tx.decode_logs(vault.SharesCancelled)
    assert vault.balanceOf(lp) == supply  # the old LP's shares stand, still worth ~0.42
    assert vault.convert_to_assets(vault.balanceOf(lp)) >= value - 1


def test_deposit__worthless_pool_with_open_positions__waits(
    system, vault, token, deposit, open_position, deployer, lp, trader2, wiped_big
):
    """An exposed pool's value is a conservative mark that open positions still move: a
    deposit that cancelled the old shares at it would take the old LPs' recovery."""
    deposit(trader2, 1_000)
    open_position(trader2, ETH, 0.003)  # 12 USDC long: the pool is exposed, still dust
    assert PoolState(*system.clearinghouse.pool_state()).exposed
    with ape.reverts("vault: pool worthless"):
        vault.convert_to_shares(USDC)
    token.mint(lp, 1_000 * USDC, sender=deployer)
    token.approve(vault, 1_000 * USDC, sender=lp)
    request_id = vault.request_count()
    vault.request_deposit(1_000 * USDC, 0, sender=lp)
    refresh_prices(system, deployer)
    with ape.reverts("vault: pool worthless"):
        vault.execute_request(request_id, sender=deployer)
    open_position(trader2, ETH, -0.003)  # flat again: the deposit executes, cancelling
    refresh_prices(system, deployer)
    tx = vault.execute_request(request_id, sender=deployer)
    assert tx.decode_logs(vault.SharesCancelled)
