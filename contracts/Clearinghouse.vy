# pragma version 0.4.3
# pragma nonreentrancy on
# pragma optimize codesize
"""
@title Margin Maintenance clearinghouse
@license MIT
@notice Cross-margin perpetual futures against a counterparty pool of LP capital.
        Traders deposit one collateral token and open positions in up to
        MAX_POSITIONS markets, executed at the oracle price. Increases and
        withdrawals must leave equity >= initial requirement. When equity falls
        below the maintenance requirement anyone may `liquidate` the account: the
        smallest fraction of every position that restores the initial requirement
        is closed (all of it when that fraction is too large), a fee is split
        between the caller and the insurance fund, and any bad debt is covered by
        insurance first, then by the pool, and logged.
@custom:security Assumptions: the collateral token is a plain ERC20 (fee-on-transfer
        is credited only what arrives; rebasing tokens are not supported); every
        market's feed is a `PriceFeed` adapter that reverts on a bad price; the
        `configurator` (immutable) is the only caller of the `configure_*` hooks, and
        its owner is trusted within the bounds each of its setters enforces; the
        guardian can only pause new risk. Every external function is nonreentrant.
        Conservation: token balance == sum(collateral) + pool_assets + insurance_fund.
"""

from ethereum.ercs import IERC20
from interfaces import IClearinghouse
from interfaces import IPoolHooks
from interfaces import IPriceFeed

implements: IClearinghouse
implements: IPoolHooks

from modules import codec
from modules import margin_math as mm


interface IERC20Decimals:
    def decimals() -> uint8: view


# ---- Constants ----

WAD: constant(uint256) = 10**18  # fixed-point one
BPS: constant(uint256) = 10_000  # basis points in one
MAX_MARKETS: constant(uint256) = 64  # market ids are 0 .. MAX_MARKETS - 1
MAX_POSITIONS: constant(uint256) = 8  # open positions per account
MAX_BATCH: constant(uint256) = 64  # accounts per liquidate_many
MAX_STATUS: constant(uint256) = 512  # accounts per margin_status
MAX_SIZE_INT: constant(int256) = 2**127 - 1  # largest |size| of a trade or position (WAD)

# Packed words (market configuration, limits, open interest, liquidation parameters): their
# layouts and the only functions that pack or unpack them are in modules/codec.vy.


# ---- Structs ----


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
    legs: DynArray[Leg, MAX_POSITIONS]


# ---- Immutables ----

collateral_token: public(immutable(address))  # the one settlement token
token_scale: public(immutable(uint256))  # 10**(18 - token decimals): WAD -> token units
lp_token: public(immutable(address))  # the LPVault (share token): the only caller of the pool hooks
configurator: public(immutable(address))  # the Configurator: the only caller of the hooks


# ---- Storage ----

# Accounts
collateral: public(HashMap[address, int256])  # token units; negative = debt after realised loss
account_markets: HashMap[address, uint256]  # packed: bits 0-7 count, then 8-bit market ids
positions: HashMap[address, HashMap[uint256, uint256]]  # packed (size int128 | entry uint128)
total_debt: public(uint256)  # sum over accounts of max(0, -collateral), token units

# Markets
market_count: public(uint256)  # markets listed so far; ids are 0 .. market_count - 1
market_config: HashMap[uint256, uint256]  # packed feed, rates and flags, see codec
market_limits: HashMap[uint256, uint256]  # packed max OI per side and min notional, see codec
market_oi: HashMap[uint256, uint256]  # packed OI long and short (WAD), see codec
market_entry_sum: HashMap[uint256, int256]  # sum of size * entry / WAD over positions, WAD USD

# Pool, insurance, parameters
funds: uint256  # packed pool assets (LP capital, realised) and insurance fund, see codec
price_cache: transient(HashMap[uint256, uint256])  # market -> batch << 128 | price read in it
price_batch: transient(uint256)  # liquidate_many calls so far in this transaction
liquidation_config: uint256  # packed liquidation parameters, see codec
pool_reserve_bps: public(uint256)  # share of open notional LPs cannot withdraw
guardian: public(address)  # may pause new risk (through the configurator)
paused: public(bool)  # new risk (open, increase, LP withdrawal) blocked


# ---- Events: the client-facing ones live in IClearinghouse; the admin events are the
# configurator's (contracts/Configurator.vy) ----


