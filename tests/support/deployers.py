"""Plain helpers that deploy and fund what several test files use.

No fixtures here: tests/conftest.py wraps these in fixtures, and a test file that needs a
variant (another token, another scope) calls them directly. `project` is Ape's project
manager, `deployer`/`minter`/`who` are Ape accounts; nothing here imports Ape itself.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from margin_maintenance.system import System, SystemParams, deploy_system
from support.constants import (
    ETH,
    ETH_PRICE,
    FEED_DECIMALS,
    HEARTBEAT,
    MAX_UINT,
    USDC,
    USDC_DECIMALS,
    WAD,
    ZERO_ADDRESS,
)

# ---- Tokens, aggregators, feeds ----


def deploy_usdc(project: Any, deployer: Any) -> Any:
    """The 6-decimal mock USDC (snekmate ERC20) deploy_system deploys too."""
    return project.MockERC20.deploy("USD Coin (mock)", "USDC", USDC_DECIMALS, sender=deployer)


def deploy_aggregator(
    project: Any,
    deployer: Any,
    decimals: int = FEED_DECIMALS,
    answer: int | None = None,
    description: str = "ETH / USD",
) -> Any:
    """A mock Chainlink aggregator answering `answer` (default: ETH_PRICE in its decimals)."""
    if answer is None:
        answer = ETH_PRICE * 10**decimals
    return project.MockAggregator.deploy(decimals, description, answer, sender=deployer)


def deploy_feed(
    project: Any,
    deployer: Any,
    aggregator: Any,
    max_staleness: int = HEARTBEAT,
    min_answer: int = 1,
    max_answer: int = 2**255 - 1,
    sequencer: Any | None = None,
    grace: int = 0,
    stale_window: int = 0,
    stale_haircut_bps: int = 0,
) -> Any:
    """A PriceFeed adapter over `aggregator` (no L2 sequencer check unless one is given; no
    stale window unless one is given: a stale answer then stops its market)."""
    seq = sequencer.address if sequencer is not None else ZERO_ADDRESS
    return project.PriceFeed.deploy(
        aggregator,
        max_staleness,
        min_answer,
        max_answer,
        seq,
        grace,
        stale_window,
        stale_haircut_bps,
        sender=deployer,
    )


def deploy_unbound_vault(project: Any, deployer: Any) -> Any:
    """An LP vault bound to no engine yet (share decimals: the token's 6 plus 6)."""
    return project.LPVault.deploy("LP", "LP", 12, sender=deployer)


# ---- Funding ----


def fund_and_approve(token: Any, spender: Any, who: Any, amount: int, minter: Any) -> int:
    """Mint `amount` token units to `who` and approve `spender` (the engine) for everything."""
    token.mint(who, amount, sender=minter)
    token.approve(spender, MAX_UINT, sender=who)
    return amount


def seed_pool(system: System, lp: Any, amount: int, minter: Any) -> int:
    """`lp` provides `amount` token units of counterparty capital (minted for it)."""
    fund_and_approve(system.token, system.clearinghouse, lp, amount, minter)
    system.vault.add_liquidity(amount, 0, sender=lp)
    return amount


def deploy_system_with_pool(
    project: Any,
    deployer: Any,
    guardian: Any,
    token: Any | None = None,
    lp: Any | None = None,
    pool: int = 1_000_000 * USDC,
) -> System:
    """deploy_system with the default parameters (over `token` if given); with `lp`, a pool of
    `pool` token units seeded by it."""
    system = deploy_system(project, deployer, guardian, SystemParams(), token=token)
    if lp is not None:
        seed_pool(system, lp, pool, deployer)
    return system


# ---- The engine's ledgers ----


def engine_ledger_total(ch: Any, accounts: Any) -> int:
    """Sum of every ledger the engine's token balance must equal."""
    return sum(ch.collateral(a) for a in accounts) + ch.pool_assets() + ch.insurance_fund()


def assert_conserved(ch: Any, token: Any, accounts: Any) -> None:
    """The engine's token balance equals its ledgers (collateral of `accounts`, pool,
    insurance), and covers every positive claim (`assert_backed`)."""
    assert token.balanceOf(ch) == engine_ledger_total(ch, accounts)
    assert_backed(ch, token, accounts)


def assert_backed(ch: Any, token: Any, accounts: Any) -> None:
    """Claims against assets, which the equality above cannot see (it counts a negative
    balance as an asset): the pool holds at least the debt it was credited with, and the
    tokens cover the positive collateral, the insurance fund and the backed pool."""
    debt = ch.total_debt()
    assert ch.pool_assets() >= debt, "the pool has paid out debt that no token backs"
    positive = sum(max(ch.collateral(a), 0) for a in accounts)
    claims = positive + ch.insurance_fund() + ch.pool_assets() - debt
    assert token.balanceOf(ch) >= claims, "tokens short of the positive claims"


# ---- One world per module, for the access and bad-input matrices ----

CRASH_PRICE = 1_850  # USD: the world's victim (9 ETH long on 2,000 USDC) is liquidatable here


def deploy_world(project: Any, accounts: Any) -> SimpleNamespace:
    """A deployed system with one actor per role (owner and pending owner of the configurator,
    guardian, trader with a 1 ETH long on 5,000 USDC, stranger with tokens only), a 500,000
    USDC pool and a victim one price move (`crash`) away from liquidation."""
    owner, guardian, trader, victim, lp, _, stranger, pending = (accounts[i] for i in range(8))
    system = deploy_system(project, owner, guardian, SystemParams())
    ch, cfg, token, vault = system.clearinghouse, system.configurator, system.token, system.vault
    for who in (owner, guardian, trader, victim, lp, stranger, pending):
        fund_and_approve(token, ch, who, 1_000_000 * USDC, owner)
    vault.add_liquidity(500_000 * USDC, 0, sender=lp)
    ch.deposit(5_000 * USDC, sender=trader)
    ch.trade(ETH, WAD, MAX_UINT, sender=trader)
    ch.deposit(2_000 * USDC, sender=victim)
    ch.trade(ETH, 9 * WAD, MAX_UINT, sender=victim)
    cfg.transfer_ownership(pending, sender=owner)
    roles = dict(
        owner=owner, pending_owner=pending, guardian=guardian, trader=trader, stranger=stranger
    )
    return SimpleNamespace(
        system=system, ch=ch, cfg=cfg, vault=vault, token=token, lp=lp, victim=victim, **roles
    )


def close_book(w: SimpleNamespace) -> None:
    """Close the world's two longs: no market has open interest, so the vault's instant
    `add_liquidity` / `remove_liquidity` are open (with open interest only requests are)."""
    for who in (w.trader, w.victim):
        size, _ = w.ch.position(who, ETH)
        w.ch.trade(ETH, -size, 0, sender=who)
    assert not w.ch.pool_state().exposed


def crash(w: SimpleNamespace) -> None:
    """Drop ETH so the world's victim (and only the victim) is liquidatable."""
    w.system.aggregators[ETH].set_price(CRASH_PRICE * 10**FEED_DECIMALS, sender=w.owner)
    assert w.ch.is_liquidatable(w.victim)
    assert not w.ch.is_liquidatable(w.trader)
