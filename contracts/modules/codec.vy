# pragma version 0.4.3
"""
@title Packed-word codec
@license MIT
@notice The one definition of every packed storage word the engine keeps and the configurator
        writes: a market's configuration, a market's limits, a market's open interest and the
        liquidation parameters. Pure and stateless (no storage, no externals): the engine and
        the configurator both import it, so the two can never disagree on a layout. Packing
        functions take values their callers have bounded (the configurator's bound checks);
        unpacking masks every field.

        Market configuration word (one SLOAD per market per account load):
            bits 0-159 feed | 160-175 initial margin bps | 176-191 maintenance margin bps
            | 192-207 liquidation fee bps | 208-223 trading fee bps | bit 224 listed
            | bit 225 paused (a copy of the engine's global pause flag, read for free in trade)
            | bit 226 funding on (set by the engine when the market's funding is configured,
            kept by every later configuration write; the load skips the funding word without it)
        Limits word: bits 0-127 max open interest per side (WAD) | 128-255 min notional (token)
        Open-interest word: bits 0-127 long OI | 128-255 short OI (WAD base units)
        Liquidation word: bits 0-15 keeper share bps | 16-31 max partial bps
            | 32-159 minimum keeper reward (token units)
        Funds word: bits 0-127 pool assets | 128-255 insurance fund (token units)
        Funding word (per market, `funding.vy`): bits 0-39 last accrual time | 40-87 funding
            rate (int48, RATE_ONE = 100% of the price per day) | 88-191 funding index (int104,
            WAD price units per base unit) | 192-239 skew scale (whole base units) | 240-255
            max funding velocity (bps of the price per day, per day)
        Market-list word (per account): bits 0-7 count | then one 8-bit market id per
            open position, in the order they were opened (a removal moves the last id
            into the freed place)
"""

from . import constants as k

CFG_IM: constant(uint256) = 160  # bit offset of the initial margin (bps)
CFG_MM: constant(uint256) = 176  # bit offset of the maintenance margin (bps)
CFG_LIQ: constant(uint256) = 192  # bit offset of the liquidation fee (bps)
CFG_TRADE: constant(uint256) = 208  # bit offset of the trading fee (bps)
CFG_LISTED: constant(uint256) = 224  # bit: the market is listed
CFG_PAUSED: constant(uint256) = 225  # bit: new risk is paused
CFG_FUNDING: constant(uint256) = 226  # bit: the market charges funding and the skew premium
LIQ_PARTIAL: constant(uint256) = 16  # bit offset of the max partial bound (bps)
LIQ_REWARD: constant(uint256) = 32  # bit offset of the minimum keeper reward (token units)
LIQ_MAX_REWARD: constant(uint256) = 104  # bit offset of the maximum keeper reward
LIQ_GAS_MARGIN: constant(uint256) = 176  # bit offset of the flat margin over the gas cost
LIQ_GAS_MARKET: constant(uint256) = 248  # bit offset of the ETH market id + 1 (0: pricing off)
GAS_FLOOR_UNIT: constant(uint256) = 10**6  # wei per unit of the gas word's floor field
MASK16: constant(uint256) = 2**16 - 1  # one bps field
MASK40: constant(uint256) = 2**40 - 1  # a block number
MASK64: constant(uint256) = 2**64 - 1  # a gas price (wei)
MASK72: constant(uint256) = 2**72 - 1  # a reward amount (token units)
MASK96: constant(uint256) = 2**96 - 1  # the ETH/USD price the reward is priced at (WAD)
MASK128: constant(uint256) = 2**128 - 1  # one half word
MASK160: constant(uint256) = 2**160 - 1  # an address


# ---- Market configuration ----


@pure
@internal
def _pack_market(
    feed: address,
    im_bps: uint256,
    mm_bps: uint256,
    liq_bps: uint256,
    trade_bps: uint256,
    listed: bool,
    paused: bool,
) -> uint256:
    """
    @dev Every rate must fit 16 bits (the configurator bounds them by BPS).
    """
    return (
        convert(feed, uint256)
        | (im_bps << CFG_IM)
        | (mm_bps << CFG_MM)
        | (liq_bps << CFG_LIQ)
        | (trade_bps << CFG_TRADE)
        | (convert(listed, uint256) << CFG_LISTED)
        | (convert(paused, uint256) << CFG_PAUSED)
    )


