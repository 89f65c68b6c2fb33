# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Trading: one market order at the oracle price
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
            positive buys) at the oracle price. Buys revert above `acceptable_price`,
            sells below it. The position's PnL is settled into collateral and its
            entry reset to the execution price; the trading fee goes to the pool.
    """
    assert size_delta != 0, "clearinghouse: zero size"
    cfg: uint256 = markets._listed(market_id)
    assert size_delta >= -k.MAX_SIZE_INT and size_delta <= k.MAX_SIZE_INT, (
        "clearinghouse: size overflow"
    )

    price: uint256 = staticcall IPriceFeed(codec._market_feed(cfg)).latest_price()
    assert price <= k.MAX_PRICE, "clearinghouse: price overflow"
    if size_delta > 0:
        assert price <= acceptable_price, "clearinghouse: slippage"
    else:
        assert price >= acceptable_price, "clearinghouse: slippage"

    old_size: int256 = 0
    entry: uint256 = 0
    old_size, entry = mm._unpack_position(acct.positions[msg.sender][market_id])
    new_size: int256 = old_size + size_delta
    assert new_size >= -k.MAX_SIZE_INT and new_size <= k.MAX_SIZE_INT, (
        "clearinghouse: size overflow"
    )

    old_abs: uint256 = convert(abs(old_size), uint256)
    new_abs: uint256 = convert(abs(new_size), uint256)
    flipped: bool = (old_size > 0 and new_size < 0) or (old_size < 0 and new_size > 0)
    adds_risk: bool = new_abs > old_abs or flipped
    assert not (adds_risk and codec._market_paused(cfg)), "clearinghouse: paused"

    limits: uint256 = markets.market_limits[market_id]
    if new_size != 0:
        assert mm._notional_down(
            new_abs, price, ledger.token_scale
        ) >= codec._limits_min_notional(limits), "clearinghouse: position too small"

    # Open interest per side and the entry sum (for the pool's view of trader PnL).
    markets._move_open_interest(market_id, old_size, new_size, codec._limits_max_oi(limits))
    markets._move_entry_sum(market_id, old_size, entry, new_size, price)

    # Settle PnL of the old position, charge the fee.
    c: int256 = ledger.collateral[msg.sender]
    funds: uint256 = ledger.funds
    pool: uint256 = codec._funds_pool(funds)
    realized: int256 = 0
    if old_size != 0:
        realized = mm._pnl(old_size, entry, price, ledger.token_scale)
        if realized < 0:
            pool += convert(-realized, uint256)  # a loss is the pool's, in full
        elif realized > 0:
            realized = ledger._pay_profit(msg.sender, market_id, realized, pool)
            pool -= convert(realized, uint256)
    fee: uint256 = mm._bps_up(
        mm._notional_up(convert(abs(size_delta), uint256), price, ledger.token_scale),
        codec._market_trade_fee(cfg),
    )
    pool += fee
    ledger.funds = codec._pack_funds(pool, codec._funds_insurance(funds))
    c_after: int256 = c + realized - convert(fee, int256)
    ledger._set_collateral(msg.sender, c, c_after)

    # Store the position and the account's market list.
    acct._set_position(msg.sender, market_id, old_size, new_size, price)

    log IClearinghouse.PositionChanged(
        account=msg.sender,
        market_id=market_id,
        size_delta=size_delta,
        new_size=new_size,
        price=price,
        realized_pnl=realized,
        fee=fee,
    )

    # Margin check on the whole account after the trade (this market's price is known).
    st: acct.AccountState = acct._load_known(msg.sender, market_id, price)
    if adds_risk:
        assert st.equity >= convert(st.initial, int256), "clearinghouse: insufficient margin"
    elif len(st.legs) > 0:
        # A reduction must leave the account healthy, or at least not deepen its shortfall
        # (maintenance - equity): the maintenance it frees must cover the fee it pays. PnL
        # settlement moves equity into collateral without changing it, so the fee is the
        # whole change in equity.
        if st.equity < convert(st.maintenance, int256):
            mm_bps: uint256 = codec._market_mm(cfg)
            freed: uint256 = mm._bps_up(
                mm._notional_up(old_abs, price, ledger.token_scale), mm_bps
            ) - mm._bps_up(mm._notional_up(new_abs, price, ledger.token_scale), mm_bps)
            assert freed >= fee, "clearinghouse: would be liquidatable"
    else:
        assert st.collateral >= 0, "clearinghouse: close leaves bad debt"
