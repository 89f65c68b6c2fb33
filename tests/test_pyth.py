"""The Pyth adapter against a local implementation of the Pyth interface
(`contracts/mocks/MockPyth.vy`): exponent normalisation, the confidence bound, the fee taken
from the caller's value and the rest refunded, and a liquidation on a Pyth price while the push
feed is dead, through the engine's `liquidate_with_prices`."""

from __future__ import annotations

import ape
import pytest
from eth_abi import encode
from support.constants import ETH, HEARTBEAT, MAX_UINT, STALE_WINDOW, USDC, WAD, ZERO_ADDRESS
from support.deployers import fund_and_approve

from margin_maintenance.system import deploy_engine

FEE = 10**12  # wei per update
PYTH_ID = b"\x11" * 32


@pytest.fixture
def pyth(project, deployer):
    return project.MockPyth.deploy(FEE, sender=deployer)


@pytest.fixture
def adapter(project, deployer, pyth):
    return project.PythAdapter.deploy(pyth, 200, sender=deployer)  # confidence within 2%


def blob(pyth, *updates) -> bytes:
    return encode(["bytes[]"], [[bytes(pyth.create_update(*u)) for u in updates]])


def now(chain) -> int:
    return int(chain.pending_timestamp) - 1


@pytest.mark.parametrize(
    ("price", "expo", "wad"),
    [
        (1850_12345678, -8, 1850_12345678 * 10**10),
        (1850, 0, 1850 * WAD),
        (185_012, -20, 1850),  # under a WAD unit: rounded down
    ],
    ids=["expo-8", "expo0", "expo-20"],
)
def test_latest__exponent__normalised_to_wad(pyth, adapter, deployer, chain, price, expo, wad):
    pyth.updatePriceFeeds(
        [pyth.create_update(PYTH_ID, price, 0, expo, now(chain))], sender=deployer, value=FEE
    )
    assert adapter.latest(PYTH_ID)[0] == wad


def test_latest__wide_confidence_or_non_positive__unusable(pyth, adapter, deployer, chain):
    t = now(chain)
    pyth.updatePriceFeeds([pyth.create_update(PYTH_ID, 1000, 21, 0, t)], sender=deployer, value=FEE)
    assert tuple(adapter.latest(PYTH_ID)) == (0, t)  # 2.1% > 2%
    pyth.updatePriceFeeds(
        [pyth.create_update(PYTH_ID, -5, 0, 0, t + 1)], sender=deployer, value=FEE
    )
    assert tuple(adapter.latest(PYTH_ID)) == (0, t + 1)


def test_update__fee_taken__rest_refunded__too_little_refused(pyth, adapter, accounts, chain):
    caller = accounts[5]
    data = blob(pyth, (PYTH_ID, 1850, 0, 0, now(chain)))
    assert adapter.update_fee(data) == FEE
    with ape.reverts("pyth: fee too small"):
        adapter.update_prices(data, caller, sender=caller, value=FEE - 1)
    before = caller.balance
    tx = adapter.update_prices(data, caller, sender=caller, value=10 * FEE)
    assert caller.balance == before - tx.total_fees_paid - FEE  # only the fee was kept
    assert pyth.balance == FEE


def _head(count: int, offsets: list[int]) -> bytes:
    return encode(["uint256", "uint256"], [32, count]) + b"".join(
        o.to_bytes(32, "big") for o in offsets
    )