@deploy
def __init__(collateral_token_: address, lp_token_: address, configurator_: address):
    """
    @param collateral_token_ The settlement ERC20 (<= 18 decimals).
    @param lp_token_ The LPVault, fixed for life: it alone calls the `pool_*` hooks. Deploy
           it first, then this engine, then call its `bind(engine)`.
    @param configurator_ The Configurator, fixed for life: it alone calls the `configure_*`
           hooks. Deploy it first, then this engine, then call its `bind(engine, ...)`, which
           checks `configurator() == configurator` and sets the guardian and parameters.
    """
    assert collateral_token_ != empty(address), "clearinghouse: zero token"
    assert lp_token_ != empty(address), "clearinghouse: zero lp vault"
    assert configurator_ != empty(address), "clearinghouse: zero configurator"
    decimals: uint8 = staticcall IERC20Decimals(collateral_token_).decimals()
    assert decimals <= 18, "clearinghouse: too many decimals"
    collateral_token = collateral_token_
    lp_token = lp_token_
    configurator = configurator_
    token_scale = 10 ** convert(18 - decimals, uint256)


# ---- Collateral ----


@external
def deposit(amount: uint256):
    """
    @notice Deposit `amount` of the collateral token; the credit is what actually arrives.
    """
    received: uint256 = self._pull(msg.sender, amount)
    c: int256 = self.collateral[msg.sender]
    self._set_collateral(msg.sender, c, c + convert(received, int256))
    log IClearinghouse.Deposited(account=msg.sender, amount=received)


@external
def withdraw(amount: uint256):
    """
    @notice Withdraw collateral; only realised collateral, and equity must stay
            >= the initial requirement of the open positions.
    """
    assert amount > 0, "clearinghouse: zero amount"
    c: int256 = self.collateral[msg.sender]
    # Compared as uint256 so that amounts above max int256 get this message, not an overflow.
    assert convert(max(c, 0), uint256) >= amount, "clearinghouse: insufficient collateral"
    c_after: int256 = c - convert(amount, int256)
    if self.account_markets[msg.sender] & 255 != 0:
        st: AccountState = self._load(msg.sender)
        assert st.equity - convert(amount, int256) >= convert(st.initial, int256), (
            "clearinghouse: insufficient margin"
        )
    self._set_collateral(msg.sender, c, c_after)
    self._push(msg.sender, amount)
    log IClearinghouse.Withdrawn(account=msg.sender, amount=amount)


# ---- Trading ----


@external
def trade(market_id: uint256, size_delta: int256, acceptable_price: uint256):
    """
    @notice Change the caller's position in `market_id` by `size_delta` (WAD base units,
            positive buys) at the oracle price. Buys revert above `acceptable_price`,
            sells below it. The position's PnL is settled into collateral and its
            entry reset to the execution price; the trading fee goes to the pool.
    """
    assert size_delta != 0, "clearinghouse: zero size"
    cfg: uint256 = self.market_config[market_id]
    assert (cfg >> codec.CFG_LISTED) & 1 == 1, "clearinghouse: unknown market"
    assert size_delta >= -MAX_SIZE_INT and size_delta <= MAX_SIZE_INT, "clearinghouse: size overflow"

    price: uint256 = staticcall IPriceFeed(convert(cfg & codec.MASK160, address)).latest_price()
    assert price <= mm.MAX_PRICE, "clearinghouse: price overflow"
    if size_delta > 0:
        assert price <= acceptable_price, "clearinghouse: slippage"
    else:
        assert price >= acceptable_price, "clearinghouse: slippage"

    word: uint256 = self.positions[msg.sender][market_id]
    old_size: int256 = 0
    entry: uint256 = 0
    old_size, entry = mm._unpack_position(word)
    new_size: int256 = old_size + size_delta
    assert new_size >= -MAX_SIZE_INT and new_size <= MAX_SIZE_INT, "clearinghouse: size overflow"

    old_abs: uint256 = convert(abs(old_size), uint256)
    new_abs: uint256 = convert(abs(new_size), uint256)
    flipped: bool = (old_size > 0 and new_size < 0) or (old_size < 0 and new_size > 0)
    adds_risk: bool = new_abs > old_abs or flipped
    assert not (adds_risk and (cfg >> codec.CFG_PAUSED) & 1 == 1), "clearinghouse: paused"

    limits: uint256 = self.market_limits[market_id]
    if new_size != 0:
        assert mm._notional_down(new_abs, price, token_scale) >= limits >> 128, (
            "clearinghouse: position too small"
        )

    # Open interest per side and the entry sum (for the pool's view of trader PnL).
    self._move_open_interest(market_id, old_size, new_size, limits & codec.MASK128)
    self.market_entry_sum[market_id] += self._entry_value(new_size, price) - self._entry_value(
        old_size, entry
    )

    # Settle PnL of the old position, charge the fee.
    c: int256 = self.collateral[msg.sender]
    funds: uint256 = self.funds
    pool: uint256 = funds & codec.MASK128  # codec funds word, inline on the hot path
    realized: int256 = 0
    if old_size != 0:
        realized = mm._pnl(old_size, entry, price, token_scale)
        if realized < 0:
            pool += convert(-realized, uint256)  # a loss is the pool's, in full
        elif realized > 0:
            realized = self._pay_profit(msg.sender, market_id, realized, pool)
            pool -= convert(realized, uint256)
    fee: uint256 = mm._bps_up(
        mm._notional_up(convert(abs(size_delta), uint256), price, token_scale),
        (cfg >> codec.CFG_TRADE) & codec.MASK16,
    )
    pool += fee
    assert pool <= codec.MASK128, "clearinghouse: funds overflow"
    self.funds = (funds & ~codec.MASK128) | pool
    c_after: int256 = c + realized - convert(fee, int256)
    self._set_collateral(msg.sender, c, c_after)

    # Store the position and the account's market list.
    if new_size == 0:
        self.positions[msg.sender][market_id] = 0
        self._remove_market(msg.sender, market_id)
    else:
        self.positions[msg.sender][market_id] = mm._pack_position(new_size, price)
        if old_size == 0:
            self._add_market(msg.sender, market_id)

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
    st: AccountState = self._load_known(msg.sender, market_id, price)
    if adds_risk:
        assert st.equity >= convert(st.initial, int256), "clearinghouse: insufficient margin"
    elif len(st.legs) > 0:
        # A reduction must leave the account healthy, or at least not deepen its shortfall
        # (maintenance - equity): the maintenance it frees must cover the fee it pays. PnL
        # settlement moves equity into collateral without changing it, so the fee is the
        # whole change in equity.
        if st.equity < convert(st.maintenance, int256):
            mm_bps: uint256 = (cfg >> codec.CFG_MM) & codec.MASK16
            freed: uint256 = mm._bps_up(
                mm._notional_up(old_abs, price, token_scale), mm_bps
            ) - mm._bps_up(mm._notional_up(new_abs, price, token_scale), mm_bps)
            assert freed >= fee, "clearinghouse: would be liquidatable"
    else:
        assert st.collateral >= 0, "clearinghouse: close leaves bad debt"


