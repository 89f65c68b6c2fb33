# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Pool accounting: the counterparty's assets, its exposure and the LP vault's hooks
@license MIT
@notice The pool takes the other side of every trade. Its assets and the insurance fund are
        ledger words; this module values the pool for the LP vault (`pool_state`), moves
        assets for it (`pool_pull`, `pool_add`, `pool_pay`, callable by the vault alone) and
        takes insurance contributions. LP shares and their maths are the vault's.
"""

from ethereum.ercs import IERC20
from ..interfaces import IClearinghouse
from ..interfaces import IPoolHooks
from . import codec
from . import ledger
from . import markets

uses: ledger
uses: markets

lp_token: public(immutable(address))  # the LPVault (share token): the only caller of the pool hooks
pool_reserve_bps: public(uint256)  # share of open notional LPs cannot withdraw


@deploy
def __init__(lp_token_: address):
    assert lp_token_ != empty(address), "clearinghouse: zero lp vault"
    lp_token = lp_token_


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
    priced_at: uint256 = 0
    reserve, owed, owing, priced_at = markets._pool_exposure(self.pool_reserve_bps)
    w: uint256 = ledger.funds
    pool_: uint256 = codec._funds_pool(w)
    debt: uint256 = ledger.total_debt
    # What every account holds: balance = sum(collateral) + pool + insurance, and
    # sum(collateral) = positive collateral - debt. Tokens sent here unasked count too,
    # which only loosens a bound that is already an upper one.
    held: uint256 = staticcall IERC20(ledger.collateral_token).balanceOf(self) + debt
    held -= min(held, pool_ + codec._funds_insurance(w))
    return IPoolHooks.PoolState(
        pool_assets=pool_,
        total_debt=debt,
        reserve=reserve,
        trader_profit=owed,
        trader_loss=owing,
        paused=markets.paused,
        claims=ledger.total_claims,
        trader_collateral=held,
        exposed=priced_at != max_value(uint256),
        priced_at=min(priced_at, block.timestamp),
    )


@external
def pool_pull(provider: address, assets: uint256) -> uint256:
    """
    @notice Vault hook: pull `assets` from `provider` (who approved this contract) and
            return what arrived; `pool_add` credits it in the same transaction.
    """
    self._only_vault()
    return ledger._pull(provider, assets)


@external
def pool_add(provider: address, assets: uint256, shares: uint256):
    """
    @notice Vault hook: credit `assets` (pulled by `pool_pull`) to the pool for the
            `shares` the vault minted.
    """
    self._only_vault()
    ledger._set_pool(ledger._pool() + assets)
    log IClearinghouse.LiquidityAdded(provider=provider, assets=assets, shares=shares)


@external
def pool_pay(provider: address, assets: uint256, shares: uint256):
    """
    @notice Vault hook: pay `assets` out of the pool to `provider` for the `shares` the vault
            burnt (the vault checked them against the free liquidity).
    """
    self._only_vault()
    ledger._set_pool(ledger._pool() - assets)
    if assets != 0:  # the vault's share cancellation pays nothing (some tokens refuse 0)
        ledger._push(provider, assets)
    log IClearinghouse.LiquidityRemoved(provider=provider, assets=assets, shares=shares)


@external
def fund_insurance(amount: uint256):
    """
    @notice Add to the insurance fund (anyone; the credit is what arrives).
    """
    received: uint256 = ledger._pull(msg.sender, amount)
    w: uint256 = ledger.funds
    ledger.funds = codec._pack_funds(codec._funds_pool(w), codec._funds_insurance(w) + received)
    log IClearinghouse.InsuranceFunded(funder=msg.sender, amount=received)


@external
def settle_claim(account: address) -> uint256:
    """
    @notice Pay `account`'s claim (profit the pool could not pay when it was realised) into
            its collateral, as far as the backed pool allows now; anyone may call. Claims are
            paid in full before LPs can take the income that pays them.
    @return What was paid.
    """
    owed: uint256 = ledger.claims[account]
    assert owed > 0, "clearinghouse: no claim"
    before: int256 = ledger.collateral[account]
    pool_: uint256 = ledger._pool()
    # Every other account's debt and claim is ahead of this one; its own claim is not (the
    # pool is backed for it as it would be for a profit realised now, with this claim not yet
    # owed) nor its own debt, which is always repaid from its claim, however thin the pool:
    # that moves no token (the pool pays back what it was credited and never received).
    paid: uint256 = min(owed, ledger._backed(pool_ + owed, before, before))
    assert paid > 0, "clearinghouse: claim not backed"
    ledger.claims[account] = owed - paid
    ledger.total_claims -= paid
    ledger._set_pool(pool_ - paid)
    ledger._set_collateral(account, before, before + convert(paid, int256))
    log IClearinghouse.ClaimSettled(account=account, paid=paid, remaining=owed - paid)
    return paid


@view
@external
def pool_assets() -> uint256:
    """
    @notice LP capital (realised), token units.
    """
    return ledger._pool()


@view
@external
def insurance_fund() -> uint256:
    """
    @notice The insurance fund, token units.
    """
    return codec._funds_insurance(ledger.funds)


@view
@internal
def _only_vault():
    assert msg.sender == lp_token, "clearinghouse: not vault"
