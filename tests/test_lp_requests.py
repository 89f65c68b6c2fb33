"""Two-step LP flows (issue 13, attack 2): requests escrow, execute after fresh prices.

Attack 2, LP capital sandwiched a known price update: `add_liquidity` and `remove_liquidity`
executed at once at the current oracle price, so an LP who saw ETH 2,000 -> 1,850 coming added
1,000,000 before it, let `liquidate_many` realise the longs' losses and removed everything:
+36,587 risk-free. A request is priced at execution, and execution waits until every market with
open interest has a price newer than the request, so the move is in the price the newcomer pays.
"""

from __future__ import annotations

import ape
import pytest
from support.constants import ETH, USDC

from margin_maintenance.model import to_assets, to_shares

TIMEOUT = 86_400


@pytest.fixture
def escrow(token, vault, deployer):
    """escrow(who, usd): mint `usd` tokens to `who`, approved to the vault (the escrow)."""

    def _escrow(who, usd: float) -> int:
        amount = round(usd * USDC)
        token.mint(who, amount, sender=deployer)
        token.approve(vault, amount, sender=who)
        return amount

    return _escrow


@pytest.fixture
def add_pool(fund, vault):
    """add_pool(who, usd): LP capital added at once (allowed while no market has open interest)."""

    def _add(who, usd: float) -> None:
        vault.add_liquidity(fund(who, usd), 0, sender=who)

    return _add


@pytest.fixture
def later(chain, warp):
    """Move the clock on by `dt` seconds (a block at that time)."""

    def _later(dt: int = 10) -> int:
        t = chain.blocks.head.timestamp + dt
        warp(t)
        return t

    return _later


def fee(vault) -> int:
    return vault.execution_fee()


def test_bind__execution_fee__a_tenth_of_a_token(vault, token, ch):
    assert vault.asset() == token.address == ch.collateral_token()
    assert vault.execution_fee() == USDC // 10


def test_request_deposit__no_open_interest__executes_at_once_for_the_fee(
    ch, vault, token, escrow, lp, stranger
):
    amount = escrow(lp, 1_000)
    tx = vault.request_deposit(amount, 0, sender=lp)
    ev = tx.decode_logs(vault.DepositRequested)[0]
    assert (ev["request_id"], ev["owner"], ev["assets"]) == (0, lp.address, amount)
    assert token.balanceOf(vault) == amount and vault.request_count() == 1
    assert vault.requests(0).owner == lp.address and vault.executable(0)
    pool, supply = ch.pool_assets(), vault.totalSupply()
    expected = to_shares(amount - fee(vault), supply, pool)
    tx = vault.execute_request(0, sender=stranger)
    done = tx.decode_logs(vault.RequestExecuted)[0]
    assert (done["owner"], done["executor"], done["shares"], done["fee"]) == (
        lp.address,
        stranger.address,
        expected,
        fee(vault),
    )
    assert vault.balanceOf(lp) == expected and token.balanceOf(stranger) == fee(vault)
    assert ch.pool_assets() == pool + amount - fee(vault) and token.balanceOf(vault) == 0
    added = tx.decode_logs(ch.LiquidityAdded)[0]
    assert added["provider"] == lp.address  # added.provider is Ape's own attribute
    assert (added["assets"], added["shares"]) == (amount - fee(vault), expected)
    assert vault.requests(0).owner == "0x" + "00" * 20 and not vault.executable(0)
    with ape.reverts("vault: no request"):
        vault.execute_request(0, sender=stranger)


def test_execute__open_interest__waits_for_a_newer_price(
    ch, vault, escrow, deposit, open_position, set_price, later, lp, trader, stranger, add_pool
):
    add_pool(lp, 100_000)
    deposit(trader, 10_000)
    open_position(trader, ETH, 10)
    later()
    vault.request_deposit(escrow(lp, 1_000), 0, sender=lp)
    assert not vault.executable(0)
    with ape.reverts("vault: prices not updated"):
        vault.execute_request(0, sender=stranger)
    later()
    set_price(ETH, 2_000)
    assert vault.executable(0)
    vault.execute_request(0, sender=stranger)