# ---- Liquidation ----


@external
def liquidate(account: address) -> uint256:
    """
    @notice Liquidate `account` if its equity is below its maintenance requirement.
    @return The reward credited to the caller's collateral (token units).
    """
    reward: uint256 = 0
    done: bool = False
    reward, done = self._liquidate(account, msg.sender, 0)
    assert done, "clearinghouse: account healthy"
    return reward


@external
def liquidate_many(accounts: DynArray[address, MAX_BATCH]) -> uint256:
    """
    @notice Liquidate every liquidatable account in `accounts`; healthy ones (and
            repeats, healthy once liquidated) are skipped without reverting.
    @return The total reward credited to the caller.
    """
    # Each market's price is read from its feed once per call: cached prices are tagged with
    # this call's number, so a later call in the same transaction reads the feeds afresh.
    batch: uint256 = self.price_batch + 1
    self.price_batch = batch
    total: uint256 = 0
    for a: address in accounts:
        reward: uint256 = 0
        done: bool = False
        reward, done = self._liquidate(a, msg.sender, batch)
        total += reward
    return total


@view
@external
def is_liquidatable(account: address) -> bool:
    st: AccountState = self._load(account)
    return len(st.legs) > 0 and st.equity < convert(st.maintenance, int256)


@view
@external
def equity(account: address) -> int256:
    return self._load(account).equity


@view
@external
def maintenance_requirement(account: address) -> uint256:
    return self._load(account).maintenance


@view
@external
def initial_requirement(account: address) -> uint256:
    return self._load(account).initial


@view
@external
def margin_status(
    accounts: DynArray[address, MAX_STATUS]
) -> DynArray[IClearinghouse.AccountStatus, MAX_STATUS]:
    """
    @notice Equity, requirements and the liquidatable flag of many accounts in one call.
    """
    out: DynArray[IClearinghouse.AccountStatus, MAX_STATUS] = []
    for a: address in accounts:
        st: AccountState = self._load(a)
        out.append(
            IClearinghouse.AccountStatus(
                account=a,
                equity=st.equity,
                maintenance=st.maintenance,
                initial=st.initial,
                liquidatable=len(st.legs) > 0 and st.equity < convert(st.maintenance, int256),
            )
        )
    return out


