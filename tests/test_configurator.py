"""The configurator satellite (contracts/Configurator.vy): the wiring between it and the engine,
the engine's `configure_*` hooks (the configurator's alone), the one-shot `bind`, and the admin
events, which now come from the configurator's address and never from the engine's.

Who may call each admin function is asserted cell by cell in test_access_matrix.py; every bound
check with its exact revert string in test_pool_admin.py and test_bad_input.py."""

from __future__ import annotations

import json

import ape
import pytest
from support.constants import (
    BTC,
    ETH,
    KEEPER_SHARE_BPS,
    MAX_PARTIAL_BPS,
    MAX_UINT,
    MIN_KEEPER_REWARD_USD,
    NOT_CONFIGURATOR,
    POOL_RESERVE_BPS,
    USDC,
    WAD,
    ZERO_ADDRESS,
)
from support.deployers import deploy_unbound_vault

from margin_maintenance.abi import ABI_DIR
from margin_maintenance.system import deploy_engine

ADMIN_EVENTS = {
    "MarketAdded",
    "MarketRiskUpdated",
    "MarketLimitsUpdated",
    "MarketFeedUpdated",
    "LiquidationParamsUpdated",
    "PoolReserveUpdated",
    "GuardianUpdated",
    "PauseChanged",
}
ADMIN_FUNCTIONS = {
    "add_market",
    "set_market_risk",
    "set_market_limits",
    "set_market_feed",
    "set_liquidation_params",
    "set_pool_reserve",
    "set_guardian",
    "pause",
    "unpause",
    "owner",
    "pending_owner",
    "transfer_ownership",
    "accept_ownership",
}


def engine_config(ch) -> tuple:
    """Everything the hooks can write, as the engine's views show it."""
    markets = tuple(tuple(ch.market(i)) for i in range(ch.market_count()))
    return (
        markets,
        tuple(ch.liquidation_params()),
        ch.pool_reserve_bps(),
        ch.guardian(),
        ch.paused(),
        ch.market_count(),
    )


@pytest.fixture
def unbound(project, deployer, token):
    """A configurator and an engine deployed for it, not yet bound."""
    vault = deploy_unbound_vault(project, deployer)
    cfg = project.Configurator.deploy(sender=deployer)
    ch = deploy_engine(project, deployer, token, vault, cfg)
    return cfg, ch


def bind_args(ch, guardian) -> tuple:
    return (
        ch,
        guardian,
        KEEPER_SHARE_BPS,
        MAX_PARTIAL_BPS,
        MIN_KEEPER_REWARD_USD * USDC,
        POOL_RESERVE_BPS,
    )


# ---- Wiring ----


def test_wiring__deployed_system__each_names_the_other(ch, configurator):
    assert ch.configurator() == configurator.address
    assert configurator.engine() == ch.address


def test_engine__zero_configurator__deploy_reverts(project, deployer, token):
    vault = deploy_unbound_vault(project, deployer)
    with ape.reverts("clearinghouse: zero configurator"):
        deploy_engine(project, deployer, token, vault, ZERO_ADDRESS)


def test_bind__fresh_pair__sets_guardian_and_params_and_logs_from_configurator(
    unbound, deployer, guardian
):
    cfg, ch = unbound
    assert engine_config(ch) == ((), (0, 0, 0), 0, ZERO_ADDRESS, False, 0)

    tx = cfg.bind(*bind_args(ch, guardian), sender=deployer)

    assert cfg.engine() == ch.address
    assert engine_config(ch) == ((), (5_000, 8_000, USDC), 1_000, guardian.address, False, 0)
    names = [log.event_name for log in tx.events]
    assert names == ["GuardianUpdated", "LiquidationParamsUpdated", "PoolReserveUpdated"]
    assert {log.contract_address for log in tx.events} == {cfg.address}
    [log] = tx.decode_logs(cfg.LiquidationParamsUpdated)
    assert (log.keeper_share_bps, log.max_partial_bps, log.min_keeper_reward) == (
        5_000,
        8_000,
        USDC,
    )


