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
from . import funding
from . import ledger
from . import margin_math as mm
from . import markets

uses: ledger
uses: markets


struct Leg:
    market_id: uint256
    size: int256  # WAD base units
    entry: int256  # WAD price the position is marked from, less the index it was settled at
    price: uint256  # current oracle price, WAD
    pnl: int256  # unrealised PnL at `price` with the funding accrued, token units
    liq_bps: uint256  # the market's liquidation fee rate
    index: int256  # the market's funding index now, at `price` (0: funding off)
    funding: uint256  # the market's funding word brought to now (0: funding off)
    premium: uint256  # the skew premium closing it in full would pay now, token units


struct AccountState:
    collateral: int256  # token units
    equity: int256  # collateral + sum of unrealised PnL
    initial: uint256  # initial requirement, rounded up
    maintenance: uint256  # maintenance requirement, rounded up
    liq_fee: uint256  # liquidation fee on every position's full notional, rounded up
    legs: DynArray[Leg, k.MAX_POSITIONS]
    unpriced: bool  # (liquidate_many only) a market has no price, not even a stale mark
    premium: uint256  # the skew premium closing every funded position in full would pay
    gas_reward: uint256  # the gas-priced part of the keeper reward, unclamped (token units)
    reserve: uint256  # the keeper reward reserved in both requirements (token units)


account_markets: HashMap[address, uint256]  # packed market list, see codec
# Packed liquidation parameters (codec): keeper share, partial bound, minimum and maximum
# reward, flat gas margin. Here, not in the liquidation module: every account load reads it.
liquidation_config: uint256
# The keeper reward's gas price (codec): the smoothed gas price, the last ETH/USD price seen,
# the block of the last step, the gas premium, the ETH market and the gas price floor.
keeper_gas: uint256
# The ETH/USD mark a liquidation read in this transaction (the ETH market's leg), for the
# gas word's update at its end.
eth_seen: transient(uint256)
# packed (size int128 | entry int128), the entry less the funding index at the last settlement
positions: HashMap[address, HashMap[uint256, uint256]]
# The funding index at the position's last settlement, in a market with funding on (written
# when funding is on; read only to itemise the funding a settlement pays, `FundingSettled`,
# and by the views: the account's equity needs only the adjusted entry).
position_funding: HashMap[address, HashMap[uint256, int256]]


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
    @notice Withdraw collateral; only realised collateral, and equity less the skew
            premium closing the open positions would pay must stay >= their initial
            requirement.
    """
    assert amount > 0, "clearinghouse: zero amount"
    c: int256 = ledger.collateral[msg.sender]
    # Compared as uint256 so that amounts above max int256 get this message, not an overflow.
    assert convert(max(c, 0), uint256) >= amount, "clearinghouse: insufficient collateral"
    c_after: int256 = c - convert(amount, int256)
    if codec._list_count(self.account_markets[msg.sender]) != 0:
        st: AccountState = self._load_known(msg.sender, k.MAX_MARKETS, 0)
        # equity at the exit, as a trade's check: less every position's closing premium
        assert st.equity - convert(amount + st.premium, int256) >= convert(st.initial, int256), (
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
    entry: int256 = 0
    size, entry = mm._unpack_position(self.positions[account][market_id])
    if size == 0:
        return empty(IClearinghouse.Position)
    # the last fill: the adjusted entry plus the index it was settled at
    return IClearinghouse.Position(
        size=size, entry_price=convert(entry + self.position_funding[account][market_id], uint256)
    )


@view
@external
def accrued_funding(account: address) -> int256:
    """
    @notice Funding accrued on the account's open positions since each was last settled,
            token units, rounded down (positive: to receive), each at the index its equity
            is marked with (the index brought to now at the position's mark, so a stale
            feed within its window still answers). Its equity already includes it.
    """
    total: int256 = 0
    ids: uint256 = self.account_markets[account]
    for i: uint256 in range(codec._list_count(ids), bound=k.MAX_POSITIONS):
        market_id: uint256 = codec._list_id(ids, i)
        cfg: uint256 = markets.market_config[market_id]
        if (cfg >> codec.CFG_FUNDING) & 1 == 1:
            size: int256 = 0
            entry: int256 = 0
            size, entry = mm._unpack_position(self.positions[account][market_id])
            feed: address = convert(cfg & codec.MASK160, address)
            price: uint256 = staticcall IPriceFeed(feed).mark(size > 0)
            if price == 0:  # past the stale window: say why, as the account load does
                price = staticcall IPriceFeed(feed).latest_price()
            index: int256 = markets._funding_index(
                market_id, cfg, markets.market_oi[market_id], price
            )
            total += self._funding_due(account, market_id, size, index)
    return total


@view
@internal
def _premium_cost(oi: uint256, price: uint256, size: int256, close: uint256, word: uint256) -> uint256:
    """
    @dev The skew premium closing `close` of a position of `size` at the mark `price` pays
         (token units, rounded up) in a market with open interest `oi` and funding word
         `word`: `funding._close_cost`, 0 when the close shrinks the skew.
    """
    per: uint256 = funding._close_cost(
        price, funding._skew(oi), size, close, funding._skew_scale(word)
    )
    return mm._notional_up(close, per, ledger.token_scale)


@view
@internal
def _funding_due(account: address, market_id: uint256, size: int256, index: int256) -> int256:
    """
    @dev The funding of `size` in `market_id` from its last settlement to `index`, token
         units, rounded down: -size * (index - basis), a long paying a rising index.
    """
    return mm._pnl(size, index, self.position_funding[account][market_id], ledger.token_scale)


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
         prices already read in that batch come from the price cache. Each position is
         marked by its feed's `mark`: the price, or within a stale feed's window a price
         moved against the position. A market with no mark at all reverts with the feed's
         reason, except in a batch, which flags the account `unpriced` (skipped).
    """
    st: AccountState = empty(AccountState)
    st.collateral = ledger.collateral[account]
    eq: int256 = st.collateral
    ids: uint256 = self.account_markets[account]
    for i: uint256 in range(codec._list_count(ids), bound=k.MAX_POSITIONS):
        market_id: uint256 = codec._list_id(ids, i)
        cfg: uint256 = markets.market_config[market_id]
        size: int256 = 0
        entry: int256 = 0
        size, entry = mm._unpack_position(self.positions[account][market_id])
        price: uint256 = known_price
        if market_id != known_id:
            feed: address = convert(cfg & codec.MASK160, address)
            if known_id <= k.MAX_MARKETS:
                price = staticcall IPriceFeed(feed).mark(size > 0)
                if price == 0:  # past the stale window, or no usable answer: say why
                    price = staticcall IPriceFeed(feed).latest_price()
            else:
                price = markets._batch_price(market_id, feed, known_id - k.MAX_MARKETS, size > 0)
                st.unpriced = st.unpriced or price == 0
        # Every price the engine accounts with fits what a position stores (the packing and
        # the unchecked maths rely on it), wherever it is read: not only in `trade`.
        assert price <= k.MAX_PRICE, "clearinghouse: price overflow"
        notional: uint256 = mm._notional_up(convert(abs(size), uint256), price, ledger.token_scale)
        index: int256 = 0
        word: uint256 = 0
        premium: uint256 = 0
        if (cfg >> codec.CFG_FUNDING) & 1 == 1 and price != 0:
            # funding brought to now at this position's mark (a batch's unpriced entry skips)
            oi: uint256 = markets.market_oi[market_id]
            word, index = funding._accrue(
                markets.funding_word[market_id], funding._skew(oi), price, block.timestamp
            )
            premium = self._premium_cost(oi, price, size, convert(abs(size), uint256), word)
            st.premium += premium
        pnl: int256 = mm._pnl(size, entry, convert(price, int256) - index, ledger.token_scale)
        eq += pnl
        # The rates decoded inline with the codec's layout: this loop runs for every position
        # of every account a trade, a withdrawal or a liquidation loads.
        liq_bps: uint256 = (cfg >> codec.CFG_LIQ) & codec.MASK16
        st.initial += mm._bps_up(notional, (cfg >> codec.CFG_IM) & codec.MASK16)
        st.maintenance += mm._bps_up(notional, (cfg >> codec.CFG_MM) & codec.MASK16)
        st.liq_fee += mm._bps_up(notional, liq_bps)
        st.legs.append(
            Leg(
                market_id=market_id,
                size=size,
                entry=entry,
                price=price,
                pnl=pnl,
                liq_bps=liq_bps,
                index=index,
                funding=word,
                premium=premium,
            )
        )
    st.equity = eq
    n: uint256 = len(st.legs)
    if n != 0:
        # The keeper reward a liquidation of these n positions would pay, reserved in both
        # requirements: every account that becomes liquidatable can pay its own liquidation.
        lcfg: uint256 = self.liquidation_config
        if codec._liq_gas_market(lcfg) != 0:  # pricing off: the gas word is not read
            st.gas_reward = self._gas_reward(self.keeper_gas, lcfg, n)
        st.reserve = min(
            max(st.gas_reward, codec._liq_min_reward(lcfg)), codec._liq_max_reward(lcfg)
        )
        st.initial += st.reserve
        st.maintenance += st.reserve
    return st


