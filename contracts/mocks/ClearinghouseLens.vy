# pragma version 0.4.3
"""
@title Clearinghouse lens (test helper)
@license MIT
@notice One `eth_call` that reads everything the invariant tests compare after every
        fuzzing step: the engine's ledgers, every market's configuration and open
        interest, and per account its collateral, positions, market list,
        liquidatable flag, LP shares and token balance. Read-only; never deployed
        outside tests.
@custom:security Test helper only. Every value comes from the clearinghouse's own
        external views, so a view that reverts (e.g. on a stale price) reverts here.
"""

from ethereum.ercs import IERC20
from ..interfaces import IClearinghouse

MAX_ACCOUNTS: constant(uint256) = 16  # accounts per snapshot
MAX_MARKETS: constant(uint256) = 4  # markets per snapshot
MAX_POSITIONS: constant(uint256) = 8  # the clearinghouse's positions per account


interface IEngine:
    def collateral(account: address) -> int256: view
    def position(account: address, market_id: uint256) -> (int256, uint256): view
    def account_market_ids(account: address) -> DynArray[uint256, MAX_POSITIONS]: view
    def is_liquidatable(account: address) -> bool: view
    def market(market_id: uint256) -> IClearinghouse.MarketInfo: view
    def trader_unrealized_pnl(market_id: uint256) -> int256: view
    def pool_assets() -> uint256: view
    def insurance_fund() -> uint256: view
    def total_debt() -> uint256: view
    def free_liquidity() -> uint256: view
    def paused() -> bool: view
    def convert_to_assets(shares: uint256) -> uint256: view
    def liquidation_params() -> (uint256, uint256, uint256): view
    def pool_reserve_bps() -> uint256: view
    def collateral_token() -> address: view
    def lp_token() -> address: view


struct MarketSnap:
    info: IClearinghouse.MarketInfo
    trader_pnl: int256  # trader_unrealized_pnl, token units


struct AccountSnap:
    account: address
    collateral: int256  # token units
    is_liquidatable: bool  # `is_liquidatable` (margin_status is read on its own: its
    # 512-entry buffers would triple the cost of this call)
    market_ids: DynArray[uint256, MAX_POSITIONS]  # the engine's packed list, in order
    sizes: DynArray[int256, MAX_MARKETS]  # per market id 0 .. n - 1, WAD
    entries: DynArray[uint256, MAX_MARKETS]  # per market id, WAD price
    lp_shares: uint256  # LP token balance
    token_balance: uint256  # collateral-token balance held outside the engine


struct EngineSnap:
    token_balance: uint256  # collateral token held by the engine
    pool_assets: uint256
    insurance_fund: uint256
    total_debt: uint256
    free_liquidity: uint256
    lp_supply: uint256
    share_price: uint256  # convert_to_assets(share_probe)
    paused: bool
    keeper_share_bps: uint256
    max_partial_bps: uint256
    min_keeper_reward: uint256
    pool_reserve_bps: uint256
    markets: DynArray[MarketSnap, MAX_MARKETS]
    accounts: DynArray[AccountSnap, MAX_ACCOUNTS]


@view
@external
def snapshot(
    engine: address,
    n_markets: uint256,
    accounts: DynArray[address, MAX_ACCOUNTS],
    share_probe: uint256,
) -> EngineSnap:
    """
    @notice Everything the invariants compare, in one call.
    """
    ch: IEngine = IEngine(engine)
    token: IERC20 = IERC20(staticcall ch.collateral_token())
    lp: IERC20 = IERC20(staticcall ch.lp_token())
    snap: EngineSnap = empty(EngineSnap)
    snap.token_balance = staticcall token.balanceOf(engine)
    snap.pool_assets = staticcall ch.pool_assets()
    snap.insurance_fund = staticcall ch.insurance_fund()
    snap.total_debt = staticcall ch.total_debt()
    snap.free_liquidity = staticcall ch.free_liquidity()
    snap.lp_supply = staticcall lp.totalSupply()
    snap.share_price = staticcall ch.convert_to_assets(share_probe)
    snap.paused = staticcall ch.paused()
    snap.keeper_share_bps, snap.max_partial_bps, snap.min_keeper_reward = staticcall (
        ch.liquidation_params()
    )
    snap.pool_reserve_bps = staticcall ch.pool_reserve_bps()
    for m: uint256 in range(n_markets, bound=MAX_MARKETS):
        snap.markets.append(
            MarketSnap(info=staticcall ch.market(m), trader_pnl=staticcall ch.trader_unrealized_pnl(m))
        )
    for i: uint256 in range(len(accounts), bound=MAX_ACCOUNTS):
        a: address = accounts[i]
        acc: AccountSnap = empty(AccountSnap)
        acc.account = a
        acc.collateral = staticcall ch.collateral(a)
        acc.is_liquidatable = staticcall ch.is_liquidatable(a)
        acc.market_ids = staticcall ch.account_market_ids(a)
        for m: uint256 in range(n_markets, bound=MAX_MARKETS):
            size: int256 = 0
            entry: uint256 = 0
            size, entry = staticcall ch.position(a, m)
            acc.sizes.append(size)
            acc.entries.append(entry)
        acc.lp_shares = staticcall lp.balanceOf(a)
        acc.token_balance = staticcall token.balanceOf(a)
        snap.accounts.append(acc)
    return snap