@pure
@internal
def _market_feed(cfg: uint256) -> address:
    return convert(cfg & MASK160, address)


@pure
@internal
def _market_im(cfg: uint256) -> uint256:
    return (cfg >> CFG_IM) & MASK16


@pure
@internal
def _market_mm(cfg: uint256) -> uint256:
    return (cfg >> CFG_MM) & MASK16


@pure
@internal
def _market_liq_fee(cfg: uint256) -> uint256:
    return (cfg >> CFG_LIQ) & MASK16


@pure
@internal
def _market_trade_fee(cfg: uint256) -> uint256:
    return (cfg >> CFG_TRADE) & MASK16


@pure
@internal
def _market_listed(cfg: uint256) -> bool:
    return (cfg >> CFG_LISTED) & 1 == 1


@pure
@internal
def _market_paused(cfg: uint256) -> bool:
    return (cfg >> CFG_PAUSED) & 1 == 1


@pure
@internal
def _market_with_paused(cfg: uint256, paused: bool) -> uint256:
    return (cfg & ~(1 << CFG_PAUSED)) | (convert(paused, uint256) << CFG_PAUSED)


# ---- Market limits ----


@pure
@internal
def _pack_limits(max_oi: uint256, min_notional: uint256) -> uint256:
    """
    @dev Both must fit 128 bits (the configurator bounds them).
    """
    return (min_notional << 128) | max_oi


@pure
@internal
def _unpack_limits(limits: uint256) -> (uint256, uint256):
    """
    @dev (max open interest per side, min notional): one call where both are needed.
    """
    return limits & MASK128, limits >> 128


@pure
@internal
def _limits_max_oi(limits: uint256) -> uint256:
    return limits & MASK128


@pure
@internal
def _limits_min_notional(limits: uint256) -> uint256:
    return limits >> 128


# ---- Open interest ----


@pure
@internal
def _pack_oi(long_oi: uint256, short_oi: uint256) -> uint256:
    """
    @dev Each side is at most MAX_SIZE < 2**127 (the open-interest cap), so both fit.
    """
    return (short_oi << 128) | long_oi


@pure
@internal
def _unpack_oi(oi: uint256) -> (uint256, uint256):
    return oi & MASK128, oi >> 128


@pure
@internal
def _oi_long(oi: uint256) -> uint256:
    return oi & MASK128


@pure
@internal
def _oi_short(oi: uint256) -> uint256:
    return oi >> 128


# ---- Pool assets and insurance fund: one word, read once per liquidation ----
# bits 0-127 pool assets, 128-255 insurance fund (token units each)


@pure
@internal
def _pack_funds(pool: uint256, insurance: uint256) -> uint256:
    assert (pool | insurance) >> 128 == 0, "clearinghouse: funds overflow"
    return (insurance << 128) | pool


@pure
@internal
def _unpack_funds(funds: uint256) -> (uint256, uint256):
    """
    @dev (pool assets, insurance fund).
    """
    return funds & MASK128, funds >> 128


@pure
@internal
def _funds_pool(funds: uint256) -> uint256:
    return funds & MASK128


@pure
@internal
def _funds_insurance(funds: uint256) -> uint256:
    return funds >> 128


# ---- Liquidation parameters ----


@pure
@internal
def _pack_liquidation(
    keeper_share_bps: uint256,
    max_partial_bps: uint256,
    min_reward: uint256,
    max_reward: uint256,
    gas_margin: uint256,
    gas_market: uint256,
) -> uint256:
    """
    @dev bits 0-15 keeper share bps | 16-31 max partial bps | 32-103 minimum reward |
         104-175 maximum reward | 176-247 flat gas margin (token units each, < 2**72: the
         configurator bounds them at 1,000 whole tokens) | 248-255 the gas word's ETH
         market id + 1 (0: gas pricing off), repeated here so that with pricing off no
         account load reads the gas word.
    """
    return (
        keeper_share_bps
        | (max_partial_bps << LIQ_PARTIAL)
        | (min_reward << LIQ_REWARD)
        | (max_reward << LIQ_MAX_REWARD)
        | (gas_margin << LIQ_GAS_MARGIN)
        | (gas_market << LIQ_GAS_MARKET)
    )


