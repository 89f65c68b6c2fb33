"""Liquidation (SPEC section 3): partial and full closes, keeper reward, bad debt, batches.

Every outcome is checked against `margin_maintenance.model`, the one Python mirror of the
engine (checked bit for bit against the contracts in tests/test_model_parity.py; the worked
examples below check it against numbers derived by hand), and every test that touches the chain
ends by checking conservation: the engine's token balance equals the sum of all collateral,
pool assets and insurance fund.

Prices move only through the mock aggregators (`set_price`), time only through
`chain.pending_timestamp`. No test here is expected to fail: defects found along the way are
fixed, and their regression tests are ordinary tests (see README, "Reliability tests").
"""

from __future__ import annotations

import sys

import ape
import pytest
from ape import chain
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from support.constants import (
    BPS,
    BTC,
    ETH,
    HEARTBEAT,
    IM_BPS,
    KEEPER_SHARE_BPS,
    LIQ_FEE_BPS,
    MAX_PARTIAL_BPS,
    MAX_UINT,
    MIN_KEEPER_REWARD_USD,
    MIN_NOTIONAL_USD,
    MM_BPS,
    STALE_WINDOW,
    TOKEN_SCALE,
    TRADE_FEE_BPS,
    USDC,
    VIRTUAL_ASSETS,
    VIRTUAL_SHARES,
    WAD,
)
from support.deployers import assert_backed, engine_ledger_total
from support.trading import notional_down, notional_up, pnl
from support.trading import units as usd

from margin_maintenance import model
from margin_maintenance.model import bps_up, ceil_div, closes_at, liquidation_fraction

# --------------------------------------------------------------------------------------------
# The engine's rules from margin_maintenance.model, with the deployed parameters
# (token units are USDC micro-units, 1e6 = 1 USDC)
# --------------------------------------------------------------------------------------------

MIN_NOTIONAL = MIN_NOTIONAL_USD * USDC  # smallest position notional (rounded down)
MIN_KEEPER_REWARD = MIN_KEEPER_REWARD_USD * USDC  # topped up from the insurance fund
HALF_BOUND_BPS = 5_000  # the first shipped bound: below the least fraction a liquidation needs
MIN_REACHABLE_BOUND_BPS = 5_556  # least bound with 5,556 * (im - fee) > (im - mm) * BPS


RATES = model.MarketRates(IM_BPS, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS, MIN_NOTIONAL)


def Leg(market_id: int, size: int, entry: int, price: int) -> model.Leg:  # noqa: N802
    """A position in one of the deployed markets (every market has the same rates)."""
    return model.Leg(market_id, size, entry, price, RATES)


def params(max_partial_bps: int = MAX_PARTIAL_BPS) -> model.LiquidationParams:
    """The deployed parameters (gas pricing off: the reserve is the minimum reward)."""
    # Read at call time: a test may monkeypatch MIN_KEEPER_REWARD after setting it on chain.
    return model.LiquidationParams(KEEPER_SHARE_BPS, max_partial_bps, MIN_KEEPER_REWARD)


def margin(collateral: int, legs: list[model.Leg]) -> model.Margin:
    return model.margin(collateral, legs, TOKEN_SCALE, params().reserve_for(TOKEN_SCALE))


def figures(m: model.Margin) -> tuple[int, int, int, int]:
    """(equity, initial, maintenance, liquidation fee on the full notional)."""
    return m.equity, m.initial, m.maintenance, m.liq_fee


def planned_fraction(m: model.Margin, realisable: int | None = None) -> int:
    return model.planned_fraction(m, realisable)


def partial_reachable(
    max_partial_bps: int, im_bps: int = IM_BPS, mm_bps: int = MM_BPS, fee_bps: int = LIQ_FEE_BPS
) -> bool:
    return model.partial_reachable(max_partial_bps, im_bps, mm_bps, fee_bps)


def after_closes(
    collateral: int, legs: list[model.Leg], closes: list[int]
) -> tuple[int, list[model.Leg]]:
    """(equity after closing `closes` and paying the full fee, the legs that remain): the
    minimality check's yardstick."""
    fee = sum(
        bps_up(notional_up(c, leg.price), LIQ_FEE_BPS) for c, leg in zip(closes, legs, strict=True)
    )
    return margin(collateral, legs).equity - fee, model.remaining_legs(legs, closes)


def liquidate_model(
    collateral: int,
    legs: list[model.Leg],
    insurance: int,
    pool: int,
    *,
    self_liquidation: bool = False,
    max_partial_bps: int = MAX_PARTIAL_BPS,
    other_debt: int = 0,
) -> model.Outcome:
    """What a liquidation should do (`model.liquidate` with the deployed parameters)."""
    return model.liquidate(
        collateral,
        legs,
        insurance,
        pool,
        params(max_partial_bps),
        TOKEN_SCALE,
        self_liquidation=self_liquidation,
        other_debt=other_debt,
    )


# --------------------------------------------------------------------------------------------
# Worked examples: the model against numbers derived by hand
# --------------------------------------------------------------------------------------------


def test_model__one_market_full__matches_hand_computation():
    # 1,000 USDC, 4 ETH long at 2,000 (trading fee 4), ETH to 1,800: E = 996 - 800 = 196,
    # N = 7,200, IMR = 720, MMR = 360 (each + the 1 USDC reserve), FEE = 72;
    # f = 526 / 648 = 0.81 > 0.8: full.
    legs = [Leg(ETH, 4 * WAD, 2_000 * WAD, 1_800 * WAD)]
    assert figures(margin(usd(996), legs)) == (usd(196), usd(721), usd(361), usd(72))
    o = liquidate_model(usd(996), legs, insurance=0, pool=usd(1_000_000))
    assert o.fraction == WAD and o.full
    assert o.closed_notional == usd(7_200)
    assert (o.fee, o.fee_paid, o.reward) == (usd(72), usd(72), usd(36))
    assert (o.collateral, o.insurance, o.bad_debt) == (usd(124), usd(36), 0)
    assert o.pool == usd(1_000_800)
    assert o.remaining == ()


def test_model__one_market_partial__matches_hand_computation():
    # Same position, ETH to 1,820, partial bound 0.8: E = 276, IMR = 728 + the 1 USDC keeper
    # reward reserve, FEE = 72.8. Planned on E less 2 units of slack for the one leg and twice
    # the reserve, against the notional IMR: f = 454.000002 / 655.2 = 0.692918195970695971
    # (rounded up), close 4 f = 2.771672783882783884, closed notional 5,044.444467 (rounded
    # up), fee 50.444445 (its keeper half 25.222222 is above the 1 USDC minimum: no more is
    # owed), E' = 225.555555; remainder 1.228327216117216116 ETH, IMR' = 223.555554 + 1.
    legs = [Leg(ETH, 4 * WAD, 2_000 * WAD, 1_820 * WAD)]
    m = margin(usd(996), legs)
    assert figures(m) == (usd(276), usd(729), usd(365), usd(72.8))
    assert m.reserve == usd(1)
    o = liquidate_model(usd(996), legs, 0, usd(1_000_000), max_partial_bps=MAX_PARTIAL_BPS)
    assert (o.fraction, o.full) == (692_918_195_970_695_971, False)
    assert o.closes == (2_771_672_783_882_783_884,)
    assert (o.closed_notional, o.fee, o.fee_paid) == (5_044_444_467, 50_444_445, 50_444_445)
    assert (o.reward, o.from_pool) == (25_222_222, 0)
    assert o.collateral == 225_555_555
    assert o.remaining == (Leg(ETH, 1_228_327_216_117_216_116, 1_820 * WAD, 1_820 * WAD),)
    after = margin(o.collateral, list(o.remaining))
    assert (after.equity, after.initial) == (225_555_555, 224_555_554)  # at or above IMR


