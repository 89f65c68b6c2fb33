"""Pure keeper rules: targets, profit, batch sizes, chunking (no chain needed)."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.constants import USDC

from margin_maintenance import model
from margin_maintenance.keeper.decisions import (
    BATCH_BASE_GAS,
    GAS_PER_ACCOUNT,
    MAX_BATCH,
    MAX_STATUS,
    AccountStatus,
    CostModel,
    Preview,
    Target,
    batch_gas,
    batch_size_for,
    chunked,
    gas_cost_usd,
    is_profitable,
    liquidatable_candidates,
    plan_batches,
    request_pays,
    select_targets,
    status_chunks,
)

A, B, C, D = (f"0x{i:040x}" for i in (0xA, 0xB, 0xC, 0xD))


def status(account: str, equity: int, maintenance: int, liquidatable: bool | None = None):
    if liquidatable is None:
        liquidatable = equity < maintenance
    return AccountStatus(account, equity, maintenance, 2 * maintenance, liquidatable)


def preview(reward: int, fraction: int = 5 * 10**17, bad_debt: int = 0) -> Preview:
    return Preview(fraction, reward, bad_debt)


def target(account: str, reward: int) -> Target:
    return Target(account, reward, 10**18, 0, 1)


def cost(**overrides) -> CostModel:
    base = dict(
        gas_price_wei=10**9,  # 1 gwei
        eth_usd=2_000,
        token_usd=1,
        token_decimals=6,
        per_account_gas=50_000,  # 0.1 USD at 1 gwei and 2,000 USD/ETH
        base_gas=50_000,
        min_profit_usd=0,
    )
    base.update(overrides)
    return CostModel(**base)


# ---- select_targets ----


def test_select_targets__no_statuses__empty():
    assert select_targets([], {}, 64) == []


def test_select_targets__all_healthy__empty():
    statuses = [status(A, 100, 50), status(B, 10, 5)]
    assert select_targets(statuses, {A: preview(1), B: preview(1)}, 64) == []


def test_select_targets__ranked_by_reward__best_first():
    statuses = [status(A, 1, 50), status(B, 1, 50), status(C, 1, 50)]
    previews = {A: preview(2 * USDC), B: preview(9 * USDC), C: preview(5 * USDC)}
    assert [t.account for t in select_targets(statuses, previews, 64)] == [B, C, A]


def test_select_targets__reward_tie__deeper_shortfall_then_address_first():
    statuses = [status(C, 40, 50), status(B, 10, 50), status(A, 40, 50)]
    previews = {a: preview(USDC) for a in (A, B, C)}
    # B is 40 short, A and C 10 short each: B first, then A before C by address.
    assert [t.account for t in select_targets(statuses, previews, 64)] == [B, A, C]


def test_select_targets__max_batch__keeps_the_best():
    statuses = [status(a, 1, 50) for a in (A, B, C, D)]
    previews = {A: preview(1), B: preview(4), C: preview(3), D: preview(2)}
    assert [t.account for t in select_targets(statuses, previews, 2)] == [B, C]
    assert select_targets(statuses, previews, 0) == []


def test_select_targets__missing_or_zero_preview__skipped():
    statuses = [status(A, 1, 50), status(B, 1, 50), status(C, 1, 50)]
    previews = {A: preview(5), B: preview(0, fraction=0)}  # B healed meanwhile; C not priced
    assert [t.account for t in select_targets(statuses, previews, 64)] == [A]


def test_select_targets__duplicate_account_any_case__once():
    statuses = [status(A, 1, 50), status(A.upper().replace("0X", "0x"), 1, 50)]
    assert len(select_targets(statuses, {A: preview(5)}, 64)) == 1


def test_select_targets__zero_reward_still_ranked_last():
    statuses = [status(A, -10, 50), status(B, 1, 50)]
    previews = {A: preview(0, fraction=10**18, bad_debt=10), B: preview(3)}
    ranked = select_targets(statuses, previews, 64)
    assert [t.account for t in ranked] == [B, A]
    assert ranked[1].bad_debt == 10


def test_select_targets__negative_max_batch__rejected():
    with pytest.raises(ValueError):
        select_targets([], {}, -1)


def test_liquidatable_candidates__only_flagged_rows_deepest_first():
    rows = [status(A, 45, 50), status(B, 100, 50), status(C, -5, 50), status(D, 60, 50, True)]
    assert [s.account for s in liquidatable_candidates(rows)] == [C, A, D]


# ---- profit ----


def test_is_profitable__reward_above_gas__true():
    # 100k gas at 1 gwei = 1e-4 ETH = 0.2 USD; reward 1 USDC.
    assert is_profitable(USDC, 1.0, 100_000, 10**9, 2_000, 0, token_decimals=6)


def test_is_profitable__gas_above_reward__false():
    assert not is_profitable(USDC, 1.0, 100_000, 10 * 10**9, 2_000, 0, token_decimals=6)


def test_is_profitable__exactly_at_margin__true():
    # 0.2 USD of gas; reward 0.7 USD; margin 0.5 USD: net is exactly the margin.
    assert is_profitable(700_000, 1.0, 100_000, 10**9, 2_000, 0.5, token_decimals=6)
    assert not is_profitable(699_999, 1.0, 100_000, 10**9, 2_000, 0.5, token_decimals=6)


def test_is_profitable__decimal_prices__exact():
    assert is_profitable(
        300_000, Decimal("0.1"), 1, 1, Decimal("0"), Decimal("0.03"), token_decimals=6
    )
    # 0.1 as a float is not 1/10 in binary; it is read as the decimal the user wrote.
    assert is_profitable(300_000, 0.1, 1, 1, 0.0, 0.03, token_decimals=6)


def test_is_profitable__free_gas_zero_reward__true_only_without_margin():
    assert is_profitable(0, 1.0, 100_000, 0, 2_000, 0, token_decimals=6)
    assert not is_profitable(0, 1.0, 100_000, 0, 2_000, 0.01, token_decimals=6)


def test_is_profitable__token_decimals_matter():
    # 1e6 units is 1 USD at 6 decimals but 1e-12 USD at 18.
    assert is_profitable(10**6, 1, 100_000, 10**9, 2_000, 0, token_decimals=6)
    assert not is_profitable(10**6, 1, 100_000, 10**9, 2_000, 0, token_decimals=18)


@pytest.mark.parametrize(
    "args",
    [(-1, 1, 1, 1, 1, 0), (1, -1, 1, 1, 1, 0), (1, 1, -1, 1, 1, 0), (1, 1, 1, -1, 1, 0)],
)
def test_is_profitable__negative_input__rejected(args):
    with pytest.raises(ValueError):
        is_profitable(*args, token_decimals=6)


def test_gas_cost_usd__exact():
    assert gas_cost_usd(100_000, 10**9, 2_000) == Fraction(1, 5)


# ---- batch sizing ----


def test_batch_size_for__big_block__capped_at_64():
    assert batch_size_for(30_000_000, 35_000, 60_000) == MAX_BATCH


def test_batch_size_for__tight_block__what_fits():
    # (1,000,000 - 60,000) // 35,000 = 26
    assert batch_size_for(1_000_000, 35_000, 60_000) == 26
    assert batch_gas(26, 35_000, 60_000) <= 1_000_000 < batch_gas(27, 35_000, 60_000)


def test_batch_size_for__exactly_one_fits__one():
    assert batch_size_for(95_000, 35_000, 60_000) == 1


def test_batch_size_for__nothing_fits__zero():
    assert batch_size_for(94_999, 35_000, 60_000) == 0
    assert batch_size_for(10_000, 35_000, 60_000) == 0


def test_batch_size_for__lower_cap__respected():
    assert batch_size_for(30_000_000, 35_000, 60_000, cap=10) == 10


@pytest.mark.parametrize("per_account,cap", [(0, 64), (-1, 64), (35_000, 65), (35_000, -1)])
def test_batch_size_for__bad_arguments__rejected(per_account, cap):
    with pytest.raises(ValueError):
        batch_size_for(30_000_000, per_account, 60_000, cap=cap)


# ---- plan_batches ----


def test_plan_batches__no_targets__nothing():
    assert plan_batches([], 64, 4, cost()) == ([], [])


def test_plan_batches__split_in_rank_order():
    targets = [target(f"0x{i:040x}", 10 * USDC - i) for i in range(5)]
    batches, skipped = plan_batches(targets, 2, 8, cost())
    assert [[t.account for t in b] for b in batches] == [
        [targets[0].account, targets[1].account],
        [targets[2].account, targets[3].account],
        [targets[4].account],
    ]
    assert skipped == []


def test_plan_batches__max_batches__rest_deferred_not_skipped():
    targets = [target(f"0x{i:040x}", USDC) for i in range(5)]
    batches, skipped = plan_batches(targets, 2, 1, cost())
    assert len(batches) == 1 and len(batches[0]) == 2
    assert skipped == []


def test_plan_batches__reward_below_marginal_gas__dropped():
    # Marginal gas is 0.1 USD: 50,000 units (0.05 USD) does not pay for itself.
    targets = [target(A, USDC), target(B, 50_000)]
    batches, skipped = plan_batches(targets, 64, 1, cost())
    assert [t.account for t in batches[0]] == [A]
    assert [t.account for t in skipped] == [B]


def test_plan_batches__batch_below_min_profit__dropped_with_the_rest():
    # Each batch of 2 earns 2 USD and costs 0.3 USD: net 1.7 < 1.8 required.
    targets = [target(f"0x{i:040x}", USDC) for i in range(4)]
    batches, skipped = plan_batches(targets, 2, 8, cost(min_profit_usd=1.8))
    assert batches == []
    assert len(skipped) == 4
    batches, skipped = plan_batches(targets, 2, 8, cost(min_profit_usd=1.7))
    assert len(batches) == 2 and skipped == []


def test_plan_batches__zero_batch_size__nothing():
    assert plan_batches([target(A, USDC)], 0, 4, cost()) == ([], [])


# ---- chunking ----


def test_chunked__order_and_sizes():
    assert chunked(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    assert chunked([], 3) == []


def test_status_chunks__512_per_call():
    accounts = [f"0x{i:040x}" for i in range(1_025)]
    chunks = status_chunks(accounts)
    assert [len(c) for c in chunks] == [512, 512, 1]
    assert sum(chunks, []) == accounts


@pytest.mark.parametrize("size", [0, MAX_STATUS + 1])
def test_status_chunks__size_out_of_bounds__rejected(size):
    with pytest.raises(ValueError):
        status_chunks([A], size)


@pytest.mark.parametrize(
    ("gas_price_wei", "pays"),
    [
        (10**9, False),  # 1 gwei: 200,000 gas is 0.0002 ETH = 0.40 USD, more than 0.10
        (10**7, True),  # 0.01 gwei (an L2): 0.004 USD
        (250_000_000, True),  # exactly 0.10 USD of gas: at the margin counts
        (250_000_001, False),
    ],
)
def test_request_pays__tenth_of_a_token_fee__against_gas(gas_price_wei: int, pays: bool):
    cost = CostModel(
        gas_price_wei=gas_price_wei,
        eth_usd=2_000,
        token_usd=1,
        token_decimals=6,
        per_account_gas=35_000,
        base_gas=60_000,
    )
    assert request_pays(USDC // 10, 200_000, cost) is pays


# --------------------------------------------------------------------------------------------
# The engine's gas-priced reward pays the reference keeper's own gas check
# --------------------------------------------------------------------------------------------


def test_keeper_gas_estimate__one_account_batch__within_the_gas_the_engine_prices():
    """The engine prices a liquidation of n >= 1 positions at LIQ_GAS_BASE +
    LIQ_GAS_PER_POSITION * n gas; the keeper budgets a one-account batch at no more."""
    assert model.reward.gas_units(1) >= BATCH_BASE_GAS + GAS_PER_ACCOUNT


@given(
    gwei=st.integers(1, 1_000),
    eth_usd=st.integers(100, 20_000),
    positions=st.integers(1, 8),
    premium_bps=st.integers(0, 10_000),
)
@settings(max_examples=200, deadline=None)
def test_plan_batches__reward_at_the_engine_reserve__keeper_sends_it(
    gwei, eth_usd, positions, premium_bps
):
    """An account liquidated with its reserve (no fee share at all, the worst case: the fund
    and pool empty, the account paying exactly what both requirements held) is still worth a
    one-account batch to a keeper paying the engine's smoothed gas price: the gap the
    simulator showed (a bankrupt account left open by a gas-checking keeper) is closed."""
    gas = model.KeeperGas(gwei * 10**9, eth_usd * 10**18, 0, premium_bps, 0, 10**6)
    reward = model.gas_reward(gas, 0, positions, 10**12)
    cost = CostModel(
        gas_price_wei=gas.gas_price,
        eth_usd=eth_usd,
        token_usd=1,
        token_decimals=6,
        per_account_gas=GAS_PER_ACCOUNT,
        base_gas=BATCH_BASE_GAS,
    )
    target = Target("0x" + "11" * 20, reward, 0, 0, 0)
    batches, dropped = plan_batches([target], 1, 1, cost)
    assert batches == [[target]] and dropped == []