@view
@internal
def _gas_reward(gw: uint256, lcfg: uint256, n: uint256) -> uint256:
    """
    @dev The gas-priced part of the keeper reward for liquidating `n` positions, token units,
         rounded up: g = gas price x (LIQ_GAS_BASE + LIQ_GAS_PER_POSITION x n) x ETH/USD, then
         max(g x (1 + premium), g + margin). Called only with gas pricing on.
    """
    units: uint256 = k.LIQ_GAS_BASE + k.LIQ_GAS_PER_POSITION * n
    # gas price < 2**64, units < 2**20, ETH/USD < 2**96: the product fits 180 bits.
    wad_cost: uint256 = unsafe_mul(unsafe_mul(codec._gas_price(gw), units), codec._gas_eth(gw))
    unit: uint256 = k.WAD * ledger.token_scale  # wei x WAD USD -> token units
    g: uint256 = unsafe_div(unsafe_add(wad_cost, unit - 1), unit)
    return max(
        g + g * codec._gas_premium(gw) // k.BPS, g + codec._liq_gas_margin(lcfg)
    )


@internal
def _note_gas(eth_price: uint256):
    """
    @dev Step the keeper reward's gas price toward this block's base fee, at most an eighth
         (EIP-1559's own step) once per block and never below the floor, and record the
         ETH/USD price `eth_price` when the caller read one (0: keep the last). Called at
         the end of a trade or liquidation, so every requirement the transaction checked
         used the stored value, as a view (whose base fee is 0) does.
    """
    if codec._liq_gas_market(self.liquidation_config) == 0:
        return
    gw: uint256 = self.keeper_gas
    gp: uint256 = codec._gas_price(gw)
    if block.number != codec._gas_block(gw):
        step: uint256 = gp >> 3
        gp = max(min(max(block.basefee, gp - step), gp + step), codec._gas_floor(gw))
    eth: uint256 = codec._gas_eth(gw)
    if eth_price != 0:
        eth = eth_price
    self.keeper_gas = codec._pack_gas(gp, eth, block.number, gw)


@view
@internal
def _liquidatable(st: AccountState) -> bool:
    return len(st.legs) > 0 and st.equity < convert(st.maintenance, int256)
