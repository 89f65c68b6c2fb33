# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Liquidation: the permissionless close of an account below maintenance, and the bot views
@license MIT
@notice `liquidate` closes the smallest fraction of every position that restores the initial
        requirement (all of it when that fraction is above the partial bound), realises PnL,
        splits the fee between the caller and the insurance fund, and covers bad debt from
        insurance first, then the pool; what neither covers stays as account debt. The views
        a keeper reads (`margin_status`, `liquidation_preview`, `is_liquidatable`) use the
        same account load and the same plan, so they agree with the transaction.
"""

from ..interfaces import IClearinghouse
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
def liquidate(account: address) -> uint256:
    """
    @notice Liquidate `account` if its equity is below its maintenance requirement.
    @return The reward credited to the caller's collateral (token units).
    """
    pool: uint256 = 0
    insurance: uint256 = 0
    pool, insurance = codec._unpack_funds(ledger.funds)
    reward: uint256 = 0
    done: bool = False
    reward, done, pool, insurance = self._liquidate(account, msg.sender, 0, pool, insurance)
    assert done, "clearinghouse: account healthy"
    ledger.funds = codec._pack_funds(pool, insurance)
    self._credit(msg.sender, reward)
    acct._note_gas(acct.eth_seen)
    return reward


@external
def liquidate_many(accounts: DynArray[address, k.MAX_BATCH]) -> uint256:
    """
    @notice Liquidate every liquidatable account in `accounts`; healthy ones (and
            repeats, healthy once liquidated) are skipped without reverting.
    @return The total reward credited to the caller.
    """
    return self._liquidate_many(accounts)


@payable
@external
def liquidate_with_prices(
    updates: Bytes[k.MAX_UPDATE], accounts: DynArray[address, k.MAX_BATCH]
) -> uint256:
    """
    @notice `update_prices(updates)`, then `liquidate_many(accounts)` at the newest prices,
            in one transaction.
    """
    markets._update_prices(updates, msg.value)
    return self._liquidate_many(accounts)


@internal
def _liquidate_many(accounts: DynArray[address, k.MAX_BATCH]) -> uint256:
    # Each market's price is read from its feed once per call: cached prices are tagged with
    # this call's number, so a later call in the same transaction reads the feeds afresh.
    # The pool and insurance words are carried from account to account and written once.
    # The caller's rewards are credited once at the end, and before the caller's own account
    # is liquidated (so that it sees every reward earned before it in the list), unless the
    # caller is in debt: then every reward is credited at once, since it repays that debt and
    # so grows the backed pool the next accounts' profits are paid from (found in review:
    # deferred, the batch paid them less than one liquidation after another).
    batch: uint256 = markets._next_batch()
    pool: uint256 = 0
    insurance: uint256 = 0
    pool, insurance = codec._unpack_funds(ledger.funds)
    total: uint256 = 0
    pending: uint256 = 0
    eager: bool = ledger.collateral[msg.sender] < 0
    for a: address in accounts:
        if a == msg.sender:
            self._credit(msg.sender, pending)
            pending = 0
        reward: uint256 = 0
        done: bool = False
        reward, done, pool, insurance = self._liquidate(a, msg.sender, batch, pool, insurance)
        total += reward
        if a == msg.sender:  # its own liquidation may have changed whether it is in debt
            eager = ledger.collateral[msg.sender] < 0
        if eager:
            self._credit(msg.sender, reward)
        else:
            pending += reward
    ledger.funds = codec._pack_funds(pool, insurance)
    self._credit(msg.sender, pending)
    acct._note_gas(acct.eth_seen)
    return total


@view
@external
def is_liquidatable(account: address) -> bool:
    return acct._liquidatable(acct._load(account))


@view
@external
def equity(account: address) -> int256:
    return acct._load(account).equity


@view
@external
def maintenance_requirement(account: address) -> uint256:
    return acct._load(account).maintenance


@view
@external
def initial_requirement(account: address) -> uint256:
    return acct._load(account).initial


@view
@external
def margin_status(
    accounts: DynArray[address, k.MAX_STATUS]
) -> DynArray[IClearinghouse.AccountStatus, k.MAX_STATUS]:
    """
    @notice Equity, requirements and the liquidatable flag of many accounts in one call.
    """
    out: DynArray[IClearinghouse.AccountStatus, k.MAX_STATUS] = []
    for a: address in accounts:
        st: acct.AccountState = acct._load(a)
        out.append(
            IClearinghouse.AccountStatus(
                account=a,
                equity=st.equity,
                maintenance=st.maintenance,
                initial=st.initial,
                liquidatable=acct._liquidatable(st),
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
    st: acct.AccountState = acct._load(account)
    if not acct._liquidatable(st):
        return empty(IClearinghouse.LiquidationPreview)
    lcfg: uint256 = acct.liquidation_config
    fraction: uint256 = 0
    closes: DynArray[uint256, k.MAX_POSITIONS] = []
    full: bool = False
    funds: uint256 = ledger.funds
    fraction, closes, full = self._plan(st, lcfg, codec._funds_pool(funds))
    fee: uint256 = 0
    left: int256 = st.equity  # less the skew premium the closes pay
    for i: uint256 in range(len(st.legs), bound=k.MAX_POSITIONS):
        leg: acct.Leg = st.legs[i]
        fee += mm._bps_up(
            mm._notional_up(closes[i], leg.price, ledger.token_scale),
            leg.liq_bps,
        )
        if leg.funding != 0:
            premium: uint256 = leg.premium
            if closes[i] != convert(abs(leg.size), uint256):
                premium = self._premium_cost(
                    leg.market_id, leg.price, leg.size, closes[i], leg.funding
                )
            left -= convert(premium, int256)
    # PnL is realised in full; the fee (at least the minimum reward) comes out of what is left.
    fee_paid: uint256 = 0
    reward: uint256 = 0
    ins: uint256 = 0
    from_pool: uint256 = 0
    fee_paid, reward, ins, from_pool = self._fee_split(
        fee, left, lcfg, codec._funds_insurance(funds), True, st.gas_reward,
        codec._funds_pool(funds) + convert(max(st.collateral - left, 0), uint256),
        st.collateral,
    )
    bad: uint256 = 0
    if full and left < 0:
        bad = convert(-left, uint256)
    return IClearinghouse.LiquidationPreview(fraction=fraction, reward=reward, bad_debt=bad)


@view
@external
def liquidation_params() -> (uint256, uint256, uint256):
    """
    @return (keeper share bps, max partial bps, minimum keeper reward in token units).
    """
    lcfg: uint256 = acct.liquidation_config
    return (
        codec._liq_keeper_share(lcfg), codec._liq_max_partial(lcfg), codec._liq_min_reward(lcfg)
    )


@view
@external
def keeper_reward_params() -> (uint256, uint256, uint256, uint256, uint256, uint256, uint256):
    """
    @return (smoothed gas price wei, ETH/USD WAD, gas premium bps, ETH market id + 1 (0: gas
            pricing off), gas price floor wei, maximum reward, flat gas margin; token units).
    """
    gw: uint256 = acct.keeper_gas
    lcfg: uint256 = acct.liquidation_config
    return (
        codec._gas_price(gw),
        codec._gas_eth(gw),
        codec._gas_premium(gw),
        codec._gas_market(gw),
        codec._gas_floor(gw),
        codec._liq_max_reward(lcfg),
        codec._liq_gas_margin(lcfg),
    )


@internal
def _credit(keeper: address, reward: uint256):
    if reward > 0:
        kc: int256 = ledger.collateral[keeper]
        ledger._set_collateral(keeper, kc, kc + convert(reward, int256))


@internal
def _liquidate(
    account: address, keeper: address, batch: uint256, pool_: uint256, insurance_: uint256
) -> (uint256, bool, uint256, uint256):
    """
    @dev Liquidate `account` if it is liquidatable, against pool assets `pool_` and insurance
         `insurance_`; returns (reward, liquidated, pool after, insurance after). The caller
         writes the funds word and credits the reward. A non-zero `batch` (liquidate_many)
         reads each market's price from its feed once per batch.
    """
    st: acct.AccountState = acct._load_known(account, k.MAX_MARKETS + batch, 0)
    n: uint256 = len(st.legs)
    if st.unpriced:  # a batch entry one of whose markets has no mark: skipped, not reverted
        log IClearinghouse.LiquidationSkipped(account=account)
        return 0, False, pool_, insurance_
    if batch != 0:
        for leg: acct.Leg in st.legs:  # remembered for the rest of the batch (<= MAX_PRICE)
            markets._remember_price(leg.market_id, batch, leg.price, leg.size > 0)
    if n == 0 or st.equity >= convert(st.maintenance, int256):
        return 0, False, pool_, insurance_

    lcfg: uint256 = acct.liquidation_config
    pool: uint256 = pool_
    fraction: uint256 = 0
    closes: DynArray[uint256, k.MAX_POSITIONS] = []
    full: bool = False
    fraction, closes, full = self._plan(st, lcfg, pool)

    # Close, realise PnL in full on every touched position, reset entries. Losses are
    # settled into the pool first and profits after, so that a thin pool pays a winning
    # leg out of the same liquidation's losing legs rather than haircutting it.
    c: int256 = st.collateral
    fee: uint256 = 0
    closed_notional: uint256 = 0
    ids_word: uint256 = 0  # a full liquidation closes every position: the list ends empty
    if not full:
        ids_word = acct.account_markets[account]
    gas_market: uint256 = codec._liq_gas_market(lcfg)  # ETH market id + 1, 0: pricing off
    for i: uint256 in range(n, bound=k.MAX_POSITIONS):
        leg: acct.Leg = st.legs[i]
        close: uint256 = closes[i]
        if leg.market_id + 1 == gas_market:  # ETH/USD, for the gas word's update
            acct.eth_seen = leg.price
        new_size: int256 = self._after_close(leg.size, close)
        cn: uint256 = mm._notional_up(close, leg.price, ledger.token_scale)
        closed_notional += cn
        fee += mm._bps_up(cn, leg.liq_bps)

        pnl: int256 = leg.pnl
        if leg.funding != 0:  # the skew premium the close pays, before its move (kept in pnl)
            premium: uint256 = leg.premium  # a full close's: the account load's
            if close != convert(abs(leg.size), uint256):
                premium = self._premium_cost(leg.market_id, leg.price, leg.size, close, leg.funding)
            pnl -= convert(premium, int256)
            st.legs[i].pnl = pnl
        if pnl < 0:
            pool += convert(-pnl, uint256)
            c += pnl
        # Closed at the mark, less the skew premium a trade would pay when the close grows
        # the skew against it (never the rebate): `_premium_cost`, read before this leg's
        # open interest moves. The remainder's entry is the mark less the index.
        mark: int256 = convert(leg.price, int256) - leg.index
        if leg.funding != 0:
            markets.funding_word[leg.market_id] = leg.funding  # recorded now, at this mark
        # Decreases never hit the cap: no limits read.
        markets._move_position(leg.market_id, leg.size, leg.entry, new_size, mark, codec.MASK128)
        if new_size == 0:
            acct.positions[account][leg.market_id] = 0
            if not full:
                ids_word = codec._list_without(ids_word, leg.market_id)
        else:
            acct.positions[account][leg.market_id] = mm._pack_position(new_size, mark)
    for i: uint256 in range(n, bound=k.MAX_POSITIONS):
        leg: acct.Leg = st.legs[i]
        realized: int256 = leg.pnl
        if realized > 0:
            realized = ledger._pay_profit(
                account, leg.market_id, realized, ledger._backed(pool, st.collateral, c)
            )
            pool -= convert(realized, uint256)
            c += realized
        new_size: int256 = self._after_close(leg.size, closes[i])
        if leg.funding != 0:
            log IClearinghouse.FundingSettled(
                account=account,
                market_id=leg.market_id,
                funding=acct._funding_due(account, leg.market_id, leg.size, leg.index),
                funding_index=leg.index,
            )
            if new_size != 0:  # a closed position's basis is rewritten when it reopens
                acct.position_funding[account][leg.market_id] = leg.index
        log IClearinghouse.PositionChanged(
            account=account,
            market_id=leg.market_id,
            size_delta=new_size - leg.size,
            new_size=new_size,
            price=leg.price,
            realized_pnl=realized,
            fee=0,
        )
    acct.account_markets[account] = ids_word

    # Fee from what the account has left, the keeper reward in it (the account's requirements
    # reserved it); only a bankrupt account's reward comes from the fund, then the backed pool.
    fee_paid: uint256 = 0
    reward: uint256 = 0
    insurance: uint256 = 0
    from_pool: uint256 = 0
    fee_paid, reward, insurance, from_pool = self._fee_split(
        fee, c, lcfg, insurance_, keeper != account, st.gas_reward, pool, st.collateral
    )
    pool -= from_pool
    c -= convert(fee_paid, int256)

    # Bad debt: insurance first, then the pool; whatever is left stays as account debt.
    if full and c < 0:
        bad: uint256 = convert(-c, uint256)
        from_insurance: uint256 = min(bad, insurance)
        insurance -= from_insurance
        socialised: uint256 = min(bad - from_insurance, pool)
        pool -= socialised
        c += convert(from_insurance + socialised, int256)
        log IClearinghouse.BadDebtSettled(
            account=account,
            bad_debt=bad,
            insurance_covered=from_insurance,
            socialised=socialised,
            uncovered=bad - from_insurance - socialised,
        )
    ledger._set_collateral(account, st.collateral, c)

    if gas_market != 0 or from_pool != 0:
        gw: uint256 = acct.keeper_gas  # warm when pricing is on: the account load read it
        log IClearinghouse.KeeperRewardPriced(
            account=account,
            gas_price=codec._gas_price(gw),
            gas_units=k.LIQ_GAS_BASE + k.LIQ_GAS_PER_POSITION * n,
            eth_price=codec._gas_eth(gw),
            from_pool=from_pool,
        )
    log IClearinghouse.Liquidated(
        account=account,
        liquidator=keeper,
        fraction=fraction,
        closed_notional=closed_notional,
        fee=fee_paid,
        keeper_reward=reward,
        insurance_delta=convert(fee_paid + from_pool, int256) - convert(reward, int256),
        full=full,
    )
    return reward, True, pool, insurance


@view
@internal
def _premium_cost(
    market_id: uint256, price: uint256, size: int256, close: uint256, word: uint256
) -> uint256:
    """
    @dev `accounts._premium_cost` at the market's skew now (a liquidation reads it before
         the leg's open interest moves); a full close's is the leg's own (`Leg.premium`, the
         account load's).
    """
    return acct._premium_cost(markets.market_oi[market_id], price, size, close, word)


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
    st: acct.AccountState, lcfg: uint256, pool: uint256
) -> (uint256, DynArray[uint256, k.MAX_POSITIONS], bool):
    """
    @dev Sizes to close per leg: the fraction of SPEC.md section 3, rounded up per leg,
         everything when the fraction exceeds the partial bound, and a whole leg when
         its remainder would be below the market's minimum notional.
    """
    # Plan on the equity the close can realise: every touched leg settles its PnL against the
    # pool, which pays net profit only up to its backed assets (pool assets less other
    # accounts' debt, and at least the account's own debt; the rest is haircut), so equity
    # above collateral + backed is paper. (Planned on the stored collateral: the losses the
    # close realises first can only raise what is backed.) Requirements and fees round up
    # leg by leg; two units of slack per leg make sure the remainder really does meet its
    # initial requirement after the rounding.
    realisable: int256 = st.equity
    if st.equity > st.collateral:  # paper profit: only the backed pool can pay it
        backed: uint256 = ledger._backed(pool, st.collateral, st.collateral)
        realisable = min(st.equity, st.collateral + convert(backed, int256))
    # The skew premium the close may pay (`_premium_cost`) is at most a full close's, leg by
    # leg (it grows with the size closed): planned as spent, so the remainder stays covered.
    realisable -= convert(st.premium, int256)
    # The keeper reward is reserved in the requirement (`st.reserve`): the fee pays at most
    # that over the proportional fee, and the remainder's requirement holds it again, so
    # twice the reserve is planned as spent and the fraction is on the notional part.
    slack_equity: int256 = realisable - convert(2 * (len(st.legs) + st.reserve), int256)
    fraction: uint256 = mm._liquidation_fraction(
        slack_equity, st.initial - st.reserve, st.liq_fee
    )
    bound: uint256 = (codec._liq_max_partial(lcfg) * k.WAD) // k.BPS
    full: bool = fraction > bound
    closes: DynArray[uint256, k.MAX_POSITIONS] = []
    if full:
        fraction = k.WAD
    all_closed: bool = True
    for leg: acct.Leg in st.legs:
        abs_size: uint256 = convert(abs(leg.size), uint256)
        close: uint256 = abs_size
        if not full:
            close = min(abs_size, (abs_size * fraction + k.WAD - 1) // k.WAD)
            remainder: uint256 = abs_size - close
            min_notional: uint256 = markets.market_limits[leg.market_id] >> 128  # codec limits
            if mm._notional_down(remainder, leg.price, ledger.token_scale) < min_notional:
                close = abs_size
            else:
                all_closed = False
        closes.append(close)
    if all_closed:
        return k.WAD, closes, True
    return fraction, closes, full


@view
@internal
def _fee_split(
    fee: uint256,
    available: int256,
    lcfg: uint256,
    insurance: uint256,
    third_party: bool,
    gas_reward: uint256,
    pool: uint256,
    collateral_: int256,
) -> (uint256, uint256, uint256, uint256):
    """
    @dev The keeper reward clamp(gas_reward + keeper share of `fee`, min, max) and the fee
         the account owes: `fee` plus whatever the reward takes over the keeper's share (at
         most the reserve its requirements held). The account pays what it has left
         (`available`) into the insurance fund, which pays the reward; a self-liquidation
         owes the same and is paid nothing. When the account cannot pay the reward, the fund
         and then `pool` (the pool's spendable assets) top it up to the reserve, so that a
         bankrupt account is still worth liquidating: up to what `pool` holds for a third
         party while the account, whose stored collateral is `collateral_`, stands at
         `available` (`ledger._spendable`, read only then: two cold slots). Returns (fee
         paid, reward, insurance after, paid from the pool).
    """
    cut: uint256 = fee * codec._liq_keeper_share(lcfg) // k.BPS
    min_reward: uint256 = codec._liq_min_reward(lcfg)
    max_reward: uint256 = codec._liq_max_reward(lcfg)
    reward: uint256 = min(max(gas_reward + cut, min_reward), max_reward)
    owed: uint256 = fee
    if reward > cut:
        owed += reward - cut
    fee_paid: uint256 = 0
    if available > 0:
        fee_paid = min(owed, convert(available, uint256))
    ins: uint256 = insurance + fee_paid
    if not third_party:
        return fee_paid, 0, ins, 0
    if fee_paid >= reward:  # the account paid it (the fund holds the payment)
        return fee_paid, reward, ins - reward, 0
    # The account fell short: the fund, then the pool's spendable assets, top the reward up
    # only to the reserve (the liveness part, clamp(gas_reward, min, max)); the keeper's
    # share of the fee is a fee the account owed, not the fund's or the LPs'.
    target: uint256 = max(min(max(gas_reward, min_reward), max_reward), fee_paid)
    from_ins: uint256 = min(target, ins)
    from_pool: uint256 = 0
    if target > from_ins:
        from_pool = min(target - from_ins, ledger._spendable(pool, collateral_, available))
    return fee_paid, from_ins + from_pool, ins - from_ins, from_pool