def test_model__two_markets_partial__matches_hand_computation():
    # 5,000 USDC; 4 ETH long and 0.5 BTC short (fees 4 + 15); ETH to 1,900 (-400), BTC to
    # 65,500 (-2,750): E = 1,831, N = 7,600 + 32,750, IMR = 4,035 + the 1 USDC reserve,
    # FEE = 403.5; with 4 units of slack (two legs) and twice the reserve,
    # f = 2,206.000004 / 3,631.5 = 0.607462482169902245; fee 245.111112 on 24,511.111157 closed.
    legs = [
        Leg(ETH, 4 * WAD, 2_000 * WAD, 1_900 * WAD),
        Leg(BTC, -WAD // 2, 60_000 * WAD, 65_500 * WAD),
    ]
    assert figures(margin(usd(4_981), legs)) == (
        usd(1_831),
        usd(4_036),
        usd(2_018.5),
        usd(403.5),
    )
    o = liquidate_model(usd(4_981), legs, 0, usd(1_000_000), max_partial_bps=MAX_PARTIAL_BPS)
    assert (o.fraction, o.full) == (607_462_482_169_902_245, False)
    assert o.closes == (2_429_849_928_679_608_980, 303_731_241_084_951_123)
    assert (o.closed_notional, o.fee) == (24_511_111_157, 245_111_112)
    assert o.collateral == 1_585_888_888
    after = margin(o.collateral, list(o.remaining))
    assert (after.equity, after.initial) == (1_585_888_888, 1_584_888_885)  # at or above IMR


def test_model__two_markets_bad_debt__insurance_then_pool():
    # 1,200 USDC; 4 ETH long, 0.05 BTC long (fees 4 + 1.5); ETH to 1,650 (-1,400), BTC to
    # 50,000 (-500): E = 1,194.5 - 1,900 = -705.5 < 0: full, no fee paid; the 1 USDC minimum
    # reward comes from insurance (50), which then covers 49; the pool covers 656.5.
    legs = [
        Leg(ETH, 4 * WAD, 2_000 * WAD, 1_650 * WAD),
        Leg(BTC, WAD // 20, 60_000 * WAD, 50_000 * WAD),
    ]
    o = liquidate_model(usd(1_194.5), legs, usd(50), usd(1_000))
    assert o.full and o.fee_paid == 0 and o.reward == usd(1)
    assert (o.bad_debt, o.insurance_covered, o.socialised) == (usd(705.5), usd(49), usd(656.5))
    assert (o.uncovered, o.collateral, o.insurance) == (0, 0, 0)
    assert o.pool == usd(1_000 + 1_900 - 656.5)


def test_model__half_partial_bound__every_liquidation_full():
    # With im 10%, mm 5%, fee 1%, the least a liquidatable account needs closed is
    # (im - mm) / (im - fee) = 5/9 > 0.5: a bound of 0.5 turns every liquidation full.
    legs = [Leg(ETH, 4 * WAD, 2_000 * WAD, 1_843 * WAD)]
    m = margin(usd(996), legs)
    assert m.equity == m.maintenance - m.reserve - usd(0.6)  # just below maintenance
    fraction = liquidation_fraction(m.equity, m.initial - m.reserve, m.liq_fee)
    assert HALF_BOUND_BPS * WAD // BPS < fraction <= MAX_PARTIAL_BPS * WAD // BPS
    assert (IM_BPS - MM_BPS) * BPS > HALF_BOUND_BPS * (IM_BPS - LIQ_FEE_BPS)
    assert (IM_BPS - MM_BPS) * BPS < MAX_PARTIAL_BPS * (IM_BPS - LIQ_FEE_BPS)
    # The setters now refuse such a bound; 5,556 bps is the least they accept.
    assert not partial_reachable(HALF_BOUND_BPS)
    assert not partial_reachable(MIN_REACHABLE_BOUND_BPS - 1)
    assert partial_reachable(MIN_REACHABLE_BOUND_BPS) and partial_reachable(MAX_PARTIAL_BPS)


# --------------------------------------------------------------------------------------------
# Fixtures and chain helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture
def trader3(accounts):
    return accounts[7]


@pytest.fixture
def trader4(accounts):
    return accounts[8]


@pytest.fixture
def conserved(ch, token, accounts):
    """Call at the end of a test: the engine's balance equals its ledgers; debt is tracked."""

    def _check():
        everyone = list(accounts)
        assert token.balanceOf(ch) == engine_ledger_total(ch, everyone)
        assert ch.total_debt() == sum(max(0, -ch.collateral(a)) for a in everyone)
        assert_backed(ch, token, everyone)

    return _check


@pytest.fixture
def partial_bound(ch, deployer, configurator):
    """Pin the deployed partial bound, so these tests do not move with the default."""
    configurator.set_liquidation_params(
        KEEPER_SHARE_BPS, MAX_PARTIAL_BPS, MIN_KEEPER_REWARD, sender=deployer
    )
    return MAX_PARTIAL_BPS


@pytest.fixture
def fund_insurance(fund, ch, deployer):
    def _fund(usd_amount: float):
        amount = fund(deployer, usd_amount)
        ch.fund_insurance(amount, sender=deployer)
        return amount

    return _fund


def legs_of(ch, system, account) -> list[Leg]:
    """The account's positions, marked at the oracle, in the engine's order."""
    legs = []
    for market_id in ch.account_market_ids(account):
        size, entry = ch.position(account, market_id)
        price = system.feeds[market_id].latest_price()
        legs.append(Leg(int(market_id), int(size), int(entry), int(price)))
    return legs


def model_now(ch, system, account, **kwargs) -> model.Outcome:
    collateral = ch.collateral(account)
    return liquidate_model(
        collateral,
        legs_of(ch, system, account),
        ch.insurance_fund(),
        ch.pool_assets(),
        other_debt=ch.total_debt() - max(-collateral, 0),  # the debt no profit is paid from
        **kwargs,
    )


def traced_return_value(tx):
    """The receipt's return value where the provider traces it (anvil), else None. On the
    in-process chain Ape re-runs the call against the state *after* the transaction, which
    gives wrong answers for state-changing functions (0 for a batch, a revert for liquidate)."""
    if chain.provider.name == "test":
        return None
    assert tx.return_value is not None, "a tracing provider must report the return value"
    return tx.return_value


def send_liquidate(ch, account, keeper):
    """Liquidate; returns (receipt, reward). The reward is the function's return value: the
    same call simulated just before, and checked against the traced value where there is one."""
    simulated = ch.liquidate.call(account, sender=keeper)
    tx = ch.liquidate(account, sender=keeper)
    traced = traced_return_value(tx)
    if traced is not None:
        assert traced == simulated
    return tx, int(simulated)


def one_log(tx, event):
    logs = tx.decode_logs(event)
    assert len(logs) == 1, f"expected one {event.name}, got {len(logs)}"
    return logs[0]


def assert_matches_model(ch, tx, account, keeper, o: model.Outcome):
    """The receipt and the state after it agree with the model's outcome."""
    log = one_log(tx, ch.Liquidated)
    assert log.account == account and log.liquidator == keeper
    assert (log.fraction, log.full) == (o.fraction, o.full)
    assert (log.closed_notional, log.fee, log.keeper_reward) == (
        o.closed_notional,
        o.fee_paid,
        o.reward,
    )
    assert log.insurance_delta == o.fee_paid + o.from_pool - o.reward
    priced = tx.decode_logs(ch.KeeperRewardPriced)
    if o.from_pool:  # gas pricing is off here: the event only when the pool paid
        (p,) = priced
        assert (p.account, p.from_pool) == (account, o.from_pool)
    else:
        assert priced == []
    assert ch.collateral(account) == o.collateral
    assert ch.insurance_fund() == o.insurance
    assert ch.pool_assets() == o.pool
    remaining = {leg.market_id: leg.size for leg in o.remaining}
    assert sorted(ch.account_market_ids(account)) == sorted(remaining)
    for leg in o.remaining:
        assert ch.position(account, leg.market_id) == (leg.size, leg.price)
    bad_logs = tx.decode_logs(ch.BadDebtSettled)
    if o.bad_debt:
        (bad,) = bad_logs
        assert (bad.bad_debt, bad.insurance_covered, bad.socialised, bad.uncovered) == (
            o.bad_debt,
            o.insurance_covered,
            o.socialised,
            o.uncovered,
        )
    else:
        assert bad_logs == []


def open_eth_long(deposit, open_position, who, deposit_usd: float, size: float):
    deposit(who, deposit_usd)
    open_position(who, ETH, size)


# --------------------------------------------------------------------------------------------
# The model's parameters are the deployed ones
# --------------------------------------------------------------------------------------------


def test_deploy__default_system__rates_match_model(ch, conserved):
    for market_id in (ETH, BTC):
        info = ch.market(market_id)
        assert info.initial_margin_bps == IM_BPS
        assert info.maintenance_margin_bps == MM_BPS
        assert info.liquidation_fee_bps == LIQ_FEE_BPS
        assert info.trading_fee_bps == TRADE_FEE_BPS
        assert info.min_position_notional == MIN_NOTIONAL
    assert ch.liquidation_params() == (KEEPER_SHARE_BPS, MAX_PARTIAL_BPS, MIN_KEEPER_REWARD)
    assert ch.token_scale() == TOKEN_SCALE
    conserved()


# --------------------------------------------------------------------------------------------
# Reverts: healthy accounts, bad prices
# --------------------------------------------------------------------------------------------


def test_liquidate__healthy_account__reverts(
    ch, deposit, seeded_pool, open_position, set_price, trader, liquidator, conserved
):
    open_eth_long(deposit, open_position, trader, 1_000, 4)
    set_price(ETH, 1_850)  # E = 396 >= MMR = 370
    assert not ch.is_liquidatable(trader)
    with ape.reverts("clearinghouse: account healthy"):
        ch.liquidate(trader, sender=liquidator)
    assert ch.position(trader, ETH)[0] == 4 * WAD
    conserved()


@pytest.mark.parametrize("who", ["never_seen", "collateral_only", "liquidated_before"])
def test_liquidate__account_without_positions__reverts(
    ch, deposit, seeded_pool, open_position, set_price, trader, stranger, liquidator, who, conserved
):
    account = stranger
    if who == "collateral_only":
        deposit(stranger, 500)
    elif who == "liquidated_before":
        open_eth_long(deposit, open_position, trader, 1_000, 4)
        set_price(ETH, 1_800)
        ch.liquidate(trader, sender=liquidator)
        account = trader
    assert ch.account_market_ids(account) == []
    assert not ch.is_liquidatable(account)
    with ape.reverts("clearinghouse: account healthy"):
        ch.liquidate(account, sender=liquidator)
    conserved()


@pytest.mark.integration
def test_liquidate__stale_price__reverts(
    chain, ch, deposit, seeded_pool, open_position, set_price, trader, liquidator, conserved
):
    open_eth_long(deposit, open_position, trader, 1_000, 4)
    set_price(ETH, 1_800)
    assert ch.is_liquidatable(trader)
    # Past the heartbeat and the stale window: no price, not even a conservative mark.
    chain.pending_timestamp = chain.pending_timestamp + HEARTBEAT + STALE_WINDOW + 1
    chain.mine()
    with ape.reverts("oracle: stale price"):
        ch.liquidate(trader, sender=liquidator)
    tx = ch.liquidate_many([trader], sender=liquidator)  # a batch skips it instead
    assert [log.account for log in tx.decode_logs(ch.LiquidationSkipped)] == [trader.address]
    set_price(ETH, 1_800)  # a fresh answer: liquidation goes through again
    ch.liquidate(trader, sender=liquidator)
    assert ch.account_market_ids(trader) == []
    conserved()


@pytest.mark.parametrize("price_usd", [0, -1], ids=["zero", "negative"])
def test_liquidate__non_positive_price__reverts(
    ch, deposit, seeded_pool, open_position, set_price, trader, liquidator, price_usd, conserved
):
    deposit(trader, 2_000)
    open_position(trader, BTC, 0.1)
    open_position(trader, ETH, 4)
    set_price(ETH, 1_600)
    assert ch.is_liquidatable(trader)
    set_price(BTC, price_usd)  # the other market's feed breaks: nothing may be closed
    with ape.reverts("oracle: non-positive price"):
        ch.liquidate(trader, sender=liquidator)
    with ape.reverts("oracle: non-positive price"):
        ch.liquidation_preview(trader)
    assert ch.position(trader, ETH)[0] == 4 * WAD
    conserved()


# --------------------------------------------------------------------------------------------
# Partial and full closes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("eth_usd", "btc_usd"),
    [(1_843, None), (1_820, None), (1_805, None), (1_900, 65_500), (1_880, 66_000)],
    ids=["eth_1843_mildest", "eth_1820", "eth_1805", "two_markets_a", "two_markets_b"],
)
def test_liquidate__partial_fraction_within_bound__closes_model_fraction_restores_health(
    ch,
    system,
    deposit,
    seeded_pool,
    open_position,
    set_price,
    partial_bound,
    trader,
    liquidator,
    eth_usd,
    btc_usd,
    conserved,
):
    if btc_usd is None:
        open_eth_long(deposit, open_position, trader, 1_000, 4)
    else:  # a hedged book: 4 ETH long and 0.5 BTC short on 5,000 USDC
        open_eth_long(deposit, open_position, trader, 5_000, 4)
        open_position(trader, BTC, -0.5)
        set_price(BTC, btc_usd)
    set_price(ETH, eth_usd)
    o = model_now(ch, system, trader, max_partial_bps=partial_bound)
    assert not o.full and 0 < o.fraction <= partial_bound * WAD // BPS

    tx, reward = send_liquidate(ch, trader, liquidator)

    assert_matches_model(ch, tx, trader, liquidator, o)
    assert reward == o.reward
    assert ch.account_market_ids(trader) != []  # partial: something is left open
    after = ch.margin_status([trader])[0]
    assert not after.liquidatable and after.equity >= after.maintenance
    # The slack in the fraction covers the per-leg rounding: the remainder's equity is at or
    # above its initial requirement.
    assert after.equity >= after.initial
    conserved()


@pytest.mark.parametrize("eth_usd", [1_805, 1_820, 1_840])
def test_liquidate__partial__closes_smallest_sufficient_fraction(
    ch,
    system,
    deposit,
    seeded_pool,
    open_position,
    set_price,
    partial_bound,
    trader,
    liquidator,
    eth_usd,
    conserved,
):
    open_eth_long(deposit, open_position, trader, 1_000, 4)
    set_price(ETH, eth_usd)
    collateral = ch.collateral(trader)
    legs = legs_of(ch, system, trader)
    preview_fraction = ch.liquidation_preview(trader)[0]

    tx = ch.liquidate(trader, sender=liquidator)
    fraction = one_log(tx, ch.Liquidated).fraction
    assert fraction == preview_fraction
    closed = [abs(leg.size) - abs(ch.position(trader, leg.market_id)[0]) for leg in legs]
    assert closed == closes_at(legs, fraction)

    # What was closed is enough (the slack covers the per-leg rounding) ...
    equity, remaining = after_closes(collateral, legs, closed)
    assert equity >= margin(0, remaining).initial
    assert equity == ch.equity(trader)
    # ... and 1% less would leave the account short of the initial requirement by far more.
    less = fraction * 99 // 100
    equity_less, remaining_less = after_closes(collateral, legs, closes_at(legs, less))
    shortfall = margin(0, remaining_less).initial - equity_less
    assert shortfall > usd(1)
    conserved()


@pytest.mark.parametrize("bound", [HALF_BOUND_BPS, MIN_REACHABLE_BOUND_BPS - 1])
def test_set_liquidation_params__bound_below_least_needed_fraction__reverts(
    ch, deployer, bound, conserved, configurator
):
    # Every liquidatable account needs more than (im - mm) / (im - fee) = 5/9 closed.
    before = ch.liquidation_params()
    with ape.reverts("configurator: partial bound unreachable"):
        configurator.set_liquidation_params(
            KEEPER_SHARE_BPS, bound, MIN_KEEPER_REWARD, sender=deployer
        )
    assert ch.liquidation_params() == before
    configurator.set_liquidation_params(
        KEEPER_SHARE_BPS, MIN_REACHABLE_BOUND_BPS, MIN_KEEPER_REWARD, sender=deployer
    )
    assert ch.liquidation_params()[1] == MIN_REACHABLE_BOUND_BPS
    conserved()


def test_set_market_risk__partial_bound_unreachable__reverts(ch, deployer, conserved, configurator):
    # With the deployed 80% bound: (im - mm) / (im - fee) = 500 / 550 > 0.8.
    assert not partial_reachable(MAX_PARTIAL_BPS, 1_000, 500, 450)
    with ape.reverts("configurator: partial bound unreachable"):
        configurator.set_market_risk(ETH, 1_000, 500, 450, TRADE_FEE_BPS, sender=deployer)
    assert ch.market(ETH).liquidation_fee_bps == LIQ_FEE_BPS
    conserved()


@pytest.mark.parametrize(
    ("bound", "eth_usd"),
    [(MIN_REACHABLE_BOUND_BPS, 1_843), (MAX_PARTIAL_BPS, 1_800), (MAX_PARTIAL_BPS, 1_780)],
    ids=["least_bound_mildest_breach", "deployed_bound_deep", "deployed_bound_deeper"],
)
def test_liquidate__fraction_above_bound__closes_everything(
    ch,
    system,
    deployer,
    deposit,
    seeded_pool,
    open_position,
    set_price,
    trader,
    liquidator,
    bound,
    eth_usd,
    conserved,
    configurator,
):
    configurator.set_liquidation_params(KEEPER_SHARE_BPS, bound, MIN_KEEPER_REWARD, sender=deployer)
    open_eth_long(deposit, open_position, trader, 1_000, 4)
    set_price(ETH, eth_usd)
    m = margin(ch.collateral(trader), legs_of(ch, system, trader))
    assert planned_fraction(m) > bound * WAD // BPS
    o = model_now(ch, system, trader, max_partial_bps=bound)
    assert o.full and o.fraction == WAD

    tx, reward = send_liquidate(ch, trader, liquidator)

    assert_matches_model(ch, tx, trader, liquidator, o)
    assert ch.account_market_ids(trader) == [] and ch.position(trader, ETH) == (0, 0)
    assert ch.collateral(trader) == m.equity - o.fee_paid >= 0
    assert ch.market(ETH).open_interest_long == 0
    conserved()


def test_liquidate__one_leg_remainder_below_min_notional__that_leg_closed_whole(
    ch,
    system,
    deposit,
    seeded_pool,
    open_position,
    set_price,
    partial_bound,
    trader,
    liquidator,
    conserved,
):
    deposit(trader, 1_000)
    open_position(trader, ETH, 4)
    open_position(trader, BTC, 0.0004)  # 24 USDC notional: 31% of it would be dust
    set_price(ETH, 1_820)
    o = model_now(ch, system, trader, max_partial_bps=partial_bound)
    eth_leg, btc_leg = legs_of(ch, system, trader)
    assert not o.full
    partial_btc = ceil_div(abs(btc_leg.size) * o.fraction, WAD)
    assert notional_down(abs(btc_leg.size) - partial_btc, btc_leg.price) < MIN_NOTIONAL
    assert o.closes[1] == abs(btc_leg.size) and o.closes[0] < abs(eth_leg.size)

    tx = ch.liquidate(trader, sender=liquidator)

    assert_matches_model(ch, tx, trader, liquidator, o)
    assert ch.account_market_ids(trader) == [ETH]
    size, _ = ch.position(trader, ETH)
    assert notional_down(abs(size), eth_leg.price) >= MIN_NOTIONAL
    assert ch.market(BTC).open_interest_long == 0
    conserved()


def test_liquidate__only_leg_remainder_below_min_notional__full_close(
    ch,
    system,
    deposit,
    seeded_pool,
    open_position,
    set_price,
    partial_bound,
    trader,
    liquidator,
    conserved,
    deployer,
    monkeypatch,
    configurator,
):
    # No minimum reward here: on a 24 USDC position a 1 USDC minimum alone pushes the fraction
    # past the bound, and this test is about the dust rule.
    configurator.set_liquidation_params(KEEPER_SHARE_BPS, partial_bound, 0, sender=deployer)
    monkeypatch.setattr(sys.modules[__name__], "MIN_KEEPER_REWARD", 0)
    open_eth_long(deposit, open_position, trader, 3.2, 0.012)  # 24 USDC notional
    set_price(ETH, 1_820)
    m = margin(ch.collateral(trader), legs_of(ch, system, trader))
    fraction = planned_fraction(m)
    assert fraction <= partial_bound * WAD // BPS  # would be partial but for the dust rule
    o = model_now(ch, system, trader, max_partial_bps=partial_bound)
    assert o.full and o.fraction == WAD

    tx = ch.liquidate(trader, sender=liquidator)

    assert_matches_model(ch, tx, trader, liquidator, o)
    assert ch.account_market_ids(trader) == []
    conserved()


# --------------------------------------------------------------------------------------------
# Bad debt
# --------------------------------------------------------------------------------------------


def test_liquidate__bad_debt_within_insurance__insurance_covers_it(
    ch,
    system,
    deposit,
    seeded_pool,
    open_position,
    set_price,
    fund_insurance,
    trader,
    liquidator,
    conserved,
):
    fund_insurance(500)
    open_eth_long(deposit, open_position, trader, 1_000, 4)
    set_price(ETH, 1_700)  # E = 996 - 1,200 = -204
    pool_before = ch.pool_assets()
    o = model_now(ch, system, trader)
    assert (o.bad_debt, o.insurance_covered, o.socialised) == (usd(204), usd(204), 0)
    assert o.reward == MIN_KEEPER_REWARD  # nothing paid by the account: all from insurance

    tx, reward = send_liquidate(ch, trader, liquidator)

    assert_matches_model(ch, tx, trader, liquidator, o)
    assert reward == MIN_KEEPER_REWARD
    assert ch.collateral(trader) == 0
    assert ch.insurance_fund() == usd(500 - 1 - 204)
    assert ch.pool_assets() == pool_before + usd(1_200)  # the LPs get the whole loss
    conserved()


@pytest.mark.integration
def test_liquidate__bad_debt_beyond_insurance__socialised_to_lps(
    ch,
    vault,
    system,
    lp,
    deposit,
    seeded_pool,
    open_position,
    set_price,
    fund_insurance,
    trader,
    liquidator,
    conserved,
):
    fund_insurance(100)
    deposit(trader, 1_200)
    open_position(trader, ETH, 4)
    open_position(trader, BTC, 0.05)
    set_price(ETH, 1_650)  # -1,400
    set_price(BTC, 50_000)  # -500: E = 1,194.5 - 1,900 = -705.5
    shares = system.vault.balanceOf(lp)
    pool_before = ch.pool_assets()
    # LPs' mark-to-market value: realised pool assets less what they owe traders unrealised.
    lp_value_before = pool_before - ch.trader_unrealized_pnl(ETH) - ch.trader_unrealized_pnl(BTC)
    share_value_unsocialised = (
        shares
        * (pool_before + usd(1_900) + VIRTUAL_ASSETS)
        // (system.vault.totalSupply() + VIRTUAL_SHARES)
    )
    o = model_now(ch, system, trader)
    assert (o.bad_debt, o.insurance_covered, o.socialised) == (usd(705.5), usd(99), usd(606.5))

    tx = ch.liquidate(trader, sender=liquidator)

    assert_matches_model(ch, tx, trader, liquidator, o)
    bad = one_log(tx, ch.BadDebtSettled)
    assert bad.account == trader
    assert (bad.bad_debt, bad.insurance_covered, bad.socialised, bad.uncovered) == (
        usd(705.5),
        usd(99),
        usd(606.5),
        0,
    )
    assert ch.insurance_fund() == 0 and ch.collateral(trader) == 0
    # The pool received the 1,900 loss and paid 606.5 of it back as socialised bad debt ...
    assert ch.pool_assets() == pool_before + usd(1_900) - usd(606.5)
    # ... so the LPs' mark-to-market value fell by exactly the socialised amount ...
    lp_value_after = (
        ch.pool_assets() - ch.trader_unrealized_pnl(ETH) - ch.trader_unrealized_pnl(BTC)
    )
    assert lp_value_before - lp_value_after == usd(606.5)
    # ... and their shares are worth less than had the account's loss been collected in full.
    assert vault.convert_to_assets(shares) < share_value_unsocialised
    conserved()


def test_liquidate__unbacked_loss_credit__never_paid_out_so_nothing_stays_uncovered(
    ch, system, deposit, open_position, set_price, trader, trader2, liquidator, conserved
):
    # No LP capital and no insurance. The trader's realised ETH loss goes beyond its
    # collateral (negative collateral, carried by BTC profit): the pool is credited with the
    # whole loss, but only the collateral arrived. Before the backed rule, trader2's +1,200
    # was paid from that credit in full, and when BTC turned the trader's debt stayed
    # uncovered for ever (insurance and pool empty). Now trader2 is paid only what tokens
    # back (pool assets less the trader's debt), so the pool still holds the credit against
    # the debt and the liquidation leaves nothing uncovered.
    deposit(trader, 1_100)
    open_position(trader, ETH, 2)
    open_position(trader, BTC, -0.1)
    deposit(trader2, 1_000)
    open_position(trader2, ETH, -2)
    set_price(ETH, 1_400)
    set_price(BTC, 48_000)
    open_position(trader, ETH, -2)  # realises -1,200: collateral goes negative
    debt = -ch.collateral(trader)
    assert debt > 0 and not ch.is_liquidatable(trader) and ch.total_debt() == debt
    backed = ch.pool_assets() - debt
    before = ch.collateral(trader2)
    tx = ch.trade(ETH, 2 * WAD, MAX_UINT, sender=trader2)  # closes: +1,200 owed
    cut = one_log(tx, ch.ProfitHaircut)
    # Paid what tokens back, and its own fee on this close (credited first, paid straight back).
    fee = bps_up(notional_up(2 * WAD, 1_400 * WAD), TRADE_FEE_BPS)
    assert (cut.account, cut.owed, cut.paid) == (trader2.address, usd(1_200), backed + fee)
    assert ch.collateral(trader2) - before == backed
    assert ch.pool_assets() == debt  # exactly the unbacked credit
    set_price(BTC, 62_000)
    o = model_now(ch, system, trader)
    assert o.full and o.uncovered == 0

    tx, reward = send_liquidate(ch, trader, liquidator)

    assert_matches_model(ch, tx, trader, liquidator, o)
    bad = one_log(tx, ch.BadDebtSettled)
    assert bad.bad_debt == bad.insurance_covered + bad.socialised + bad.uncovered
    assert bad.insurance_covered == 0 and bad.uncovered == 0 and bad.socialised > 0
    assert ch.collateral(trader) == 0 and ch.total_debt() == 0
    assert ch.pool_assets() >= ch.total_debt()
    assert ch.account_market_ids(trader) == []
    conserved()


def test_liquidate__bad_debt_no_lp_capital__own_realised_loss_covers_it(
    ch, system, deposit, open_position, set_price, trader, liquidator, conserved
):
    # The loss is realised into the pool before the bad debt is settled, so an empty pool
    # and an empty insurance fund still leave nothing uncovered for a fresh account. The
    # keeper is still paid its 1 USDC reserve: the fund is empty, so by the pool, out of
    # the tokens the trader's loss brought (never out of the 204 USDC of debt).
    open_eth_long(deposit, open_position, trader, 1_000, 4)
    set_price(ETH, 1_700)
    assert ch.insurance_fund() == 0 and ch.pool_assets() == usd(4)  # the trading fee only
    o = model_now(ch, system, trader)

    tx = ch.liquidate(trader, sender=liquidator)

    assert_matches_model(ch, tx, trader, liquidator, o)
    bad = one_log(tx, ch.BadDebtSettled)
    assert (bad.bad_debt, bad.insurance_covered, bad.socialised, bad.uncovered) == (
        usd(204),
        0,
        usd(204),
        0,
    )
    assert one_log(tx, ch.KeeperRewardPriced).from_pool == usd(1)
    assert ch.pool_assets() == usd(4 + 996 - 1)  # what the trader had, less the reward
    conserved()


def test_liquidate__no_bad_debt__no_bad_debt_event(
    ch,
    deposit,
    seeded_pool,
    open_position,
    set_price,
    fund_insurance,
    trader,
    liquidator,
    conserved,
):
    fund_insurance(100)
    open_eth_long(deposit, open_position, trader, 1_000, 4)
    set_price(ETH, 1_800)
    tx = ch.liquidate(trader, sender=liquidator)
    assert tx.decode_logs(ch.BadDebtSettled) == []
    assert ch.insurance_fund() == usd(100 + 36)
    conserved()


# --------------------------------------------------------------------------------------------
# Keeper reward
# --------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_liquidate__third_party__reward_is_event_return_value_and_collateral_change(
    ch, system, deposit, seeded_pool, open_position, set_price, trader, liquidator, conserved
):
    open_eth_long(deposit, open_position, trader, 1_000, 4)
    set_price(ETH, 1_800)
    preview_reward = ch.liquidation_preview(trader)[1]
    before = ch.collateral(liquidator)

    tx, reward = send_liquidate(ch, trader, liquidator)

    log = one_log(tx, ch.Liquidated)
    assert reward == log.keeper_reward == preview_reward == usd(36)
    assert ch.collateral(liquidator) - before == reward
    assert log.insurance_delta == usd(72) - usd(36)
    conserved()


