# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Trading: one market order at the oracle price (with the skew premium, funding on)
@license MIT
@notice Opens, increases, reduces, closes or flips the caller's position in one market. The
        old position's PnL is settled into collateral (a loss to the pool in full, a profit
        from the pool up to its assets), the trading fee goes to the pool, and the whole
        account is checked after the trade.
"""

from ..interfaces import IClearinghouse
from ..interfaces import IPriceFeed
from . import accounts as acct
from . import codec
from . import constants as k
from . import funding
from . import ledger
from . import margin_math as mm
from . import markets

uses: ledger
uses: markets
uses: acct


@external
def trade(market_id: uint256, size_delta: int256, acceptable_price: uint256):
    """
    @notice Change the caller's position in `market_id` by `size_delta` (WAD base units,
            positive buys) at the oracle price, with the skew premium when the market has
            funding on (`fill_price`). Buys revert above `acceptable_price`, sells below it
            (the fill's). The position's PnL and funding are settled into collateral and its
            entry reset to the fill (stored less the funding index); the trading fee goes to
            the pool.
    """
    self._trade(market_id, size_delta, acceptable_price)


@payable
@external
def trade_with_prices(
    updates: Bytes[k.MAX_UPDATE], market_id: uint256, size_delta: int256, acceptable_price: uint256
):
    """
    @notice `update_prices(updates)`, then `trade` at the newest price, in one transaction.
    """
    markets._update_prices(updates, msg.value)
    self._trade(market_id, size_delta, acceptable_price)


@internal
def _trade(market_id: uint256, size_delta: int256, acceptable_price: uint256):
    assert size_delta != 0, "clearinghouse: zero size"
    # The configuration, limits and funds words are decoded inline here with the codec's
    # named offsets and masks: an internal call costs about 100 gas in this codegen, and
    # the trade path would make eight of them.
    cfg: uint256 = markets.market_config[market_id]
    assert (cfg >> codec.CFG_LISTED) & 1 == 1, "clearinghouse: unknown market"
    old_size: int256 = 0
    entry: int256 = 0
    old_size, entry = mm._unpack_position(acct.positions[msg.sender][market_id])
    # |old_size| <= MAX_SIZE: the sum wraps only when size_delta is out of bounds itself,
    # and then the check fails anyway.
    new_size: int256 = unsafe_add(old_size, size_delta)
    assert (
        size_delta >= -k.MAX_SIZE_INT
        and size_delta <= k.MAX_SIZE_INT
        and new_size >= -k.MAX_SIZE_INT
        and new_size <= k.MAX_SIZE_INT
    ), "clearinghouse: size overflow"

    price: uint256 = staticcall IPriceFeed(convert(cfg & codec.MASK160, address)).latest_price()
    assert price <= k.MAX_PRICE, "clearinghouse: price overflow"
    # Funding on: the market's funding is recorded up to now at the oracle price and on the
    # skew before this trade, and the trade fills with the skew premium (funding.vy).
    fill: uint256 = price
    index: int256 = 0
    funded: bool = (cfg >> codec.CFG_FUNDING) & 1 == 1
    if funded:
        skew: int256 = funding._skew(markets.market_oi[market_id])
        word: uint256 = 0
        word, index = funding._accrue(
            markets.funding_word[market_id], skew, price, block.timestamp
        )
        markets.funding_word[market_id] = word
        fill = funding._fill_price(price, skew, skew + size_delta, funding._skew_scale(word))
    if size_delta > 0:
        assert fill <= acceptable_price, "clearinghouse: slippage"
    else:
        assert fill >= acceptable_price, "clearinghouse: slippage"

    old_abs: uint256 = convert(abs(old_size), uint256)
    new_abs: uint256 = convert(abs(new_size), uint256)
    flipped: bool = (old_size > 0 and new_size < 0) or (old_size < 0 and new_size > 0)
    adds_risk: bool = new_abs > old_abs or flipped
    assert not (adds_risk and (cfg >> codec.CFG_PAUSED) & 1 == 1), "clearinghouse: paused"

    limits: uint256 = markets.market_limits[market_id]
    if new_size != 0:
        assert mm._notional_down(new_abs, price, ledger.token_scale) >= limits >> 128, (
            "clearinghouse: position too small"
        )

    # Open interest per side and the entry sum (for the pool's view of trader PnL); the new
    # entry is the fill less the index, the position's funding basis.
    mark: int256 = convert(fill, int256) - index
    markets._move_position(market_id, old_size, entry, new_size, mark, limits & codec.MASK128)

    # Settle PnL of the old position, charge the fee.
    c: int256 = ledger.collateral[msg.sender]
    funds: uint256 = ledger.funds
    pool: uint256 = funds & codec.MASK128
    realized: int256 = 0
    haircut: uint256 = 0  # profit the backed pool could not pay: an equity loss like the fee
    fee: uint256 = mm._bps_up(
        mm._notional_up(convert(abs(size_delta), uint256), fill, ledger.token_scale),
        (cfg >> codec.CFG_TRADE) & codec.MASK16,
    )
    pool += fee  # first: the profit below may pay the fee back into the pool it came from
    if old_size != 0:
        # The old position's PnL at the fill, with its funding since its last settlement.
        realized = mm._pnl(old_size, entry, mark, ledger.token_scale)
        if realized < 0:
            pool += convert(-realized, uint256)  # a loss is the pool's, in full
        elif realized > 0:
            owed: int256 = realized
            # Backed at least for the account's own debt and this trade's fee (the fee comes
            # straight back to the pool): a profit can always close out its own account.
            realized = ledger._pay_profit(
                msg.sender, market_id, realized, ledger._backed(pool, c, c - convert(fee, int256))
            )
            haircut = convert(owed - realized, uint256)
            pool -= convert(realized, uint256)
    assert pool <= codec.MASK128, "clearinghouse: funds overflow"
    ledger.funds = (funds & ~codec.MASK128) | pool
    c_after: int256 = c + realized - convert(fee, int256)
    ledger._set_collateral(msg.sender, c, c_after)

    # The funding in that PnL, itemised just before PositionChanged (as a liquidation does).
    if funded and old_size != 0:
        log IClearinghouse.FundingSettled(
            account=msg.sender,
            market_id=market_id,
            funding=acct._funding_due(msg.sender, market_id, old_size, index),
            funding_index=index,
        )

    # Store the position and the account's market list.
    if new_size == 0:
        acct.positions[msg.sender][market_id] = 0
        acct.account_markets[msg.sender] = codec._list_without(
            acct.account_markets[msg.sender], market_id
        )
    else:
        acct.positions[msg.sender][market_id] = mm._pack_position(new_size, mark)
        if funded:
            acct.position_funding[msg.sender][market_id] = index
        if old_size == 0:
            word: uint256 = acct.account_markets[msg.sender]
            assert word & 255 < k.MAX_POSITIONS, "clearinghouse: too many positions"  # the count
            acct.account_markets[msg.sender] = codec._list_with(word, market_id)

    log IClearinghouse.PositionChanged(
        account=msg.sender,
        market_id=market_id,
        size_delta=size_delta,
        new_size=new_size,
        price=fill,
        realized_pnl=realized,
        fee=fee,
    )

    # Margin check on the whole account after the trade (this market's price is known).
    st: acct.AccountState = acct._load_known(msg.sender, market_id, price)
    if adds_risk:
        # Equity at the exit: less the skew premium closing every position would pay (its
        # cost, never a rebate), so a fill's rebate is no margin until it is realised.
        assert st.equity - convert(st.premium, int256) >= convert(st.initial, int256), (
            "clearinghouse: insufficient margin"
        )
    elif len(st.legs) > 0:
        # A reduction must leave the account healthy, or at least not deepen its shortfall
        # (maintenance - equity): the maintenance it frees must cover what it costs the
        # equity. PnL settlement moves equity into collateral without changing it, except
        # for a haircut of the profit, so the fee, the haircut and the skew premium (what
        # the fill gives away against the oracle, `size_delta * (price - fill)`, a gain when
        # the trade shrinks the skew) are the whole change.
        if st.equity < convert(st.maintenance, int256):
            mm_bps: uint256 = (cfg >> codec.CFG_MM) & codec.MASK16
            freed: uint256 = mm._bps_up(
                mm._notional_up(old_abs, price, ledger.token_scale), mm_bps
            ) - mm._bps_up(mm._notional_up(new_abs, price, ledger.token_scale), mm_bps)
            premium: int256 = 0
            if funded:
                premium = mm._pnl(
                    size_delta, convert(fill, int256), convert(price, int256), ledger.token_scale
                )
            assert convert(freed, int256) + premium >= convert(fee + haircut, int256), (
                "clearinghouse: would be liquidatable"
            )
    else:
        assert st.collateral >= 0, "clearinghouse: close leaves bad debt"
    # The keeper reward's gas price steps toward this block's base fee, after every check.
    eth: uint256 = 0
    if market_id + 1 == codec._liq_gas_market(acct.liquidation_config):
        eth = price
    acct._note_gas(eth)
