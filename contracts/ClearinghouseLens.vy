# pragma version 0.4.3
"""
@title Clearinghouse lens: the whole engine in one eth_call
@license MIT
@notice A stateless reader for dashboards, bots and auditors: the engine's ledgers and
        settings, every listed market (configuration, open interest, mark price, the
        traders' unrealised PnL), and per account its collateral, margin status, open
        positions, LP shares and token balance. It stores nothing and changes nothing;
        deploy it anywhere and point it at any engine.
@custom:security Every value comes from the engine's and the vault's own external views,
        so a view that reverts (e.g. a stale price) reverts here too; read the engine
        directly for the parts that do not need a price.
"""

from ethereum.ercs import IERC20
from interfaces import IClearinghouse
from interfaces import ILPVault
from interfaces import IPoolHooks
from modules import constants as k

MAX_ACCOUNTS: constant(uint256) = 128  # accounts per call
MAX_TABLE: constant(uint256) = MAX_ACCOUNTS * k.MAX_MARKETS  # entries of a position table


struct MarketView:
    market_id: uint256
    info: IClearinghouse.MarketInfo
    mark_price: uint256  # WAD, as the engine marks it now
    trader_pnl: int256  # traders' aggregate unrealised PnL, token units


struct EngineView:
    engine: address
    vault: address  # the LP vault (the share token)
    token: address  # the collateral token
    token_balance: uint256  # collateral token held by the engine
    pool: IPoolHooks.PoolState  # pool assets, debt, reserve, trader profit and loss, paused
    insurance_fund: uint256
    free_liquidity: uint256  # what LPs may withdraw now
    lp_supply: uint256
    share_price: uint256  # vault.convert_to_assets(share_probe)
    keeper_share_bps: uint256
    max_partial_bps: uint256
    min_keeper_reward: uint256  # token units
    pool_reserve_bps: uint256
    markets: DynArray[MarketView, k.MAX_MARKETS]  # every listed market, id order


struct PositionView:
    market_id: uint256
    size: int256  # WAD base units, signed
    entry_price: uint256  # WAD


struct AccountView:
    account: address
    collateral: int256  # token units; negative = debt
    status: IClearinghouse.AccountStatus  # from margin_status
    liquidatable: bool  # is_liquidatable, read on its own (a client can check both agree)
    positions: DynArray[PositionView, k.MAX_POSITIONS]  # the account's market list, in order
    lp_shares: uint256
    token_balance: uint256  # collateral token held outside the engine


@view
@external
def engine_view(engine: address, share_probe: uint256) -> EngineView:
    """
    @notice The engine's ledgers, settings and every listed market.
    @param share_probe Shares to price with the vault's `convert_to_assets` (e.g. one whole
           share, 10**decimals()).
    """
    return self._engine_view(IClearinghouse(engine), share_probe)


@view
@external
def accounts_view(
    engine: address, accounts: DynArray[address, MAX_ACCOUNTS]
) -> DynArray[AccountView, MAX_ACCOUNTS]:
    """
    @notice Collateral, margin status, positions, LP shares and wallet balance per account.
    """
    return self._accounts_view(IClearinghouse(engine), accounts)


@view
@external
def snapshot(
    engine: address, accounts: DynArray[address, MAX_ACCOUNTS], share_probe: uint256
) -> (EngineView, DynArray[AccountView, MAX_ACCOUNTS]):
    """
    @notice `engine_view` and `accounts_view` in one call, read at the same block.
    """
    ch: IClearinghouse = IClearinghouse(engine)
    return self._engine_view(ch, share_probe), self._accounts_view(ch, accounts)


@view
@external
def position_table(
    engine: address, accounts: DynArray[address, MAX_ACCOUNTS], n_markets: uint256
) -> DynArray[IClearinghouse.Position, MAX_TABLE]:
    """
    @notice Every account's stored position in markets 0 .. n_markets - 1, listed or not, row
            by row (account i, market m at index i * n_markets + m): for auditors checking
            that no position is stored outside an account's list.
    """
    ch: IClearinghouse = IClearinghouse(engine)
    out: DynArray[IClearinghouse.Position, MAX_TABLE] = []
    for a: address in accounts:
        for m: uint256 in range(n_markets, bound=k.MAX_MARKETS):
            out.append(staticcall ch.position(a, m))
    return out


@view
@internal
def _engine_view(ch: IClearinghouse, share_probe: uint256) -> EngineView:
    v: EngineView = empty(EngineView)
    v.engine = ch.address
    v.vault = staticcall ch.lp_token()
    v.token = staticcall ch.collateral_token()
    v.token_balance = staticcall IERC20(v.token).balanceOf(ch.address)
    v.pool = staticcall IPoolHooks(ch.address).pool_state()
    v.insurance_fund = staticcall ch.insurance_fund()
    v.free_liquidity = staticcall ILPVault(v.vault).free_liquidity()
    v.lp_supply = staticcall IERC20(v.vault).totalSupply()
    v.share_price = staticcall ILPVault(v.vault).convert_to_assets(share_probe)
    v.keeper_share_bps, v.max_partial_bps, v.min_keeper_reward = staticcall ch.liquidation_params()
    v.pool_reserve_bps = staticcall ch.pool_reserve_bps()
    for m: uint256 in range(staticcall ch.market_count(), bound=k.MAX_MARKETS):
        v.markets.append(
            MarketView(
                market_id=m,
                info=staticcall ch.market(m),
                mark_price=staticcall ch.mark_price(m),
                trader_pnl=staticcall ch.trader_unrealized_pnl(m),
            )
        )
    return v


@view
@internal
def _accounts_view(
    ch: IClearinghouse, accounts: DynArray[address, MAX_ACCOUNTS]
) -> DynArray[AccountView, MAX_ACCOUNTS]:
    token: IERC20 = IERC20(staticcall ch.collateral_token())
    vault: IERC20 = IERC20(staticcall ch.lp_token())
    wanted: DynArray[address, 512] = []
    for a: address in accounts:
        wanted.append(a)
    statuses: DynArray[IClearinghouse.AccountStatus, 512] = staticcall ch.margin_status(wanted)
    out: DynArray[AccountView, MAX_ACCOUNTS] = []
    for i: uint256 in range(len(accounts), bound=MAX_ACCOUNTS):
        a: address = accounts[i]
        acc: AccountView = empty(AccountView)
        acc.account = a
        acc.collateral = staticcall ch.collateral(a)
        acc.status = statuses[i]
        acc.liquidatable = staticcall ch.is_liquidatable(a)
        for m: uint256 in staticcall ch.account_market_ids(a):
            p: IClearinghouse.Position = staticcall ch.position(a, m)
            acc.positions.append(PositionView(market_id=m, size=p.size, entry_price=p.entry_price))
        acc.lp_shares = staticcall vault.balanceOf(a)
        acc.token_balance = staticcall token.balanceOf(a)
        out.append(acc)
    return out
