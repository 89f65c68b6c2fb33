# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Accounts: collateral in and out, positions, market lists, the account's state
@license MIT
@notice One packed slot per position (size | entry price), one packed list of the markets an
        account holds, and the one function that marks an account at the oracle: its
        equity and its initial, maintenance and liquidation-fee requirements.
"""

from ..interfaces import IClearinghouse
from ..interfaces import IPriceFeed
from . import codec
from . import constants as k
from . import ledger
from . import margin_math as mm
from . import markets

uses: ledger
uses: markets


struct Leg:
    market_id: uint256
    size: int256  # WAD base units
    entry: uint256  # WAD price the position is marked from
    price: uint256  # current oracle price, WAD
    cfg: uint256  # packed market configuration


struct AccountState:
    collateral: int256  # token units
    equity: int256  # collateral + sum of unrealised PnL
    initial: uint256  # initial requirement, rounded up
    maintenance: uint256  # maintenance requirement, rounded up
    liq_fee: uint256  # liquidation fee on every position's full notional, rounded up
    legs: DynArray[Leg, k.MAX_POSITIONS]


account_markets: HashMap[address, uint256]  # packed market list, see codec
positions: HashMap[address, HashMap[uint256, uint256]]  # packed (size int128 | entry uint128)


@external
def deposit(amount: uint256):
    """
    @notice Deposit `amount` of the collateral token; the credit is what actually arrives.
    """
    received: uint256 = ledger._pull(msg.sender, amount)
    c: int256 = ledger.collateral[msg.sender]
    ledger._set_collateral(msg.sender, c, c + convert(received, int256))
    log IClearinghouse.Deposited(account=msg.sender, amount=received)


@external
def withdraw(amount: uint256):
    """
    @notice Withdraw collateral; only realised collateral, and equity must stay
            >= the initial requirement of the open positions.
    """
    assert amount > 0, "clearinghouse: zero amount"
    c: int256 = ledger.collateral[msg.sender]
    # Compared as uint256 so that amounts above max int256 get this message, not an overflow.
    assert convert(max(c, 0), uint256) >= amount, "clearinghouse: insufficient collateral"
    c_after: int256 = c - convert(amount, int256)
    if codec._list_count(self.account_markets[msg.sender]) != 0:
        st: AccountState = self._load(msg.sender)
        assert st.equity - convert(amount, int256) >= convert(st.initial, int256), (
            "clearinghouse: insufficient margin"
        )
    ledger._set_collateral(msg.sender, c, c_after)
    ledger._push(msg.sender, amount)
    log IClearinghouse.Withdrawn(account=msg.sender, amount=amount)


@view
@external
def position(account: address, market_id: uint256) -> IClearinghouse.Position:
    """
    @notice Size (signed WAD base units) and entry price (WAD) of one position.
    """
    size: int256 = 0
    entry: uint256 = 0
    size, entry = mm._unpack_position(self.positions[account][market_id])
    return IClearinghouse.Position(size=size, entry_price=entry)


@view
@external
def account_market_ids(account: address) -> DynArray[uint256, k.MAX_POSITIONS]:
    return codec._list_ids(self.account_markets[account])


@view
@internal
def _load(account: address) -> AccountState:
    return self._load_known(account, k.MAX_MARKETS, 0)


@view
@internal
def _load_known(
    account: address, known_id: uint256, known_price: uint256
) -> AccountState:
    """
    @dev Every open position of `account` marked at the oracle: equity and requirements.
         `known_price` is used for market `known_id` instead of a second feed call. A
         `known_id` of MAX_MARKETS + batch (liquidate_many) means no known market, and
         prices already read in that batch come from the price cache.
    """
    st: AccountState = empty(AccountState)
    st.collateral = ledger.collateral[account]
    eq: int256 = st.collateral
    ids: DynArray[uint256, k.MAX_POSITIONS] = codec._list_ids(self.account_markets[account])
    for market_id: uint256 in ids:
        cfg: uint256 = markets.market_config[market_id]
        size: int256 = 0
        entry: uint256 = 0
        size, entry = mm._unpack_position(self.positions[account][market_id])
        price: uint256 = known_price
        if market_id != known_id:
            feed: address = codec._market_feed(cfg)
            if known_id <= k.MAX_MARKETS:
                price = staticcall IPriceFeed(feed).latest_price()
            else:
                price = markets._batch_price(market_id, feed, known_id - k.MAX_MARKETS)
        notional: uint256 = mm._notional_up(convert(abs(size), uint256), price, ledger.token_scale)
        eq += mm._pnl(size, entry, price, ledger.token_scale)
        st.initial += mm._bps_up(notional, codec._market_im(cfg))
        st.maintenance += mm._bps_up(notional, codec._market_mm(cfg))
        st.liq_fee += mm._bps_up(notional, codec._market_liq_fee(cfg))
        st.legs.append(
            Leg(market_id=market_id, size=size, entry=entry, price=price, cfg=cfg)
        )
    st.equity = eq
    return st


@view
@internal
def _liquidatable(st: AccountState) -> bool:
    return len(st.legs) > 0 and st.equity < convert(st.maintenance, int256)


@internal
def _set_position(account: address, market_id: uint256, old_size: int256, new_size: int256, price: uint256):
    """
    @dev Store a position changed at `price` (its new entry) and keep the market list in step.
    """
    if new_size == 0:
        self.positions[account][market_id] = 0
        self.account_markets[account] = codec._list_without(self.account_markets[account], market_id)
    else:
        self.positions[account][market_id] = mm._pack_position(new_size, price)
        if old_size == 0:
            word: uint256 = self.account_markets[account]
            assert codec._list_count(word) < k.MAX_POSITIONS, "clearinghouse: too many positions"
            self.account_markets[account] = codec._list_with(word, market_id)
