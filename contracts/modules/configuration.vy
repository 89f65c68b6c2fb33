# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title The configurator's hooks: where the engine's parameters are written
@license MIT
@notice The `Configurator` (immutable) checks every bound, holds ownership and the guardian
        role, and emits the admin events; it calls these hooks with values it has already
        checked and packed (codec layouts). Nothing else can write a parameter.
"""

from ..interfaces import IPriceFeed
from . import codec
from . import accounts
from . import constants as k
from . import funding
from . import markets
from . import pool

uses: markets
uses: accounts
uses: pool

configurator: public(immutable(address))  # the Configurator: the only caller of the hooks
guardian: public(address)  # may pause new risk (through the configurator)


@deploy
def __init__(configurator_: address):
    assert configurator_ != empty(address), "clearinghouse: zero configurator"
    configurator = configurator_


@external
def configure_market(market_id: uint256, config_word: uint256, limits_word: uint256):
    """
    @notice Store a market's packed configuration and limits words (codec layouts), as the
            configurator checked and packed them. `market_id == market_count` lists a new one.
    """
    self._only_configurator()
    if market_id == markets.market_count:
        markets.market_count = market_id + 1
        # Each side's entry sum is stored plus one (markets.ENTRY_SUM_BASE), so the slot never
        # returns to zero: an open on an empty side pays a warm-slot write, not a fresh one.
        markets.market_entry_sum[market_id] = [markets.ENTRY_SUM_BASE, markets.ENTRY_SUM_BASE]
    # The funding bit is the engine's (configure_funding sets it): every rewrite keeps it.
    on: uint256 = markets.market_config[market_id] & (1 << codec.CFG_FUNDING)
    markets.market_config[market_id] = config_word | on
    markets.market_limits[market_id] = limits_word


@external
def configure_funding(market_id: uint256, skew_scale: uint256, max_velocity_bps: uint256):
    """
    @notice Turn a market's funding and skew premium on, or change their parameters, as the
            configurator checked them (skew scale in whole base units, 0 < S < 2**48;
            velocity in bps per day per day, <= funding.MAX_VELOCITY_BPS). The funding so
            far is recorded first, at the oracle price (which must be valid now) and with
            the old parameters; rate and index carry on. A skew scale of 0 freezes the
            market's funding where it stands (a settlement): rate and velocity 0, so the
            index keeps its value (every position's funding so far stays owed), while the
            scale, and so the premium a close pays or is paid, stays the live market's.
    """
    self._only_configurator()
    cfg: uint256 = markets._listed(market_id)
    word: uint256 = 0
    index: int256 = 0
    if (cfg >> codec.CFG_FUNDING) & 1 == 1:
        price: uint256 = staticcall IPriceFeed(codec._market_feed(cfg)).latest_price()
        assert price <= k.MAX_PRICE, "clearinghouse: price overflow"  # the accrual's bound
        word, index = funding._accrue(
            markets.funding_word[market_id],
            funding._skew(markets.market_oi[market_id]),
            price,
            block.timestamp,
        )
    rate: int256 = funding._rate(word)
    params: uint256 = funding._params(skew_scale, max_velocity_bps)
    if skew_scale == 0:  # freeze: the scale kept, no rate, no drift
        rate = 0
        params = funding._params(funding._skew_scale(word), 0)
    markets.funding_word[market_id] = funding._pack(block.timestamp, rate, index, params)
    markets.market_config[market_id] = cfg | (1 << codec.CFG_FUNDING)


@external
def configure_params(liquidation_config: uint256, pool_reserve_bps: uint256, guardian: address):
    """
    @notice Store the packed liquidation parameters, the pool reserve and the guardian.
    """
    self._only_configurator()
    accounts.liquidation_config = liquidation_config
    pool.pool_reserve_bps = pool_reserve_bps
    self.guardian = guardian


@external
def configure_keeper_gas(gas_word: uint256):
    """
    @notice Store the keeper reward's gas word (codec layout) as the configurator built it:
            gas price, ETH/USD, premium, ETH market and floor (0: gas pricing off).
    """
    self._only_configurator()
    accounts.keeper_gas = gas_word


@external
def configure_pause(paused: bool):
    """
    @notice Set the pause flag and its copy in every market's configuration word.
    """
    self._only_configurator()
    markets.paused = paused
    for market_id: uint256 in range(markets.market_count, bound=k.MAX_MARKETS):
        markets.market_config[market_id] = codec._market_with_paused(
            markets.market_config[market_id], paused
        )


@view
@internal
def _only_configurator():
    assert msg.sender == configurator, "clearinghouse: not configurator"
