"""The gas-priced keeper reward (issue "loss layers"): its setter's bounds, the reserve it adds
to both requirements, the smoothed gas price and the event a priced liquidation logs. The
figures come from `margin_maintenance.model.reward`, the one copy of the rules."""

from __future__ import annotations

import ape
import pytest
from ape import chain
from hypothesis import given, settings
from hypothesis import strategies as st
from support.constants import (
    ETH,
    IM_BPS,
    LIQ_FEE_BPS,
    MAX_MARKETS,
    MAX_MIN_KEEPER_REWARD,
    MIN_NOTIONAL_USD,
    MM_BPS,
    TRADE_FEE_BPS,
    USDC,
    WAD,
)
from support.trading import buy

from margin_maintenance import model
from margin_maintenance.model import RISK_DELAY, RISK_GRACE

GWEI = 10**9
TOKEN_SCALE = 10**12
CAP = MAX_MIN_KEEPER_REWARD * USDC  # the bound on the minimum, the maximum and the margin


PRICED = (50 * USDC, USDC // 2, 2_000, ETH, 30 * GWEI)  # cap, margin, +20%, ETH/USD, 30 gwei


def _current(ch) -> tuple[int, ...]:
    """The engine's (cap, margin, premium, ETH market + 1, floor), `reward_change_waits`'s."""
    _, _, premium, market, floor, max_reward, margin = ch.keeper_reward_params()
    return max_reward, margin, premium, market, floor


def _params(ch) -> model.LiquidationParams:
    share, partial, min_reward = ch.liquidation_params()
    gp, eth, premium, market, floor, max_reward, margin = ch.keeper_reward_params()
    gas = model.KeeperGas(gp, eth, 0, premium, market - 1 if market else None, floor)
    return model.LiquidationParams(share, partial, min_reward, max_reward, margin, gas)


@pytest.mark.parametrize(
    "args, reason",
    [
        ((CAP + 1, 0, 0, ETH, GWEI), "configurator: maximum reward too high"),
        ((USDC - 1, 0, 0, ETH, GWEI), "configurator: reward cap below floor"),
        ((50 * USDC, CAP + 1, 0, ETH, GWEI), "configurator: gas margin too high"),
        ((50 * USDC, 0, 10_001, ETH, GWEI), "configurator: bad gas premium"),
        ((50 * USDC, 0, 0, ETH, 0), "configurator: zero gas price"),
        ((50 * USDC, 0, 0, ETH, GWEI + 1), "configurator: bad gas price floor"),
        ((50 * USDC, 0, 0, ETH, 2**32 * 10**6), "configurator: bad gas price floor"),
        ((50 * USDC, 0, 0, 7, GWEI), "configurator: unknown market"),
    ],
)  # fmt: skip
def test_set_keeper_reward__out_of_bounds__reverts(ch, deployer, configurator, args, reason):
    before = ch.keeper_reward_params()
    with ape.reverts(reason):
        configurator.set_keeper_reward(*args, sender=deployer)
    assert ch.keeper_reward_params() == before


def test_set_keeper_reward__stranger__reverts(configurator, stranger):
    with ape.reverts():
        configurator.set_keeper_reward(50 * USDC, 0, 0, ETH, GWEI, sender=stranger)


def test_set_keeper_reward__on_flat_book__applies_at_once_then_off(
    ch, deployer, configurator, deposit, seeded_pool, trader
):
    tx = configurator.set_keeper_reward(*PRICED, sender=deployer)
    [log] = tx.decode_logs(configurator.KeeperRewardUpdated)
    assert (log.eth_market_id, log.min_gas_price) == (ETH, 30 * GWEI)
    assert tx.decode_logs(configurator.KeeperRewardQueued) == []
    p = _params(ch)
    assert p.gas.gas_price == 30 * GWEI and p.gas.eth_price == 2_000 * WAD
    deposit(trader, 1_000)
    buy(ch, trader, ETH, WAD)  # 2,000 USD notional: maintenance 100 + the reserve
    # g = 30 gwei x 95,000 gas x 2,000 USD = 5.7 USD; max(g x 1.2, g + 0.5) = 6.84 USD
    gas = model.gas_reward(p.gas, p.gas_margin, 1, TOKEN_SCALE)
    assert gas == 6_840_000
    assert ch.maintenance_requirement(trader) == 100 * USDC + gas
    assert ch.initial_requirement(trader) == 200 * USDC + gas

    off = (50 * USDC, 0, 0, MAX_MARKETS, GWEI)
    assert not model.reward_change_waits(_current(ch), off, 1, MAX_MARKETS)
    configurator.set_keeper_reward(*off, sender=deployer)  # lowers the reserve: at once
    assert ch.keeper_reward_params()[3] == 0  # off: the reserve is the minimum again
    assert ch.maintenance_requirement(trader) == 100 * USDC + USDC


def test_set_keeper_reward__raise_with_positions__queued_a_day_then_applied(
    ch, deployer, configurator, deposit, seeded_pool, trader, stranger, set_price
):
    deposit(trader, 1_000)
    buy(ch, trader, ETH, WAD)
    before = ch.maintenance_requirement(trader)
    assert model.reward_change_waits(_current(ch), PRICED, 1, MAX_MARKETS)
    tx = configurator.set_keeper_reward(*PRICED, sender=deployer)
    [log] = tx.decode_logs(configurator.KeeperRewardQueued)
    assert log.eta == tx.timestamp + RISK_DELAY
    assert tx.decode_logs(configurator.KeeperRewardUpdated) == []
    assert ch.keeper_reward_params()[3] == 0 and ch.maintenance_requirement(trader) == before
    with ape.reverts("configurator: risk delay"):
        configurator.apply_keeper_reward(sender=stranger)

    chain.pending_timestamp = log.eta
    with ape.reverts("oracle: stale price"):  # it reads ETH/USD afresh
        configurator.apply_keeper_reward(sender=stranger)
    set_price(ETH, 2_000)
    configurator.apply_keeper_reward(sender=stranger)  # anyone, once the day has passed
    assert ch.keeper_reward_params()[3] == ETH + 1
    assert ch.maintenance_requirement(trader) == 100 * USDC + 6_840_000
    assert configurator.pending_reward().eta == 0
    with ape.reverts("configurator: no reward change"):
        configurator.apply_keeper_reward(sender=stranger)


def test_set_keeper_reward__queued__cancel_expire_and_replace(
    ch, deployer, configurator, deposit, seeded_pool, trader, stranger
):
    deposit(trader, 1_000)
    buy(ch, trader, ETH, WAD)
    tx = configurator.set_keeper_reward(*PRICED, sender=deployer)
    with ape.reverts():
        configurator.cancel_keeper_reward(sender=stranger)
    cancel = configurator.cancel_keeper_reward(sender=deployer)
    assert [c.eta for c in cancel.decode_logs(configurator.KeeperRewardCancelled)] == [
        tx.timestamp + RISK_DELAY
    ]
    with ape.reverts("configurator: no reward change"):
        configurator.cancel_keeper_reward(sender=deployer)

    tx = configurator.set_keeper_reward(*PRICED, sender=deployer)
    chain.pending_timestamp = tx.timestamp + RISK_DELAY + RISK_GRACE + 1
    with ape.reverts("configurator: reward change expired"):
        configurator.apply_keeper_reward(sender=stranger)
    # a change that raises nothing (here: pricing stays off) applies and drops the queued one
    replaced = configurator.set_keeper_reward(40 * USDC, 0, 0, MAX_MARKETS, GWEI, sender=deployer)
    assert len(replaced.decode_logs(configurator.KeeperRewardCancelled)) == 1
    assert configurator.pending_reward().eta == 0
    assert ch.keeper_reward_params()[5] == 40 * USDC


def test_trade__gas_pricing_on__steps_the_price_toward_the_base_fee_within_an_eighth(
    ch, deployer, configurator, deposit, seeded_pool, trader
):
    configurator.set_keeper_reward(50 * USDC, 0, 0, ETH, GWEI, sender=deployer)
    start = ch.keeper_reward_params()[0]
    deposit(trader, 1_000)
    tx = buy(ch, trader, ETH, WAD // 10)
    block = ape.chain.blocks[tx.block_number]
    before = model.KeeperGas(start, 2_000 * WAD, 0, 0, ETH, GWEI)
    want = model.reward.step(before, int(block.base_fee or 0), int(block.number), 2_000 * WAD)
    gp = ch.keeper_reward_params()[0]
    assert gp == want.gas_price
    assert abs(gp - start) <= start // 8 and gp >= GWEI


RATES = model.MarketRates(IM_BPS, MM_BPS, LIQ_FEE_BPS, TRADE_FEE_BPS, MIN_NOTIONAL_USD * USDC)


def _outcome(ch, system, account) -> model.Outcome:
    legs = []
    for market_id in ch.account_market_ids(account):
        size, entry = ch.position(account, market_id)
        price = system.feeds[market_id].latest_price()
        legs.append(model.Leg(int(market_id), int(size), int(entry), int(price), RATES))
    collateral = ch.collateral(account)
    return model.liquidate(
        collateral,
        legs,
        ch.insurance_fund(),
        ch.pool_assets(),
        _params(ch),
        TOKEN_SCALE,
        other_debt=ch.total_debt() - max(-collateral, 0),
    )


@pytest.fixture
def priced(ch, deployer, configurator):
    """Gas pricing on from a flat book (so at once): 30 gwei floor, ETH/USD from market ETH."""
    configurator.set_keeper_reward(*PRICED, sender=deployer)


def test_liquidate__gas_pricing_on__reward_event_and_preview_match_model(
    ch, system, priced, deposit, seeded_pool, set_price, trader, liquidator
):
    deposit(trader, 1_000)
    buy(ch, trader, ETH, 4 * WAD)  # 8,000 notional: maintenance 400 + the 6.84 reserve
    set_price(ETH, 1_800)  # -800: equity 196, maintenance 360 + 6.84
    assert ch.is_liquidatable(trader)
    o = _outcome(ch, system, trader)
    preview = ch.liquidation_preview(trader)
    assert tuple(preview) == (o.fraction, o.reward, o.bad_debt)
    # the reward covers the priced gas: 30 gwei x 95,000 x 2,000 USD x 1.2 (the ETH/USD price
    # the word holds until this liquidation reads the new one) plus the keeper's fee share
    assert o.reward >= 6_840_000
    gas_before = ch.keeper_reward_params()

    tx = ch.liquidate(trader, sender=liquidator)
    [log] = tx.decode_logs(ch.Liquidated)
    assert (log.fraction, log.closed_notional, log.fee, log.keeper_reward) == (
        o.fraction,
        o.closed_notional,
        o.fee_paid,
        o.reward,
    )
    [p] = tx.decode_logs(ch.KeeperRewardPriced)
    assert (p.account, p.gas_price, p.gas_units, p.eth_price, p.from_pool) == (
        trader,
        30 * GWEI,
        model.reward.gas_units(1),
        2_000 * WAD,
        o.from_pool,
    )
    assert ch.collateral(trader) == o.collateral and ch.insurance_fund() == o.insurance
    # the word steps once, at the end, and takes the ETH/USD price the liquidation marked at
    block = ape.chain.blocks[tx.block_number]
    before = model.KeeperGas(gas_before[0], gas_before[1], 0, 2_000, ETH, 30 * GWEI)
    want = model.reward.step(before, int(block.base_fee or 0), tx.block_number, 1_800 * WAD)
    after = ch.keeper_reward_params()
    assert (after[0], after[1]) == (want.gas_price, 1_800 * WAD)


def test_liquidate_many__gas_pricing_on__one_step_per_batch_same_price_in_every_event(
    ch,
    system,
    priced,
    deployer,
    configurator,
    deposit,
    seeded_pool,
    set_price,
    trader,
    accounts,
    liquidator,
):
    # a lower floor applies at once and lets the price step down from 30 gwei, block by block
    configurator.set_keeper_reward(*PRICED[:4], GWEI, sender=deployer)
    others = [accounts[7], accounts[8]]
    for who in [trader, *others]:
        deposit(who, 1_000)
        buy(ch, who, ETH, 4 * WAD)
    set_price(ETH, 1_800)
    expected = {who: _outcome(ch, system, who) for who in [trader, *others]}
    gas_before = ch.keeper_reward_params()
    tx = ch.liquidate_many([trader, *others], sender=liquidator)
    priced_logs = tx.decode_logs(ch.KeeperRewardPriced)
    assert [p.account for p in priced_logs] == [trader, *others]
    assert {p.gas_price for p in priced_logs} == {gas_before[0]}
    rewards = {log.account: log.keeper_reward for log in tx.decode_logs(ch.Liquidated)}
    assert rewards == {who.address: o.reward for who, o in expected.items()}
    block = ape.chain.blocks[tx.block_number]
    before = model.KeeperGas(gas_before[0], gas_before[1], 0, 2_000, ETH, GWEI)
    want = model.reward.step(before, int(block.base_fee or 0), tx.block_number, 1_800 * WAD)
    assert want.gas_price != gas_before[0]  # the step is visible: the base fee is below it
    assert ch.keeper_reward_params()[0] == want.gas_price  # one step, not three


TOKENS = st.integers(0, 2_000 * USDC)


@given(
    fee=TOKENS,
    available=st.integers(-1_000 * USDC, 2_000 * USDC),
    share=st.integers(0, 10_000),
    bounds=st.tuples(TOKENS, TOKENS).map(sorted),
    insurance=TOKENS,
    gas=TOKENS,
    spendable_pool=TOKENS,
)
@settings(max_examples=500, deadline=None)
def test_fee_split__any_inputs__keeper_paid_the_reserve_when_someone_can_and_nothing_leaks(
    fee, available, share, bounds, insurance, gas, spendable_pool
):
    """`_fee_split`'s claims, whoever is short: the keeper gets at least the reserve (the gas
    part, clamped) when the account's payment, the fund and the spendable pool together hold
    it; never more than the cap; the account owes at most the fee plus the reserve; the pool
    pays only what it can spend; and the tokens balance (paid in = fund change + reward less
    the pool's part). A self-liquidation owes the same and earns nothing."""
    lo, hi = bounds
    kw = dict(keeper_share_bps=share, min_reward=lo, max_reward=hi, insurance=insurance, gas=gas,
              spendable_pool=spendable_pool)  # fmt: skip
    s = model.reward.fee_split(fee, available, third_party=True, **kw)
    reserve = model.reward.clamp(gas, lo, hi)
    assert s.reward >= min(reserve, s.fee_paid + insurance + spendable_pool)
    assert s.reward <= max(hi, s.fee_paid) and s.owed <= fee + reserve
    assert 0 <= s.from_pool <= spendable_pool and s.insurance >= 0
    assert insurance + s.fee_paid == s.insurance + s.reward - s.from_pool
    own = model.reward.fee_split(fee, available, third_party=False, **kw)
    assert (own.reward, own.from_pool, own.owed, own.fee_paid) == (0, 0, s.owed, s.fee_paid)
