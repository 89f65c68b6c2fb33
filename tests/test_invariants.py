"""Stateful fuzzing of the real clearinghouse (SPEC.md sections 2-5).

The Hypothesis state machine, `MarginMachine` in tests/support/state_machine.py, drives the
deployed contracts on the in-process chain with three traders, two LPs, two keepers and the
owner: deposits, withdrawals (including too much), trades in both directions on both markets,
LP liquidity, price moves with 30-60% jumps, time passing beyond the oracle heartbeat,
liquidations by random callers and owner parameter changes. The engine mirror of
`margin_maintenance.model.engine` predicts every outcome exactly (which revert, which events,
which balances); after every step the mirror, an event-only ledger (what an auditor can
rebuild) and the chain must agree, and the spec's invariants must hold. This file deploys its
world, runs it and keeps the example tests of the defects it found.

The system is deployed once per module; each example restores the same snapshot
(`chain.provider.snapshot/restore`, not `chain.isolate()`, which swallows assertion errors).
The production lens (contracts/ClearinghouseLens.vy) reads the engine's state in
one call per step.

Settings from the environment: MM_FUZZ_EXAMPLES (default 25), MM_FUZZ_STEPS (default 30
steps per example), MM_FUZZ_SHRINK=0 to skip shrinking. A long run:

    MM_FUZZ_EXAMPLES=500 ape test tests/test_invariants.py

The examples and steps run, and how often each action and outcome occurred, are printed at
the end of the module. Defects the machine found (D1, D2) have example tests at the end of
this file that failed before their fix.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test
from support.constants import MAX_UINT, USDC, WAD
from support.state_machine import MarginMachine, QuietTracebacks, deploy_machine_world, stats_report
from tqdm import tqdm

# ---- Settings (from the environment; `make fuzz` sets MM_FUZZ_EXAMPLES and MM_FUZZ_PROGRESS) ----

EXAMPLES = int(os.environ.get("MM_FUZZ_EXAMPLES", "25"))
STEPS = int(os.environ.get("MM_FUZZ_STEPS", "30"))
PROGRESS = os.environ.get("MM_FUZZ_PROGRESS") == "1"
# MM_FUZZ_SHRINK=0 reports the first failing sequence as found (shrinking a long EVM
# sequence can take Hypothesis's full five minutes).
PHASES = [p for p in Phase if os.environ.get("MM_FUZZ_SHRINK", "1") != "0" or p != Phase.shrink]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=PHASES,
    print_blob=True,
)


# ---- The deployed world (once per module) ----


@pytest.fixture(scope="module")
def world(project, accounts, request):
    quiet = QuietTracebacks()
    logging.getLogger("ape").addFilter(quiet)
    request.addfinalizer(lambda: logging.getLogger("ape").removeFilter(quiet))
    yield deploy_machine_world(project, accounts)
    report = stats_report()
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is None:
        print(report)
    else:
        with capture.global_and_fixture_disabled():
            print(f"\n{report}")


# ---- Defects the machine found, as example tests ----


@pytest.mark.parametrize("min_reward_usd", [1, 5])
def test_partial_liquidation__minimum_reward_binds__remainder_meets_initial(
    ch, deposit, seeded_pool, set_price, deployer, trader, liquidator, min_reward_usd, configurator
):
    """SPEC section 3: a partial liquidation closes the smallest fraction that brings equity
    back to at least the initial requirement of what remains, after the liquidation fee
    (and so never lowers the margin ratio). The account pays at least the minimum keeper
    reward, so the fraction also covers that flat amount (found as defect D1 by this machine:
    the fraction used to come from the proportional fee only). Both requirements now hold
    the minimum reward R as a reserve: the plan spends it twice (paid now, held again)."""
    configurator.set_liquidation_params(5_000, 8_000, min_reward_usd * USDC, sender=deployer)
    deposit(trader, 10.5 + min_reward_usd)  # the reserve on top of the initial 10
    ch.trade(0, WAD // 20, MAX_UINT, sender=trader)  # 0.05 ETH at $2,000: 100 tokens
    set_price(0, 1_883)  # equity 4.55 + R < maintenance 4.71 + R; proportional fee 0.94
    ratio_before = Fraction(ch.equity(trader), ch.maintenance_requirement(trader))
    assert ch.is_liquidatable(trader)

    tx = ch.liquidate(trader, sender=liquidator)

    # Before the D1 fix: with a 1-token minimum, equity fell below the initial requirement of
    # the remainder; with a 5-token minimum the fee took all the equity and left the account
    # open and liquidatable. Now R = 1 plans f = (9.415 - 4.55 + R) / 8.4735 = 0.69: partial,
    # restoring the initial requirement; R = 5 plans f > 1: the account is closed.
    full = tx.decode_logs(ch.Liquidated)[0].full
    assert full == (min_reward_usd == 5)
    if full:
        assert ch.account_market_ids(trader) == []
        assert not ch.is_liquidatable(trader)
    else:
        ratio_after = Fraction(ch.equity(trader), ch.maintenance_requirement(trader))
        assert ratio_after >= ratio_before
        assert ch.equity(trader) >= ch.initial_requirement(trader)


@pytest.mark.parametrize(("pool_usd", "expect_full"), [(5_000, True), (12_000, False)])
def test_partial_liquidation__profit_haircut__margin_ratio_not_lowered(
    ch, vault, deposit, fund, set_price, trader, liquidator, lp, pool_usd, expect_full
):
    """A partial liquidation must not lower the margin ratio (SPEC section 3), also when the
    account's equity is mostly unrealised ETH profit that a thin pool cannot pay in full.
    Defect D2 (found by the machine): the fraction was planned on the full paper equity, the
    close then realised it with a haircut, and the ratio fell from 0.91 to 0.62 with the
    account still liquidatable (5,000 pool). Fixed: the plan uses min(equity, collateral +
    pool assets), since net profit beyond the pool's assets is haircut when realised."""
    vault.add_liquidity(fund(lp, pool_usd), 0, sender=lp)  # a thin pool
    deposit(trader, 1_000)
    ch.trade(0, 4 * WAD, MAX_UINT, sender=trader)  # 4 ETH long at $2,000
    set_price(0, 10_000)  # +32,000 unrealised: more than the pool holds
    ch.trade(1, -9 * WAD // 2, 0, sender=trader)  # 4.5 BTC short, margined by that profit
    set_price(1, 64_000)  # BTC leg loses 18,000
    ratio_before = Fraction(ch.equity(trader), ch.maintenance_requirement(trader))
    assert ch.is_liquidatable(trader)
    planned = ch.liquidation_preview(trader)

    tx = ch.liquidate(trader, sender=liquidator)

    [haircut] = tx.decode_logs(ch.ProfitHaircut)
    assert haircut.paid < haircut.owed  # the pool still could not pay the ETH profit in full
    [log] = tx.decode_logs(ch.Liquidated)
    assert log.fraction == planned[0]  # the preview keepers read plans the same close
    # 5,000 pool: realisable equity is so low that the fraction passes the partial bound;
    # 12,000 pool: a partial close (fraction ~0.67) that restores the initial requirement.
    assert log.full == expect_full
    if log.full:
        assert ch.account_market_ids(trader) == []
    else:
        assert not ch.is_liquidatable(trader)
        assert Fraction(ch.equity(trader), ch.maintenance_requirement(trader)) >= ratio_before
        assert ch.equity(trader) >= ch.initial_requirement(trader)


@pytest.mark.slow
def test_state_machine__random_actions__invariants_hold(world):
    MarginMachine.w = world
    # `make fuzz` sets MM_FUZZ_PROGRESS=1: a bar per example (Hypothesis may run a few more
    # than max_examples while it explores or shrinks), with the steps run so far.
    with tqdm(total=EXAMPLES, desc="state machine", unit="example", disable=not PROGRESS) as bar:
        MarginMachine.progress = bar
        try:
            run_state_machine_as_test(MarginMachine, settings=FUZZ_SETTINGS)
        finally:
            MarginMachine.progress = None