def test_bind__second_call__reverts_already_bound(ch, configurator, deployer, guardian):
    before = engine_config(ch)
    with ape.reverts("configurator: already bound"):
        configurator.bind(*bind_args(ch, guardian), sender=deployer)
    assert engine_config(ch) == before and configurator.engine() == ch.address


def test_bind__not_owner__reverts(unbound, stranger, guardian):
    cfg, ch = unbound
    with ape.reverts("ownable: caller is not the owner"):
        cfg.bind(*bind_args(ch, guardian), sender=stranger)
    assert cfg.engine() == ZERO_ADDRESS


def test_bind__engine_of_another_configurator__reverts_wrong_engine(
    project, ch, deployer, guardian
):
    """An engine wired to another configurator (here the deployed system's) cannot be bound."""
    other = project.Configurator.deploy(sender=deployer)
    with ape.reverts("configurator: wrong engine"):
        other.bind(*bind_args(ch, guardian), sender=deployer)
    assert other.engine() == ZERO_ADDRESS


def test_bind__account_not_a_contract__reverts_wrong_engine(unbound, deployer, guardian, stranger):
    cfg, _ = unbound
    with ape.reverts("configurator: wrong engine"):
        cfg.bind(*bind_args(stranger, guardian), sender=deployer)
    assert cfg.engine() == ZERO_ADDRESS


def test_bind__bad_parameters__same_bound_checks_as_the_setters(unbound, deployer, guardian):
    cfg, ch = unbound
    with ape.reverts("configurator: bad keeper share"):
        cfg.bind(ch, guardian, 10_001, 8_000, USDC, 1_000, sender=deployer)
    with ape.reverts("configurator: bad partial bound"):
        cfg.bind(ch, guardian, 5_000, 0, USDC, 1_000, sender=deployer)
    with ape.reverts("configurator: minimum reward too high"):
        cfg.bind(ch, guardian, 5_000, 8_000, 1_000 * USDC + 1, 1_000, sender=deployer)
    with ape.reverts("configurator: bad pool reserve"):
        cfg.bind(ch, guardian, 5_000, 8_000, USDC, 10_001, sender=deployer)
    assert cfg.engine() == ZERO_ADDRESS


@pytest.mark.parametrize(
    "call",
    [
        lambda cfg, who, feed: cfg.add_market(feed, 1_000, 500, 100, 5, WAD, USDC, sender=who),
        lambda cfg, who, feed: cfg.set_pool_reserve(1_000, sender=who),
        lambda cfg, who, feed: cfg.set_guardian(who, sender=who),
        lambda cfg, who, feed: cfg.pause(sender=who),
        lambda cfg, who, feed: cfg.unpause(sender=who),
    ],
    ids=["add_market", "set_pool_reserve", "set_guardian", "pause", "unpause"],
)
def test_setters__before_bind__revert_not_bound(unbound, deployer, system, call):
    cfg, ch = unbound
    with ape.reverts("configurator: not bound"):
        call(cfg, deployer, system.feeds[0])
    assert engine_config(ch) == ((), (0, 0, 0), 0, ZERO_ADDRESS, False, 0)


# ---- The hooks answer to the configurator alone ----

HOOKS = {
    "configure_market": lambda who: (ETH, 0, 0),
    "configure_params": lambda who: (0, 0, who),
    "configure_pause": lambda who: (True,),
}


@pytest.mark.parametrize("hook", list(HOOKS))
@pytest.mark.parametrize("role", ["stranger", "deployer", "guardian", "trader"])
def test_hooks__anyone_but_the_configurator__reverts_state_unchanged(ch, request, hook, role):
    """Strangers, the configurator's owner and the guardian alike: only the configurator's own
    calls reach the engine's state."""
    who = request.getfixturevalue(role)
    before = engine_config(ch)
    with ape.reverts(NOT_CONFIGURATOR):
        getattr(ch, hook)(*HOOKS[hook](who), sender=who)
    assert engine_config(ch) == before