@pytest.mark.parametrize(
    ("insurance_usd", "price", "paid", "from_pool"),
    [
        (10, 1_880, 1_094_000, 0),  # the account pays its own reward
        (0, 1_880, 1_094_000, 0),  # ... whatever the fund holds
        (10, 1_700, 90_000, 0),  # a gap: the fund tops the reward up to the reserve
        (0.1, 1_700, 90_000, usd(1) - 190_000),  # the fund short: the pool pays the rest
        (0, 1_700, 90_000, usd(1) - 90_000),
    ],
    ids=["account_pays", "account_pays_fund_empty", "gap_funded", "gap_short", "gap_empty"],
)
def test_liquidate__tiny_position__reward_prefunded_by_the_account(
    ch,
    system,
    deposit,
    seeded_pool,
    open_position,
    set_price,
    fund_insurance,
    trader,
    liquidator,
    insurance_usd,
    price,
    paid,
    from_pool,
    conserved,
):
    if insurance_usd:
        fund_insurance(insurance_usd)
    # 20 USDC notional on 3.1 USDC: IMR 2 + the 1 USDC reward reserve; E = 3.09 after the fee.
    open_eth_long(deposit, open_position, trader, 3.1, 0.01)
    # At 1,880: E = 1.89 < MMR 0.94 + 1; full; the fee 0.188 carries the 1 USDC minimum
    # reward over its 0.094 keeper half: the account owes 1.094 and pays it all (the reserve
    # was there). At 1,700 (a gap): E = 0.09, owed 1.085, paid 0.09; the fund, then the
    # pool, top the reward up to the reserve, never more.
    set_price(ETH, price)
    o = model_now(ch, system, trader)
    assert o.full and (o.fee_paid, o.reward, o.from_pool) == (paid, usd(1), from_pool)
    assert ch.liquidation_preview(trader) == (o.fraction, o.reward, o.bad_debt)
    pool_before = ch.pool_assets()

    tx, reward = send_liquidate(ch, trader, liquidator)

    assert_matches_model(ch, tx, trader, liquidator, o)
    assert reward == usd(1) == ch.collateral(liquidator)
    assert ch.insurance_fund() == max(usd(insurance_usd) + paid - usd(1), 0)
    assert one_log(tx, ch.Liquidated).insurance_delta == paid + from_pool - usd(1)
    if price == 1_880:
        assert ch.pool_assets() == pool_before + usd(1.2)  # the trader's loss, nothing paid out
    conserved()


