# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Liquidity-pool vault: the LP share token and its maths
@license MIT
@notice ERC20 shares of the clearinghouse's counterparty pool. `add_liquidity` and
        `remove_liquidity` price the shares here; the tokens never pass through this
        contract: the engine pulls them from the provider (approve the clearinghouse,
        as for `deposit`), credits its pool and pays redemptions, and emits
        `LiquidityAdded` / `LiquidityRemoved` itself, so every balance is rebuilt from
        the engine's events alone.
@custom:security The engine's pool hooks accept only this vault, and this vault only the
        engine it was bound to, once, by its deployer (`bind`, which then renounces
        ownership). Shares are minted and burnt only here; holders transfer freely.
        Pricing: a virtual offset (VIRTUAL_SHARES / VIRTUAL_ASSETS) against the
        first-depositor inflation attack; both directions round down. Entries and exits
        price against one net value: pool assets plus collectable paper losses, less paper
        profit (per market side), debt and profit claims; exits within the free liquidity,
        entries refused while the value is negative. While any market has open interest
        only two-step requests move LP capital, each executed after fresh prices.
        A pool that lost all but dust (a share worth under a millionth of the first share
        price) cancels its old shares at the next deposit, so that deposit starts a fresh
        pool instead of multiplying a dust supply (`SharesCancelled`; share epochs below).
        Share epochs: cancelling sets the supply to 0 and starts a new epoch; a
        balance from an older epoch reads 0 (`balanceOf`) and is cleared, with a Transfer to
        the zero address, the next time its holder's shares move. Transfers therefore go
        through this contract's own `transfer` / `transferFrom` / `balanceOf`, which wrap
        snekmate's internals; approvals and the rest are snekmate's.