def test_attack2__sandwich_of_a_known_update__nets_at_most_fees(
    ch, vault, token, escrow, deposit, open_position, set_price, later, accounts, lp, add_pool
):
    attacker, keeper = accounts[7], accounts[8]
    add_pool(lp, 1_000_000)  # the passive LP
    traders = [accounts[i] for i in (2, 3, 5, 6, 9)]
    for t in traders:
        deposit(t, 20_000)
        open_position(t, ETH, 18)  # 90 ETH long in all
    later()
    # The attacker sees ETH 2,000 -> 1,850 coming and requests a deposit of 1,000,000 first.
    capital = escrow(attacker, 1_000_000)
    vault.request_deposit(capital, 0, sender=attacker)
    with ape.reverts("vault: prices not updated"):
        vault.execute_request(0, sender=attacker)
    later()
    set_price(ETH, 1_850)
    ch.liquidate_many(traders, sender=keeper)
    # Executed after the update: the deposit buys at the value the move already set.
    vault.execute_request(0, sender=keeper)
    shares = vault.balanceOf(attacker)
    vault.request_withdrawal(shares, 0, sender=attacker)
    later()
    set_price(ETH, 1_850)
    vault.execute_request(1, sender=keeper)
    gain = token.balanceOf(attacker) - capital
    assert gain <= 0  # before: +36,587; now the two fees and rounding, nothing of the move
    assert gain >= -2 * fee(vault) - 2


def test_request_withdrawal__escrows_shares__paid_at_execution_less_the_fee(
    ch, vault, token, lp, stranger, add_pool
):
    add_pool(lp, 1_000)
    shares = vault.balanceOf(lp) // 2
    tx = vault.request_withdrawal(shares, 0, sender=lp)
    ev = tx.decode_logs(vault.WithdrawalRequested)[0]
    assert (ev["owner"], ev["shares"]) == (lp.address, shares)
    assert vault.balanceOf(vault) == shares == vault.escrowed_shares()
    assets = to_assets(shares, vault.totalSupply(), ch.pool_assets())
    vault.execute_request(0, sender=stranger)
    assert token.balanceOf(lp) == assets - fee(vault) and token.balanceOf(stranger) == fee(vault)
    assert vault.escrowed_shares() == 0 and vault.balanceOf(vault) == 0


def test_request__slippage_bound__execution_reverts_and_the_owner_cancels_after_the_timeout(
    ch, vault, token, escrow, later, lp, stranger, add_pool
):
    add_pool(lp, 1_000)
    amount = escrow(stranger, 500)
    vault.request_deposit(amount, 10**30, sender=stranger)
    with ape.reverts("vault: slippage"):
        vault.execute_request(0, sender=lp)
    with ape.reverts("vault: not request owner"):
        vault.cancel_request(0, sender=lp)
    with ape.reverts("vault: request not timed out"):
        vault.cancel_request(0, sender=stranger)
    later(TIMEOUT)
    tx = vault.cancel_request(0, sender=stranger)
    assert tx.decode_logs(vault.RequestCancelled)[0]["owner"] == stranger.address
    assert token.balanceOf(stranger) == amount and token.balanceOf(vault) == 0
    with ape.reverts("vault: no request"):
        vault.cancel_request(0, sender=stranger)
    shares = vault.balanceOf(lp)
    vault.request_withdrawal(shares, 10**30, sender=lp)
    with ape.reverts("vault: slippage"):
        vault.execute_request(1, sender=stranger)
    later(TIMEOUT)
    vault.cancel_request(1, sender=lp)
    assert vault.balanceOf(lp) == shares and vault.escrowed_shares() == 0


def test_request__bad_input__clear_reverts(vault, escrow, lp):
    with ape.reverts("vault: zero amount"):
        vault.request_deposit(0, 0, sender=lp)
    with ape.reverts("vault: zero amount"):
        vault.request_withdrawal(0, 0, sender=lp)
    small = escrow(lp, 0.1)
    with ape.reverts("vault: below execution fee"):
        vault.request_deposit(small, 0, sender=lp)
    with ape.reverts("erc20: transfer amount exceeds balance"):
        vault.request_withdrawal(1, 0, sender=lp)
    with ape.reverts("vault: no request"):
        vault.execute_request(7, sender=lp)


def test_pause__deposit_requests_wait__withdrawal_requests_execute(
    ch, vault, escrow, configurator, guardian, lp, stranger, add_pool
):
    add_pool(lp, 1_000)
    vault.request_deposit(escrow(stranger, 500), 0, sender=stranger)
    vault.request_withdrawal(vault.balanceOf(lp) // 4, 0, sender=lp)
    configurator.pause(sender=guardian)
    assert not vault.executable(0) and vault.executable(1)
    with ape.reverts("vault: paused"):
        vault.execute_request(0, sender=stranger)
    vault.execute_request(1, sender=stranger)