def test_liquidate__other_accounts_open__their_margin_unchanged(
    ch, deposit, seeded_pool, open_position, set_price, trader, trader2, liquidator, conserved
):
    open_eth_long(deposit, open_position, trader, 1_000, 4)
    deposit(trader2, 20_000)
    open_position(trader2, ETH, -3)
    open_position(trader2, BTC, 0.5)
    set_price(ETH, 1_800)

    def state():
        return (
            ch.margin_status([trader2])[0],
            ch.collateral(trader2),
            ch.position(trader2, ETH),
            ch.position(trader2, BTC),
            ch.account_market_ids(trader2),
        )

    before = state()

    ch.liquidate(trader, sender=liquidator)

    assert state() == before
    conserved()


# --------------------------------------------------------------------------------------------
# Self-liquidation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bound", "eth_usd"),
    [(MAX_PARTIAL_BPS, 1_800), (MAX_PARTIAL_BPS, 1_820)],
    ids=["full", "partial"],
)
def test_liquidate__self__no_reward_and_worse_than_closing_by_trade(
    ch,
    system,
    deployer,
    deposit,
    seeded_pool,
    open_position,
    set_price,
    trader,
    trader2,
    bound,
    eth_usd,
    conserved,
    configurator,
):
    configurator.set_liquidation_params(KEEPER_SHARE_BPS, bound, MIN_KEEPER_REWARD, sender=deployer)
    for who in (trader, trader2):  # identical twins
        open_eth_long(deposit, open_position, who, 1_000, 4)
    set_price(ETH, eth_usd)
    o = model_now(ch, system, trader, self_liquidation=True, max_partial_bps=bound)
    insurance_before = ch.insurance_fund()

    tx, reward = send_liquidate(ch, trader, trader)

    assert reward == 0 == one_log(tx, ch.Liquidated).keeper_reward
    assert_matches_model(ch, tx, trader, trader, o)
    assert ch.insurance_fund() == insurance_before + o.fee_paid  # the whole fee
    # The twin closes the same size by trade at the same price.
    closed = o.closes[0]
    ch.trade(ETH, -closed, 0, sender=trader2)
    assert ch.position(trader2, ETH) == ch.position(trader, ETH)
    trade_fee = bps_up(notional_up(closed, eth_usd * WAD), TRADE_FEE_BPS)
    assert ch.collateral(trader2) - ch.collateral(trader) == o.fee_paid - trade_fee > 0
    conserved()