def _malformed(pyth, chain) -> list[tuple[bytes, str]]:
    good = blob(pyth, (PYTH_ID, 1850, 0, 0, now(chain)))
    item = bytes(pyth.create_update(PYTH_ID, 1850, 0, 0, now(chain)))
    one = encode(["uint256"], [len(item)]) + item  # 160 bytes: a multiple of 32
    return [
        (b"\x00" * 10, "pyth: malformed update"),  # shorter than the head
        (b"\x00" * 31 + b"\x40" + good[32:], "pyth: malformed update"),  # head offset not 32
        (_head(0, []), "pyth: no update"),
        (_head(3, [96, 96 + 192, 96 + 384]) + one * 3, "pyth: too many updates"),
        (_head(1, [64]) + one, "pyth: malformed update"),  # item offset past its slot
        (_head(1, [32]), "pyth: malformed update"),  # item length word missing
        (_head(1, [32]) + encode(["uint256"], [1_953]) + b"\x00" * 1_984, "pyth: update too long"),
        (good[:-32], "pyth: malformed update"),  # truncated item
        (good + b"\x00" * 32, "pyth: malformed update"),  # bytes after the last item
    ]


@pytest.mark.parametrize(
    "case",
    range(9),
    ids=[
        "short",
        "head-offset",
        "empty",
        "three",
        "item-offset",
        "no-length",
        "too-long",
        "truncated",
        "trailing",
    ],
)
def test_update__malformed_blob__refused_with_a_reason(pyth, adapter, accounts, chain, case):
    caller = accounts[5]
    data, reason = _malformed(pyth, chain)[case]
    with ape.reverts(reason):
        adapter.update_prices(data, caller, sender=caller, value=10 * FEE)
    with ape.reverts(reason):
        adapter.update_fee(data)
    assert pyth.balance == 0


@pytest.fixture
def engine_on_pyth(project, deployer, adapter, pyth):
    """An engine whose price updater is the Pyth adapter and whose ETH market reads Pyth
    through a SignedPriceFeed (the push feed behind it)."""
    token = project.MockERC20.deploy("USD Coin (mock)", "USDC", 6, sender=deployer)
    vault = project.LPVault.deploy("LP", "LP", 12, sender=deployer)
    cfg = project.Configurator.deploy(sender=deployer)
    ch = deploy_engine(project, deployer, token, vault, cfg, adapter)
    vault.bind(ch, sender=deployer)
    cfg.bind(ch, deployer, 5_000, 8_000, USDC, 1_000, sender=deployer)
    agg = project.MockAggregator.deploy(8, "ETH / USD", 2_000 * 10**8, sender=deployer)
    push = project.PriceFeed.deploy(
        agg, HEARTBEAT, 0, 2**255 - 1, ZERO_ADDRESS, 0, STALE_WINDOW, 500, sender=deployer
    )
    feed = project.SignedPriceFeed.deploy(adapter, PYTH_ID, push, 60, 600, sender=deployer)
    cfg.add_market(feed, 1_000, 500, 100, 5, 10**6 * WAD, 10 * USDC, sender=deployer)
    return ch, token, vault


def test_liquidate_with_prices__pyth_price__push_feed_dead(
    engine_on_pyth, pyth, deployer, accounts, chain
):
    ch, token, vault = engine_on_pyth
    lp, victim, keeper = accounts[4], accounts[5], accounts[6]
    fund_and_approve(token, ch, lp, 1_000_000 * USDC, deployer)
    vault.add_liquidity(1_000_000 * USDC, 0, sender=lp)
    fund_and_approve(token, ch, victim, 2_000 * USDC, deployer)
    ch.deposit(2_000 * USDC, sender=victim)
    ch.trade(ETH, 9 * WAD, MAX_UINT, sender=victim)
    chain.pending_timestamp += HEARTBEAT + STALE_WINDOW + 10
    chain.mine()
    data = blob(pyth, (PYTH_ID, 1850_00000000, 50_000000, -8, now(chain)))
    with ape.reverts("pyth: fee too small"):
        ch.liquidate_with_prices(data, [victim], sender=keeper)
    before = keeper.balance
    tx = ch.liquidate_with_prices(data, [victim], sender=keeper, value=5 * FEE)
    [log] = tx.decode_logs(ch.Liquidated)
    assert log.account == victim.address and log.keeper_reward > 0
    assert keeper.balance == before - tx.total_fees_paid - FEE  # the engine refunds the rest