"""

from ethereum.ercs import IERC20
from interfaces import ILPVault
from interfaces import IPoolHooks

implements: IERC20
implements: ILPVault

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

exports: (
    erc20.approve,
    erc20.allowance,
    erc20.totalSupply,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    ownable.owner,
)


interface IEngine:
    def lp_token() -> address: view
    def collateral_token() -> address: view


interface IDecimals:
    def decimals() -> uint8: view


struct Request:
    owner: address  # who escrowed, and who receives the shares or the assets
    is_deposit: bool  # a deposit (assets escrowed) or a withdrawal (shares escrowed)
    amount: uint256  # assets (deposit) or shares (withdrawal) in escrow
    min_out: uint256  # least shares (deposit) or assets (withdrawal) the owner accepts
    created: uint256  # block time of the request: execution waits for prices after it


event DepositRequested:
    request_id: indexed(uint256)
    owner: indexed(address)
    assets: uint256  # what arrived in escrow
    min_shares: uint256


event WithdrawalRequested:
    request_id: indexed(uint256)
    owner: indexed(address)
    shares: uint256
    min_assets: uint256


event RequestExecuted:
    request_id: indexed(uint256)
    owner: indexed(address)
    executor: indexed(address)
    assets: uint256  # credited to the pool (deposit) or paid to the owner (withdrawal)
    shares: uint256  # minted (deposit) or burnt (withdrawal)
    fee: uint256  # paid to the executor, token units


event RequestCancelled:
    request_id: indexed(uint256)
    owner: indexed(address)


event SharesCancelled:
    epoch: indexed(uint256)  # the epoch that starts now
    shares: uint256  # the supply cancelled
    value: uint256  # the pool's net value it was worth, token units (dust, left in the pool)


VIRTUAL_SHARES: constant(uint256) = 10**6  # share-price inflation guard (virtual offset)
VIRTUAL_ASSETS: constant(uint256) = 1  # matching virtual asset

REQUEST_TIMEOUT: constant(uint256) = 86_400  # seconds before an owner may cancel a request
# Old shares are cancelled when the pool is worth less than a millionth of the first share
# price (VIRTUAL_ASSETS per VIRTUAL_SHARES): net value * DUST_RATIO < supply, and less than
# the execution fee in all (so a cancellation never takes more than dust from anyone).
DUST_RATIO: constant(uint256) = VIRTUAL_SHARES * 10**6

engine: public(address)  # the clearinghouse whose pool these shares own; set once by `bind`
asset: public(address)  # the collateral token (the engine's), set by `bind`
execution_fee: public(uint256)  # token units paid to whoever executes a request: 0.1 token
requests: public(HashMap[uint256, Request])  # open requests by id (owner empty once done)
request_count: public(uint256)  # ids are 0 .. request_count - 1
escrowed_shares: public(uint256)  # shares held here for withdrawal requests
share_epoch: public(uint256)  # how many times the shares were cancelled
holder_epoch: public(HashMap[address, uint256])  # the epoch of a holder's stored balance
first_live_request: public(uint256)  # withdrawal requests below this id escrow cancelled shares


@deploy
def __init__(name_: String[25], symbol_: String[5], decimals_: uint8):
    """
    @param decimals_ The collateral token's decimals (one share unit per asset unit at the
           virtual offset's price).
    """
    ownable.__init__()
    erc20.__init__(name_, symbol_, decimals_, name_, "1")


@external
def bind(engine_: address):
    """
    @notice Bind the vault to its engine, once (deployer), then renounce ownership.
    @param engine_ A Clearinghouse deployed with this vault as its `lp_token`.
    """
    ownable._check_owner()  # one-shot: binding renounces the ownership this checks
    assert engine_.is_contract, "vault: wrong engine"
    assert staticcall IEngine(engine_).lp_token() == self, "vault: wrong engine"
    self.engine = engine_
    token: address = staticcall IEngine(engine_).collateral_token()
    self.asset = token
    self.execution_fee = 10 ** convert(staticcall IDecimals(token).decimals(), uint256) // 10
    ownable._transfer_ownership(empty(address))


@external
def add_liquidity(assets: uint256, min_shares: uint256) -> uint256:
    """
    @notice Deposit `assets` of the collateral token into the pool for shares; the engine
            pulls them from the caller and the shares are priced on what arrives. Only while
            no market has open interest ("vault: pool exposed"); otherwise `request_deposit`.
    @return The shares minted.
    """
    assert assets > 0, "vault: zero amount"
    engine_: address = self._engine()
    ps: IPoolHooks.PoolState = staticcall IPoolHooks(engine_).pool_state()
    # A pause holds new capital back (it would be priced while prices are in doubt); exits
    # within free liquidity are never held.
    assert not ps.paused, "vault: paused"
    # With open interest the pool's value moves with every price: an instant entry could
    # buy just before an update it has already seen. Then only requests execute.
    assert not ps.exposed, "vault: pool exposed"
    nav: uint256 = self._deposit_nav(ps)
    supply: uint256 = self._entry_supply(engine_, ps, nav)
    received: uint256 = extcall IPoolHooks(engine_).pool_pull(msg.sender, assets)
    shares: uint256 = self._to_shares(received, supply, nav)
    assert shares > 0, "vault: zero shares"
    assert shares >= min_shares, "vault: slippage"
    self._mint(msg.sender, shares)
    extcall IPoolHooks(engine_).pool_add(msg.sender, received, shares)
    return shares


@external
def remove_liquidity(shares: uint256, min_assets: uint256) -> uint256:
    """
    @notice Redeem `shares` for pool assets, within the pool's free liquidity. Only while
            no market has open interest ("vault: pool exposed"); otherwise
            `request_withdrawal`.
    @return The assets paid to the caller.
    """
    assert shares > 0, "vault: zero amount"
    engine_: address = self._engine()
    ps: IPoolHooks.PoolState = staticcall IPoolHooks(engine_).pool_state()
    # As for entries: with open interest an exit waits for the next prices (a request).
    assert not ps.exposed, "vault: pool exposed"
    supply: uint256 = erc20.totalSupply
    # No one holds more than the supply; the bound also keeps shares * nav from overflowing.
    assert shares <= supply, "vault: insufficient shares"
    assets: uint256 = self._to_assets(shares, supply, self._redeem_nav(ps))
    assert assets > 0, "vault: zero assets"
    assert assets >= min_assets, "vault: slippage"
    assert assets <= self._free(ps), "vault: insufficient free liquidity"
    self._touch(msg.sender, self.share_epoch)
    erc20._burn(msg.sender, shares)
    extcall IPoolHooks(engine_).pool_pay(msg.sender, assets, shares)
    return assets


@external
def request_deposit(assets: uint256, min_shares: uint256) -> uint256:
    """
    @notice Escrow `assets` of the collateral token here (approve this vault) for shares
            priced later: at the net value when the request is executed, which is only
            after every market with open interest has a price newer than the request. So no
            one buys the pool at a price they have already seen move (the sandwich of a known
            oracle update). The executor, anyone, earns `execution_fee` out of the assets.
    @return The request id.
    """
    assert assets > 0, "vault: zero amount"
    engine_: address = self._engine()
    token: address = self.asset
    before: uint256 = staticcall IERC20(token).balanceOf(self)
    assert extcall IERC20(token).transferFrom(msg.sender, self, assets, default_return_value=True), (
        "vault: transfer failed"
    )
    received: uint256 = staticcall IERC20(token).balanceOf(self) - before
    assert received > self.execution_fee, "vault: below execution fee"
    request_id: uint256 = self._store(msg.sender, True, received, min_shares)
    log DepositRequested(request_id=request_id, owner=msg.sender, assets=received, min_shares=min_shares)
    return request_id


@external
def request_withdrawal(shares: uint256, min_assets: uint256) -> uint256:
    """
    @notice Escrow `shares` here for assets priced at execution (after every market with
            open interest has a newer price), within the free liquidity then. The executor
            earns `execution_fee` out of the assets.
    @return The request id.
    """
    assert shares > 0, "vault: zero amount"
    self._engine()
    self._move(msg.sender, self, shares)
    self.escrowed_shares += shares
    request_id: uint256 = self._store(msg.sender, False, shares, min_assets)
    log WithdrawalRequested(request_id=request_id, owner=msg.sender, shares=shares, min_assets=min_assets)
    return request_id


@external
def execute_request(request_id: uint256):
    """
    @notice Execute an open request at the pool's net value now; anyone may call, for the
            execution fee. Reverts until every market with open interest has a price newer
            than the request ("vault: prices not updated"); a deposit waits while the engine
            is paused, a withdrawal does not (within free liquidity).
    """
    r: Request = self.requests[request_id]
    assert r.owner != empty(address), "vault: no request"
    engine_: address = self._engine()
    ps: IPoolHooks.PoolState = staticcall IPoolHooks(engine_).pool_state()
    assert not ps.exposed or ps.priced_at > r.created, "vault: prices not updated"
    self.requests[request_id] = empty(Request)
    fee: uint256 = self.execution_fee
    token: address = self.asset
    if r.is_deposit:
        assert not ps.paused, "vault: paused"
        nav: uint256 = self._deposit_nav(ps)
        supply: uint256 = self._entry_supply(engine_, ps, nav)
        assets: uint256 = r.amount - fee  # request_deposit took more than the fee
        assert extcall IERC20(token).transfer(msg.sender, fee, default_return_value=True), (
            "vault: transfer failed"
        )
        assert extcall IERC20(token).approve(engine_, assets, default_return_value=True), (
            "vault: transfer failed"
        )
        received: uint256 = extcall IPoolHooks(engine_).pool_pull(self, assets)
        # Priced on what arrived (a fee-on-transfer token delivers less).
        shares: uint256 = self._to_shares(received, supply, nav)
        assert shares > 0, "vault: zero shares"
        assert shares >= r.min_out, "vault: slippage"
        self._mint(r.owner, shares)
        extcall IPoolHooks(engine_).pool_add(r.owner, received, shares)
        log RequestExecuted(
            request_id=request_id, owner=r.owner, executor=msg.sender, assets=received, shares=shares, fee=fee
        )
    else:
        assert request_id >= self.first_live_request, "vault: shares cancelled"
        supply: uint256 = erc20.totalSupply
        assets: uint256 = self._to_assets(r.amount, supply, self._redeem_nav(ps))
        assert assets > fee, "vault: below execution fee"
        assert assets - fee >= r.min_out, "vault: slippage"
        assert assets <= self._free(ps), "vault: insufficient free liquidity"
        self.escrowed_shares -= r.amount
        erc20._burn(self, r.amount)
        extcall IPoolHooks(engine_).pool_pay(r.owner, assets - fee, r.amount)
        extcall IPoolHooks(engine_).pool_pay(msg.sender, fee, 0)
        log RequestExecuted(
            request_id=request_id, owner=r.owner, executor=msg.sender, assets=assets - fee, shares=r.amount, fee=fee
        )


@external
def cancel_request(request_id: uint256):
    """
    @notice The owner takes back what a request escrowed, once REQUEST_TIMEOUT has passed
            since it was made (so a request cannot be pulled the moment a price turns). A
            withdrawal request whose shares were cancelled since is closed at once, with
            nothing to give back.
    """
    r: Request = self.requests[request_id]
    assert r.owner != empty(address), "vault: no request"
    assert msg.sender == r.owner, "vault: not request owner"
    cancelled: bool = not r.is_deposit and request_id < self.first_live_request
    assert cancelled or block.timestamp >= r.created + REQUEST_TIMEOUT, (
        "vault: request not timed out"
    )
    self.requests[request_id] = empty(Request)
    if r.is_deposit:
        assert extcall IERC20(self.asset).transfer(r.owner, r.amount, default_return_value=True), (
            "vault: transfer failed"
        )
    elif not cancelled:
        self.escrowed_shares -= r.amount
        self._move(self, r.owner, r.amount)
    log RequestCancelled(request_id=request_id, owner=r.owner)


@view
@external
def executable(request_id: uint256) -> bool:
    """
    @notice Whether `execute_request(request_id)` waits no longer on prices or the pause
            (it may still revert on slippage, free liquidity or a negative net value).
    """
    r: Request = self.requests[request_id]
    if r.owner == empty(address):
        return False
    if not r.is_deposit and request_id < self.first_live_request:
        return False  # its shares were cancelled: only its owner's cancel closes it
    ps: IPoolHooks.PoolState = staticcall IPoolHooks(self._engine()).pool_state()
    if ps.exposed and ps.priced_at <= r.created:
        return False
    return not (r.is_deposit and ps.paused)


@view
@external
def free_liquidity() -> uint256:
    """
    @notice Pool assets LPs may withdraw now: pool assets less the reserve against open
            notional, unrealised trader profit, outstanding account debt and profit claims.
    """
    return self._free(staticcall IPoolHooks(self._engine()).pool_state())


@view
@external
def convert_to_shares(assets: uint256) -> uint256:
    """
    @notice Shares `add_liquidity(assets)` would mint now (before any transfer fee).
    """
    ps: IPoolHooks.PoolState = staticcall IPoolHooks(self._engine()).pool_state()
    nav: uint256 = self._deposit_nav(ps)
    supply: uint256 = erc20.totalSupply
    if self._worthless(supply, nav):
        assert not ps.exposed, "vault: pool worthless"
        supply = 0  # the deposit would cancel the old shares first
    return self._to_shares(assets, supply, nav)


# ---- The share token: snekmate's ERC20 behind share epochs ----


@external
def transfer(to: address, amount: uint256) -> bool:
    self._move(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    erc20._spend_allowance(owner, msg.sender, amount)
    self._move(owner, to, amount)
    return True


@view
@external
def balanceOf(owner: address) -> uint256:
    """
    @notice Shares `owner` holds; 0 for a balance from before the last cancellation.
    """
    if self.holder_epoch[owner] != self.share_epoch:
        return 0
    return erc20.balanceOf[owner]


@view
@external
def convert_to_assets(shares: uint256) -> uint256:
    """
    @notice Assets `remove_liquidity(shares)` would pay now (before the free-liquidity check).
    """
    ps: IPoolHooks.PoolState = staticcall IPoolHooks(self._engine()).pool_state()
    return self._to_assets(shares, erc20.totalSupply, self._redeem_nav(ps))


@internal
def _touch(holder: address, epoch: uint256):
    # A balance stored in an older epoch (`epoch` is the current one, read once by the
    # caller) was cancelled: clear it before it is used.
    if self.holder_epoch[holder] == epoch:
        return
    self.holder_epoch[holder] = epoch
    stale: uint256 = erc20.balanceOf[holder]
    if stale != 0:
        erc20.balanceOf[holder] = 0
        log IERC20.Transfer(sender=holder, receiver=empty(address), value=stale)


@internal
def _move(owner: address, to: address, amount: uint256):
    epoch: uint256 = self.share_epoch
    self._touch(owner, epoch)
    self._touch(to, epoch)
    erc20._transfer(owner, to, amount)


@internal
def _mint(owner: address, shares: uint256):
    self._touch(owner, self.share_epoch)
    erc20._mint(owner, shares)


@internal
def _entry_supply(engine_: address, ps: IPoolHooks.PoolState, nav: uint256) -> uint256:
    """
    @dev The supply a deposit buys into: 0 after cancelling a worthless pool's shares. The
         engine logs the cancelled supply as a redemption of 0 assets by this vault
         (LiquidityRemoved), so a ledger rebuilt from its events keeps the supply. Only
         while no market has open interest: an exposed pool's value is a conservative mark
         (stale markets, debt its accounts may yet repay), and a deposit that bought the
         whole pool at it would take the old LPs' recovery, so it waits.
    """
    supply: uint256 = erc20.totalSupply
    if not self._worthless(supply, nav):
        return supply
    assert not ps.exposed, "vault: pool worthless"
    epoch: uint256 = self.share_epoch + 1
    self.share_epoch = epoch
    self.first_live_request = self.request_count
    self.escrowed_shares = 0
    erc20.totalSupply = 0
    log SharesCancelled(epoch=epoch, shares=supply, value=nav)
    extcall IPoolHooks(engine_).pool_pay(self, 0, supply)
    return 0


@internal
def _store(owner: address, is_deposit: bool, amount: uint256, min_out: uint256) -> uint256:
    request_id: uint256 = self.request_count
    self.request_count = request_id + 1
    self.requests[request_id] = Request(
        owner=owner, is_deposit=is_deposit, amount=amount, min_out=min_out, created=block.timestamp
    )
    return request_id


@view
@internal
def _engine() -> address:
    engine_: address = self.engine
    assert engine_ != empty(address), "vault: not bound"
    return engine_


@pure
@internal
def _net_value(ps: IPoolHooks.PoolState) -> int256:
    # The one value both directions price against: realised assets, plus the traders' paper
    # losses as far as their collateral can pay them, less their paper profit (side by
    # side, never netted), the accounts' debt and the profit claims owed. Negative when the
    # pool owes more than it has.
    collectable: uint256 = min(ps.trader_loss, ps.trader_collateral)
    return (
        convert(ps.pool_assets + collectable, int256)
        - convert(ps.trader_profit + ps.total_debt + ps.claims, int256)
    )


@pure
@internal
def _deposit_nav(ps: IPoolHooks.PoolState) -> uint256:
    # A newcomer buys at the net value, and not at all into a pool that owes more than it
    # has (it would pay for the old LPs' losses).
    value: int256 = self._net_value(ps)
    assert value >= 0, "vault: pool insolvent"
    return convert(value, uint256)


@pure
@internal
def _redeem_nav(ps: IPoolHooks.PoolState) -> uint256:
    # A redeemer takes a share of the same net value (nothing when it is negative).
    return convert(max(self._net_value(ps), 0), uint256)


@view
@internal
def _worthless(supply: uint256, nav: uint256) -> bool:
    # Shares worth less than a millionth of the first share price, and less than the
    # execution fee in all (never when supply is 0).
    return nav * DUST_RATIO < supply and nav < self.execution_fee


@pure
@internal
def _free(ps: IPoolHooks.PoolState) -> uint256:
    locked: uint256 = ps.total_debt + ps.reserve + ps.trader_profit + ps.claims
    if ps.pool_assets <= locked:
        return 0
    return ps.pool_assets - locked


@pure
@internal
def _to_shares(assets: uint256, supply: uint256, nav: uint256) -> uint256:
    # Rounded down: the depositor gets no more than they paid for.
    return assets * (supply + VIRTUAL_SHARES) // (nav + VIRTUAL_ASSETS)


@pure
@internal
def _to_assets(shares: uint256, supply: uint256, nav: uint256) -> uint256:
    # Rounded down: the redeemer gets no more than the shares are worth.
    return shares * (nav + VIRTUAL_ASSETS) // (supply + VIRTUAL_SHARES)
