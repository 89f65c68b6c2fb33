"""Shared fixtures: actors by role, tokens and feeds, the deployed system, amounts derived
from decimals. Constants, deploy helpers and strategies are plain code in tests/support/
(`from support.constants import ...`): tests/ is on sys.path, as it is for this conftest."""

from __future__ import annotations

import pytest

# Before anything imports it: the shared helpers and the state machine assert, and their
# failures should be reported with pytest's introspection, as in a test module.
pytest.register_assert_rewrite("support")

from support.constants import BTC, ETH, FEED_DECIMALS, HEARTBEAT, MAX_UINT, USDC, WAD  # noqa: E402
from support.deployers import (  # noqa: E402
    deploy_aggregator,
    deploy_feed,
    deploy_usdc,
    deploy_world,
    fund_and_approve,
)

from margin_maintenance.system import SystemParams, deploy_system  # noqa: E402


@pytest.fixture(scope="session")
def deployer(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def guardian(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def trader(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def trader2(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def lp(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def liquidator(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def stranger(accounts):
    return accounts[6]


@pytest.fixture
def make_aggregator(project, deployer):
    """Deploy a mock Chainlink aggregator: make_aggregator(decimals, answer, description)."""

    def _make(decimals: int = FEED_DECIMALS, answer: int | None = None, description="ETH / USD"):
        return deploy_aggregator(project, deployer, decimals, answer, description)

    return _make


@pytest.fixture
def make_feed(project, deployer):
    """Deploy a feed adapter over an aggregator with sane defaults."""

    def _make(
        aggregator,
        max_staleness: int = HEARTBEAT,
        min_answer: int = 1,
        max_answer: int = 2**255 - 1,
        sequencer=None,
        grace: int = 0,
    ):
        return deploy_feed(
            project, deployer, aggregator, max_staleness, min_answer, max_answer, sequencer, grace
        )

    return _make


@pytest.fixture
def usdc(project, deployer):
    return deploy_usdc(project, deployer)


@pytest.fixture
def make_sequencer(make_aggregator):
    """Deploy an L2 sequencer-uptime mock: decimals 0, answer 0 = up, 1 = down."""

    def _make(status: int = 0):
        return make_aggregator(0, status, "L2 Sequencer Uptime Status Feed")

    return _make


@pytest.fixture
def warp(chain):
    """Mine a block stamped `timestamp`; calls made after it see that block time (py-evm, anvil)."""

    def _warp(timestamp: int):
        chain.pending_timestamp = timestamp
        chain.mine()
        assert chain.blocks.head.timestamp == timestamp

    return _warp


# ---- The whole system ----


@pytest.fixture
def system(project, deployer, guardian):
    return deploy_system(project, deployer, guardian, SystemParams())


@pytest.fixture
def ch(system):
    return system.clearinghouse


@pytest.fixture
def vault(system):
    """The LP vault: LP shares (an ERC20) and their maths; the engine holds the tokens."""
    return system.vault


@pytest.fixture
def configurator(system):
    """The admin contract: owner (two-step), guardian, every setter and the admin events."""
    return system.configurator


@pytest.fixture
def token(system):
    return system.token


@pytest.fixture
def eth_agg(system):
    return system.aggregators[ETH]


@pytest.fixture
def btc_agg(system):
    return system.aggregators[BTC]


@pytest.fixture
def set_price(system, deployer):
    """Move a market's price through its mock aggregator, as in production."""

    def _set(market_id: int, price_usd: float):
        agg = system.aggregators[market_id]
        agg.set_price(round(price_usd * 10**FEED_DECIMALS), sender=deployer)

    return _set


@pytest.fixture
def fund(token, ch, deployer):
    """Mint `usd` whole tokens to `who` and approve the clearinghouse."""

    def _fund(who, usd: float):
        return fund_and_approve(token, ch, who, round(usd * USDC), deployer)

    return _fund


@pytest.fixture
def deposit(fund, ch):
    def _deposit(who, usd: float):
        amount = fund(who, usd)
        ch.deposit(amount, sender=who)
        return amount

    return _deposit


@pytest.fixture
def seeded_pool(fund, ch, vault, lp):
    """An LP provides 1,000,000 USDC of counterparty capital."""
    amount = fund(lp, 1_000_000)
    vault.add_liquidity(amount, 0, sender=lp)
    return amount


@pytest.fixture
def open_position(ch):
    """open_position(trader, market_id, size_units) at any price (no slippage bound)."""

    def _open(who, market_id: int, size_units: float):
        size = round(size_units * WAD)
        limit = MAX_UINT if size > 0 else 0
        return ch.trade(market_id, size, limit, sender=who)

    return _open


# ---- One world per module, for the access and bad-input matrices ----


@pytest.fixture(scope="module")
def world(project, accounts):
    """A deployed system with one actor per role and a victim one price move
    (`support.deployers.crash`) away from liquidation (`support.deployers.deploy_world`).
    Module-scoped: Ape reverts the chain to this state after every test."""
    return deploy_world(project, accounts)