@view
@external
def liquidation_preview(account: address) -> IClearinghouse.LiquidationPreview:
    """
    @notice What `liquidate(account)` would do now, called by a third party: the fraction
            closed (WAD, 0 = healthy), the keeper reward and the bad debt, token units.
    """
    st: AccountState = self._load(account)
    if len(st.legs) == 0 or st.equity >= convert(st.maintenance, int256):
        return empty(IClearinghouse.LiquidationPreview)
    lcfg: uint256 = self.liquidation_config
    fraction: uint256 = 0
    closes: DynArray[uint256, MAX_POSITIONS] = []
    full: bool = False
    funds: uint256 = self.funds
    fraction, closes, full = self._plan(st, lcfg, codec._funds_pool(funds))
    fee: uint256 = 0
    for i: uint256 in range(len(st.legs), bound=MAX_POSITIONS):
        leg: Leg = st.legs[i]
        fee += mm._bps_up(
            mm._notional_up(closes[i], leg.price, token_scale), codec._market_liq_fee(leg.cfg)
        )
    # PnL is realised in full; the fee (at least the minimum reward) comes out of what is left.
    fee_paid: uint256 = 0
    reward: uint256 = 0
    ins: uint256 = 0
    fee_paid, reward, ins = self._fee_split(
        fee, st.equity, lcfg, codec._funds_insurance(funds), True
    )
    bad: uint256 = 0
    if full and st.equity < 0:
        bad = convert(-st.equity, uint256)
    return IClearinghouse.LiquidationPreview(fraction=fraction, reward=reward, bad_debt=bad)


# ---- Liquidity pool (the counterparty): shares and their maths live in the LP vault ----


@view
@external
def pool_state() -> IPoolHooks.PoolState:
    """
    @notice What the LP vault prices shares against: pool assets, account debt, and the
            pool's exposure to open positions (reserve, unrealised trader profit and loss).
    """
    reserve: uint256 = 0
    owed: uint256 = 0
    owing: uint256 = 0
    reserve, owed, owing = self._pool_exposure()
    return IPoolHooks.PoolState(
        pool_assets=codec._funds_pool(self.funds),
        total_debt=self.total_debt,
        reserve=reserve,
        trader_profit=owed,
        trader_loss=owing,
        paused=self.paused,
    )


@external
def pool_pull(provider: address, assets: uint256) -> uint256:
    """
    @notice Vault hook: pull `assets` from `provider` (who approved this contract) and
            return what arrived; `pool_add` credits it in the same transaction.
    """
    self._only(lp_token)
    return self._pull(provider, assets)


@external
def pool_add(provider: address, assets: uint256, shares: uint256):
    """
    @notice Vault hook: credit `assets` (pulled by `pool_pull`) to the pool for the
            `shares` the vault minted.
    """
    self._only(lp_token)
    self._set_pool(self._pool() + assets)
    log IClearinghouse.LiquidityAdded(provider=provider, assets=assets, shares=shares)


@external
def pool_pay(provider: address, assets: uint256, shares: uint256):
    """
    @notice Vault hook: pay `assets` out of the pool to `provider` for the `shares` the vault
            burnt (the vault checked them against the free liquidity).
    """
    self._only(lp_token)
    self._set_pool(self._pool() - assets)
    self._push(provider, assets)
    log IClearinghouse.LiquidityRemoved(provider=provider, assets=assets, shares=shares)


@external
def fund_insurance(amount: uint256):
    """
    @notice Add to the insurance fund (anyone; the credit is what arrives).
    """
    received: uint256 = self._pull(msg.sender, amount)
    w: uint256 = self.funds
    self.funds = codec._pack_funds(codec._funds_pool(w), codec._funds_insurance(w) + received)
    log IClearinghouse.InsuranceFunded(funder=msg.sender, amount=received)


# ---- Views for clients ----


@view
@external
def pool_assets() -> uint256:
    """
    @notice LP capital (realised), token units.
    """
    return codec._funds_pool(self.funds)


@view
@external
def insurance_fund() -> uint256:
    """
    @notice The insurance fund, token units.
    """
    return codec._funds_insurance(self.funds)


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
def mark_price(market_id: uint256) -> uint256:
    """
    @notice The validated oracle price (WAD) the engine marks market `market_id` at now.
    """
    return self._mark(market_id)


@view
@external
def account_market_ids(account: address) -> DynArray[uint256, MAX_POSITIONS]:
    return self._ids(self.account_markets[account])


@view
@external
def market(market_id: uint256) -> IClearinghouse.MarketInfo:
    cfg: uint256 = self.market_config[market_id]
    assert codec._market_listed(cfg), "clearinghouse: unknown market"
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
def liquidation_params() -> (uint256, uint256, uint256):
    """
    @return (keeper share bps, max partial bps, minimum keeper reward in token units).
    """
    lcfg: uint256 = self.liquidation_config
    return (
        codec._liq_keeper_share(lcfg), codec._liq_max_partial(lcfg), codec._liq_min_reward(lcfg)
    )


