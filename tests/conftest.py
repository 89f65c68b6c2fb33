"""Shared fixtures: actors by role, tokens and feeds, amounts derived from decimals."""

from __future__ import annotations

import pytest

USDC_DECIMALS = 6
USDC = 10**USDC_DECIMALS
WAD = 10**18
FEED_DECIMALS = 8
HEARTBEAT = 3_600  # seconds an oracle answer stays fresh
ETH_PRICE = 2_000  # USD, whole
BTC_PRICE = 60_000  # USD, whole


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
        if answer is None:
            answer = ETH_PRICE * 10**decimals
        return project.MockAggregator.deploy(decimals, description, answer, sender=deployer)

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
        seq = sequencer.address if sequencer is not None else "0x" + "00" * 20
        return project.PriceFeed.deploy(
            aggregator, max_staleness, min_answer, max_answer, seq, grace, sender=deployer
        )

    return _make


@pytest.fixture
def usdc(project, deployer):
    return project.MockERC20.deploy("USD Coin (mock)", "USDC", USDC_DECIMALS, sender=deployer)


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

from margin_maintenance.system import SystemParams, deploy_system  # noqa: E402

MIN_NOTIONAL_USD = 10
KEEPER_SHARE_BPS = 5_000
MAX_PARTIAL_BPS = 8_000
MIN_KEEPER_REWARD_USD = 1
POOL_RESERVE_BPS = 1_000
ETH, BTC = 0, 1  # market ids as listed by deploy_system


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
        amount = round(usd * USDC)
        token.mint(who, amount, sender=deployer)
        token.approve(ch, 2**256 - 1, sender=who)
        return amount

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
        limit = 2**256 - 1 if size > 0 else 0
        return ch.trade(market_id, size, limit, sender=who)

    return _open


def engine_ledger_total(ch, accounts) -> int:
    """Sum of every ledger the engine's token balance must equal."""
    return sum(ch.collateral(a) for a in accounts) + ch.pool_assets() + ch.insurance_fund()


# ---- One world per module, for the access and bad-input matrices ----

CRASH_PRICE = 1_850  # USD: the world's victim (9 ETH long on 2,000 USDC) is liquidatable here


@pytest.fixture(scope="module")
def world(project, accounts):
    """A deployed system with one actor per role (owner and pending owner of the configurator,
    guardian, trader with a
    1 ETH long on 5,000 USDC, stranger with tokens only), a 500,000 USDC pool and a victim one
    price move (`crash`) away from liquidation. Module-scoped: Ape reverts the chain to this
    state after every test."""
    from types import SimpleNamespace

    owner, guardian, trader, victim, lp, _, stranger, pending = (accounts[i] for i in range(8))
    system = deploy_system(project, owner, guardian, SystemParams())
    ch, cfg, token, vault = system.clearinghouse, system.configurator, system.token, system.vault
    for who in (owner, guardian, trader, victim, lp, stranger, pending):
        token.mint(who, 1_000_000 * USDC, sender=owner)
        token.approve(ch, 2**256 - 1, sender=who)
    vault.add_liquidity(500_000 * USDC, 0, sender=lp)
    ch.deposit(5_000 * USDC, sender=trader)
    ch.trade(ETH, WAD, 2**256 - 1, sender=trader)
    ch.deposit(2_000 * USDC, sender=victim)
    ch.trade(ETH, 9 * WAD, 2**256 - 1, sender=victim)
    cfg.transfer_ownership(pending, sender=owner)
    roles = dict(
        owner=owner, pending_owner=pending, guardian=guardian, trader=trader, stranger=stranger
    )
    return SimpleNamespace(
        system=system, ch=ch, cfg=cfg, vault=vault, token=token, lp=lp, victim=victim, **roles
    )


def crash(w) -> None:
    """Drop ETH so the world's victim (and only the victim) is liquidatable."""
    w.system.aggregators[ETH].set_price(CRASH_PRICE * 10**FEED_DECIMALS, sender=w.owner)
    assert w.ch.is_liquidatable(w.victim)
    assert not w.ch.is_liquidatable(w.trader)
