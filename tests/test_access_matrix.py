"""Access-control matrix: every state-changing function of every deployable, called by every
role, with the outcome each cell must have.

Administration lives on the configurator (contracts/Configurator.vy): its rows are the engine's
former admin rows, re-pointed, and the engine's `configure_*` hooks answer to the configurator
alone. LP shares live on the LP vault (contracts/LPVault.vy), whose `pool_*` hooks on the engine
answer to the vault alone. Roles: the owner (deployer, owner of the configurator), a pending
owner (ownership offered, not yet accepted), the guardian, a trader with collateral and an open
position, and a stranger holding tokens but no account.
Each cell runs on a fresh copy of one world (Ape reverts the chain after every test), so a cell
that transfers ownership or pauses cannot leak into the next.

Allowed cells assert the effect the call must have (not only that it did not revert); denied
cells assert the exact revert string. Permissionless functions are allowed for every role and
act on the caller's own account only: nobody can move another account's collateral or shares.
`test_matrix__covers_every_state_changing_function` reads the compiled ABIs, so a new external
function without a row here fails the suite.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ape
import pytest
from eth_abi import encode
from support.constants import (
    BTC,
    ETH,
    HEARTBEAT,
    IM_BPS,
    LIQ_FEE_BPS,
    MAX_UINT,
    MM_BPS,
    NOT_CONFIGURATOR,
    NOT_OWNER,
    STALE_WINDOW,
    TRADE_FEE_BPS,
    USDC,
    WAD,
    ZERO_ADDRESS,
)
from support.deployers import close_book, crash
from support.prices import signed_update

from margin_maintenance.abi import contract_abi
from margin_maintenance.model import RISK_DELAY

ROLES = ("owner", "pending_owner", "guardian", "trader", "stranger")
NOT_PENDING = "ownable_2step: caller is not the new owner"
NOT_GUARDIAN = "configurator: not guardian"
NOT_VAULT = "clearinghouse: not vault"
ALREADY_BOUND = "configurator: already bound"
NOT_VERIFIER_ADMIN = "verifier: not the admin"
NO_ALLOWANCE = "erc20: insufficient allowance"
ROOT = Path(__file__).resolve().parent.parent


def ledgers(w, who) -> tuple[int, int, int, int]:
    """(collateral, LP shares, wallet tokens, insurance fund) as seen from `who`."""
    return (
        w.ch.collateral(who),
        w.system.vault.balanceOf(who),
        w.token.balanceOf(who),
        w.ch.insurance_fund(),
    )


# ---- Rows: one per state-changing function ----

Args = Callable[[Any, Any], tuple]
Hook = Callable[[Any, Any], Any]


def _nothing(w, who) -> None:
    return None


@dataclass(frozen=True)
class Row:
    contract: str  # "ch", "cfg" (the configurator), "vault" (the LP vault, the share token),
    # "verifier" (the price verifier) or "pyth" (the Pyth adapter, over the local Pyth)
    args: Args
    allowed: frozenset[str]
    denied: str  # revert string for every role not allowed (unless `denied_for` names it)
    arrange: Hook = _nothing  # runs before the call, as the caller where it matters
    check: Callable[[Any, Any, Any, Any], None] = field(default=lambda w, who, tx, before: None)
    denied_for: tuple[tuple[str, str], ...] = ()  # (role, revert string) where it differs


def everyone() -> frozenset[str]:
    return frozenset(ROLES)


def only(*roles: str) -> frozenset[str]:
    return frozenset(roles)


# Owner setters: the change is visible in a view afterwards.


def _check_market_added(w, who, tx, before):
    assert w.ch.market_count() == 3
    assert w.ch.market(2).maintenance_margin_bps == MM_BPS


def _check_risk(w, who, tx, before):
    """The world's ETH longs are open: a rise waits the risk delay."""
    assert w.cfg.pending_risk(ETH).initial_margin_bps == 2_000
    assert w.ch.market(ETH).initial_margin_bps == IM_BPS


def _risk_queued(w, who):
    w.cfg.set_market_risk(ETH, 2_000, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS, sender=w.owner)


def _risk_due(w, who):
    _risk_queued(w, who)
    _eth_later(w, RISK_DELAY)


def _check_risk_applied(w, who, tx, before):
    assert w.ch.market(ETH).initial_margin_bps == 2_000
    assert w.cfg.pending_risk(ETH).eta == 0