def test_liquidate_many__self_in_batch__no_reward(
    ch, deposit, seeded_pool, open_position, set_price, trader, trader2, conserved
):
    for who in (trader, trader2):
        open_eth_long(deposit, open_position, who, 1_000, 4)
    set_price(ETH, 1_800)
    total = ch.liquidate_many.call([trader, trader2], sender=trader)
    tx = ch.liquidate_many([trader, trader2], sender=trader)
    rewards = {log.account: log.keeper_reward for log in tx.decode_logs(ch.Liquidated)}
    assert rewards == {trader.address: 0, trader2.address: usd(36)}
    assert total == usd(36)
    conserved()


@pytest.mark.parametrize("order", ["other_first", "self_first"])
def test_liquidate_many__caller_in_batch__same_state_as_one_by_one(
    chain, ch, deposit, seeded_pool, open_position, set_price, trader, trader2, order, conserved
):
    """The batch carries the funds word and the caller's rewards from account to account and
    credits the rewards once, but before the caller's own account: the caller's liquidation
    sees every reward earned before it, exactly as one `liquidate` after another."""
    # At 1,740 the caller (trader) is under water (its loss exceeds its collateral, so the
    # reward it earned first decides its bad debt); trader2 is liquidatable but solvent.
    open_eth_long(deposit, open_position, trader, 1_000, 4)
    open_eth_long(deposit, open_position, trader2, 1_300, 4)
    set_price(ETH, 1_740)
    batch = [trader2, trader] if order == "other_first" else [trader, trader2]

    def state() -> tuple:
        return (
            ch.collateral(trader),
            ch.collateral(trader2),
            ch.pool_assets(),
            ch.insurance_fund(),
            ch.total_debt(),
            ch.position(trader, ETH),
            ch.position(trader2, ETH),
        )

    sid = chain.provider.snapshot()
    one_by_one = [ch.liquidate(a, sender=trader).decode_logs(ch.Liquidated)[0] for a in batch]
    expected = state()
    chain.provider.restore(sid)

    tx = ch.liquidate_many(batch, sender=trader)
    logs = tx.decode_logs(ch.Liquidated)
    assert [(log.account, log.fee, log.keeper_reward) for log in logs] == [
        (log.account, log.fee, log.keeper_reward) for log in one_by_one
    ]
    assert state() == expected
    rewards = {log.account: log.keeper_reward for log in logs}
    assert rewards[trader.address] == 0 and rewards[trader2.address] > 0
    bad = {log.account: log.bad_debt for log in tx.decode_logs(ch.BadDebtSettled)}
    assert list(bad) == [trader.address] and bad[trader.address] > 0
    conserved()