@view
@external
def trader_unrealized_pnl(market_id: uint256) -> int256:
    """
    @notice Aggregate unrealised PnL of all traders in a market (pool's exposure), token units.
    """
    return self._market_trader_pnl(market_id, self._mark(market_id))


# ---- Configurator hooks (bounds, ownership, guardian and events live there) ----


@external
def configure_market(market_id: uint256, config_word: uint256, limits_word: uint256):
    """
    @notice Store a market's packed configuration and limits words (codec layouts), as the
            configurator checked and packed them. `market_id == market_count` lists a new one.
    """
    self._only(configurator)
    if market_id == self.market_count:
        self.market_count = market_id + 1
    self.market_config[market_id] = config_word
    self.market_limits[market_id] = limits_word


@external
def configure_params(liquidation_config: uint256, pool_reserve_bps: uint256, guardian: address):
    """
    @notice Store the packed liquidation parameters, the pool reserve and the guardian.
    """
    self._only(configurator)
    self.liquidation_config = liquidation_config
    self.pool_reserve_bps = pool_reserve_bps
    self.guardian = guardian


@external
def configure_pause(paused: bool):
    """
    @notice Set the pause flag and its copy in every market's configuration word.
    """
    self._only(configurator)
    self.paused = paused
    for market_id: uint256 in range(self.market_count, bound=MAX_MARKETS):
        self.market_config[market_id] = codec._market_with_paused(
            self.market_config[market_id], paused
        )


# ---- Internal: liquidation ----


@internal
def _liquidate(account: address, keeper: address, batch: uint256) -> (uint256, bool):
    """
    @dev Liquidate `account` if it is liquidatable; returns (reward, liquidated). A non-zero
         `batch` (liquidate_many) reads each market's price from its feed once per batch.
    """
    st: AccountState = self._load_known(account, MAX_MARKETS + batch, 0)
    n: uint256 = len(st.legs)
    if batch != 0:
        for leg: Leg in st.legs:  # remembered for the rest of the batch
            if leg.price <= mm.MAX_PRICE:
                self.price_cache[leg.market_id] = (batch << 128) | leg.price
    if n == 0 or st.equity >= convert(st.maintenance, int256):
        return 0, False

    lcfg: uint256 = self.liquidation_config
    fraction: uint256 = 0
    closes: DynArray[uint256, MAX_POSITIONS] = []
    full: bool = False
    funds: uint256 = self.funds
    pool: uint256 = codec._funds_pool(funds)
    fraction, closes, full = self._plan(st, lcfg, pool)

    # Close, realise PnL in full on every touched position, reset entries. Losses are
    # settled into the pool first and profits after, so that a thin pool pays a winning
    # leg out of the same liquidation's losing legs rather than haircutting it.
    c: int256 = st.collateral
    fee: uint256 = 0
    closed_notional: uint256 = 0
    ids_word: uint256 = self.account_markets[account]
    pnls: DynArray[int256, MAX_POSITIONS] = []
    for i: uint256 in range(n, bound=MAX_POSITIONS):
        leg: Leg = st.legs[i]
        close: uint256 = closes[i]
        new_size: int256 = self._after_close(leg.size, close)
        cn: uint256 = mm._notional_up(close, leg.price, token_scale)
        closed_notional += cn
        fee += mm._bps_up(cn, (leg.cfg >> codec.CFG_LIQ) & codec.MASK16)

        pnl: int256 = mm._pnl(leg.size, leg.entry, leg.price, token_scale)
        if pnl < 0:
            pool += convert(-pnl, uint256)
            c += pnl
        pnls.append(pnl)
        limits: uint256 = 2**128 - 1  # decreases never hit the cap; skip the SLOAD
        self._move_open_interest(leg.market_id, leg.size, new_size, limits)
        self.market_entry_sum[leg.market_id] += self._entry_value(
            new_size, leg.price
        ) - self._entry_value(leg.size, leg.entry)
        if new_size == 0:
            self.positions[account][leg.market_id] = 0
            ids_word = self._without(ids_word, leg.market_id)
        else:
            self.positions[account][leg.market_id] = mm._pack_position(new_size, leg.price)
    for i: uint256 in range(n, bound=MAX_POSITIONS):
        leg: Leg = st.legs[i]
        realized: int256 = pnls[i]
        if realized > 0:
            realized = self._pay_profit(account, leg.market_id, realized, pool)
            pool -= convert(realized, uint256)
            c += realized
        new_size: int256 = self._after_close(leg.size, closes[i])
        log IClearinghouse.PositionChanged(
            account=account,
            market_id=leg.market_id,
            size_delta=new_size - leg.size,
            new_size=new_size,
            price=leg.price,
            realized_pnl=realized,
            fee=0,
        )
    self.account_markets[account] = ids_word

    # Fee from what the account has left: at least the minimum keeper reward when a third
    # party liquidates, so the insurance fund tops the reward up only when the account
    # cannot pay it (a hedged owner cannot farm the top-up from a second address).
    fee_paid: uint256 = 0
    reward: uint256 = 0
    insurance: uint256 = 0
    fee_paid, reward, insurance = self._fee_split(
        fee, c, lcfg, codec._funds_insurance(funds), keeper != account
    )
    c -= convert(fee_paid, int256)

    # Bad debt: insurance first, then the pool; whatever is left stays as account debt.
    if full and c < 0:
        bad: uint256 = convert(-c, uint256)
        from_insurance: uint256 = min(bad, insurance)
        insurance -= from_insurance
        from_pool: uint256 = min(bad - from_insurance, pool)
        pool -= from_pool
        c += convert(from_insurance + from_pool, int256)
        log IClearinghouse.BadDebtSettled(
            account=account,
            bad_debt=bad,
            insurance_covered=from_insurance,
            socialised=from_pool,
            uncovered=bad - from_insurance - from_pool,
        )
    self.funds = codec._pack_funds(pool, insurance)
    self._set_collateral(account, st.collateral, c)
    if reward > 0:
        kc: int256 = self.collateral[keeper]
        self._set_collateral(keeper, kc, kc + convert(reward, int256))

    log IClearinghouse.Liquidated(
        account=account,
        liquidator=keeper,
        fraction=fraction,
        closed_notional=closed_notional,
        fee=fee_paid,
        keeper_reward=reward,
        insurance_delta=convert(fee_paid, int256) - convert(reward, int256),
        full=full,
    )
    return reward, True