def _check_risk_cancelled(w, who, tx, before):
    assert w.cfg.pending_risk(ETH).eta == 0
    assert w.ch.market(ETH).initial_margin_bps == IM_BPS


def _check_limits(w, who, tx, before):
    assert w.ch.market(ETH).max_open_interest == 2_000_000 * WAD


def _btc_scale(w) -> int:
    """A skew scale for the world's BTC market: twice its cap, in whole units."""
    return 2 * w.ch.market(BTC).max_open_interest // WAD


def _check_funding(w, who, tx, before):
    """BTC is flat in the world: funding turns on at once."""
    info = w.ch.market_funding(BTC)
    assert (info.skew_scale, info.max_funding_velocity) == (_btc_scale(w), 300)


def _funding_queued(w, who):
    """Funding on for BTC (flat: at once), a BTC position, then a retune: queued."""
    w.cfg.set_market_funding(BTC, _btc_scale(w), 300, sender=w.owner)
    w.ch.trade(BTC, WAD // 100, MAX_UINT, sender=w.trader)
    w.cfg.set_market_funding(BTC, _btc_scale(w) * 5 // 4, 300, sender=w.owner)


def _funding_due(w, who):
    _funding_queued(w, who)
    ape.chain.pending_timestamp = ape.chain.pending_timestamp + RISK_DELAY
    for agg in w.system.aggregators:  # both feeds answer again (the apply records at BTC's)
        agg.set_price(agg.latestRoundData()[1], sender=w.owner)


def _check_funding_applied(w, who, tx, before):
    assert w.ch.market_funding(BTC).skew_scale == _btc_scale(w) * 5 // 4
    assert w.cfg.pending_funding(BTC).eta == 0


def _check_funding_cancelled(w, who, tx, before):
    assert w.cfg.pending_funding(BTC).eta == 0
    assert w.ch.market_funding(BTC).skew_scale == _btc_scale(w)


def _check_feed(w, who, tx, before):
    assert w.ch.market(ETH).feed == w.system.feeds[1].address


KEEPER_REWARD = (50 * USDC, USDC, 2_000, ETH, 10**9)


def _reward_queued(w, who):
    w.cfg.set_keeper_reward(*KEEPER_REWARD, sender=w.owner)


def _reward_due(w, who):
    _reward_queued(w, who)
    _eth_later(w, RISK_DELAY)


def _check_reward_queued(w, who, tx, before) -> None:
    """Turning gas pricing on raises the reserve of the world's open accounts: queued."""
    assert w.cfg.pending_reward().eta == tx.timestamp + RISK_DELAY
    assert w.ch.keeper_reward_params()[3] == 0


def _check_keeper_reward(w, who, tx, before) -> None:
    gas_price, eth, premium, market, floor, max_reward, margin = w.ch.keeper_reward_params()
    assert (premium, market, floor, max_reward, margin) == (2_000, ETH + 1, 10**9, 50 * USDC, USDC)
    assert gas_price == 10**9 and eth > 0
    assert w.cfg.pending_reward().eta == 0


def _check_reward_cancelled(w, who, tx, before) -> None:
    assert w.cfg.pending_reward().eta == 0
    assert w.ch.keeper_reward_params()[3] == 0


def _check_liq_params(w, who, tx, before):
    assert tuple(w.ch.liquidation_params()) == (4_000, 8_000, 2 * USDC)


def _check_reserve(w, who, tx, before):
    assert w.ch.pool_reserve_bps() == 2_500


def _check_guardian(w, who, tx, before):
    assert w.ch.guardian() == w.stranger.address


def _check_paused(w, who, tx, before):
    assert w.ch.paused()


def _check_unpaused(w, who, tx, before):
    assert not w.ch.paused()


def _eth_later(w, dt: int) -> None:
    """`dt` seconds later ETH answers again (BTC stays silent)."""
    ape.chain.pending_timestamp = ape.chain.pending_timestamp + dt
    agg = w.system.aggregators[ETH]
    agg.set_price(agg.latestRoundData()[1], sender=w.owner)


def _dead_btc(w, who):
    """BTC past its heartbeat and stale window (ETH answers again), and a settlement price
    for it at its last valid price: `w.settled`."""
    _eth_later(w, HEARTBEAT + STALE_WINDOW + 10)
    last = w.system.feeds[BTC].price_data()[0]
    w.settled = ape.project.SettledPriceFeed.deploy(last, w.system.feeds[BTC], sender=w.owner)


def _proposed(w, who):
    _dead_btc(w, who)
    w.cfg.propose_settlement(BTC, w.settled, sender=w.owner)


def _proposed_and_due(w, who):
    _proposed(w, who)
    _eth_later(w, 86_400)  # the settlement delay later; BTC still silent


def _check_proposed(w, who, tx, before):
    assert w.cfg.settlements(BTC).feed == w.settled.address


def _check_cancelled(w, who, tx, before):
    assert w.cfg.settlements(BTC).feed == ZERO_ADDRESS


def _check_settled(w, who, tx, before):
    assert w.ch.market(BTC).feed == w.settled.address


def _check_transfer(w, who, tx, before):
    assert w.cfg.pending_owner() == w.trader.address
    assert w.cfg.owner() == w.owner.address


def _check_accept(w, who, tx, before):
    assert w.cfg.owner() == who.address
    assert w.cfg.pending_owner() == ZERO_ADDRESS


# Permissionless calls: they move the caller's own ledgers by exactly the amount asked.


def _give_collateral(w, who):
    w.ch.deposit(1_000 * USDC, sender=who)


def _give_shares(w, who):
    """About 1,000 USDC of LP shares, from the world's LP (instant entries are closed while
    the world's longs are open)."""
    w.vault.transfer(who, w.vault.balanceOf(w.lp) // 500, sender=w.lp)


def _flat_with_shares(w, who):
    close_book(w)
    _give_shares(w, who)


def _escrow_request(w, who):
    """A deposit request of 100 by `who` (its tokens approved to the vault, where they wait)."""
    w.token.approve(w.vault, 100 * USDC, sender=who)
    w.vault.request_deposit(100 * USDC, 0, sender=who)


def _lp_request(w, who):
    """An LP's deposit request, executable: every market has a price newer than it."""
    w.token.mint(w.lp, 100 * USDC, sender=w.owner)
    _escrow_request(w, w.lp)
    ape.chain.pending_timestamp = ape.chain.pending_timestamp + 10
    for agg in w.system.aggregators:
        agg.set_price(agg.latestRoundData()[1], sender=w.owner)


def _timed_out_request(w, who):
    _escrow_request(w, who)
    ape.chain.pending_timestamp = ape.chain.pending_timestamp + 86_400


def _last_request(w, who):
    return (w.vault.request_count() - 1,)


def _check_requested(w, who, tx, before):
    assert w.vault.requests(w.vault.request_count() - 1)[0] == who.address


def _check_executed(w, who, tx, before):
    [log] = tx.decode_logs(w.vault.RequestExecuted)
    assert log["executor"] == who.address and log["fee"] == w.vault.execution_fee()


def _check_deposit(w, who, tx, before):
    after = ledgers(w, who)
    assert after[0] - before[0] == 100 * USDC and before[2] - after[2] == 100 * USDC


def _check_withdraw(w, who, tx, before):
    after = ledgers(w, who)
    assert before[0] - after[0] == 100 * USDC and after[2] - before[2] == 100 * USDC


def _check_trade(w, who, tx, before):
    size, _ = w.ch.position(who, ETH)
    had = WAD if who == w.trader else 0
    assert size == had + WAD // 10


def _check_liquidated(w, who, tx, before):
    [log] = tx.decode_logs(w.ch.Liquidated)
    assert (log.account, log.liquidator) == (w.victim.address, who.address)
    assert ledgers(w, who)[0] - before[0] == log.keeper_reward > 0
    assert not w.ch.is_liquidatable(w.victim)


def _check_add_liquidity(w, who, tx, before):
    [log] = tx.decode_logs(w.ch.LiquidityAdded)
    after = ledgers(w, who)
    assert log["provider"] == who.address  # log.provider is Ape's own attribute
    assert after[1] - before[1] == log.shares > 0
    assert before[2] - after[2] == 100 * USDC


def _check_remove_liquidity(w, who, tx, before):
    [log] = tx.decode_logs(w.ch.LiquidityRemoved)
    after = ledgers(w, who)
    assert log["provider"] == who.address
    assert before[1] - after[1] == log.shares > 0
    assert after[2] - before[2] == log.assets > 0


def _check_insurance(w, who, tx, before):
    after = ledgers(w, who)
    assert after[3] - before[3] == 100 * USDC and before[2] - after[2] == 100 * USDC


def _check_share_transfer(w, who, tx, before):
    assert before[1] - ledgers(w, who)[1] == 10**6
    # The recipient held no shares in the world (only the LP does): it now holds exactly these.
    assert w.system.vault.balanceOf(w.stranger if who != w.stranger else w.trader) == 10**6


def _check_approve(w, who, tx, before):
    assert w.system.vault.allowance(who, w.lp) == 123


def _half_shares(w, who) -> tuple:
    return (w.system.vault.balanceOf(who) // 2 or 1, 0)


def _check_attested(w, who, tx, before):
    [log] = tx.decode_logs(w.system.verifier.PriceAttested)
    assert log.feed_id == w.system.feed_ids[ETH]
    assert w.system.verifier.latest(w.system.feed_ids[ETH])[0] == log.price > 0


PYTH_ID = b"\x22" * 32


def _pyth_blob(w, who) -> tuple[bytes, Any]:
    """One Pyth update (the local Pyth's layout): ETH 1,850.00, published at the last block."""
    at = int(ape.chain.blocks.head.timestamp)
    item = encode(["bytes32", "int64", "uint64", "int32", "uint64"], [PYTH_ID, 185_000, 0, -2, at])
    return encode(["bytes[]"], [[item]]), who


def _check_pyth(w, who, tx, before):
    assert w.pyth_adapter.latest(PYTH_ID)[0] == 1_850 * WAD


def _check_signers(w, who, tx, before):
    assert w.system.verifier.threshold() == 2
    assert w.system.verifier.signers(1) == w.system.signer_set.addresses[1]


def _check_price_feed(w, who, tx, before):
    assert w.system.verifier.feeds(w.system.feed_ids[ETH]).max_age == 300


ROWS: dict[str, Row] = {
    # -- Configurator: owner, the price verifier's signer set and feeds --
    "set_price_signers": Row(
        "cfg",
        lambda w, who: (list(w.system.signer_set.addresses[:3]), 2),
        only("owner"),
        NOT_OWNER,
        check=_check_signers,
    ),
    "set_price_feed": Row(
        "cfg",
        lambda w, who: (w.system.feed_ids[ETH], w.system.push_feeds[ETH], HEARTBEAT, 300, 100, 500),
        only("owner"),
        NOT_OWNER,
        check=_check_price_feed,
    ),
    # -- Price verifier: administered by the configurator alone; anyone brings signed prices
    "set_signers": Row("verifier", lambda w, who: ([who], 1), only(), NOT_VERIFIER_ADMIN),
    "set_feed": Row(
        "verifier",
        lambda w, who: (w.system.feed_ids[ETH], ZERO_ADDRESS, 0, 60, 100, 100),
        only(),
        NOT_VERIFIER_ADMIN,
    ),
    "verifier.update_prices": Row(
        "verifier",
        lambda w, who: (signed_update(w.system, ETH), who),
        everyone(),
        "",
        check=_check_attested,
    ),
    # -- Pyth adapter: anyone brings Pyth updates (paying Pyth's fee, here none) --
    "pyth.update_prices": Row("pyth", _pyth_blob, everyone(), "", check=_check_pyth),
    # -- Clearinghouse: signed prices and the action that uses them, in one transaction --
    "update_prices": Row(
        "ch", lambda w, who: (signed_update(w.system, ETH),), everyone(), "", check=_check_attested
    ),
    "trade_with_prices": Row(
        "ch",
        lambda w, who: (signed_update(w.system, ETH), ETH, WAD // 10, MAX_UINT),
        everyone(),
        "",
        arrange=_give_collateral,
        check=_check_trade,
    ),
    "liquidate_with_prices": Row(
        "ch",
        lambda w, who: (signed_update(w.system, ETH), [w.victim]),
        everyone(),
        "",
        arrange=lambda w, who: crash(w),
        check=_check_liquidated,
    ),
    # -- Configurator: owner (administration moved off the engine, every cell kept) --
    "add_market": Row(
        "cfg",
        lambda w, who: (w.system.feeds[0], IM_BPS, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS, WAD, USDC),
        only("owner"),
        NOT_OWNER,
        check=_check_market_added,
    ),
    "set_market_risk": Row(
        "cfg",
        lambda w, who: (ETH, 2_000, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS),
        only("owner"),
        NOT_OWNER,
        check=_check_risk,
    ),
    "apply_market_risk": Row(
        "cfg",
        lambda w, who: (ETH,),
        everyone(),
        "",
        arrange=_risk_due,
        check=_check_risk_applied,
    ),
    "cancel_market_risk": Row(
        "cfg",
        lambda w, who: (ETH,),
        only("owner"),
        NOT_OWNER,
        arrange=_risk_queued,
        check=_check_risk_cancelled,
    ),
    "set_market_limits": Row(
        "cfg",
        lambda w, who: (ETH, 2_000_000 * WAD, 10 * USDC),
        only("owner"),
        NOT_OWNER,
        check=_check_limits,
    ),
    "set_market_funding": Row(
        "cfg",
        lambda w, who: (BTC, _btc_scale(w), 300),  # twice the BTC cap
        only("owner"),
        NOT_OWNER,
        check=_check_funding,
    ),
    "apply_market_funding": Row(
        "cfg",
        lambda w, who: (BTC,),
        everyone(),
        "",
        arrange=_funding_due,
        check=_check_funding_applied,
    ),
    "cancel_market_funding": Row(
        "cfg",
        lambda w, who: (BTC,),
        only("owner"),
        NOT_OWNER,
        arrange=_funding_queued,
        check=_check_funding_cancelled,
    ),
    "propose_settlement": Row(
        "cfg",
        lambda w, who: (BTC, w.settled),
        only("owner"),
        NOT_OWNER,
        arrange=_dead_btc,
        check=_check_proposed,
    ),
    "cancel_settlement": Row(
        "cfg",
        lambda w, who: (BTC,),
        only("owner"),
        NOT_OWNER,
        arrange=_proposed,
        check=_check_cancelled,
    ),  # fmt: skip
    "settle_market": Row(
        "cfg",
        lambda w, who: (BTC,),
        everyone(),
        "",
        arrange=_proposed_and_due,
        check=_check_settled,
    ),  # fmt: skip
    "set_market_feed": Row(
        "cfg",
        lambda w, who: (ETH, w.system.feeds[1]),
        only("owner"),
        NOT_OWNER,
        check=_check_feed,
    ),
    "set_liquidation_params": Row(
        "cfg",
        lambda w, who: (4_000, 8_000, 2 * USDC),
        only("owner"),
        NOT_OWNER,
        check=_check_liq_params,
    ),
    "set_keeper_reward": Row(
        "cfg",
        lambda w, who: KEEPER_REWARD,
        only("owner"),
        NOT_OWNER,
        check=_check_reward_queued,
    ),
    "apply_keeper_reward": Row(
        "cfg",
        lambda w, who: (),
        everyone(),
        "",
        arrange=_reward_due,
        check=_check_keeper_reward,
    ),
    "cancel_keeper_reward": Row(
        "cfg",
        lambda w, who: (),
        only("owner"),
        NOT_OWNER,
        arrange=_reward_queued,
        check=_check_reward_cancelled,
    ),
    "set_pool_reserve": Row(
        "cfg", lambda w, who: (2_500,), only("owner"), NOT_OWNER, check=_check_reserve
    ),
    "set_guardian": Row(
        "cfg", lambda w, who: (w.stranger,), only("owner"), NOT_OWNER, check=_check_guardian
    ),
    "unpause": Row(
        "cfg",
        lambda w, who: (),
        only("owner"),
        NOT_OWNER,
        arrange=lambda w, who: w.cfg.pause(sender=w.guardian),
        check=_check_unpaused,
    ),
    "transfer_ownership": Row(
        "cfg", lambda w, who: (w.trader,), only("owner"), NOT_OWNER, check=_check_transfer
    ),
    # -- Configurator: guardian or owner; pending owner --
    "pause": Row(
        "cfg", lambda w, who: (), only("owner", "guardian"), NOT_GUARDIAN, check=_check_paused
    ),
    "accept_ownership": Row(
        "cfg", lambda w, who: (), only("pending_owner"), NOT_PENDING, check=_check_accept
    ),
    "bind": Row(
        "cfg",
        lambda w, who: (w.ch, who, 5_000, 8_000, USDC, 1_000),
        only(),
        NOT_OWNER,
        denied_for=(("owner", ALREADY_BOUND),),  # one-shot: deploy_system bound it
    ),
    # -- Clearinghouse: the configurator's hooks; nobody else, not even its owner or guardian --
    "configure_market": Row("ch", lambda w, who: (ETH, 0, 0), only(), NOT_CONFIGURATOR),
    "configure_params": Row("ch", lambda w, who: (0, 0, who), only(), NOT_CONFIGURATOR),
    "configure_pause": Row("ch", lambda w, who: (True,), only(), NOT_CONFIGURATOR),
    "configure_funding": Row("ch", lambda w, who: (ETH, 1_000, 300), only(), NOT_CONFIGURATOR),
    "configure_keeper_gas": Row("ch", lambda w, who: (0,), only(), NOT_CONFIGURATOR),
    # -- Clearinghouse: permissionless, on the caller's own account --
    "deposit": Row("ch", lambda w, who: (100 * USDC,), everyone(), "", check=_check_deposit),
    "withdraw": Row(
        "ch",
        lambda w, who: (100 * USDC,),
        everyone(),
        "",
        arrange=_give_collateral,
        check=_check_withdraw,
    ),
    "trade": Row(
        "ch",
        lambda w, who: (ETH, WAD // 10, MAX_UINT),
        everyone(),
        "",
        arrange=_give_collateral,
        check=_check_trade,
    ),
    "liquidate": Row(
        "ch",
        lambda w, who: (w.victim,),
        everyone(),
        "",
        arrange=lambda w, who: crash(w),
        check=_check_liquidated,
    ),
    "liquidate_many": Row(
        "ch",
        lambda w, who: ([w.trader, w.victim, w.stranger],),
        everyone(),
        "",
        arrange=lambda w, who: crash(w),
        check=_check_liquidated,
    ),
    # -- Clearinghouse: the LP vault's pool hooks; nobody else --
    "pool_pull": Row("ch", lambda w, who: (who, 100 * USDC), only(), NOT_VAULT),
    "pool_add": Row("ch", lambda w, who: (who, 100 * USDC, 10**6), only(), NOT_VAULT),
    "pool_pay": Row("ch", lambda w, who: (who, 100 * USDC, 10**6), only(), NOT_VAULT),
    # -- LP vault: permissionless, on the caller's own shares (the engine moves the tokens) --
    "add_liquidity": Row(
        "vault",
        lambda w, who: (100 * USDC, 0),
        everyone(),
        "",
        arrange=lambda w, who: close_book(w),
        check=_check_add_liquidity,
    ),
    "remove_liquidity": Row(
        "vault",
        _half_shares,
        everyone(),
        "",
        arrange=_flat_with_shares,
        check=_check_remove_liquidity,
    ),
    "fund_insurance": Row(
        "ch", lambda w, who: (100 * USDC,), everyone(), "", check=_check_insurance
    ),
    # -- LP vault: two-step flows; anyone requests for themselves, anyone executes (for the
    # fee), only the owner cancels, after the timeout (the refusals: tests/test_lp_requests.py)
    "request_deposit": Row(
        "vault",
        lambda w, who: (100 * USDC, 0),
        everyone(),
        "",
        arrange=lambda w, who: w.token.approve(w.vault, 100 * USDC, sender=who),
        check=_check_requested,
    ),
    "request_withdrawal": Row(
        "vault",
        lambda w, who: (10**6, 0),
        everyone(),
        "",
        arrange=_give_shares,
        check=_check_requested,
    ),
    "execute_request": Row(
        "vault", _last_request, everyone(), "", arrange=_lp_request, check=_check_executed
    ),
    "cancel_request": Row(
        "vault",
        _last_request,
        everyone(),
        "",
        arrange=_timed_out_request,
        check=lambda w, who, tx, before: tx.decode_logs(w.vault.RequestCancelled),
    ),
    # -- Clearinghouse: anyone pays a claim into its owner's collateral (who calls gains
    # nothing); with no claim on the books every caller gets the same reason --
    "settle_claim": Row("ch", lambda w, who: (w.trader,), only(), "clearinghouse: no claim"),
    # -- LP vault: shares are minted and burnt only by its own add/remove; `bind` is one-shot
    # and renounced the deployer's ownership, so no one (its deployer included) can rebind --
    "vault.bind": Row("vault", lambda w, who: (w.ch,), only(), NOT_OWNER),
    # -- LP vault: holders move their own shares; nobody moves another's without allowance --
    "transfer": Row(
        "vault",
        lambda w, who: (w.stranger if who != w.stranger else w.trader, 10**6),
        everyone(),
        "",
        arrange=_give_shares,
        check=_check_share_transfer,
    ),
    "transferFrom": Row("vault", lambda w, who: (w.lp, who, 1), only(), NO_ALLOWANCE),
    "approve": Row("vault", lambda w, who: (w.lp, 123), everyone(), "", check=_check_approve),
}

CELLS = [(fn, role) for fn in ROWS for role in ROLES]


def function(key: str) -> str:
    """The function a row calls: its key, less a `contract.` prefix where two deployables share
    a name (both satellites have a one-shot `bind`)."""
    return key.rpartition(".")[2]


# ---- Tests ----


def test_matrix__covers_every_state_changing_function():
    manifest = json.loads((ROOT / ".build" / "__local__.json").read_text())
    deployables = {
        "ch": "Clearinghouse",
        "cfg": "Configurator",
        "vault": "LPVault",
        "feed": "PriceFeed",
        "verifier": "PriceVerifier",
        "signed_feed": "SignedPriceFeed",  # a view only: no row, and a new setter fails here
        "pyth": "PythAdapter",
    }
    for key, name in deployables.items():
        abi = contract_abi(manifest, name)  # the engine's: with its extension's functions
        mutating = {
            item["name"]
            for item in abi
            if item["type"] == "function" and item["stateMutability"] in ("nonpayable", "payable")
        }
        rows = {function(fn) for fn, row in ROWS.items() if row.contract == key}
        assert mutating == rows, f"{name}: rows missing {mutating - rows}, extra {rows - mutating}"


@pytest.mark.parametrize(("fn", "role"), CELLS, ids=[f"{fn}-{role}" for fn, role in CELLS])
def test_matrix__role_calls_function__expected_outcome(world, project, fn, role):
    row = ROWS[fn]
    caller = getattr(world, role)
    if row.contract == "pyth":  # the local Pyth (no fee) and its adapter, for this cell
        pyth = project.MockPyth.deploy(0, sender=world.owner)
        world.pyth_adapter = project.PythAdapter.deploy(pyth, 200, sender=world.owner)
    target = {
        "ch": world.ch,
        "cfg": world.cfg,
        "vault": world.vault,
        "verifier": world.system.verifier,
        "pyth": getattr(world, "pyth_adapter", None),
    }[row.contract]
    row.arrange(world, caller)
    args = row.args(world, caller)
    before = ledgers(world, caller)

    if role in row.allowed:
        tx = getattr(target, function(fn))(*args, sender=caller)
        row.check(world, caller, tx, before)
    else:
        with ape.reverts(dict(row.denied_for).get(role, row.denied)):
            getattr(target, function(fn))(*args, sender=caller)
        assert ledgers(world, caller) == before


def test_matrix__pending_owner_after_accepting__is_the_owner_in_every_owner_row(world):
    """The pending owner has no power until it accepts; then it holds every owner cell and the
    previous owner holds none (spot-checked on a setter that changes nothing else)."""
    world.cfg.accept_ownership(sender=world.pending_owner)
    world.cfg.set_pool_reserve(2_500, sender=world.pending_owner)
    assert world.ch.pool_reserve_bps() == 2_500
    with ape.reverts(NOT_OWNER):
        world.cfg.set_pool_reserve(1_000, sender=world.owner)
    with ape.reverts(NOT_GUARDIAN):
        world.cfg.pause(sender=world.owner)  # the old owner is now a stranger to pause too
    world.cfg.pause(sender=world.guardian)
    assert world.ch.paused()


def test_matrix__world__every_role_distinct_and_set_up(world):
    """Guard against a fixture change that silently merges two roles (which would hollow out
    half the matrix)."""
    addresses = {getattr(world, role).address for role in ROLES}
    assert len(addresses) == len(ROLES)
    assert world.cfg.owner() == world.owner.address
    assert world.cfg.pending_owner() == world.pending_owner.address
    assert world.ch.guardian() == world.guardian.address
    assert world.ch.position(world.trader, ETH)[0] == WAD
    assert world.ch.collateral(world.stranger) == 0
    assert world.ch.account_market_ids(world.stranger) == []