@pytest.mark.parametrize(
    ("deposit_usd", "size", "price", "insurance_paid"),
    [(3.1, 0.01, 1_880, 0), (3.1, 0.01, 1_700, usd(1) - 90_000)],
    ids=["account_pays_minimum", "gap_account_short_of_minimum"],
)
def test_liquidate__sybil_keeper_on_hedged_min_positions__no_gain_over_closing(
    ch,
    system,
    deposit,
    seeded_pool,
    open_position,
    set_price,
    fund_insurance,
    trader,
    trader2,
    liquidator,
    deposit_usd,
    size,
    price,
    insurance_paid,
    conserved,
):
    # One owner controls trader (long), trader2 (short) and liquidator. Both requirements
    # reserve the minimum reward, so the owner pays the reward from its own account; the
    # fund tops up only what a price gap left the liquidated account unable to pay (at most
    # the reserve; an owner cannot make the oracle gap).
    fund_insurance(100)
    owned = (trader, trader2, liquidator)
    open_eth_long(deposit, open_position, trader, deposit_usd, size)
    deposit(trader2, deposit_usd)
    open_position(trader2, ETH, -size)
    start = sum(ch.collateral(a) for a in owned)
    set_price(ETH, price)
    o = model_now(ch, system, trader)
    assert o.full and o.reward == MIN_KEEPER_REWARD

    tx = ch.liquidate(trader, sender=liquidator)
    assert_matches_model(ch, tx, trader, liquidator, o)
    to_fund = o.fee_paid - o.reward if o.fee_paid >= o.reward else 0  # the fund's fee share
    assert ch.insurance_fund() == usd(100) - insurance_paid + to_fund
    close = round(size * WAD)
    ch.trade(ETH, close, MAX_UINT, sender=trader2)
    conserved()

    gain = sum(ch.collateral(a) for a in owned) - start
    close_fee = bps_up(notional_up(close, price * WAD), TRADE_FEE_BPS)
    # Farming gains at most what the fund topped up, less what the account paid the fund and
    # the closing fee (before the reserve the fund paid 1 - 0.188 on the 20 USDC pair without
    # a gap, and the scheme beat closing by ~0.8 USDC).
    assert gain == insurance_paid - to_fund - close_fee
    if insurance_paid == 0:
        assert gain < 0


