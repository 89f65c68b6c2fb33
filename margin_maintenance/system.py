"""Deploy the whole system with Ape: token, feeds, LP vault, configurator, clearinghouse and
markets.

One function used by the tests, the `ape run deploy` script and the simulator, so every
entry point builds the same system with the same defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from margin_maintenance.attest.codec import feed_id
from margin_maintenance.attest.signers import SignerSet, parse_kn

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
    # Signed prices (PriceVerifier): how old a report a trade / a liquidation may use, and the
    # bounds a report must meet to be accepted (confidence, distance from a push answer
    # younger than the heartbeat).
    signed_trade_max_age_s: int = 60
    signed_liquidation_max_age_s: int = 120
    signed_max_conf_bps: int = 200
    signed_max_dev_bps: int = 1_000
    # Funding and the skew premium (Configurator.set_market_funding): the skew scale in whole
    # base units (0: funding off, the default) and the funding velocity in bps of the price
    # per day, per day, at a skew of one scale.
    skew_scale_units: int = 0
    max_funding_velocity_bps: int = 0


@dataclass(frozen=True)
class SystemParams:
    """Engine-wide parameters (token units are whole tokens here; converted on deploy)."""

    token_decimals: int = 6
    keeper_share_bps: int = 5_000
    max_partial_bps: int = 8_000  # at mm 5% / im 10% / fee 1% the fraction at E = MMR is 0.556
    min_keeper_reward: float = 1.0
    pool_reserve_bps: int = 1_000
    # The price verifier's signer set: k of n local keys (margin_maintenance.attest.SignerSet),
    # and whether the markets read signed prices (SignedPriceFeed over each push feed) or the
    # push feeds alone (the verifier is deployed and configured either way).
    signers: str = "3/5"
    signed_prices: bool = False
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
    verifier: Any = None  # the PriceVerifier (the engine's price updater)
    signer_set: Any = None  # the local SignerSet whose k of n keys sign reports
    feed_ids: list[bytes] = field(default_factory=list)  # each market's signed feed id
    push_feeds: list[Any] = field(default_factory=list)  # each market's PriceFeed adapter

    def push_feed(self, i: int) -> Any:
        """Market `i`'s push PriceFeed (heartbeat, stale window): the feed itself on a
        push-only market, the one under its SignedPriceFeed on a signed one."""
        return self.push_feeds[i] if self.push_feeds else self.feeds[i]

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
    verifier = project.PriceVerifier.deploy(cfg, sender=deployer)
    ch = deploy_engine(project, deployer, token, vault, cfg, verifier)
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

    signer_set = SignerSet.local(*parse_kn(params.signers))
    cfg.set_price_signers(list(signer_set.addresses), signer_set.threshold, sender=deployer)

    aggregators, feeds, ids, symbols, feed_ids, push_feeds = [], [], [], [], [], []
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
        fid = feed_id(m.symbol)
        cfg.set_price_feed(
            fid,
            feed,
            m.heartbeat_s,
            m.signed_liquidation_max_age_s,
            m.signed_max_conf_bps,
            m.signed_max_dev_bps,
            sender=deployer,
        )
        push = feed
        if params.signed_prices:
            feed = project.SignedPriceFeed.deploy(
                verifier,
                fid,
                push,
                m.signed_trade_max_age_s,
                m.signed_liquidation_max_age_s,
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
        if m.skew_scale_units:
            cfg.set_market_funding(
                ids[-1], m.skew_scale_units, m.max_funding_velocity_bps, sender=deployer
            )
        aggregators.append(agg)
        feeds.append(feed)
        symbols.append(m.symbol)
        feed_ids.append(fid)
        push_feeds.append(push)
    reader = project.ClearinghouseLens.deploy(sender=deployer) if lens else None
    return System(
        token,
        vault,
        ch,
        cfg,
        aggregators,
        feeds,
        ids,
        symbols,
        start_block,
        reader,
        verifier,
        signer_set,
        feed_ids,
        push_feeds,
    )


def deploy_engine(
    project: Any, deployer: Any, token: Any, vault: Any, cfg: Any, verifier: Any = ZERO_ADDRESS
) -> Any:
    """The engine's extension, then the engine wired as it is (its constructor checks), as
    one handle (`engine_at`). `verifier` is the price updater (empty: push prices only)."""
    extension = project.ClearinghouseExtension.deploy(token, vault, cfg, verifier, sender=deployer)
    deployed = project.Clearinghouse.deploy(token, vault, cfg, verifier, extension, sender=deployer)
    return engine_at(project, deployed.address)


def engine_contract_type(project: Any) -> Any:
    """The Clearinghouse's contract type as callers see it: its ABI merged with its
    extension's (the functions the engine runs by delegatecall at its own address)."""
    from ethpm_types import ContractType

    from margin_maintenance.abi import merge_engine_abi

    engine = project.Clearinghouse.contract_type
    extension = project.ClearinghouseExtension.contract_type
    abi = merge_engine_abi(
        [e.model_dump(mode="json", by_alias=True) for e in engine.abi],
        [e.model_dump(mode="json", by_alias=True) for e in extension.abi],
    )
    data = engine.model_dump(mode="json", by_alias=True)
    data["abi"] = abi
    return ContractType.model_validate(data)


def engine_at(project: Any, address: str) -> Any:
    """The engine at `address`, with every function of `IClearinghouse` callable; its merged
    contract type is cached for the address, so Ape decodes the events the extension's code
    logs there too (`receipt.events`)."""
    from ape import chain
    from ape.contracts import ContractInstance

    contract_type = engine_contract_type(project)
    chain.contracts[address] = contract_type
    return ContractInstance(address, contract_type)
