# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Markets: configuration, open interest, entry sums, the oracle read, pool exposure
@license MIT
@notice Every listed market's packed configuration and limits (written only through the
        configurator's hook), its open interest per side and the sum of its positions'
        entry values (so the pool's exposure to trader PnL is known without visiting
        accounts), and the price read from its feed, cached per `liquidate_many` call.
"""

from ..interfaces import IClearinghouse
from ..interfaces import IPriceFeed
from . import codec
from . import constants as k
from . import funding
from . import ledger
from . import margin_math as mm

uses: ledger

market_count: public(uint256)  # markets listed so far; ids are 0 .. market_count - 1
market_config: HashMap[uint256, uint256]  # packed feed, rates and flags, see codec
market_limits: HashMap[uint256, uint256]  # packed max OI per side and min notional, see codec
market_oi: HashMap[uint256, uint256]  # packed OI long and short (WAD), see codec
# Per side (0 long, 1 short): ENTRY_SUM_BASE + the sum of floor(|size| * entry / WAD) over the
# side's positions, WAD USD, with each position's funding-adjusted entry (signed: the funding
# index can exceed a price). Kept apart so a market's winners are never netted against its
# losers; the base, written at listing, keeps the slot non-zero (a zero -> non-zero write
# costs 20,000 gas, a non-zero one 2,900) and the stored sum unsigned (|sum| < 2**195).
market_entry_sum: HashMap[uint256, uint256[2]]
ENTRY_SUM_BASE: constant(uint256) = 2**200
# Packed funding record and parameters of a market with funding on (codec, funding.vy).
funding_word: HashMap[uint256, uint256]
paused: public(bool)  # new risk (open, increase, new LP capital) blocked
# market * 2 + (1 for a long) -> batch << 128 | the mark read in that batch (a stale feed
# marks longs and shorts apart)
price_cache: transient(HashMap[uint256, uint256])
price_batch: transient(uint256)  # liquidate_many calls so far in this transaction
# Verifies signed price updates (PriceVerifier, or a Pyth adapter) for `update_prices` and the
# `*_with_prices` entry points; empty: the engine takes push prices only.
price_updater: public(immutable(address))


interface IPriceUpdater:
    def update_prices(updates: Bytes[k.MAX_UPDATE], payer: address) -> uint256: payable


@deploy
def __init__(price_updater_: address):
    price_updater = price_updater_


@payable
@external
def update_prices(updates: Bytes[k.MAX_UPDATE]):
    """
    @notice Bring signed prices on chain (the updater's layout); they stay each market's
            latest price for later transactions. Value beyond the updater's fee is refunded.
    """
    self._update_prices(updates, msg.value)


@internal
def _update_prices(updates: Bytes[k.MAX_UPDATE], paid: uint256):
    # The caller's value goes to the updater, which refunds it whatever its fee leaves.
    assert price_updater != empty(address), "clearinghouse: no price updater"
    extcall IPriceUpdater(price_updater).update_prices(updates, msg.sender, value=paid)


@view
@external
def mark_price(market_id: uint256) -> uint256:
    """
    @notice The validated oracle price (WAD) the engine marks market `market_id` at now.
    """
    return self._mark(market_id)


@view
@external
def market(market_id: uint256) -> IClearinghouse.MarketInfo:
    cfg: uint256 = self._listed(market_id)
    limits: uint256 = self.market_limits[market_id]
    oi: uint256 = self.market_oi[market_id]
    return IClearinghouse.MarketInfo(
        feed=codec._market_feed(cfg),
        initial_margin_bps=codec._market_im(cfg),
        maintenance_margin_bps=codec._market_mm(cfg),
        liquidation_fee_bps=codec._market_liq_fee(cfg),
        trading_fee_bps=codec._market_trade_fee(cfg),
        max_open_interest=codec._limits_max_oi(limits),
        min_position_notional=codec._limits_min_notional(limits),
        open_interest_long=codec._oi_long(oi),
        open_interest_short=codec._oi_short(oi),
    )


@view
@external
def market_funding(market_id: uint256) -> IClearinghouse.FundingInfo:
    """
    @notice A market's funding parameters and its funding brought to now (index at the
            oracle price): rate in WAD per day (positive: longs pay shorts), velocity in WAD
            per day per day, index in WAD price units per base unit. All zero when off.
    """
    cfg: uint256 = self._listed(market_id)
    if (cfg >> codec.CFG_FUNDING) & 1 == 0:
        return empty(IClearinghouse.FundingInfo)
    skew: int256 = funding._skew(self.market_oi[market_id])
    word: uint256 = self.funding_word[market_id]
    now: uint256 = 0
    index: int256 = 0
    now, index = funding._accrue(word, skew, self._mark(market_id), block.timestamp)
    unit: int256 = convert(k.WAD, int256) // funding.RATE_ONE
    return IClearinghouse.FundingInfo(
        skew_scale=funding._skew_scale(word),
        max_funding_velocity=word >> funding.F_VELOCITY,
        funding_rate=funding._rate(now) * unit,
        funding_velocity=funding._velocity(word, skew) * unit,
        funding_index=index,
        updated_at=word & funding.MASK40,
    )


@view
@external
def fill_price(market_id: uint256, size_delta: int256) -> uint256:
    """
    @notice The price `trade(market_id, size_delta, ...)` would fill at now: the oracle
            price with the skew premium of a market with funding on.
    """
    cfg: uint256 = self._listed(market_id)
    price: uint256 = self._mark(market_id)
    if (cfg >> codec.CFG_FUNDING) & 1 == 0:
        return price
    skew: int256 = funding._skew(self.market_oi[market_id])
    return funding._fill_price(
        price, skew, skew + size_delta, funding._skew_scale(self.funding_word[market_id])
    )


@view
@external
def trader_unrealized_pnl(market_id: uint256) -> int256:
    """
    @notice Aggregate unrealised PnL of all traders in a market (pool's exposure), token units.
    """
    return self._market_trader_pnl(market_id, self._mark(market_id))


@internal
def _move_position(
    market_id: uint256,
    old_size: int256,
    old_entry: int256,
    new_size: int256,
    new_entry: int256,
    max_oi: uint256,
):
    """
    @dev Replace a position's contribution to its market: open interest per side (a side
         that grows must stay within `max_oi`) and the entry sum (size * entry).
    """
    # The open-interest word decoded inline with the codec's layout (every trade and every
    # liquidated position passes here; an internal call costs about 100 gas).
    oi: uint256 = self.market_oi[market_id]
    long_oi: uint256 = oi & codec.MASK128
    short_oi: uint256 = oi >> 128
    if old_size > 0:
        long_oi -= convert(old_size, uint256)
    elif old_size < 0:
        short_oi -= convert(-old_size, uint256)
    within: bool = True  # only the side the new position is on is checked, and only if it grew
    if new_size > 0:
        long_oi += convert(new_size, uint256)
        within = long_oi <= max_oi or new_size <= old_size
    elif new_size < 0:
        short_oi += convert(-new_size, uint256)
        within = short_oi <= max_oi or new_size >= old_size
    assert within, "clearinghouse: open interest cap"
    self.market_oi[market_id] = (short_oi << 128) | long_oi
    # Each side's entry sum is read and written once, and only when the move touches it.
    # (The stored sums are below 2**201, so they convert to int256 and back.)
    if old_size > 0 or new_size > 0:
        s: int256 = convert(self.market_entry_sum[market_id][0], int256)
        if old_size > 0:
            s -= self._entry_value(old_size, old_entry)
        if new_size > 0:
            s += self._entry_value(new_size, new_entry)
        self.market_entry_sum[market_id][0] = convert(s, uint256)
    if old_size < 0 or new_size < 0:
        s: int256 = convert(self.market_entry_sum[market_id][1], int256)
        if old_size < 0:
            s -= self._entry_value(-old_size, old_entry)
        if new_size < 0:
            s += self._entry_value(-new_size, new_entry)
        self.market_entry_sum[market_id][1] = convert(s, uint256)


@pure
@internal
def _entry_value(size: int256, entry: int256) -> int256:
    """
    @dev floor(size * entry / WAD) for 0 < size <= MAX_SIZE and |entry| < 2**127: the
         product cannot wrap; floored so that a side's sum never exceeds its exact value.
    """
    raw: int256 = unsafe_mul(size, entry)
    q: int256 = unsafe_div(raw, convert(k.WAD, int256))
    if raw < 0 and unsafe_mul(q, convert(k.WAD, int256)) != raw:
        q = unsafe_sub(q, 1)
    return q


@view
@internal
def _market_trader_pnl(market_id: uint256, price: uint256) -> int256:
    oi: uint256 = self.market_oi[market_id]
    cfg: uint256 = self.market_config[market_id]
    mark: int256 = convert(price, int256) - self._funding_index(market_id, cfg, oi, price)
    long_pnl: int256 = 0
    short_pnl: int256 = 0
    long_pnl, short_pnl = self._side_pnls(market_id, oi, mark, mark)
    return long_pnl + short_pnl


@view
@internal
def _side_pnls(
    market_id: uint256, oi: uint256, long_mark: int256, short_mark: int256
) -> (int256, int256):
    """
    @dev Unrealised PnL (with the funding accrued) of the market's longs at `long_mark` and
         of its shorts at `short_mark` (each a price less the funding index at it), token
         units, each truncated towards zero (the sums are below 2**201: no overflow).
    """
    scale: int256 = convert(ledger.token_scale, int256)
    long_value: int256 = convert(codec._oi_long(oi), int256) * long_mark // convert(k.WAD, int256)
    short_value: int256 = convert(codec._oi_short(oi), int256) * short_mark // convert(k.WAD, int256)
    base: int256 = convert(ENTRY_SUM_BASE, int256)
    long_entry: int256 = convert(self.market_entry_sum[market_id][0], int256) - base
    short_entry: int256 = convert(self.market_entry_sum[market_id][1], int256) - base
    long_pnl: int256 = (long_value - long_entry) // scale
    short_pnl: int256 = (short_entry - short_value) // scale
    return long_pnl, short_pnl


@view
@internal
def _funding_index(market_id: uint256, cfg: uint256, oi: uint256, price: uint256) -> int256:
    """
    @dev The market's funding index brought to now at `price` (0 when funding is off).
    """
    if (cfg >> codec.CFG_FUNDING) & 1 == 0:
        return 0
    word: uint256 = 0
    index: int256 = 0
    word, index = funding._accrue(
        self.funding_word[market_id], funding._skew(oi), price, block.timestamp
    )
    return index


@view
@internal
def _pool_exposure(reserve_bps: uint256) -> (uint256, uint256, uint256, uint256):
    """
    @dev The pool's exposure to open positions, market by market and side by side:
         (reserve on open notional at `reserve_bps`, unrealised trader profit, unrealised
         trader loss, the oldest price time among markets with open interest, or
         max_value(uint256) when there is none). Profit and loss are netted neither across
         markets nor between a market's longs and shorts, so no winner is ever offset by a
         loser whose loss may never be collected. A stale feed within its window marks the
         longs up and the shorts down (`pool_marks`), priced now; past it the pool has no
         value until the market is settled ("clearinghouse: market unpriced").
    """
    reserve: uint256 = 0
    owed: uint256 = 0
    owing: uint256 = 0
    priced_at: uint256 = max_value(uint256)
    for market_id: uint256 in range(self.market_count, bound=k.MAX_MARKETS):
        oi: uint256 = self.market_oi[market_id]
        if oi == 0:
            continue
        cfg: uint256 = self.market_config[market_id]
        feed: address = codec._market_feed(cfg)
        long_price: uint256 = 0
        short_price: uint256 = 0
        updated: uint256 = 0
        ok: bool = False
        long_price, short_price, updated, ok = staticcall IPriceFeed(feed).pool_marks()
        assert ok, "clearinghouse: market unpriced"
        # The longs' price is the higher one: the bound and the reserve (on the larger
        # notional) are taken at it.
        assert long_price <= k.MAX_PRICE, "clearinghouse: price overflow"
        priced_at = min(priced_at, updated)
        gross: uint256 = codec._oi_long(oi) + codec._oi_short(oi)
        reserve += mm._bps_up(mm._notional_up(gross, long_price, ledger.token_scale), reserve_bps)
        long_pnl: int256 = 0
        short_pnl: int256 = 0
        # Each side's unrecorded funding is valued at that side's price.
        long_pnl, short_pnl = self._side_pnls(
            market_id,
            oi,
            convert(long_price, int256) - self._funding_index(market_id, cfg, oi, long_price),
            convert(short_price, int256) - self._funding_index(market_id, cfg, oi, short_price),
        )
        for pnl: int256 in [long_pnl, short_pnl]:
            if pnl > 0:
                owed += convert(pnl, uint256) + 1  # + 1: the aggregate truncates towards zero
            else:
                owing += convert(-pnl, uint256)
    return reserve, owed, owing, priced_at


@view
@internal
def _listed(market_id: uint256) -> uint256:
    cfg: uint256 = self.market_config[market_id]
    assert codec._market_listed(cfg), "clearinghouse: unknown market"
    return cfg


@view
@internal
def _mark(market_id: uint256) -> uint256:
    return staticcall IPriceFeed(codec._market_feed(self._listed(market_id))).latest_price()


@view
@internal
def _batch_price(market_id: uint256, feed: address, batch: uint256, long: bool) -> uint256:
    """
    @dev The feed's mark for a long or a short, or the one already read in
         `liquidate_many` call `batch`.
    """
    cached: uint256 = self.price_cache[market_id * 2 + convert(long, uint256)]
    if cached >> 128 == batch:
        return cached & codec.MASK128
    return staticcall IPriceFeed(feed).mark(long)


@internal
def _remember_price(market_id: uint256, batch: uint256, price: uint256, long: bool):
    slot: uint256 = market_id * 2 + convert(long, uint256)
    if self.price_cache[slot] >> 128 != batch:
        self.price_cache[slot] = (batch << 128) | price


@internal
def _next_batch() -> uint256:
    batch: uint256 = self.price_batch + 1
    self.price_batch = batch
    return batch