# --------------------------------------------------------------------------------------------
# liquidate_many
# --------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_liquidate_many__mixed_list__skips_healthy_and_returns_sum_of_events(
    ch,
    system,
    deposit,
    seeded_pool,
    open_position,
    set_price,
    trader,
    trader2,
    trader3,
    trader4,
    stranger,
    liquidator,
    conserved,
):
    open_eth_long(deposit, open_position, trader, 1_000, 4)  # full close at 1,800
    open_eth_long(deposit, open_position, trader2, 5_000, 4)  # healthy
    open_eth_long(deposit, open_position, trader3, 3.1, 0.01)  # tiny: minimum reward
    deposit(trader4, 1_000)  # collateral, no position
    set_price(ETH, 1_800)
    assert [s.liquidatable for s in ch.margin_status([trader, trader2, trader3, trader4])] == [
        True,
        False,
        True,
        False,
    ]
    batch = [trader2, trader, stranger, trader, trader3, trader4, trader3]
    before = ch.collateral(liquidator)
    simulated = ch.liquidate_many.call(batch, sender=liquidator)

    tx = ch.liquidate_many(batch, sender=liquidator)

    logs = tx.decode_logs(ch.Liquidated)
    assert [log.account for log in logs] == [trader.address, trader3.address]
    total = sum(log.keeper_reward for log in logs)
    assert total == simulated == usd(36) + usd(1)  # share of 72; minimum reward
    if (traced := traced_return_value(tx)) is not None:
        assert traced == total
    assert ch.collateral(liquidator) - before == total
    assert ch.position(trader2, ETH)[0] == 4 * WAD  # the healthy one untouched
    assert not any(s.liquidatable for s in ch.margin_status(batch))
    conserved()


@pytest.mark.parametrize("batch_kind", ["empty", "healthy_only"])
def test_liquidate_many__nothing_liquidatable__returns_zero_without_revert(
    ch, deposit, seeded_pool, open_position, trader, trader2, liquidator, batch_kind, conserved
):
    open_eth_long(deposit, open_position, trader, 1_000, 2)
    batch = [] if batch_kind == "empty" else [trader, trader2, trader]
    assert ch.liquidate_many.call(batch, sender=liquidator) == 0
    tx = ch.liquidate_many(batch, sender=liquidator)
    assert tx.decode_logs(ch.Liquidated) == []
    assert ch.collateral(liquidator) == 0
    conserved()


# --------------------------------------------------------------------------------------------
# Preview and status
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bound", "eth_usd", "insurance_usd"),
    [
        (MAX_PARTIAL_BPS, 1_820, 0),
        (MAX_PARTIAL_BPS, 1_800, 0),
        (MAX_PARTIAL_BPS, 1_700, 50),
        (MAX_PARTIAL_BPS, 1_600, 0),
    ],
    ids=["partial", "full", "bad_debt_insured", "bad_debt_uninsured"],
)
def test_liquidation_preview__before_liquidate__matches_outcome(
    ch,
    system,
    deployer,
    deposit,
    seeded_pool,
    open_position,
    set_price,
    fund_insurance,
    trader,
    liquidator,
    bound,
    eth_usd,
    insurance_usd,
    conserved,
    configurator,
):
    configurator.set_liquidation_params(KEEPER_SHARE_BPS, bound, MIN_KEEPER_REWARD, sender=deployer)
    if insurance_usd:
        fund_insurance(insurance_usd)
    open_eth_long(deposit, open_position, trader, 1_000, 4)
    set_price(ETH, eth_usd)
    preview = ch.liquidation_preview(trader)  # the named struct LiquidationPreview
    fraction, reward, bad_debt = preview.fraction, preview.reward, preview.bad_debt
    assert tuple(preview) == (fraction, reward, bad_debt)  # same bytes as three plain values
    o = model_now(ch, system, trader, max_partial_bps=bound)
    assert (fraction, reward, bad_debt) == (o.fraction, o.reward, o.bad_debt)

    tx, paid = send_liquidate(ch, trader, liquidator)

    log = one_log(tx, ch.Liquidated)
    assert (log.fraction, log.keeper_reward, paid) == (fraction, reward, reward)
    bad_logs = tx.decode_logs(ch.BadDebtSettled)
    assert (bad_logs[0].bad_debt if bad_logs else 0) == bad_debt
    assert ch.liquidation_preview(trader) == (0, 0, 0)  # healthy now
    conserved()


def test_liquidation_preview__healthy_or_empty__zeros(
    ch, deposit, seeded_pool, open_position, trader, stranger, conserved
):
    open_eth_long(deposit, open_position, trader, 1_000, 4)
    assert ch.liquidation_preview(trader) == (0, 0, 0)
    assert ch.liquidation_preview(stranger) == (0, 0, 0)
    conserved()


