"""Deploy the whole system with Ape: token, feeds, LP vault, configurator, clearinghouse and
markets.

One function used by the tests, the `ape run deploy` script and the simulator, so every
entry point builds the same system with the same defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
WAD = 10**18
FEED_DECIMALS = 8


@dataclass(frozen=True)
class MarketParams:
    """One market's listing: the symbol, its start price and its risk parameters."""

    symbol: str
    price_usd: float
    initial_margin_bps: int = 1_000  # 10x maximum leverage
    maintenance_margin_bps: int = 500
    liquidation_fee_bps: int = 100
    trading_fee_bps: int = 5
    max_open_interest_units: int = 1_000_000  # whole base units per side
    min_position_notional_usd: int = 10
    heartbeat_s: int = 3_600
    # A feed past its heartbeat freezes nothing for this long: its last price is used,
    # moved `stale_haircut_bps` against whoever is judged (PriceFeed.mark / pool_marks).
    stale_window_s: int = 7_200
    stale_haircut_bps: int = 500


@dataclass(frozen=True)
class SystemParams:
    """Engine-wide parameters (token units are whole tokens here; converted on deploy)."""

    token_decimals: int = 6
    keeper_share_bps: int = 5_000
    max_partial_bps: int = 8_000  # at mm 5% / im 10% / fee 1% the fraction at E = MMR is 0.556
    min_keeper_reward: float = 1.0
    pool_reserve_bps: int = 1_000
    markets: tuple[MarketParams, ...] = field(
        default_factory=lambda: (
            MarketParams("ETH-USD", 2_000.0),
            MarketParams("BTC-USD", 60_000.0, max_open_interest_units=50_000),
        )
    )


@dataclass
class System:
    """Handles on a deployed system."""

    token: Any
    vault: Any  # the LPVault: LP shares (an ERC20) and their maths; the tokens stay in the engine
    clearinghouse: Any
    configurator: Any  # administration: owner, guardian, every admin setter and admin event
    aggregators: list[Any]
    feeds: list[Any]
    market_ids: list[int]
    symbols: list[str]
    start_block: int
    lens: Any = None  # the ClearinghouseLens (stateless reader), when deployed

    @property
    def unit(self) -> int:
        return 10 ** int(self.token.decimals())

    @property
    def lp_token(self) -> Any:
        """The LP share token, which is the vault (the deployment record's `lp_token`)."""
        return self.vault


def feed_answer(price_usd: float, decimals: int = FEED_DECIMALS) -> int:
    """A USD price as an aggregator answer with `decimals` decimals (rounded to nearest)."""
    return round(price_usd * 10**decimals)


def deploy_system(
    project: Any,
    deployer: Any,
    guardian: Any | None = None,
    params: SystemParams | None = None,
    token: Any | None = None,
    lens: bool = False,
) -> System:
    """Deploy mock token (unless given), mock aggregators, adapters, the LP vault, the
    configurator, the clearinghouse wired to both (then each satellite's one-shot `bind`: the
    configurator's sets the guardian and parameters, the vault's renounces its deployer), and
    list every market through the configurator; with `lens`, deploy a ClearinghouseLens too."""
    from ape import chain

    params = params or SystemParams()
    start_block = chain.blocks.head.number or 0
    if token is None:
        token = project.MockERC20.deploy(
            "USD Coin (mock)", "USDC", params.token_decimals, sender=deployer
        )
    decimals = int(token.decimals())
    unit = 10**decimals
    # Shares carry 6 more decimals than the token: the pool mints 10**6 shares per token unit.
    vault = project.LPVault.deploy("Margin Maintenance LP", "mmLP", decimals + 6, sender=deployer)
    # The satellites first: the engine takes both addresses as immutables, and each `bind`
    # checks that the engine names it (one-shot).
    cfg = project.Configurator.deploy(sender=deployer)
    ch = project.Clearinghouse.deploy(token, vault, cfg, sender=deployer)
    vault.bind(ch, sender=deployer)
    cfg.bind(
        ch,
        guardian or deployer,
        params.keeper_share_bps,
        params.max_partial_bps,
        round(params.min_keeper_reward * unit),
        params.pool_reserve_bps,
        sender=deployer,
    )

    aggregators, feeds, ids, symbols = [], [], [], []
    for m in params.markets:
        base = m.symbol.split("-")[0]
        agg = project.MockAggregator.deploy(
            FEED_DECIMALS, f"{base} / USD", feed_answer(m.price_usd), sender=deployer
        )
        feed = project.PriceFeed.deploy(
            agg,
            m.heartbeat_s,
            0,
            2**255 - 1,
            ZERO_ADDRESS,
            0,
            m.stale_window_s,
            m.stale_haircut_bps,
            sender=deployer,
        )
        tx = cfg.add_market(
            feed,
            m.initial_margin_bps,
            m.maintenance_margin_bps,
            m.liquidation_fee_bps,
            m.trading_fee_bps,
            m.max_open_interest_units * WAD,
            m.min_position_notional_usd * unit,
            sender=deployer,
        )
        # Read the id from the event: on the in-process chain Ape computes `return_value` by
        # re-running the call after the block, which gives the next id, not this one.
        ids.append(int(tx.decode_logs(cfg.MarketAdded)[0].market_id))
        aggregators.append(agg)
        feeds.append(feed)
        symbols.append(m.symbol)
    reader = project.ClearinghouseLens.deploy(sender=deployer) if lens else None
    return System(token, vault, ch, cfg, aggregators, feeds, ids, symbols, start_block, reader)
