"""Adversarial collateral tokens, bad oracle answers and front-running (SPEC.md sections 4-5).

Each hostile token is a test double in contracts/mocks/: a token that calls back into the
engine from inside `transfer`/`transferFrom` (re-entrancy), one that burns 1% of every
transfer, one whose transfers return nothing (USDT-style) and one that returns False
instead of reverting. The engine must never credit more than arrived, never pay twice,
and fail cleanly with nothing lost.
"""

from __future__ import annotations

import ape
import pytest
from ape.exceptions import ContractLogicError
from support.constants import (
    BPS,
    BTC,
    ETH,
    FEED_DECIMALS,
    HEARTBEAT,
    MAX_UINT,
    STALE_WINDOW,
    TOKEN_SCALE,
    TRADE_FEE_BPS,
    USDC,
    WAD,
)
from support.deployers import deploy_system_with_pool, engine_ledger_total


def answer(price_usd: float) -> int:
    return round(price_usd * 10**FEED_DECIMALS)


def trading_fee(size: int, price: int) -> int:
    """The engine's trading fee: notional and fee both rounded up (token units)."""
    notional = -(-abs(size) * price // (WAD * TOKEN_SCALE))
    return -(-notional * TRADE_FEE_BPS // BPS)


def state_of(ch, token, accounts) -> tuple:
    """Everything a failed call must leave as it was."""
    per_account = tuple(
        (ch.collateral(a), token.balanceOf(a), *ch.position(a, ETH), *ch.position(a, BTC))
        for a in accounts
    )
    return (
        per_account,
        token.balanceOf(ch),
        ch.pool_assets(),
        ch.insurance_fund(),
        ch.total_debt(),
    )


# ---- Systems over hostile tokens ----


@pytest.fixture
def make_system(project, deployer, guardian):
    """deploy_system over a given token contract, with a 1,000,000-token pool seeded by `lp`."""

    def _make(token, lp=None):
        return deploy_system_with_pool(project, deployer, guardian, token=token, lp=lp)

    return _make


@pytest.fixture
def reentrant(project, deployer):
    return project.ReentrantToken.deploy("Re-entrant USD", "rUSD", sender=deployer)


@pytest.fixture
def reentrant_system(make_system, reentrant, lp):
    return make_system(reentrant, lp)


def act_as_token(token, target, calldata, deployer):
    """The token contract itself calls `target` (it is an account of the engine too)."""
    return token.execute(target, calldata, sender=deployer)


@pytest.fixture
def token_account(reentrant_system, reentrant, deployer):
    """The re-entrant token holds 1,000 tokens of collateral of its own in the engine."""
    ch = reentrant_system.clearinghouse
    reentrant.mint(reentrant, 1_000 * USDC, sender=deployer)
    act_as_token(reentrant, reentrant, reentrant.approve.encode_input(ch, MAX_UINT), deployer)
    act_as_token(reentrant, ch, ch.deposit.encode_input(1_000 * USDC), deployer)
    assert ch.collateral(reentrant) == 1_000 * USDC
    return reentrant


# ---- Re-entrancy ----


def test_reentrant_token__hook_outside_the_engine__runs(
    reentrant_system, reentrant, deployer, trader
):
    """Control: the hook really calls out during the engine's transfer, so a zero success
    count below means the engine refused the call."""
    ch, vault = reentrant_system.clearinghouse, reentrant_system.vault
    reentrant.set_hook(vault, vault.totalSupply.encode_input(), False, sender=deployer)
    reentrant.mint(trader, 10 * USDC, sender=deployer)
    reentrant.approve(ch, MAX_UINT, sender=trader)

    ch.deposit(10 * USDC, sender=trader)

    assert (reentrant.hook_calls(), reentrant.hook_successes()) == (1, 1)


def test_withdraw__token_reenters_withdraw__second_withdrawal_blocked(
    reentrant_system, token_account, deployer, lp, trader
):
    ch, token = reentrant_system.clearinghouse, token_account
    amount = 1_000 * USDC
    # During the engine's transfer out, the token tries to withdraw the same collateral again.
    token.set_hook(ch, ch.withdraw.encode_input(amount), False, sender=deployer)

    act_as_token(token, ch, ch.withdraw.encode_input(amount), deployer)

    assert token.hook_calls() == 1
    assert token.hook_successes() == 0  # the engine's lock rejected the nested call
    assert token.last_hook_revert() == b""  # a bare revert: the nonreentrancy lock
    assert ch.collateral(token) == 0
    assert token.balanceOf(token) == amount  # paid once, not twice
    assert token.balanceOf(ch) == engine_ledger_total(ch, [token, lp, trader])


def test_withdraw__strict_reentrant_token__whole_withdrawal_reverts_nothing_moves(
    reentrant_system, token_account, deployer, lp
):
    ch, token = reentrant_system.clearinghouse, token_account
    token.set_hook(ch, ch.withdraw.encode_input(1), True, sender=deployer)
    before = state_of(ch, token, [token, lp])

    with pytest.raises(ContractLogicError):
        act_as_token(token, ch, ch.withdraw.encode_input(500 * USDC), deployer)

    assert state_of(ch, token, [token, lp]) == before


@pytest.mark.parametrize(
    "reentry",
    ["withdraw", "deposit", "add_liquidity", "fund_insurance", "trade", "liquidate", "equity"],
)
def test_deposit__token_reenters_engine__blocked_and_credit_exact(
    reentrant_system, token_account, deployer, lp, trader, reentry
):
    """An honest deposit whose transferFrom calls back into any engine function (a view
    too: the pragma locks reads, so no one sees the half-updated state)."""
    ch, token = reentrant_system.clearinghouse, token_account
    vault = reentrant_system.vault
    calldata = {
        "withdraw": lambda: ch.withdraw.encode_input(100 * USDC),
        # Without the lock, a nested deposit during the outer one would be counted twice:
        # the outer credit is the balance difference, which includes the nested transfer.
        "deposit": lambda: ch.deposit.encode_input(100 * USDC),
        "add_liquidity": lambda: vault.add_liquidity.encode_input(100 * USDC, 0),
        "fund_insurance": lambda: ch.fund_insurance.encode_input(100 * USDC),
        "trade": lambda: ch.trade.encode_input(ETH, WAD // 10, MAX_UINT),
        "liquidate": lambda: ch.liquidate.encode_input(trader),
        "equity": lambda: ch.equity.encode_input(trader),
    }[reentry]()
    token.mint(trader, 500 * USDC, sender=deployer)
    token.approve(ch, MAX_UINT, sender=trader)
    # add_liquidity is the vault's: it re-enters the engine through the pool hooks.
    target = vault if reentry == "add_liquidity" else ch
    token.set_hook(target, calldata, False, sender=deployer)
    own_collateral = ch.collateral(token)

    ch.deposit(500 * USDC, sender=trader)

    assert token.hook_calls() == 1
    assert token.hook_successes() == 0
    assert token.last_hook_revert() == b""  # the lock's bare revert, not the function's own
    assert ch.collateral(trader) == 500 * USDC  # exactly what arrived
    assert ch.collateral(token) == own_collateral
    assert token.balanceOf(ch) == engine_ledger_total(ch, [token, lp, trader])


def test_remove_liquidity__token_reenters_remove__one_redemption_only(
    reentrant_system, token_account, deployer, lp
):
    ch, token = reentrant_system.clearinghouse, token_account
    vault = reentrant_system.vault
    token.mint(token, 1_000 * USDC, sender=deployer)
    act_as_token(token, vault, vault.add_liquidity.encode_input(1_000 * USDC, 0), deployer)
    shares = vault.balanceOf(token)
    # While the engine pays out the first half, the token redeems the other half.
    token.set_hook(
        vault, vault.remove_liquidity.encode_input(shares // 2, 0), False, sender=deployer
    )
    balance = token.balanceOf(token)

    tx = act_as_token(token, vault, vault.remove_liquidity.encode_input(shares // 2, 0), deployer)

    assets = tx.decode_logs(ch.LiquidityRemoved)[0].assets
    assert len(tx.decode_logs(ch.LiquidityRemoved)) == 1
    assert token.hook_successes() == 0
    assert token.last_hook_revert() == b""
    assert vault.balanceOf(token) == shares - shares // 2
    assert token.balanceOf(token) == balance + assets
    assert token.balanceOf(ch) == engine_ledger_total(ch, [token, lp])


# ---- Fee-on-transfer ----


@pytest.fixture
def fot(project, deployer):
    return project.FeeOnTransferToken.deploy("Fee USD", "fUSD", sender=deployer)


def test_deposit__fee_on_transfer__credited_what_arrived(make_system, fot, deployer, trader, lp):
    system = make_system(fot, lp)
    ch = system.clearinghouse
    assert ch.pool_assets() == 990_000 * USDC  # add_liquidity credited after the 1% fee too
    fot.mint(trader, 1_000 * USDC, sender=deployer)
    fot.approve(ch, MAX_UINT, sender=trader)

    tx = ch.deposit(1_000 * USDC, sender=trader)

    assert ch.collateral(trader) == 990 * USDC
    assert tx.decode_logs(ch.Deposited)[0].amount == 990 * USDC
    assert fot.balanceOf(ch) == engine_ledger_total(ch, [trader, lp])

    ch.withdraw(990 * USDC, sender=trader)  # the engine sends 990; the token burns 1% of it

    assert ch.collateral(trader) == 0
    assert fot.balanceOf(trader) == 990 * USDC - 990 * USDC // 100
    assert fot.balanceOf(ch) == engine_ledger_total(ch, [trader, lp])


def test_fund_insurance__fee_on_transfer__credited_what_arrived(make_system, fot, deployer):
    system = make_system(fot)
    ch = system.clearinghouse
    fot.mint(deployer, 10_000 * USDC, sender=deployer)
    fot.approve(ch, MAX_UINT, sender=deployer)

    ch.fund_insurance(10_000 * USDC, sender=deployer)

    assert ch.insurance_fund() == 9_900 * USDC
    assert fot.balanceOf(ch) == ch.insurance_fund()


def test_pull__token_delivers_nothing__every_entry_point_reverts_and_nothing_moves(
    make_system, fot, deployer, trader
):
    """A token that reports success but delivers nothing (here: a 100% transfer fee) must not
    credit anything: deposit, add_liquidity and fund_insurance all revert."""
    system = make_system(fot)
    ch = system.clearinghouse
    vault = system.vault
    fot.mint(trader, 1_000 * USDC, sender=deployer)
    fot.approve(ch, MAX_UINT, sender=trader)
    fot.set_fee_bps(10_000, sender=deployer)
    calls = (
        lambda: ch.deposit(100 * USDC, sender=trader),
        lambda: vault.add_liquidity(100 * USDC, 0, sender=trader),
        lambda: ch.fund_insurance(100 * USDC, sender=trader),
    )
    for call in calls:
        with ape.reverts("clearinghouse: nothing received"):
            call()
    assert fot.balanceOf(trader) == 1_000 * USDC
    assert (ch.collateral(trader), ch.pool_assets(), ch.insurance_fund()) == (0, 0, 0)


# ---- Tokens without return values ----


@pytest.fixture
def noret(project, deployer):
    return project.NoReturnToken.deploy("Tether-like", "nUSD", sender=deployer)


def test_deposit_withdraw__token_returns_nothing__works(make_system, noret, deployer, trader, lp):
    system = make_system(noret, lp)
    ch = system.clearinghouse
    vault = system.vault
    noret.mint(trader, 1_000 * USDC, sender=deployer)
    noret.approve(ch, MAX_UINT, sender=trader)

    ch.deposit(1_000 * USDC, sender=trader)
    ch.trade(ETH, WAD, MAX_UINT, sender=trader)
    ch.trade(ETH, -WAD, 0, sender=trader)
    collateral = ch.collateral(trader)
    ch.withdraw(collateral, sender=trader)

    assert noret.balanceOf(trader) == collateral
    assert ch.collateral(trader) == 0
    shares = system.vault.balanceOf(lp) // 2
    vault.remove_liquidity(shares, 0, sender=lp)
    assert noret.balanceOf(ch) == engine_ledger_total(ch, [trader, lp])


def test_deposit__token_returns_nothing_and_reverts__reverts(make_system, noret, trader):
    system = make_system(noret)
    ch = system.clearinghouse
    noret.approve(ch, MAX_UINT, sender=trader)

    with ape.reverts("erc20: transfer amount exceeds balance"):
        ch.deposit(1 * USDC, sender=trader)


# ---- Tokens that return False ----


@pytest.fixture
def falsy(project, deployer):
    return project.FalseReturnToken.deploy("False USD", "xUSD", sender=deployer)


@pytest.fixture
def falsy_system(make_system, falsy, lp):
    return make_system(falsy, lp)


def test_deposit__false_return_short_balance__reverts_transfer_failed(
    falsy_system, falsy, deployer, trader, lp
):
    ch = falsy_system.clearinghouse
    falsy.mint(trader, 100 * USDC, sender=deployer)
    falsy.approve(ch, MAX_UINT, sender=trader)
    before = state_of(ch, falsy, [trader, lp])

    with ape.reverts("clearinghouse: transfer failed"):
        ch.deposit(101 * USDC, sender=trader)  # more than the balance: the token says False

    assert state_of(ch, falsy, [trader, lp]) == before


def test_deposit__false_return_no_allowance__reverts_transfer_failed(
    falsy_system, falsy, deployer, trader
):
    ch = falsy_system.clearinghouse
    falsy.mint(trader, 100 * USDC, sender=deployer)

    with ape.reverts("clearinghouse: transfer failed"):
        ch.deposit(100 * USDC, sender=trader)

    assert ch.collateral(trader) == 0
    assert falsy.balanceOf(trader) == 100 * USDC


@pytest.mark.parametrize("call", ["withdraw", "remove_liquidity", "add_liquidity", "insurance"])
def test_transfers__token_returns_false__revert_transfer_failed_nothing_lost(
    falsy_system, falsy, deployer, trader, lp, call
):
    ch = falsy_system.clearinghouse
    vault = falsy_system.vault
    falsy.mint(trader, 1_000 * USDC, sender=deployer)
    falsy.approve(ch, MAX_UINT, sender=trader)
    ch.deposit(1_000 * USDC, sender=trader)
    falsy.set_failing(True, sender=deployer)  # e.g. the token was paused or blocklisted
    before = state_of(ch, falsy, [trader, lp])
    shares = falsy_system.vault.balanceOf(lp)

    with ape.reverts("clearinghouse: transfer failed"):
        if call == "withdraw":
            ch.withdraw(1_000 * USDC, sender=trader)
        elif call == "remove_liquidity":
            vault.remove_liquidity(shares // 10, 0, sender=lp)
        elif call == "add_liquidity":
            vault.add_liquidity(10 * USDC, 0, sender=trader)
        else:
            ch.fund_insurance(10 * USDC, sender=trader)

    assert state_of(ch, falsy, [trader, lp]) == before
    assert falsy_system.vault.balanceOf(lp) == shares
    falsy.set_failing(False, sender=deployer)
    ch.withdraw(1_000 * USDC, sender=trader)  # nothing was lost
    assert falsy.balanceOf(trader) == 1_000 * USDC


# ---- Oracle failures ----


@pytest.fixture
def underwater(ch, deposit, seeded_pool, open_position, set_price, trader, trader2):
    """`trader` is 8x long ETH and liquidatable at $1,800; `trader2` is healthy."""
    deposit(trader, 1_000)
    deposit(trader2, 10_000)
    open_position(trader, ETH, 4)
    open_position(trader2, ETH, -1)
    set_price(ETH, 1_800)
    assert ch.is_liquidatable(trader)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [(0, "oracle: non-positive price"), (-1, "oracle: non-positive price"), ("stale", None)],
)
def test_trade_and_liquidate__bad_oracle_answer__revert_with_oracle_reason_nothing_lost(
    ch, token, underwater, eth_agg, deployer, trader, trader2, liquidator, lp, chain, bad, reason
):
    if bad == "stale":  # past the stale window too: no conservative mark left
        chain.pending_timestamp += HEARTBEAT + STALE_WINDOW + 1
        chain.mine()
        reason = "oracle: stale price"
    else:
        eth_agg.set_price(bad, sender=deployer)
    actors = [trader, trader2, liquidator, lp]
    before = state_of(ch, token, actors)

    with ape.reverts(reason):
        ch.trade(ETH, WAD // 10, MAX_UINT, sender=trader2)
    with ape.reverts(reason):
        ch.trade(ETH, -(WAD // 10), 0, sender=trader2)  # closing needs a price too
    with ape.reverts(reason):
        ch.liquidate(trader, sender=liquidator)
    # A batch never reverts for an unpriceable entry: each is skipped, with an event.
    tx = ch.liquidate_many([trader, trader2], sender=liquidator)
    skipped = [log.account for log in tx.decode_logs(ch.LiquidationSkipped)]
    assert skipped == [trader.address, trader2.address]
    with ape.reverts(reason):
        ch.withdraw(1 * USDC, sender=trader2)  # margin is checked against the price
    with ape.reverts(reason):
        ch.is_liquidatable(trader)

    assert state_of(ch, token, actors) == before
    # Deposits need no price and go on.
    token.mint(trader, 100 * USDC, sender=deployer)
    ch.deposit(100 * USDC, sender=trader)
    # A valid answer again: the liquidation goes through.
    eth_agg.set_price(answer(1_800), sender=deployer)
    ch.liquidate(trader, sender=liquidator)
    assert not ch.is_liquidatable(trader)


def test_liquidate__answer_older_than_heartbeat_and_window__reverts_stale(
    ch, underwater, eth_agg, deployer, liquidator, trader, chain
):
    now = chain.blocks.head.timestamp
    eth_agg.set_answer_at(answer(1_800), now - HEARTBEAT - STALE_WINDOW - 5, sender=deployer)

    with ape.reverts("oracle: stale price"):
        ch.liquidate(trader, sender=liquidator)


# ---- Front-running a known oracle update ----

# The engine executes every trade at the oracle's price. A trader who sees an oracle update
# coming (in the mempool, or a slow heartbeat during a fast market) can open just before it
# and close just after: the gain is exactly size * (new price - old price) minus two trading
# fees. That is a pure bet on the announced move, paid by the pool (the counterparty). The
# engine's protections are only that (1) prices come from the oracle alone, so the trader
# cannot move the execution price, (2) each leg pays the trading fee, so moves smaller than
# about two fees are not worth front-running, and (3) margin and open-interest caps bound
# the size. It does NOT stop front-running of larger moves; delayed (next-price) execution
# or a spread that widens with volatility would, and are not implemented.


@pytest.mark.parametrize(
    ("market", "side", "move_bps"),
    [(ETH, 1, 5), (ETH, 1, 100), (ETH, 1, 1_000), (ETH, -1, -300), (BTC, -1, -1_000)],
)
def test_trade__front_run_known_update__gain_is_move_minus_two_fees(
    ch, deposit, seeded_pool, system, deployer, trader, market, side, move_bps
):
    deposit(trader, 10_000)
    agg = system.aggregators[market]
    p0 = system.feeds[market].latest_price()
    size = side * 4 * 10_000 * USDC * TOKEN_SCALE * WAD // p0  # 4x the collateral
    c0, pool0 = ch.collateral(trader), ch.pool_assets()

    ch.trade(market, size, MAX_UINT if size > 0 else 0, sender=trader)  # just before the update
    agg.set_price(agg.latestAnswer() * (BPS + move_bps) // BPS, sender=deployer)
    p1 = system.feeds[market].latest_price()
    ch.trade(market, -size, MAX_UINT if size < 0 else 0, sender=trader)  # just after it

    gain = ch.collateral(trader) - c0
    move_value = size * (p1 - p0) // 10**30  # size * price move, token units, rounded down
    bound = move_value - trading_fee(size, p0) - trading_fee(size, p1)
    assert gain <= bound
    assert gain == bound  # exactly that bet: nothing else to gain, nothing else lost
    assert ch.pool_assets() - pool0 == -gain  # the pool is the counterparty
    if abs(move_bps) <= 2 * TRADE_FEE_BPS:
        assert gain < 0  # a move within two fees does not pay