def test_margin_status__mixed_accounts__flags_equal_is_liquidatable(
    ch,
    system,
    deposit,
    seeded_pool,
    open_position,
    set_price,
    trader,
    trader2,
    trader3,
    trader4,
    stranger,
    conserved,
):
    open_eth_long(deposit, open_position, trader, 1_000, 4)
    open_eth_long(deposit, open_position, trader2, 5_000, 4)
    deposit(trader3, 1_200)
    open_position(trader3, ETH, 4)
    open_position(trader3, BTC, -0.05)
    deposit(trader4, 10)
    set_price(ETH, 1_800)
    set_price(BTC, 61_000)
    accounts = [trader, trader2, trader3, trader4, stranger]
    status = ch.margin_status(accounts)
    for s, a in zip(status, accounts, strict=True):
        assert s.account == a.address
        assert s.liquidatable == ch.is_liquidatable(a)
        assert (s.equity, s.maintenance, s.initial) == (
            ch.equity(a),
            ch.maintenance_requirement(a),
            ch.initial_requirement(a),
        )
        m = margin(ch.collateral(a), legs_of(ch, system, a))
        assert (s.equity, s.initial, s.maintenance) == (m.equity, m.initial, m.maintenance)
        assert s.liquidatable == (bool(ch.account_market_ids(a)) and m.equity < m.maintenance)
    assert [s.liquidatable for s in status] == [True, False, True, False, False]
    conserved()


# --------------------------------------------------------------------------------------------
# Pause
# --------------------------------------------------------------------------------------------


def test_liquidate__paused__still_liquidates(
    ch,
    system,
    deposit,
    seeded_pool,
    open_position,
    set_price,
    guardian,
    trader,
    trader2,
    liquidator,
    conserved,
    configurator,
):
    open_eth_long(deposit, open_position, trader, 1_000, 4)
    open_eth_long(deposit, open_position, trader2, 1_000, 4)
    configurator.pause(sender=guardian)
    assert ch.paused()
    with ape.reverts("clearinghouse: paused"):
        ch.trade(ETH, WAD, MAX_UINT, sender=trader)
    set_price(ETH, 1_800)
    o = model_now(ch, system, trader)

    tx, reward = send_liquidate(ch, trader, liquidator)
    assert_matches_model(ch, tx, trader, liquidator, o)
    assert ch.liquidate_many.call([trader2], sender=liquidator) == reward
    ch.liquidate_many([trader2], sender=liquidator)
    assert ch.account_market_ids(trader2) == []
    conserved()


# --------------------------------------------------------------------------------------------
# Losses settled before profits: a thin pool pays winners from the same liquidation's losers
# --------------------------------------------------------------------------------------------


def test_liquidate__profit_leg_before_loss_leg_thin_pool__settled_net(
    ch,
    vault,
    system,
    fund,
    lp,
    deposit,
    open_position,
    set_price,
    partial_bound,
    trader,
    liquidator,
    conserved,
):
    vault.add_liquidity(fund(lp, 100), 0, sender=lp)  # a thin pool
    deposit(trader, 1_200)
    open_position(trader, BTC, -0.1)  # listed first: settled first
    open_position(trader, ETH, 2)
    set_price(BTC, 57_000)  # +300
    set_price(ETH, 1_450)  # -1,100: E = 395 < MMR = 430
    legs = legs_of(ch, system, trader)
    o = model_now(ch, system, trader, max_partial_bps=partial_bound)
    assert not o.full

    tx = ch.liquidate(trader, sender=liquidator)
    conserved()
    assert_matches_model(ch, tx, trader, liquidator, o)
    assert not ch.is_liquidatable(trader)  # leg by leg: 148.3 USDC equity < 171.7 maintenance
    assert tx.decode_logs(ch.ProfitHaircut) == []  # leg by leg: 195 of the 300 profit withheld
    # One PositionChanged per leg, in the engine's order, with the PnL actually settled.
    changes = tx.decode_logs(ch.PositionChanged)
    assert [log.market_id for log in changes] == [leg.market_id for leg in legs]
    assert [log.realized_pnl for log in changes] == [
        pnl(leg.size, leg.entry, leg.price) for leg in legs
    ]
    assert [log.realized_pnl for log in changes] == [usd(300), usd(-1_100)]
    for log, leg, close in zip(changes, legs, o.closes, strict=True):
        assert log.account == trader and log.price == leg.price
        assert log.new_size == ch.position(trader, leg.market_id)[0]
        assert log.size_delta == log.new_size - leg.size
        assert abs(log.size_delta) == close


# --------------------------------------------------------------------------------------------
# Property: random crashes against the model
# --------------------------------------------------------------------------------------------


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    market_id=st.sampled_from([ETH, BTC]),
    long=st.booleans(),
    notional_usd=st.integers(min_value=15, max_value=200_000),
    leverage_tenths=st.integers(min_value=15, max_value=99),
    equity_bps=st.integers(min_value=-300, max_value=520),  # target E / N after the move
    bound=st.sampled_from([MIN_REACHABLE_BOUND_BPS, MAX_PARTIAL_BPS, BPS]),
    insurance_usd=st.sampled_from([0, 1, 1_000]),
)
def test_liquidate__random_crash__matches_model(
    chain,
    ch,
    system,
    deployer,
    fund,
    deposit,
    seeded_pool,
    set_price,
    trader,
    liquidator,
    conserved,
    market_id,
    long,
    notional_usd,
    leverage_tenths,
    equity_bps,
    bound,
    insurance_usd,
    configurator,
):
    chain.mine()  # snapshots on py-evm are block hashes: take ours on a block of its own
    snapshot = chain.provider.snapshot()
    try:
        assert ch.collateral(trader) == 0 and ch.account_market_ids(trader) == []  # restored
        configurator.set_liquidation_params(
            KEEPER_SHARE_BPS, bound, MIN_KEEPER_REWARD, sender=deployer
        )
        if insurance_usd:
            ch.fund_insurance(fund(deployer, insurance_usd), sender=deployer)
        start_usd = (2_000, 60_000)[market_id]
        size = notional_usd * WAD // start_usd
        deposit(trader, notional_usd * 10 / leverage_tenths + 1)
        signed = size if long else -size
        ch.trade(market_id, signed, MAX_UINT if long else 0, sender=trader)
        # The price at which equity / notional = equity_bps: around maintenance (500 bps),
        # through the partial range, full closes and bad debt (below 0).
        c_usd, size_units, r = ch.collateral(trader) / USDC, size / WAD, equity_bps / BPS
        if long:
            price_usd = (size_units * start_usd - c_usd) / (size_units * (1 - r))
        else:
            price_usd = (size_units * start_usd + c_usd) / (size_units * (1 + r))
        set_price(market_id, price_usd)
        if not ch.is_liquidatable(trader):
            with ape.reverts("clearinghouse: account healthy"):
                ch.liquidate(trader, sender=liquidator)
            conserved()
            event("healthy")
            return
        o = model_now(ch, system, trader, max_partial_bps=bound)
        event("bad debt" if o.bad_debt else "full" if o.full else "partial")
        assert ch.liquidation_preview(trader) == (o.fraction, o.reward, o.bad_debt)
        tx, reward = send_liquidate(ch, trader, liquidator)
        assert_matches_model(ch, tx, trader, liquidator, o)
        assert reward == o.reward == ch.collateral(liquidator)
        assert not ch.is_liquidatable(trader)
        for leg in o.remaining:
            assert notional_down(abs(leg.size), leg.price) >= MIN_NOTIONAL
        conserved()
    finally:
        chain.provider.restore(snapshot)