@pure
@internal
def _liq_keeper_share(lcfg: uint256) -> uint256:
    return lcfg & MASK16


@pure
@internal
def _liq_max_partial(lcfg: uint256) -> uint256:
    return (lcfg >> LIQ_PARTIAL) & MASK16


@pure
@internal
def _liq_min_reward(lcfg: uint256) -> uint256:
    return (lcfg >> LIQ_REWARD) & MASK72


@pure
@internal
def _liq_max_reward(lcfg: uint256) -> uint256:
    return (lcfg >> LIQ_MAX_REWARD) & MASK72


@pure
@internal
def _liq_gas_margin(lcfg: uint256) -> uint256:
    return (lcfg >> LIQ_GAS_MARGIN) & MASK72


@pure
@internal
def _liq_gas_market(lcfg: uint256) -> uint256:
    return lcfg >> LIQ_GAS_MARKET


# ---- The keeper reward's gas price: one word, read by every account load ----
# bits 0-63 smoothed gas price (wei) | 64-159 ETH/USD (WAD) | 160-199 block of the last
# step | 200-215 gas premium bps | 216-223 ETH market id + 1 (0: gas pricing off) |
# 224-255 gas price floor (units of GAS_FLOOR_UNIT wei)


@pure
@internal
def _pack_gas(gas_price: uint256, eth: uint256, block_number: uint256, params: uint256) -> uint256:
    """
    @dev The state fields of a gas word, with the parameters (bits 200-255) of `params`.
         Callers keep the gas price under the 64-bit field (the configurator bounds the
         floor; a step is at most an eighth over a bounded value), ETH/USD under 96 bits.
    """
    return (
        min(gas_price, MASK64)
        | (min(eth, MASK96) << 64)
        | ((block_number & MASK40) << 160)
        | (params & ~(2**200 - 1))
    )


@pure
@internal
def _gas_price(gw: uint256) -> uint256:
    return gw & MASK64


@pure
@internal
def _gas_eth(gw: uint256) -> uint256:
    return (gw >> 64) & MASK96


@pure
@internal
def _gas_block(gw: uint256) -> uint256:
    return (gw >> 160) & MASK40


@pure
@internal
def _gas_premium(gw: uint256) -> uint256:
    return (gw >> 200) & MASK16


@pure
@internal
def _gas_market(gw: uint256) -> uint256:
    return (gw >> 216) & 255


@pure
@internal
def _gas_floor(gw: uint256) -> uint256:
    return (gw >> 224) * GAS_FLOOR_UNIT


# ---- An account's market list ----


@pure
@internal
def _list_count(word: uint256) -> uint256:
    return word & 255


@pure
@internal
def _list_id(word: uint256, i: uint256) -> uint256:
    """
    @dev The `i`-th id of a list (i < count).
    """
    return (word >> (8 + 8 * i)) & 255


@pure
@internal
def _list_ids(word: uint256) -> DynArray[uint256, k.MAX_POSITIONS]:
    ids: DynArray[uint256, k.MAX_POSITIONS] = []
    for i: uint256 in range(word & 255, bound=k.MAX_POSITIONS):
        ids.append((word >> (8 + 8 * i)) & 255)
    return ids


@pure
@internal
def _list_with(word: uint256, market_id: uint256) -> uint256:
    """
    @dev Append `market_id` (< 256) to a list that holds fewer than MAX_POSITIONS ids.
    """
    count: uint256 = word & 255
    # count < 8, so the id lands in bits 8 .. 71; count + 1 <= 8 fits the low byte.
    return ((word | (market_id << (8 + 8 * count))) & ~255) | (count + 1)


@pure
@internal
def _list_without(word: uint256, market_id: uint256) -> uint256:
    """
    @dev Remove `market_id` from a list by moving the last id into its place.
    """
    count: uint256 = word & 255
    last: uint256 = count - 1
    last_id: uint256 = (word >> (8 + 8 * last)) & 255
    out: uint256 = word
    for i: uint256 in range(count, bound=k.MAX_POSITIONS):
        bit: uint256 = 8 + 8 * i
        if (word >> bit) & 255 == market_id:
            # put the last id at i, then clear the last slot
            out = (out & ~(255 << bit)) | (last_id << bit)
            break
    out = out & ~(255 << (8 + 8 * last))
    return (out & ~255) | last