def test_hooks__new_owner_after_transfer__still_cannot_call_them(
    ch, configurator, deployer, stranger
):
    configurator.transfer_ownership(stranger, sender=deployer)
    configurator.accept_ownership(sender=stranger)
    with ape.reverts(NOT_CONFIGURATOR):
        ch.configure_pause(True, sender=stranger)
    configurator.pause(sender=stranger)  # through the configurator it can
    assert ch.paused()


# ---- Events come from the configurator, never from the engine ----


def test_admin_events__every_setter__logged_by_configurator_only(
    ch, configurator, system, deployer, guardian
):
    txs = [
        configurator.add_market(system.feeds[0], 1_000, 500, 100, 5, WAD, USDC, sender=deployer),
        configurator.set_market_risk(BTC, 2_000, 1_000, 300, 20, sender=deployer),
        configurator.set_market_limits(BTC, 2 * WAD, 2 * USDC, sender=deployer),
        configurator.set_market_feed(BTC, system.feeds[1], sender=deployer),
        configurator.set_liquidation_params(4_000, 8_000, 2 * USDC, sender=deployer),
        configurator.set_pool_reserve(2_000, sender=deployer),
        configurator.set_guardian(guardian, sender=deployer),
        configurator.pause(sender=guardian),
        configurator.unpause(sender=deployer),
    ]
    seen = set()
    for tx in txs:
        assert tx.events, tx.txn_hash
        for log in tx.events:
            assert log.contract_address == configurator.address, log.event_name
            seen.add(log.event_name)
    assert seen == ADMIN_EVENTS
    [paused] = txs[-2].decode_logs(configurator.PauseChanged)
    assert (paused.by, paused.paused) == (guardian.address, True)
    # Each change is stored in the engine, and the other fields of the words are kept.
    info = ch.market(BTC)
    assert (info.initial_margin_bps, info.maintenance_margin_bps) == (2_000, 1_000)
    assert (info.liquidation_fee_bps, info.trading_fee_bps) == (300, 20)
    assert (info.max_open_interest, info.min_position_notional) == (2 * WAD, 2 * USDC)
    assert info.feed == system.feeds[1].address
    assert tuple(ch.liquidation_params()) == (4_000, 8_000, 2 * USDC)
    assert (ch.pool_reserve_bps(), ch.guardian(), ch.paused()) == (2_000, guardian.address, False)


def test_setters__while_paused__keep_every_market_paused(
    ch, configurator, system, deployer, guardian, deposit, seeded_pool, trader
):
    """The configurator repacks a market's word with the engine's pause flag: a setter (or a
    new listing) during a pause leaves the market paused, and unpause releases all of them."""
    configurator.pause(sender=guardian)
    configurator.set_market_risk(ETH, 2_000, 1_000, 300, 20, sender=deployer)
    configurator.add_market(system.feeds[0], 1_000, 500, 100, 5, WAD, USDC, sender=deployer)
    deposit(trader, 1_000)
    for m in (ETH, BTC, 2):
        with ape.reverts("clearinghouse: paused"):
            ch.trade(m, WAD // 100, MAX_UINT, sender=trader)
    configurator.unpause(sender=deployer)
    ch.trade(2, WAD // 100, MAX_UINT, sender=trader)
    assert ch.position(trader, 2).size == WAD // 100


def test_engine_abi__no_admin_function_or_event_left():
    """Administration is the configurator's: the engine's ABI has no owner, setter or admin
    event, and the configurator's has every one of them."""
    engine = json.loads((ABI_DIR / "Clearinghouse.json").read_text())
    cfg = json.loads((ABI_DIR / "Configurator.json").read_text())
    names = {e.get("name") for e in engine}
    assert names & (ADMIN_FUNCTIONS | ADMIN_EVENTS) == set()
    assert {"configure_market", "configure_params", "configure_pause", "configurator"} <= names
    cfg_names = {e.get("name") for e in cfg}
    assert ADMIN_FUNCTIONS | ADMIN_EVENTS | {"bind", "engine"} <= cfg_names
