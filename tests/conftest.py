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
