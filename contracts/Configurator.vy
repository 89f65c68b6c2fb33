# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Margin Maintenance configurator
@license MIT
@notice The engine's administration, outside the engine: the owner (two-step transfer), the
        guardian, every admin entry point with its bound checks, and the admin events. It packs
        each change with the engine's own codec (modules/codec.vy) and stores it through one of
        the engine's three `configure_*` hooks, which only this contract may call.
@custom:security Wiring: deploy this contract, then the Clearinghouse with this address (an
        immutable there), then `bind(engine, ...)` by the owner: one-shot, and only to an engine
        whose `configurator()` is this contract. The configurator keeps no copy of the engine's
        configuration: every setter reads the current values from the engine's views (market
        count, market, liquidation parameters, pool reserve, guardian, paused), so there is one
        source of truth. Every external function is nonreentrant (pragma).
"""

from interfaces import IClearinghouse
from interfaces import IPriceFeed

from snekmate.auth import ownable
from snekmate.auth import ownable_2step
from modules import codec
from modules import constants as k
from modules import funding

initializes: ownable
initializes: ownable_2step[ownable := ownable]

exports: (
    ownable.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
)


interface IEngine:
    def configurator() -> address: view
    def token_scale() -> uint256: view
    def market_count() -> uint256: view
    def liquidation_params() -> (uint256, uint256, uint256): view
    def keeper_reward_params() -> (
        uint256, uint256, uint256, uint256, uint256, uint256, uint256
    ): view
    def configure_keeper_gas(gas_word: uint256): nonpayable
    def pool_reserve_bps() -> uint256: view
    def guardian() -> address: view
    def paused() -> bool: view
    def configure_market(market_id: uint256, config_word: uint256, limits_word: uint256): nonpayable
    def configure_params(
        liquidation_config: uint256, pool_reserve_bps: uint256, guardian: address
    ): nonpayable
    def configure_pause(paused: bool): nonpayable
    def configure_funding(market_id: uint256, skew_scale: uint256, max_velocity_bps: uint256): nonpayable
    def price_updater() -> address: view


interface IVerifierAdmin:
    def set_signers(signers: DynArray[address, MAX_PRICE_SIGNERS], threshold: uint256): nonpayable
    def set_feed(
        feed_id: bytes32,
        reference: address,
        ref_max_age: uint256,
        max_age: uint256,
        max_conf_bps: uint256,
        max_dev_bps: uint256,
    ): nonpayable


# ---- Constants (the bounds every setter enforces) ----

MAX_TRADING_FEE_BPS: constant(uint256) = 500  # 5%: bound on any market's trading fee
MAX_MIN_KEEPER_REWARD: constant(uint256) = 1_000  # whole tokens: bound on the minimum reward
MAX_RESERVE_BPS: constant(uint256) = 10_000  # pool reserve against open notional, at most 100%
SETTLE_DELAY: constant(uint256) = 86_400  # seconds between proposing a settlement and making it
SETTLE_BAND_BPS: constant(uint256) = 1_000  # a settlement price within 10% of the last valid one
RISK_DELAY: constant(uint256) = 86_400  # seconds before a change that raises any rate applies
RISK_GRACE: constant(uint256) = 7 * 86_400  # a queued change not applied by then has expired
MAX_PRICE_SIGNERS: constant(uint256) = 16  # the price verifier's signer-set bound


interface ISettlement:
    def replaces() -> address: view


struct Settlement:
    feed: address  # the SettledPriceFeed proposed
    eta: uint256  # when `settle_market` may make it the market's feed


struct RiskChange:
    initial_margin_bps: uint256
    maintenance_margin_bps: uint256
    liquidation_fee_bps: uint256
    trading_fee_bps: uint256
    eta: uint256  # `apply_market_risk` from this time on; 0 when none is queued


struct RewardChange:
    max_keeper_reward: uint256
    gas_margin: uint256
    gas_premium_bps: uint256
    eth_market_id: uint256
    min_gas_price: uint256
    eta: uint256  # `apply_keeper_reward` from this time on; 0 when none is queued


struct FundingChange:
    skew_scale: uint256
    max_funding_velocity: uint256
    eta: uint256  # `apply_market_funding` from this time on; 0 when none is queued


# ---- Storage ----

engine: public(address)  # the Clearinghouse this configures; set once by `bind`
settlements: public(HashMap[uint256, Settlement])  # pending settlement of a dead market
pending_risk: public(HashMap[uint256, RiskChange])  # queued rate rise of a market with positions
skew_scale: public(HashMap[uint256, uint256])  # a funding market's skew scale (0: funding off)
pending_funding: public(HashMap[uint256, FundingChange])  # queued change of a market with positions
settled: public(HashMap[uint256, bool])  # a market `settle_market` gave its final price
pending_reward: public(RewardChange)  # queued keeper-reward change that raises the reserve


# ---- Events (the same names and fields the engine emitted before) ----


event MarketAdded:
    market_id: indexed(uint256)
    feed: indexed(address)


event MarketRiskUpdated:
    market_id: indexed(uint256)
    initial_margin_bps: uint256
    maintenance_margin_bps: uint256
    liquidation_fee_bps: uint256
    trading_fee_bps: uint256


event MarketRiskQueued:
    market_id: indexed(uint256)
    initial_margin_bps: uint256
    maintenance_margin_bps: uint256
    liquidation_fee_bps: uint256
    trading_fee_bps: uint256
    eta: uint256  # apply_market_risk from this time on


event MarketRiskCancelled:
    market_id: indexed(uint256)


event MarketLimitsUpdated:
    market_id: indexed(uint256)
    max_open_interest: uint256
    min_position_notional: uint256


event MarketFundingUpdated:
    market_id: indexed(uint256)
    skew_scale: uint256  # whole base units
    max_funding_velocity: uint256  # bps of the price per day, per day


event MarketFundingQueued:
    market_id: indexed(uint256)
    skew_scale: uint256
    max_funding_velocity: uint256
    eta: uint256  # apply_market_funding from this time on


event MarketFundingCancelled:
    market_id: indexed(uint256)


event MarketFeedUpdated:
    market_id: indexed(uint256)
    feed: indexed(address)


event LiquidationParamsUpdated:
    keeper_share_bps: uint256
    max_partial_bps: uint256
    min_keeper_reward: uint256


event KeeperRewardUpdated:
    max_keeper_reward: uint256  # token units: the cap on any one reward
    gas_margin: uint256  # token units: the least the reward pays over the gas cost
    gas_premium_bps: uint256  # the share the reward pays over the gas cost
    eth_market_id: uint256  # the market whose price is ETH/USD (MAX_MARKETS: gas pricing off)
    min_gas_price: uint256  # wei: the floor of the smoothed gas price


event KeeperRewardQueued:
    max_keeper_reward: uint256
    gas_margin: uint256
    gas_premium_bps: uint256
    eth_market_id: uint256
    min_gas_price: uint256
    eta: uint256


event KeeperRewardCancelled:
    eta: uint256


event PoolReserveUpdated:
    pool_reserve_bps: uint256


event GuardianUpdated:
    guardian: indexed(address)


event SettlementProposed:
    market_id: indexed(uint256)
    feed: address  # the SettledPriceFeed
    price: uint256  # its price, WAD
    last_price: uint256  # the dead feed's last valid price, WAD
    eta: uint256  # settle_market from this time on


event SettlementCancelled:
    market_id: indexed(uint256)


event MarketSettled:
    market_id: indexed(uint256)
    feed: address
    price: uint256


event PriceSignersUpdated:
    verifier: indexed(address)
    signers: DynArray[address, MAX_PRICE_SIGNERS]
    threshold: uint256


event PriceFeedConfigured:
    verifier: indexed(address)
    feed_id: indexed(bytes32)


event PauseChanged:
    by: indexed(address)
    paused: bool


@deploy
def __init__():
    ownable.__init__()
    ownable_2step.__init__()


# ---- Wiring ----


@external
def bind(
    engine_: address,
    guardian_: address,
    keeper_share_bps_: uint256,
    max_partial_bps_: uint256,
    min_keeper_reward_: uint256,
    pool_reserve_bps_: uint256,
):
    """
    @notice Bind this configurator to its engine, once (owner), and set the engine's guardian
            and parameters with the same checks and events as the setters.
    @param engine_ A Clearinghouse deployed with this contract as its `configurator`.
    @param guardian_ Address that may pause new risk.
    @param keeper_share_bps_ Share of the liquidation fee paid to the liquidator.
    @param max_partial_bps_ Largest fraction closed partially; above it, close fully.
    @param min_keeper_reward_ Minimum liquidator reward in token units.
    @param pool_reserve_bps_ Share of open notional the pool keeps from LP withdrawals.
    """
    ownable._check_owner()
    assert self.engine == empty(address), "configurator: already bound"
    assert engine_.is_contract, "configurator: wrong engine"
    assert staticcall IEngine(engine_).configurator() == self, "configurator: wrong engine"
    self.engine = engine_
    lcfg: uint256 = self._liquidation_word(
        engine_, keeper_share_bps_, max_partial_bps_, min_keeper_reward_
    )
    self._check_reserve(pool_reserve_bps_)
    extcall IEngine(engine_).configure_params(lcfg, pool_reserve_bps_, guardian_)
    log GuardianUpdated(guardian=guardian_)
    log LiquidationParamsUpdated(
        keeper_share_bps=keeper_share_bps_,
        max_partial_bps=max_partial_bps_,
        min_keeper_reward=min_keeper_reward_,
    )
    log PoolReserveUpdated(pool_reserve_bps=pool_reserve_bps_)


# ---- Markets ----


@external
def add_market(
    feed: address,
    initial_margin_bps: uint256,
    maintenance_margin_bps: uint256,
    liquidation_fee_bps: uint256,
    trading_fee_bps: uint256,
    max_open_interest: uint256,
    min_position_notional: uint256,
) -> uint256:
    """
    @notice List a market (owner). The feed must return a valid price now.
    @return The new market id.
    """
    ownable._check_owner()
    e: address = self._bound()
    market_id: uint256 = staticcall IEngine(e).market_count()
    assert market_id < k.MAX_MARKETS, "configurator: too many markets"
    self._check_feed(feed)
    self._check_risk(
        e, initial_margin_bps, maintenance_margin_bps, liquidation_fee_bps, trading_fee_bps
    )
    limits: uint256 = self._limits_word(max_open_interest, min_position_notional)
    extcall IEngine(e).configure_market(
        market_id,
        codec._pack_market(
            feed,
            initial_margin_bps,
            maintenance_margin_bps,
            liquidation_fee_bps,
            trading_fee_bps,
            True,
            staticcall IEngine(e).paused(),
        ),
        limits,
    )
    log MarketAdded(market_id=market_id, feed=feed)
    log MarketRiskUpdated(
        market_id=market_id,
        initial_margin_bps=initial_margin_bps,
        maintenance_margin_bps=maintenance_margin_bps,
        liquidation_fee_bps=liquidation_fee_bps,
        trading_fee_bps=trading_fee_bps,
    )
    log MarketLimitsUpdated(
        market_id=market_id,
        max_open_interest=max_open_interest,
        min_position_notional=min_position_notional,
    )
    return market_id


@external
def set_market_risk(
    market_id: uint256,
    initial_margin_bps: uint256,
    maintenance_margin_bps: uint256,
    liquidation_fee_bps: uint256,
    trading_fee_bps: uint256,
):
    """
    @notice Change a market's rates (owner): 0 < mm < im <= 100%, liquidation fee < mm,
            trading fee <= min(5%, liquidation fee), and a partial liquidation stays reachable.
            A change that raises any of the four rates while the market has open interest
            is queued for RISK_DELAY (MarketRiskQueued) so that no position becomes
            liquidatable, or dearer to close, by surprise: its owner has a day to add margin
            or close. Anyone applies it after the delay and within RISK_GRACE of it
            (`apply_market_risk`); the owner may cancel it. A new queued change replaces the
            pending one. A change that raises nothing, or one on a market without positions,
            applies at once and drops any pending one (the owner's latest decision stands).
    """
    ownable._check_owner()
    e: address = self._bound()
    m: IClearinghouse.MarketInfo = self._market(e, market_id)
    self._check_risk(
        e, initial_margin_bps, maintenance_margin_bps, liquidation_fee_bps, trading_fee_bps
    )
    raises: bool = (
        initial_margin_bps > m.initial_margin_bps
        or maintenance_margin_bps > m.maintenance_margin_bps
        or liquidation_fee_bps > m.liquidation_fee_bps
        or trading_fee_bps > m.trading_fee_bps
    )
    if raises and m.open_interest_long + m.open_interest_short > 0:
        eta: uint256 = block.timestamp + RISK_DELAY
        self.pending_risk[market_id] = RiskChange(
            initial_margin_bps=initial_margin_bps,
            maintenance_margin_bps=maintenance_margin_bps,
            liquidation_fee_bps=liquidation_fee_bps,
            trading_fee_bps=trading_fee_bps,
            eta=eta,
        )
        log MarketRiskQueued(
            market_id=market_id,
            initial_margin_bps=initial_margin_bps,
            maintenance_margin_bps=maintenance_margin_bps,
            liquidation_fee_bps=liquidation_fee_bps,
            trading_fee_bps=trading_fee_bps,
            eta=eta,
        )
        return
    if self.pending_risk[market_id].eta != 0:
        self.pending_risk[market_id] = empty(RiskChange)
        log MarketRiskCancelled(market_id=market_id)
    self._store_risk(
        e,
        market_id,
        m,
        initial_margin_bps,
        maintenance_margin_bps,
        liquidation_fee_bps,
        trading_fee_bps,
    )


@external
def apply_market_risk(market_id: uint256):
    """
    @notice Apply a queued rate change once its delay has passed (anyone), with the bound
            checks run again against the parameters in force now.
    """
    c: RiskChange = self.pending_risk[market_id]
    assert c.eta != 0, "configurator: no risk change"
    assert block.timestamp >= c.eta, "configurator: risk delay"
    assert block.timestamp <= c.eta + RISK_GRACE, "configurator: risk change expired"
    e: address = self._bound()
    m: IClearinghouse.MarketInfo = self._market(e, market_id)
    self._check_risk(
        e, c.initial_margin_bps, c.maintenance_margin_bps, c.liquidation_fee_bps, c.trading_fee_bps
    )
    self.pending_risk[market_id] = empty(RiskChange)
    self._store_risk(
        e,
        market_id,
        m,
        c.initial_margin_bps,
        c.maintenance_margin_bps,
        c.liquidation_fee_bps,
        c.trading_fee_bps,
    )


@external
def cancel_market_risk(market_id: uint256):
    """
    @notice Drop a queued rate change (owner).
    """
    ownable._check_owner()
    assert self.pending_risk[market_id].eta != 0, "configurator: no risk change"
    self.pending_risk[market_id] = empty(RiskChange)
    log MarketRiskCancelled(market_id=market_id)


@external
def set_market_funding(market_id: uint256, skew_scale: uint256, max_funding_velocity: uint256):
    """
    @notice Turn on, or retune, a market's skew premium and funding (owner). `skew_scale`, in
            whole base units, is the skew at which the premium would reach 100% and the
            funding velocity its maximum: a trade fills at
            `oracle * (1 + (skew_before + skew_after) / (2 * skew_scale))`, and the funding
            rate drifts by `clamp(skew / skew_scale, -1, 1) * max_funding_velocity` per day
            (bps of the price per day, per day; at most funding.MAX_VELOCITY_BPS, 100%).
            The engine records the funding so far first (the oracle price must be valid).
            The scale must be at least twice the market's open-interest cap (and its open
            interest), so no fill price can reach zero and every position can close.
            A new scale moves value between the open positions and the pool at once (a
            position that paid the premium at one scale is paid it back at another: about
            price * skew^2 / 2 * |1/S_new - 1/S_old|), so on a market with open interest
            funding can only be retuned, not turned on, the scale moves by at most 25% a
            step (4/5 to 5/4 of the old one), and the change is queued for RISK_DELAY
            (MarketFundingQueued), as a rate rise is. Anyone applies it after the delay and
            within RISK_GRACE (`apply_market_funding`); the owner may cancel it. On a market
            without positions it applies at once and drops any pending one. Funding, once
            on, stays on: velocity 0 freezes the drift, a large scale shrinks the premium;
            a settled market's funding is frozen for good.
    """
    ownable._check_owner()
    e: address = self._bound()
    m: IClearinghouse.MarketInfo = self._market(e, market_id)
    assert skew_scale > 0, "configurator: zero skew scale"
    assert skew_scale <= funding.MAX_SKEW_SCALE, "configurator: skew scale too large"
    assert max_funding_velocity <= funding.MAX_VELOCITY_BPS, (
        "configurator: funding velocity too high"
    )
    self._check_funding(m, market_id, skew_scale)
    if m.open_interest_long + m.open_interest_short > 0:
        eta: uint256 = block.timestamp + RISK_DELAY
        self.pending_funding[market_id] = FundingChange(
            skew_scale=skew_scale, max_funding_velocity=max_funding_velocity, eta=eta
        )
        log MarketFundingQueued(
            market_id=market_id,
            skew_scale=skew_scale,
            max_funding_velocity=max_funding_velocity,
            eta=eta,
        )
        return
    if self.pending_funding[market_id].eta != 0:
        self.pending_funding[market_id] = empty(FundingChange)
        log MarketFundingCancelled(market_id=market_id)
    self._store_funding(e, market_id, skew_scale, max_funding_velocity)


@external
def apply_market_funding(market_id: uint256):
    """
    @notice Apply a queued funding change once its delay has passed (anyone), with the
            scale checked again against the cap and open interest in force now.
    """
    c: FundingChange = self.pending_funding[market_id]
    assert c.eta != 0, "configurator: no funding change"
    assert block.timestamp >= c.eta, "configurator: risk delay"
    assert block.timestamp <= c.eta + RISK_GRACE, "configurator: risk change expired"
    e: address = self._bound()
    self._check_funding(self._market(e, market_id), market_id, c.skew_scale)
    self.pending_funding[market_id] = empty(FundingChange)
    self._store_funding(e, market_id, c.skew_scale, c.max_funding_velocity)


@external
def cancel_market_funding(market_id: uint256):
    """
    @notice Drop a queued funding change (owner).
    """
    ownable._check_owner()
    assert self.pending_funding[market_id].eta != 0, "configurator: no funding change"
    self.pending_funding[market_id] = empty(FundingChange)
    log MarketFundingCancelled(market_id=market_id)


@external
def set_market_limits(
    market_id: uint256, max_open_interest: uint256, min_position_notional: uint256
):
    """
    @notice Change a market's open-interest cap per side (WAD) and minimum notional (owner).
    """
    ownable._check_owner()
    e: address = self._bound()
    m: IClearinghouse.MarketInfo = self._market(e, market_id)
    limits: uint256 = self._limits_word(max_open_interest, min_position_notional)
    scale: uint256 = self.skew_scale[market_id]
    assert scale == 0 or 2 * max_open_interest <= scale * k.WAD, (
        "configurator: skew scale below twice the cap"
    )
    self._store(
        e,
        market_id,
        m.feed,
        m.initial_margin_bps,
        m.maintenance_margin_bps,
        m.liquidation_fee_bps,
        m.trading_fee_bps,
        limits,
    )
    log MarketLimitsUpdated(
        market_id=market_id,
        max_open_interest=max_open_interest,
        min_position_notional=min_position_notional,
    )


@external
def set_market_feed(market_id: uint256, feed: address):
    """
    @notice Replace a market's feed adapter (owner); the new one must price now.
    """
    ownable._check_owner()
    assert not self.settled[market_id], "configurator: market settled"
    e: address = self._bound()
    m: IClearinghouse.MarketInfo = self._market(e, market_id)
    self._check_feed(feed)
    self._store(
        e,
        market_id,
        feed,
        m.initial_margin_bps,
        m.maintenance_margin_bps,
        m.liquidation_fee_bps,
        m.trading_fee_bps,
        codec._pack_limits(m.max_open_interest, m.min_position_notional),
    )
    log MarketFeedUpdated(market_id=market_id, feed=feed)


# ---- Dead markets ----


@external
def propose_settlement(market_id: uint256, feed: address):
    """
    @notice Propose a final price for a market whose feed is past its stale window (owner):
            `feed` is a SettledPriceFeed naming the market's feed in `replaces`, priced
            within SETTLE_BAND_BPS of that feed's last valid price. Anyone may make it the
            market's feed SETTLE_DELAY later (`settle_market`), so traders and LPs see it
            coming; the owner may cancel it before.
    """
    ownable._check_owner()
    e: address = self._bound()
    current: address = self._dead_market(e, market_id).feed
    assert staticcall ISettlement(feed).replaces() == current, "configurator: settles another feed"
    self._check_feed(feed)
    last: uint256 = (staticcall IPriceFeed(current).price_data())[0]
    assert last != 0, "configurator: no last price"
    price: uint256 = staticcall IPriceFeed(feed).latest_price()
    assert price * k.BPS >= last * (k.BPS - SETTLE_BAND_BPS), "configurator: outside settle band"
    assert price * k.BPS <= last * (k.BPS + SETTLE_BAND_BPS), "configurator: outside settle band"
    eta: uint256 = block.timestamp + SETTLE_DELAY
    self.settlements[market_id] = Settlement(feed=feed, eta=eta)
    log SettlementProposed(market_id=market_id, feed=feed, price=price, last_price=last, eta=eta)


@external
def cancel_settlement(market_id: uint256):
    """
    @notice Drop a pending settlement (owner).
    """
    ownable._check_owner()
    assert self.settlements[market_id].feed != empty(address), "configurator: no settlement"
    self.settlements[market_id] = empty(Settlement)
    log SettlementCancelled(market_id=market_id)


@external
def settle_market(market_id: uint256):
    """
    @notice Make a proposed settlement the market's feed, once SETTLE_DELAY has passed and
            while its old feed is still past its stale window (anyone). The market takes no
            new risk from then on (maximum open interest 0: only reductions); its positions
            keep the settlement price until their owners close them or they are liquidated.
            A market with funding has it recorded up to now at that price and frozen: no
            rate and no drift from then on (the skew premium stays). A settled market
            takes no other feed.
    """
    s: Settlement = self.settlements[market_id]
    assert s.feed != empty(address), "configurator: no settlement"
    assert block.timestamp >= s.eta, "configurator: settlement delay"
    e: address = self._bound()
    m: IClearinghouse.MarketInfo = self._dead_market(e, market_id)
    self.settlements[market_id] = empty(Settlement)
    self._store(
        e,
        market_id,
        s.feed,
        m.initial_margin_bps,
        m.maintenance_margin_bps,
        m.liquidation_fee_bps,
        m.trading_fee_bps,
        codec._pack_limits(0, m.min_position_notional),
    )
    self.settled[market_id] = True
    if self.skew_scale[market_id] != 0:
        # Funding recorded up to now at the settlement price, then frozen (rate and
        # velocity 0; the scale, so the premium, kept): positions held through the outage
        # owe its funding, none after; a close is paid or pays the premium as it would live.
        if self.pending_funding[market_id].eta != 0:
            self.pending_funding[market_id] = empty(FundingChange)
            log MarketFundingCancelled(market_id=market_id)
        extcall IEngine(e).configure_funding(market_id, 0, 0)  # 0: freeze, the scale kept
        log MarketFundingUpdated(
            market_id=market_id, skew_scale=self.skew_scale[market_id], max_funding_velocity=0
        )
    price: uint256 = staticcall IPriceFeed(s.feed).latest_price()
    log MarketFeedUpdated(market_id=market_id, feed=s.feed)
    log MarketLimitsUpdated(
        market_id=market_id, max_open_interest=0, min_position_notional=m.min_position_notional
    )
    log MarketSettled(market_id=market_id, feed=s.feed, price=price)


# ---- Engine-wide parameters ----


@external
def set_liquidation_params(
    keeper_share_bps: uint256, max_partial_bps: uint256, min_keeper_reward: uint256
):
    """
    @notice Keeper share of the fee, partial-liquidation bound and minimum reward (owner).
    """
    ownable._check_owner()
    e: address = self._bound()
    lcfg: uint256 = self._liquidation_word(e, keeper_share_bps, max_partial_bps, min_keeper_reward)
    extcall IEngine(e).configure_params(
        lcfg, staticcall IEngine(e).pool_reserve_bps(), staticcall IEngine(e).guardian()
    )
    log LiquidationParamsUpdated(
        keeper_share_bps=keeper_share_bps,
        max_partial_bps=max_partial_bps,
        min_keeper_reward=min_keeper_reward,
    )


@external
def set_keeper_reward(
    max_keeper_reward: uint256,
    gas_margin: uint256,
    gas_premium_bps: uint256,
    eth_market_id: uint256,
    min_gas_price: uint256,
):
    """
    @notice The keeper reward's gas pricing (owner): a liquidation of n positions pays
            clamp(max(g x (1 + premium), g + margin) + keeper share of the fee, minimum,
            maximum), g = gas price x (LIQ_GAS_BASE + LIQ_GAS_PER_POSITION x n) x ETH/USD,
            and that reward is reserved in both requirements. The gas price is the engine's
            smoothed one (stepping toward the base fee by trades and liquidations, never
            below `min_gas_price`); ETH/USD is the last price the engine saw of market
            `eth_market_id` (read from its feed when the change applies, which must answer).
            `eth_market_id` = MAX_MARKETS turns gas pricing off (the reward is then the
            share, clamped). A change that can raise the reserve (gas pricing turned on, a
            higher cap, margin, premium or floor, another ETH market) while any market has
            open interest is queued for RISK_DELAY (KeeperRewardQueued), as a rate rise is:
            no account becomes liquidatable by surprise. Anyone applies it after the delay
            (`apply_keeper_reward`); the owner may cancel it; any other change applies at
            once and drops a pending one.
    """
    ownable._check_owner()
    e: address = self._bound()
    self._check_reward(e, max_keeper_reward, gas_margin, gas_premium_bps, eth_market_id, min_gas_price)
    if self._reward_raises(
        e, max_keeper_reward, gas_margin, gas_premium_bps, eth_market_id, min_gas_price
    ) and self._any_open_interest(e):
        eta: uint256 = block.timestamp + RISK_DELAY
        self.pending_reward = RewardChange(
            max_keeper_reward=max_keeper_reward,
            gas_margin=gas_margin,
            gas_premium_bps=gas_premium_bps,
            eth_market_id=eth_market_id,
            min_gas_price=min_gas_price,
            eta=eta,
        )
        log KeeperRewardQueued(
            max_keeper_reward=max_keeper_reward,
            gas_margin=gas_margin,
            gas_premium_bps=gas_premium_bps,
            eth_market_id=eth_market_id,
            min_gas_price=min_gas_price,
            eta=eta,
        )
        return
    if self.pending_reward.eta != 0:
        log KeeperRewardCancelled(eta=self.pending_reward.eta)
        self.pending_reward = empty(RewardChange)
    self._store_reward(e, max_keeper_reward, gas_margin, gas_premium_bps, eth_market_id, min_gas_price)


@external
def apply_keeper_reward():
    """
    @notice Apply a queued keeper-reward change once its delay has passed (anyone), its bound
            checks run again against the parameters in force now.
    """
    c: RewardChange = self.pending_reward
    assert c.eta != 0, "configurator: no reward change"
    assert block.timestamp >= c.eta, "configurator: risk delay"
    assert block.timestamp <= c.eta + RISK_GRACE, "configurator: reward change expired"
    e: address = self._bound()
    self._check_reward(
        e, c.max_keeper_reward, c.gas_margin, c.gas_premium_bps, c.eth_market_id, c.min_gas_price
    )
    self.pending_reward = empty(RewardChange)
    self._store_reward(
        e, c.max_keeper_reward, c.gas_margin, c.gas_premium_bps, c.eth_market_id, c.min_gas_price
    )


@external
def cancel_keeper_reward():
    """
    @notice Drop a queued keeper-reward change (owner).
    """
    ownable._check_owner()
    eta: uint256 = self.pending_reward.eta
    assert eta != 0, "configurator: no reward change"
    self.pending_reward = empty(RewardChange)
    log KeeperRewardCancelled(eta=eta)


@view
@internal
def _check_reward(
    e: address,
    max_keeper_reward: uint256,
    gas_margin: uint256,
    gas_premium_bps: uint256,
    eth_market_id: uint256,
    min_gas_price: uint256,
):
    cap: uint256 = self._reward_bound(e)
    min_reward: uint256 = (staticcall IEngine(e).liquidation_params())[2]
    assert max_keeper_reward <= cap, "configurator: maximum reward too high"
    assert max_keeper_reward >= min_reward, "configurator: reward cap below floor"
    assert gas_margin <= cap, "configurator: gas margin too high"
    assert gas_premium_bps <= k.BPS, "configurator: bad gas premium"
    assert min_gas_price > 0, "configurator: zero gas price"
    assert min_gas_price % codec.GAS_FLOOR_UNIT == 0 and (
        min_gas_price // codec.GAS_FLOOR_UNIT < 2**32
    ), "configurator: bad gas price floor"
    if eth_market_id != k.MAX_MARKETS:
        assert eth_market_id < staticcall IEngine(e).market_count(), "configurator: unknown market"


@view
@internal
def _reward_raises(
    e: address,
    max_keeper_reward: uint256,
    gas_margin: uint256,
    gas_premium_bps: uint256,
    eth_market_id: uint256,
    min_gas_price: uint256,
) -> bool:
    """
    @dev Whether the change can raise some account's reserve: pricing turned on, or, with it
         on, a higher cap, margin, premium or floor, or another ETH market (another price).
    """
    if eth_market_id == k.MAX_MARKETS:
        return False  # off: the reserve is the minimum reward, never more than with it on
    cur: (uint256, uint256, uint256, uint256, uint256, uint256, uint256) = (
        staticcall IEngine(e).keeper_reward_params()
    )
    return (
        cur[3] != eth_market_id + 1
        or gas_premium_bps > cur[2]
        or min_gas_price > cur[4]
        or max_keeper_reward > cur[5]
        or gas_margin > cur[6]
    )


@view
@internal
def _any_open_interest(e: address) -> bool:
    for market_id: uint256 in range(staticcall IEngine(e).market_count(), bound=k.MAX_MARKETS):
        m: IClearinghouse.MarketInfo = staticcall IClearinghouse(e).market(market_id)
        if m.open_interest_long + m.open_interest_short > 0:
            return True
    return False


@internal
def _store_reward(
    e: address,
    max_keeper_reward: uint256,
    gas_margin: uint256,
    gas_premium_bps: uint256,
    eth_market_id: uint256,
    min_gas_price: uint256,
):
    share: uint256 = 0
    max_partial: uint256 = 0
    min_reward: uint256 = 0
    share, max_partial, min_reward = staticcall IEngine(e).liquidation_params()
    word: uint256 = 0
    if eth_market_id != k.MAX_MARKETS:
        feed: address = (staticcall IClearinghouse(e).market(eth_market_id)).feed
        eth: uint256 = staticcall IPriceFeed(feed).latest_price()
        assert eth <= codec.MASK96, "configurator: ETH price too high"
        gp: uint256 = max(
            (staticcall IEngine(e).keeper_reward_params())[0], min_gas_price
        )  # the smoothed price carries on
        word = codec._pack_gas(
            gp,
            eth,
            block.number,
            (gas_premium_bps << 200)
            | ((eth_market_id + 1) << 216)
            | ((min_gas_price // codec.GAS_FLOOR_UNIT) << 224),
        )
    extcall IEngine(e).configure_params(
        codec._pack_liquidation(
            share, max_partial, min_reward, max_keeper_reward, gas_margin, (word >> 216) & 255
        ),
        staticcall IEngine(e).pool_reserve_bps(),
        staticcall IEngine(e).guardian(),
    )
    extcall IEngine(e).configure_keeper_gas(word)
    log KeeperRewardUpdated(
        max_keeper_reward=max_keeper_reward,
        gas_margin=gas_margin,
        gas_premium_bps=gas_premium_bps,
        eth_market_id=eth_market_id,
        min_gas_price=min_gas_price,
    )


@external
def set_pool_reserve(pool_reserve_bps: uint256):
    """
    @notice Share of open notional the pool keeps from LP withdrawals (owner), at most 100%.
    """
    ownable._check_owner()
    e: address = self._bound()
    self._check_reserve(pool_reserve_bps)
    extcall IEngine(e).configure_params(
        self._current_liquidation_word(e), pool_reserve_bps, staticcall IEngine(e).guardian()
    )
    log PoolReserveUpdated(pool_reserve_bps=pool_reserve_bps)


@external
def set_price_signers(signers: DynArray[address, MAX_PRICE_SIGNERS], threshold: uint256):
    """
    @notice Replace the signer set of the engine's price verifier and how many of it must sign
            a report (owner). The verifier checks the set (no zero or repeated signer,
            1 <= threshold <= n) and logs it too.
    """
    ownable._check_owner()
    verifier: address = self._verifier()
    extcall IVerifierAdmin(verifier).set_signers(signers, threshold)
    log PriceSignersUpdated(verifier=verifier, signers=signers, threshold=threshold)


@external
def set_price_feed(
    feed_id: bytes32,
    reference: address,
    ref_max_age: uint256,
    max_age: uint256,
    max_conf_bps: uint256,
    max_dev_bps: uint256,
):
    """
    @notice List or change a signed feed on the engine's price verifier (owner): its push
            reference, how old that reference may be, the oldest report accepted, and the
            confidence and deviation bounds (the verifier logs every value).
    """
    ownable._check_owner()
    verifier: address = self._verifier()
    extcall IVerifierAdmin(verifier).set_feed(
        feed_id, reference, ref_max_age, max_age, max_conf_bps, max_dev_bps
    )
    log PriceFeedConfigured(verifier=verifier, feed_id=feed_id)


@external
def set_guardian(guardian: address):
    """
    @notice Replace the guardian (owner); the zero address leaves pausing to the owner alone.
    """
    ownable._check_owner()
    e: address = self._bound()
    extcall IEngine(e).configure_params(
        self._current_liquidation_word(e), staticcall IEngine(e).pool_reserve_bps(), guardian
    )
    log GuardianUpdated(guardian=guardian)


@external
def pause():
    """
    @notice Block new risk (guardian or owner). Closing, deposits and liquidation go on.
    """
    e: address = self._bound()
    assert msg.sender == staticcall IEngine(e).guardian() or msg.sender == ownable.owner, (
        "configurator: not guardian"
    )
    extcall IEngine(e).configure_pause(True)
    log PauseChanged(by=msg.sender, paused=True)


@external
def unpause():
    ownable._check_owner()
    e: address = self._bound()
    extcall IEngine(e).configure_pause(False)
    log PauseChanged(by=msg.sender, paused=False)


# ---- Internal ----


@view
@internal
def _bound() -> address:
    e: address = self.engine
    assert e != empty(address), "configurator: not bound"
    return e


@view
@internal
def _verifier() -> address:
    verifier: address = staticcall IEngine(self._bound()).price_updater()
    assert verifier != empty(address), "configurator: no price verifier"
    return verifier


@view
@internal
def _market(e: address, market_id: uint256) -> IClearinghouse.MarketInfo:
    """
    @dev Markets are listed in id order and never removed: listed means id < market_count.
    """
    assert market_id < staticcall IEngine(e).market_count(), "configurator: unknown market"
    return staticcall IClearinghouse(e).market(market_id)


@internal
def _store(
    e: address,
    market_id: uint256,
    feed: address,
    im_bps: uint256,
    mm_bps: uint256,
    liq_bps: uint256,
    trade_bps: uint256,
    limits: uint256,
):
    # A listed market's paused bit always equals the engine's pause flag (configure_pause sets
    # it on every market, add_market lists with it), so repacking with the flag keeps it.
    extcall IEngine(e).configure_market(
        market_id,
        codec._pack_market(
            feed, im_bps, mm_bps, liq_bps, trade_bps, True, staticcall IEngine(e).paused()
        ),
        limits,
    )


@internal
def _store_risk(
    e: address,
    market_id: uint256,
    m: IClearinghouse.MarketInfo,
    im_bps: uint256,
    mm_bps: uint256,
    liq_bps: uint256,
    trade_bps: uint256,
):
    self._store(
        e,
        market_id,
        m.feed,
        im_bps,
        mm_bps,
        liq_bps,
        trade_bps,
        codec._pack_limits(m.max_open_interest, m.min_position_notional),
    )
    log MarketRiskUpdated(
        market_id=market_id,
        initial_margin_bps=im_bps,
        maintenance_margin_bps=mm_bps,
        liquidation_fee_bps=liq_bps,
        trading_fee_bps=trade_bps,
    )


@view
@internal
def _dead_market(e: address, market_id: uint256) -> IClearinghouse.MarketInfo:
    # The market, whose feed must have no mark at all (past its stale window; a feed marks
    # both sides or neither, so one side is asked).
    m: IClearinghouse.MarketInfo = self._market(e, market_id)
    assert staticcall IPriceFeed(m.feed).mark(True) == 0, "configurator: market not dead"
    return m


@view
@internal
def _check_funding(m: IClearinghouse.MarketInfo, market_id: uint256, skew_scale: uint256):
    assert not self.settled[market_id], "configurator: market settled"
    if m.open_interest_long + m.open_interest_short > 0:
        # Open positions: the value a new scale moves is bounded by the step (see above).
        old: uint256 = self.skew_scale[market_id]
        assert old != 0, "configurator: market has positions"
        assert 5 * skew_scale >= 4 * old and 4 * skew_scale <= 5 * old, (
            "configurator: skew scale step too large"
        )
    # Twice the cap (and the open interest already there) within the scale: the premium then
    # stays within +-50% and every close has a fill (none would revert "fill price out of range").
    reach: uint256 = max(m.max_open_interest, max(m.open_interest_long, m.open_interest_short))
    assert 2 * reach <= skew_scale * k.WAD, "configurator: skew scale below twice the cap"


@internal
def _store_funding(e: address, market_id: uint256, skew_scale: uint256, velocity: uint256):
    self.skew_scale[market_id] = skew_scale
    extcall IEngine(e).configure_funding(market_id, skew_scale, velocity)
    log MarketFundingUpdated(
        market_id=market_id, skew_scale=skew_scale, max_funding_velocity=velocity
    )


@view
@internal
def _check_feed(feed: address):
    assert feed != empty(address), "configurator: zero feed"
    assert feed.is_contract, "configurator: feed is not a contract"
    price: uint256 = staticcall IPriceFeed(feed).latest_price()
    assert price > 0 and price <= k.MAX_PRICE, "configurator: bad feed price"


@view
@internal
def _check_risk(e: address, im_bps: uint256, mm_bps: uint256, liq_bps: uint256, trade_bps: uint256):
    assert mm_bps > 0 and mm_bps < im_bps and im_bps <= k.BPS, "configurator: bad margin rates"
    assert liq_bps < mm_bps, "configurator: liquidation fee >= maintenance"
    assert trade_bps <= MAX_TRADING_FEE_BPS, "configurator: trading fee too high"
    # Self-liquidation must never be cheaper than closing.
    assert trade_bps <= liq_bps, "configurator: trading fee above liquidation fee"
    share: uint256 = 0
    max_partial: uint256 = 0
    min_reward: uint256 = 0
    share, max_partial, min_reward = staticcall IEngine(e).liquidation_params()
    self._check_partial_reachable(im_bps, mm_bps, liq_bps, max_partial)


@pure
@internal
def _check_partial_reachable(
    im_bps: uint256, mm_bps: uint256, liq_bps: uint256, max_partial_bps: uint256
):
    """
    @dev An account that just crossed maintenance needs f = (im - mm) / (im - fee) closed;
         a partial bound at or below that would make every liquidation full.
    """
    assert max_partial_bps * (im_bps - liq_bps) > (im_bps - mm_bps) * k.BPS, (
        "configurator: partial bound unreachable"
    )


@pure
@internal
def _limits_word(max_oi: uint256, min_notional: uint256) -> uint256:
    assert max_oi > 0 and max_oi <= k.MAX_SIZE, "configurator: bad open interest cap"
    assert min_notional > 0 and min_notional <= codec.MASK128, "configurator: bad minimum notional"
    return codec._pack_limits(max_oi, min_notional)


@view
@internal
def _liquidation_word(
    e: address, keeper_share_bps: uint256, max_partial_bps: uint256, min_reward: uint256
) -> uint256:
    """
    @dev The liquidation word with new share, partial bound and minimum reward, keeping the
         engine's maximum reward, gas margin and gas pricing (a fresh engine: the largest cap, no margin).
    """
    assert keeper_share_bps <= k.BPS, "configurator: bad keeper share"
    assert max_partial_bps > 0 and max_partial_bps <= k.BPS, "configurator: bad partial bound"
    for market_id: uint256 in range(staticcall IEngine(e).market_count(), bound=k.MAX_MARKETS):
        m: IClearinghouse.MarketInfo = staticcall IClearinghouse(e).market(market_id)
        self._check_partial_reachable(
            m.initial_margin_bps, m.maintenance_margin_bps, m.liquidation_fee_bps, max_partial_bps
        )
    cap: uint256 = self._reward_bound(e)
    assert min_reward <= cap, "configurator: minimum reward too high"
    max_reward: uint256 = 0
    margin: uint256 = 0
    gas_market: uint256 = 0
    max_reward, margin, gas_market = self._reward_fields(e)
    if max_reward == 0:  # not set yet
        max_reward = cap
    assert min_reward <= max_reward, "configurator: reward cap below floor"
    return codec._pack_liquidation(
        keeper_share_bps, max_partial_bps, min_reward, max_reward, margin, gas_market
    )


@view
@internal
def _reward_bound(e: address) -> uint256:
    return MAX_MIN_KEEPER_REWARD * (k.WAD // staticcall IEngine(e).token_scale())


@view
@internal
def _reward_fields(e: address) -> (uint256, uint256, uint256):
    """
    @dev The engine's (maximum reward, gas margin, ETH market id + 1 or 0), kept by a change
         of the other liquidation parameters.
    """
    p: (uint256, uint256, uint256, uint256, uint256, uint256, uint256) = (
        staticcall IEngine(e).keeper_reward_params()
    )
    return p[5], p[6], p[3]


@view
@internal
def _current_liquidation_word(e: address) -> uint256:
    share: uint256 = 0
    max_partial: uint256 = 0
    min_reward: uint256 = 0
    share, max_partial, min_reward = staticcall IEngine(e).liquidation_params()
    max_reward: uint256 = 0
    margin: uint256 = 0
    gas_market: uint256 = 0
    max_reward, margin, gas_market = self._reward_fields(e)
    return codec._pack_liquidation(share, max_partial, min_reward, max_reward, margin, gas_market)


@view
@internal
def _check_reserve(reserve_bps: uint256):
    assert reserve_bps <= MAX_RESERVE_BPS, "configurator: bad pool reserve"
