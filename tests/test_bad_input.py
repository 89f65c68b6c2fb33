"""Bad-input matrix: each external function fed zero, one wei, max uint256, max int256, unknown
market ids, the caller itself (or the engine) as the counterparty, and duplicate, empty and
oversized lists to `liquidate_many`. Every cell expects either its exact revert string or a
named outcome (a no-op, or a one-wei effect), and after every accepted call the token held by
the engine still equals collateral + pool + insurance: nothing is lost.

The world (conftest.world) is the same for every cell: owner, guardian, a trader with a 1 ETH
long, a stranger with tokens only, a 500,000 USDC pool, and a victim that `crash` makes
liquidatable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ape
import pytest
from support.constants import (
    BTC,
    ETH,
    IM_BPS,
    LIQ_FEE_BPS,
    MAX_BATCH,
    MAX_MARKETS,
    MAX_SIZE,
    MAX_UINT,
    MM_BPS,
    TRADE_FEE_BPS,
    USDC,
    WAD,
    ZERO_ADDRESS,
)
from support.deployers import close_book, crash, engine_ledger_total

MAX_INT = 2**255 - 1
MIN_INT = -(2**255)
UNKNOWN_IDS = {
    "next-id": 2,
    "last-slot": MAX_MARKETS - 1,
    "past-slots": MAX_MARKETS,
    "max-uint": MAX_UINT,
}
RATES = (IM_BPS, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS)

ZERO = "clearinghouse: zero amount"
SHORTFALL = "erc20: transfer amount exceeds balance"  # the mock USDC's own revert


def conserved(w) -> None:
    """The engine's token balance equals every ledger it keeps (no account outside the world
    ever touches it)."""
    holders = (w.owner, w.pending_owner, w.guardian, w.trader, w.stranger, w.lp, w.victim)
    assert w.token.balanceOf(w.ch) == engine_ledger_total(w.ch, holders)


@dataclass(frozen=True)
class Case:
    call: Callable[[Any], Any]  # sends the transaction
    reverts: str | None  # exact revert string; None = accepted
    check: Callable[[Any, Any], None] = lambda w, tx: None
    arrange: Callable[[Any], None] = lambda w: None


def expect(ok: bool, what: str) -> None:
    assert ok, what


def liquidations(w, tx) -> list[Any]:
    return list(tx.decode_logs(w.ch.Liquidated))


def _one_liquidation(w, tx) -> None:
    [log] = liquidations(w, tx)
    assert log.account == w.victim.address
    assert not w.ch.is_liquidatable(w.victim)


def _no_liquidation(w, tx) -> None:
    assert liquidations(w, tx) == []
    assert w.ch.collateral(w.stranger) == 0  # the caller was credited nothing


def _self_liquidation(w, tx) -> None:
    """The victim liquidates itself: it pays the fee like anyone else, but earns no keeper
    reward (otherwise a self-liquidation could farm the minimum-reward top-up); the whole fee
    goes to insurance."""
    [log] = liquidations(w, tx)
    assert log.account == log.liquidator == w.victim.address
    assert log.keeper_reward == 0 and log.fee > 0
    assert log.insurance_delta == log.fee


def unknown_market_cases(
    name: str, call: Callable[[Any, int], Any], prefix: str = "clearinghouse"
) -> dict[str, Case]:
    """`call(world, market_id)` with every unknown id: each reverts "<prefix>: unknown market"
    (the engine's for trading, the configurator's for the owner setters)."""
    return {
        f"{name}-unknown-{label}": Case(lambda w, i=i: call(w, i), f"{prefix}: unknown market")
        for label, i in UNKNOWN_IDS.items()
    }


CASES: dict[str, Case] = {
    # -- deposit --
    "deposit-zero": Case(lambda w: w.ch.deposit(0, sender=w.stranger), ZERO),
    "deposit-one-wei": Case(
        lambda w: w.ch.deposit(1, sender=w.stranger),
        None,
        lambda w, tx: expect(w.ch.collateral(w.stranger) == 1, "1 wei not credited"),
    ),
    "deposit-max-int": Case(lambda w: w.ch.deposit(MAX_INT, sender=w.stranger), SHORTFALL),
    "deposit-max-uint": Case(lambda w: w.ch.deposit(MAX_UINT, sender=w.stranger), SHORTFALL),
    # -- withdraw --
    "withdraw-zero": Case(lambda w: w.ch.withdraw(0, sender=w.trader), ZERO),
    "withdraw-one-wei": Case(
        lambda w: w.ch.withdraw(1, sender=w.trader),
        None,
        lambda w, tx: expect(
            [e.amount for e in tx.decode_logs(w.ch.Withdrawn)] == [1], "1 wei not withdrawn"
        ),
    ),
    "withdraw-no-account": Case(
        lambda w: w.ch.withdraw(1, sender=w.stranger), "clearinghouse: insufficient collateral"
    ),
    "withdraw-max-int": Case(
        lambda w: w.ch.withdraw(MAX_INT, sender=w.trader), "clearinghouse: insufficient collateral"
    ),
    "withdraw-max-uint": Case(
        lambda w: w.ch.withdraw(MAX_UINT, sender=w.trader),
        "clearinghouse: insufficient collateral",
    ),
    "withdraw-all-with-position": Case(
        lambda w: w.ch.withdraw(w.ch.collateral(w.trader), sender=w.trader),
        "clearinghouse: insufficient margin",
    ),
    # -- trade: sizes --
    "trade-zero-size": Case(
        lambda w: w.ch.trade(ETH, 0, MAX_UINT, sender=w.trader), "clearinghouse: zero size"
    ),
    "trade-one-wei-buy": Case(
        lambda w: w.ch.trade(BTC, 1, MAX_UINT, sender=w.trader),
        "clearinghouse: position too small",
    ),
    "trade-one-wei-sell": Case(
        lambda w: w.ch.trade(BTC, -1, 0, sender=w.trader), "clearinghouse: position too small"
    ),
    "trade-max-int": Case(
        lambda w: w.ch.trade(ETH, MAX_INT, MAX_UINT, sender=w.trader),
        "clearinghouse: size overflow",
    ),
    "trade-min-int": Case(
        lambda w: w.ch.trade(ETH, MIN_INT, 0, sender=w.trader), "clearinghouse: size overflow"
    ),
    "trade-max-size": Case(
        lambda w: w.ch.trade(ETH, MAX_SIZE, MAX_UINT, sender=w.stranger),
        "clearinghouse: open interest cap",
    ),
    "trade-max-size-on-top-of-position": Case(
        lambda w: w.ch.trade(ETH, MAX_SIZE, MAX_UINT, sender=w.trader),
        "clearinghouse: size overflow",
    ),
    "trade-no-collateral": Case(
        lambda w: w.ch.trade(ETH, WAD, MAX_UINT, sender=w.stranger),
        "clearinghouse: insufficient margin",
    ),
    # -- trade: prices --
    "trade-buy-limit-zero": Case(
        lambda w: w.ch.trade(ETH, WAD, 0, sender=w.trader), "clearinghouse: slippage"
    ),
    "trade-sell-limit-max-uint": Case(
        lambda w: w.ch.trade(ETH, -WAD // 2, MAX_UINT, sender=w.trader), "clearinghouse: slippage"
    ),
    # -- trade: markets --
    **unknown_market_cases("trade", lambda w, i: w.ch.trade(i, WAD, MAX_UINT, sender=w.trader)),
    # -- liquidate: the account argument --
    "liquidate-zero-address": Case(
        lambda w: w.ch.liquidate(ZERO_ADDRESS, sender=w.stranger), "clearinghouse: account healthy"
    ),
    "liquidate-engine-itself": Case(
        lambda w: w.ch.liquidate(w.ch, sender=w.stranger), "clearinghouse: account healthy"
    ),
    "liquidate-self-healthy": Case(
        lambda w: w.ch.liquidate(w.trader, sender=w.trader), "clearinghouse: account healthy"
    ),
    "liquidate-self-liquidatable": Case(
        lambda w: w.ch.liquidate(w.victim, sender=w.victim), None, _self_liquidation, crash
    ),
    # -- liquidate_many: lists --
    "liquidate-many-empty": Case(
        lambda w: w.ch.liquidate_many([], sender=w.stranger), None, _no_liquidation
    ),
    "liquidate-many-only-healthy": Case(
        lambda w: w.ch.liquidate_many(
            [w.trader, w.stranger, ZERO_ADDRESS, w.ch], sender=w.stranger
        ),
        None,
        _no_liquidation,
        crash,
    ),
    "liquidate-many-duplicate": Case(
        lambda w: w.ch.liquidate_many([w.victim, w.victim], sender=w.stranger),
        None,
        _one_liquidation,
        crash,
    ),
    "liquidate-many-64-copies": Case(
        lambda w: w.ch.liquidate_many([w.victim] * MAX_BATCH, sender=w.stranger),
        None,
        _one_liquidation,
        crash,
    ),
    "liquidate-many-self": Case(
        lambda w: w.ch.liquidate_many([w.victim], sender=w.victim), None, _self_liquidation, crash
    ),
    # -- the counterparty pool --
    "add-liquidity-zero": Case(
        lambda w: w.vault.add_liquidity(0, 0, sender=w.stranger),
        "vault: zero amount",
        arrange=close_book,
    ),
    "add-liquidity-one-wei": Case(
        lambda w: w.vault.add_liquidity(1, 0, sender=w.stranger),
        None,
        lambda w, tx: expect(w.system.vault.balanceOf(w.stranger) > 0, "no shares"),
        arrange=close_book,
    ),
    "add-liquidity-max-uint": Case(
        lambda w: w.vault.add_liquidity(MAX_UINT, 0, sender=w.stranger),
        SHORTFALL,
        arrange=close_book,
    ),
    "add-liquidity-min-shares-max-uint": Case(
        lambda w: w.vault.add_liquidity(USDC, MAX_UINT, sender=w.stranger),
        "vault: slippage",
        arrange=close_book,
    ),
    "remove-liquidity-zero": Case(
        lambda w: w.vault.remove_liquidity(0, 0, sender=w.lp),
        "vault: zero amount",
        arrange=close_book,
    ),
    "remove-liquidity-one-share": Case(
        lambda w: w.vault.remove_liquidity(1, 0, sender=w.lp),
        "vault: zero assets",
        arrange=close_book,
    ),
    "remove-liquidity-not-held": Case(
        lambda w: w.vault.remove_liquidity(10**12, 0, sender=w.stranger),
        "erc20: burn amount exceeds balance",
        arrange=close_book,
    ),
    "remove-liquidity-max-uint": Case(
        lambda w: w.vault.remove_liquidity(MAX_UINT, 0, sender=w.lp),
        "vault: insufficient shares",
        arrange=close_book,
    ),
    "remove-liquidity-min-assets-max-uint": Case(
        lambda w: w.vault.remove_liquidity(10**12, MAX_UINT, sender=w.lp),
        "vault: slippage",
        arrange=close_book,
    ),
    "add-liquidity-open-interest": Case(
        lambda w: w.vault.add_liquidity(USDC, 0, sender=w.stranger), "vault: pool exposed"
    ),
    "remove-liquidity-open-interest": Case(
        lambda w: w.vault.remove_liquidity(10**12, 0, sender=w.lp), "vault: pool exposed"
    ),
    "fund-insurance-zero": Case(
        lambda w: w.ch.fund_insurance(0, sender=w.stranger), "clearinghouse: zero amount"
    ),
    "fund-insurance-one-wei": Case(
        lambda w: w.ch.fund_insurance(1, sender=w.stranger),
        None,
        lambda w, tx: expect(w.ch.insurance_fund() == 1, "1 wei not credited"),
    ),
    "fund-insurance-max-uint": Case(
        lambda w: w.ch.fund_insurance(MAX_UINT, sender=w.stranger), SHORTFALL
    ),
    # -- owner setters: unknown markets and out-of-range values --
    **unknown_market_cases(
        "set-market-risk",
        lambda w, i: w.cfg.set_market_risk(i, *RATES, sender=w.owner),
        "configurator",
    ),
    **unknown_market_cases(
        "set-market-limits",
        lambda w, i: w.cfg.set_market_limits(i, WAD, USDC, sender=w.owner),
        "configurator",
    ),
    **unknown_market_cases(
        "set-market-feed",
        lambda w, i: w.cfg.set_market_feed(i, w.system.feeds[0], sender=w.owner),
        "configurator",
    ),
    "set-market-risk-max-uint": Case(
        lambda w: w.cfg.set_market_risk(
            ETH, MAX_UINT, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS, sender=w.owner
        ),
        "configurator: bad margin rates",
    ),
    "set-market-risk-zero": Case(
        lambda w: w.cfg.set_market_risk(ETH, 0, 0, 0, 0, sender=w.owner),
        "configurator: bad margin rates",
    ),
    "set-market-limits-max-uint-cap": Case(
        lambda w: w.cfg.set_market_limits(ETH, MAX_UINT, USDC, sender=w.owner),
        "configurator: bad open interest cap",
    ),
    "set-market-limits-max-uint-min-notional": Case(
        lambda w: w.cfg.set_market_limits(ETH, WAD, MAX_UINT, sender=w.owner),
        "configurator: bad minimum notional",
    ),
    "set-market-limits-zero": Case(
        lambda w: w.cfg.set_market_limits(ETH, 0, 0, sender=w.owner),
        "configurator: bad open interest cap",
    ),
    "set-liquidation-params-max-uint-share": Case(
        lambda w: w.cfg.set_liquidation_params(MAX_UINT, 8_000, USDC, sender=w.owner),
        "configurator: bad keeper share",
    ),
    "set-liquidation-params-max-uint-partial": Case(
        lambda w: w.cfg.set_liquidation_params(5_000, MAX_UINT, USDC, sender=w.owner),
        "configurator: bad partial bound",
    ),
    "set-liquidation-params-max-uint-reward": Case(
        lambda w: w.cfg.set_liquidation_params(5_000, 8_000, MAX_UINT, sender=w.owner),
        "configurator: minimum reward too high",
    ),
    "set-pool-reserve-max-uint": Case(
        lambda w: w.cfg.set_pool_reserve(MAX_UINT, sender=w.owner), "configurator: bad pool reserve"
    ),
    # -- owner setters: feeds that are not price feeds --
    "add-market-zero-feed": Case(
        lambda w: w.cfg.add_market(
            ZERO_ADDRESS, IM_BPS, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS, WAD, USDC, sender=w.owner
        ),
        "configurator: zero feed",
    ),
    "add-market-feed-is-an-account": Case(
        lambda w: w.cfg.add_market(
            w.stranger, IM_BPS, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS, WAD, USDC, sender=w.owner
        ),
        "configurator: feed is not a contract",
    ),
    "set-market-feed-is-an-account": Case(
        lambda w: w.cfg.set_market_feed(ETH, w.stranger, sender=w.owner),
        "configurator: feed is not a contract",
    ),
    # -- owner setters: zero and self as the counterparty --
    "set-guardian-zero": Case(
        lambda w: w.cfg.set_guardian(ZERO_ADDRESS, sender=w.owner),
        None,
        lambda w, tx: expect(w.ch.guardian() == ZERO_ADDRESS, "guardian not cleared"),
    ),
    "transfer-ownership-zero-cancels": Case(
        lambda w: w.cfg.transfer_ownership(ZERO_ADDRESS, sender=w.owner),
        None,
        lambda w, tx: expect(w.cfg.pending_owner() == ZERO_ADDRESS, "offer not cancelled"),
    ),
    "transfer-ownership-to-self": Case(
        lambda w: w.cfg.transfer_ownership(w.owner, sender=w.owner),
        None,
        lambda w, tx: expect(w.cfg.pending_owner() == w.owner.address, "not pending"),
    ),
    # -- LP shares --
    "lp-transfer-to-zero": Case(
        lambda w: w.system.vault.transfer(ZERO_ADDRESS, 1, sender=w.lp),
        "erc20: transfer to the zero address",
    ),
    "lp-transfer-max-uint": Case(
        lambda w: w.system.vault.transfer(w.stranger, MAX_UINT, sender=w.lp),
        "erc20: transfer amount exceeds balance",
    ),
    "lp-transfer-to-self": Case(
        lambda w: w.system.vault.transfer(w.lp, 10**6, sender=w.lp),
        None,
        lambda w, tx: expect(
            [e.value for e in tx.decode_logs(w.system.vault.Transfer)] == [10**6]
            and w.system.vault.balanceOf(w.lp) == w.system.vault.totalSupply(),
            "self-transfer changed the balance",
        ),
    ),
}


@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input__cell__expected_revert_or_outcome(world, case_id):
    case = CASES[case_id]
    case.arrange(world)
    if case.reverts is None:
        tx = case.call(world)
        case.check(world, tx)
    else:
        with ape.reverts(case.reverts):
            case.call(world)
    conserved(world)


def test_bad_input__65_accounts_to_liquidate_many__rejected_by_the_abi_bound(world):
    """The list is `DynArray[address, 64]`: one more is rejected by the ABI decoder before any
    code runs, so the revert carries no string (the compiler's, not ours)."""
    crash(world)
    with ape.reverts():
        world.ch.liquidate_many([world.victim] * (MAX_BATCH + 1), sender=world.stranger)
    assert world.ch.is_liquidatable(world.victim)


def test_bad_input__feed_is_a_contract_without_latest_price__listing_reverts(world):
    """A contract that is not a price feed (here the collateral token) has no `latest_price`;
    the call reverts inside the compiler's ABI handling, so the revert carries no string. The
    market is not listed and nothing else changes."""
    with ape.reverts():
        world.cfg.add_market(world.token, *RATES, WAD, USDC, sender=world.owner)
    with ape.reverts():
        world.cfg.set_market_feed(ETH, world.token, sender=world.owner)
    assert world.ch.market_count() == 2
    assert world.ch.market(ETH).feed == world.system.feeds[ETH].address