@pure
@internal
def _after_close(size: int256, close: uint256) -> int256:
    # close <= |size| <= MAX_SIZE < 2**127: the conversion and the sum cannot wrap.
    if size > 0:
        return unsafe_sub(size, convert(close, int256))
    return unsafe_add(size, convert(close, int256))


@view
@internal
def _plan(
    st: AccountState, lcfg: uint256, pool: uint256
) -> (uint256, DynArray[uint256, MAX_POSITIONS], bool):
    """
    @dev Sizes to close per leg: the fraction of SPEC.md section 3, rounded up per leg,
         everything when the fraction exceeds the partial bound, and a whole leg when
         its remainder would be below the market's minimum notional.
    """
    # Plan on the equity the close can realise: every touched leg settles its PnL against the
    # pool, which pays net profit only up to its assets (the rest is haircut), so equity
    # above collateral + pool assets is paper. Requirements and fees round up leg by leg; two
    # units of slack per leg make sure the remainder really does meet its initial
    # requirement after the rounding.
    realisable: int256 = min(st.equity, st.collateral + convert(pool, int256))
    slack_equity: int256 = realisable - convert(2 * len(st.legs), int256)
    fraction: uint256 = mm._liquidation_fraction(slack_equity, st.initial, st.liq_fee)
    # The fee is at least the minimum keeper reward: close enough that paying it as a flat
    # amount still leaves the initial requirement of the remainder covered.
    fraction = max(
        fraction,
        mm._liquidation_fraction(
            slack_equity - convert(lcfg >> codec.LIQ_REWARD, int256), st.initial, 0
        ),
    )
    full: bool = fraction > (((lcfg >> codec.LIQ_PARTIAL) & codec.MASK16) * WAD) // BPS
    closes: DynArray[uint256, MAX_POSITIONS] = []
    if full:
        fraction = WAD
    all_closed: bool = True
    for leg: Leg in st.legs:
        abs_size: uint256 = convert(abs(leg.size), uint256)
        close: uint256 = abs_size
        if not full:
            close = min(abs_size, (abs_size * fraction + WAD - 1) // WAD)
            remainder: uint256 = abs_size - close
            min_notional: uint256 = self.market_limits[leg.market_id] >> 128
            if mm._notional_down(remainder, leg.price, token_scale) < min_notional:
                close = abs_size
            else:
                all_closed = False
        closes.append(close)
    if all_closed:
        return WAD, closes, True
    return fraction, closes, full


@pure
@internal
def _fee_split(
    fee: uint256, available: int256, lcfg: uint256, insurance: uint256, third_party: bool
) -> (uint256, uint256, uint256):
    """
    @dev The liquidation fee out of what the account has left (`available`), at least the
         minimum keeper reward when a third party liquidates; the keeper's share of it,
         topped up to the minimum reward from the insurance fund (which receives the fee
         first, so the share is always covered). Returns (fee paid, reward, insurance after).
    """
    min_reward: uint256 = lcfg >> codec.LIQ_REWARD
    if third_party:
        fee = max(fee, min_reward)
    fee_paid: uint256 = 0
    if available > 0:
        fee_paid = min(fee, convert(available, uint256))
    ins: uint256 = insurance + fee_paid
    if not third_party:
        return fee_paid, 0, ins
    reward: uint256 = fee_paid * (lcfg & codec.MASK16) // BPS
    if reward < min_reward:
        # Paid from the fee first (insurance already holds it), the fund only beyond it.
        reward = min(min_reward, ins)
    return fee_paid, reward, ins - reward


# ---- Internal: account state ----


@view
@internal
def _load(account: address) -> AccountState:
    return self._load_known(account, MAX_MARKETS, 0)


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
    st.collateral = self.collateral[account]
    eq: int256 = st.collateral
    ids: DynArray[uint256, MAX_POSITIONS] = self._ids(self.account_markets[account])
    for market_id: uint256 in ids:
        cfg: uint256 = self.market_config[market_id]
        size: int256 = 0
        entry: uint256 = 0
        size, entry = mm._unpack_position(self.positions[account][market_id])
        price: uint256 = known_price
        if market_id != known_id:
            feed: IPriceFeed = IPriceFeed(convert(cfg & codec.MASK160, address))
            if known_id <= MAX_MARKETS:
                price = staticcall feed.latest_price()
            else:
                batch: uint256 = known_id - MAX_MARKETS
                cached: uint256 = self.price_cache[market_id]
                if cached >> 128 == batch:
                    price = cached & codec.MASK128
                else:
                    price = staticcall feed.latest_price()
        notional: uint256 = mm._notional_up(convert(abs(size), uint256), price, token_scale)
        eq += mm._pnl(size, entry, price, token_scale)
        st.initial += mm._bps_up(notional, (cfg >> codec.CFG_IM) & codec.MASK16)
        st.maintenance += mm._bps_up(notional, (cfg >> codec.CFG_MM) & codec.MASK16)
        st.liq_fee += mm._bps_up(notional, (cfg >> codec.CFG_LIQ) & codec.MASK16)
        st.legs.append(
            Leg(market_id=market_id, size=size, entry=entry, price=price, cfg=cfg)
        )
    st.equity = eq
    return st


@internal
def _pay_profit(account: address, market_id: uint256, pnl: int256, pool: uint256) -> int256:
    """
    @dev The part of a realised profit `pnl` > 0 the pool pays: all of it up to `pool`, its
         assets (the caller moves both the pool and the collateral). Profit is paid only from
         pool assets, never from other traders' collateral; a shortfall is logged as a
         haircut. Losses need no call: the pool takes them in full.
    """
    owed: uint256 = convert(pnl, uint256)
    paid: uint256 = min(owed, pool)
    if paid < owed:
        log IClearinghouse.ProfitHaircut(account=account, market_id=market_id, owed=owed, paid=paid)
    return convert(paid, int256)


@internal
def _set_collateral(account: address, before: int256, after: int256):
    """
    @dev Write collateral and keep `total_debt` (sum of negative balances) in step.
    """
    self.collateral[account] = after
    if before < 0 or after < 0:
        debt_before: uint256 = 0
        debt_after: uint256 = 0
        if before < 0:
            debt_before = convert(-before, uint256)
        if after < 0:
            debt_after = convert(-after, uint256)
        self.total_debt = self.total_debt + debt_after - debt_before


@internal
def _move_open_interest(market_id: uint256, old_size: int256, new_size: int256, max_oi: uint256):
    """
    @dev Replace `old_size`'s contribution to open interest with `new_size`'s; a side
         that grows must stay within `max_oi`.
    """
    oi: uint256 = self.market_oi[market_id]
    long_oi: uint256 = oi & codec.MASK128
    short_oi: uint256 = oi >> 128
    if old_size > 0:
        long_oi -= convert(old_size, uint256)
    elif old_size < 0:
        short_oi -= convert(-old_size, uint256)
    if new_size > 0:
        long_oi += convert(new_size, uint256)
        assert long_oi <= max_oi or new_size <= old_size, "clearinghouse: open interest cap"
    elif new_size < 0:
        short_oi += convert(-new_size, uint256)
        assert short_oi <= max_oi or new_size >= old_size, "clearinghouse: open interest cap"
    self.market_oi[market_id] = (short_oi << 128) | long_oi


@pure
@internal
def _entry_value(size: int256, entry: uint256) -> int256:
    # |size| < 2**127, entry < 2**128: the product cannot wrap.
    return unsafe_mul(size, convert(entry, int256)) // convert(WAD, int256)


@view
@internal
def _market_trader_pnl(market_id: uint256, price: uint256) -> int256:
    oi: uint256 = self.market_oi[market_id]
    net: int256 = convert(oi & codec.MASK128, int256) - convert(oi >> 128, int256)
    value: int256 = net * convert(price, int256) // convert(WAD, int256)
    return (value - self.market_entry_sum[market_id]) // convert(token_scale, int256)


@view
@internal
def _pool_exposure() -> (uint256, uint256, uint256):
    """
    @dev The pool's exposure to open positions, market by market: (reserve on open
         notional, unrealised trader profit, unrealised trader loss). Profit and loss are
         not netted across markets, so a winning market is never offset by a losing one.
    """
    reserve: uint256 = 0
    owed: uint256 = 0
    owing: uint256 = 0
    reserve_bps: uint256 = self.pool_reserve_bps
    for market_id: uint256 in range(self.market_count, bound=MAX_MARKETS):
        oi: uint256 = self.market_oi[market_id]
        if oi == 0 and self.market_entry_sum[market_id] == 0:
            continue
        feed: address = convert(self.market_config[market_id] & codec.MASK160, address)
        price: uint256 = staticcall IPriceFeed(feed).latest_price()
        gross: uint256 = (oi & codec.MASK128) + (oi >> 128)
        reserve += mm._bps_up(mm._notional_up(gross, price, token_scale), reserve_bps)
        pnl: int256 = self._market_trader_pnl(market_id, price)
        if pnl > 0:
            owed += convert(pnl, uint256) + 1  # + 1: the aggregate truncates towards zero
        else:
            owing += convert(-pnl, uint256)
    return reserve, owed, owing


# ---- Internal: account market lists ----


@pure
@internal
def _ids(word: uint256) -> DynArray[uint256, MAX_POSITIONS]:
    ids: DynArray[uint256, MAX_POSITIONS] = []
    for i: uint256 in range(word & 255, bound=MAX_POSITIONS):
        ids.append((word >> (8 + 8 * i)) & 255)
    return ids


@internal
def _add_market(account: address, market_id: uint256):
    word: uint256 = self.account_markets[account]
    count: uint256 = word & 255
    assert count < MAX_POSITIONS, "clearinghouse: too many positions"
    # count < 8, so the id lands in bits 8 .. 71; count + 1 <= 8 fits the low byte.
    self.account_markets[account] = ((word | (market_id << (8 + 8 * count))) & ~255) | (count + 1)


@internal
def _remove_market(account: address, market_id: uint256):
    self.account_markets[account] = self._without(self.account_markets[account], market_id)


@pure
@internal
def _without(word: uint256, market_id: uint256) -> uint256:
    """
    @dev Remove `market_id` from a packed list by moving the last id into its place.
    """
    count: uint256 = word & 255
    last: uint256 = count - 1
    last_id: uint256 = (word >> (8 + 8 * last)) & 255
    out: uint256 = word
    for i: uint256 in range(count, bound=MAX_POSITIONS):
        bit: uint256 = 8 + 8 * i
        if (word >> bit) & 255 == market_id:
            # put the last id at i, then clear the last slot
            out = (out & ~(255 << bit)) | (last_id << bit)
            break
    out = out & ~(255 << (8 + 8 * last))
    return (out & ~255) | last


# ---- Internal: the satellites' hooks ----


@view
@internal
def _only(satellite: address):
    # One revert site per satellite: the hooks answer to the configurator or the vault alone.
    if satellite == configurator:
        assert msg.sender == configurator, "clearinghouse: not configurator"
    else:
        assert msg.sender == lp_token, "clearinghouse: not vault"


# ---- Internal: pool assets and insurance (one slot) ----


@view
@internal
def _pool() -> uint256:
    return codec._funds_pool(self.funds)


@internal
def _set_pool(pool: uint256):
    self.funds = codec._pack_funds(pool, codec._funds_insurance(self.funds))


# ---- Internal: markets and parameters ----


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


# ---- Internal: token movement ----


@internal
def _pull(sender: address, amount: uint256) -> uint256:
    """
    @dev Transfer in and return what actually arrived (fee-on-transfer safe); reverts on a
         zero amount or when nothing arrives.
    """
    assert amount > 0, "clearinghouse: zero amount"
    before: uint256 = staticcall IERC20(collateral_token).balanceOf(self)
    assert extcall IERC20(collateral_token).transferFrom(
        sender, self, amount, default_return_value=True
    ), "clearinghouse: transfer failed"
    received: uint256 = staticcall IERC20(collateral_token).balanceOf(self) - before
    assert received > 0, "clearinghouse: nothing received"
    return received


@internal
def _push(to: address, amount: uint256):
    assert extcall IERC20(collateral_token).transfer(to, amount, default_return_value=True), (
        "clearinghouse: transfer failed"
    )
