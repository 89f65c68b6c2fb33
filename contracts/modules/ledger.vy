# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Ledger: every token unit the engine holds
@license MIT
@notice Account collateral (negative after a realised loss it could not cover: debt), the
        sum of that debt, the pool assets and the insurance fund (one packed word), and the
        only two places tokens move in and out. Conservation lives here:
        token balance == sum(collateral) + pool assets + insurance fund.
"""

from ethereum.ercs import IERC20
from ..interfaces import IClearinghouse
from . import codec


interface IERC20Decimals:
    def decimals() -> uint8: view


collateral_token: public(immutable(address))  # the one settlement token
token_scale: public(immutable(uint256))  # 10**(18 - token decimals): WAD -> token units

collateral: public(HashMap[address, int256])  # token units; negative = debt after realised loss
total_debt: public(uint256)  # sum over accounts of max(0, -collateral), token units
claims: public(HashMap[address, uint256])  # realised profit the pool could not pay yet, token units
total_claims: public(uint256)  # sum of claims: a liability of the pool, senior to LP capital
funds: uint256  # packed pool assets (LP capital, realised) and insurance fund, see codec


@deploy
def __init__(collateral_token_: address):
    assert collateral_token_ != empty(address), "clearinghouse: zero token"
    decimals: uint8 = staticcall IERC20Decimals(collateral_token_).decimals()
    assert decimals <= 18, "clearinghouse: too many decimals"
    collateral_token = collateral_token_
    token_scale = 10 ** convert(18 - decimals, uint256)


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
def _pay_profit(account: address, market_id: uint256, pnl: int256, backed: uint256) -> int256:
    """
    @dev The part of a realised profit `pnl` > 0 the pool pays: all of it up to `backed`
         (`_backed`: pool assets less other accounts' debt and the claims already owed; the
         caller moves both the pool and the collateral). Profit is paid only from what
         tokens back, never from other traders' collateral nor from debt; a shortfall is
         logged (`ProfitHaircut`) and becomes the account's claim, paid by `settle_claim`
         as soon as the pool can. Losses need no call: the pool takes them in full.
    """
    owed: uint256 = convert(pnl, uint256)
    paid: uint256 = min(owed, backed)
    if paid < owed:
        # Never forfeited: the shortfall is the account's claim on later pool income.
        short: uint256 = owed - paid
        self.claims[account] += short
        self.total_claims += short
        log IClearinghouse.ProfitHaircut(account=account, market_id=market_id, owed=owed, paid=paid)
    return convert(paid, int256)


@view
@internal
def _backed(pool: uint256, collateral_: int256, running: int256) -> uint256:
    """
    @dev What pool assets `pool` can pay out as profit to the account whose stored collateral
         is `collateral_` and whose collateral is `running` now (after the losses and fees
         this action has settled so far): the pool less every other account's debt and the
         claims owed, and never less than what the account itself owes the pool by now (its
         stored debt, and the losses and fee this action credited to the pool). The pool was
         credited with each realised loss in full, but the part of a loss beyond the
         account's collateral never arrived as tokens: it is debt, and no other account's
         profit is paid from it. An account's own losses and debt are a different matter:
         paying its profit against them moves no token (the pool pays back what this account
         credited it), so they always net, however thin the pool. Found by the invariant
         campaign: a healthy account whose last close realised an unpayable profit could not
         leave its own debt (it could neither close nor be liquidated), and a partial
         liquidation whose losing leg was credited while its winning leg was haircut in full
         left equity under the initial requirement.
    """
    own: uint256 = 0
    if collateral_ < 0:
        own = convert(-collateral_, uint256)
    other: uint256 = self.total_debt - own + self.total_claims
    room: uint256 = 0
    if pool > other:
        room = pool - other
    owes: int256 = max(collateral_, 0) - running
    if owes > 0:
        return max(room, convert(owes, uint256))
    return room


@view
@internal
def _spendable(pool: uint256, collateral_: int256, running: int256) -> uint256:
    """
    @dev What pool assets `pool` hold in tokens for a third party (a keeper's reward), while
         the account whose stored collateral is `collateral_` stands at `running`: the pool
         less every other account's debt and the claims owed, and less this account's debt
         now (its losses beyond its collateral were credited but never arrived).
    """
    own: uint256 = 0
    if collateral_ < 0:
        own = convert(-collateral_, uint256)
    owed: uint256 = self.total_debt - own + self.total_claims
    if running < 0:
        owed += convert(-running, uint256)
    if pool > owed:
        return pool - owed
    return 0


@view
@internal
def _pool() -> uint256:
    return codec._funds_pool(self.funds)


@internal
def _set_pool(pool: uint256):
    self.funds = codec._pack_funds(pool, codec._funds_insurance(self.funds))


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
