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

        This file only wires the modules of `modules/`, one concern each: the ledger
        (every token unit), markets, accounts, trading, liquidation, pool accounting and
        the configurator's hooks. Cold code lives in satellites: `Configurator.vy` (bounds,
        ownership, guardian, admin events) and `LPVault.vy` (LP shares and their maths).
@custom:security Assumptions: the collateral token is a plain ERC20 (fee-on-transfer
        is credited only what arrives; rebasing tokens are not supported); every
        market's feed is a `PriceFeed` adapter that reverts on a bad price; the
        `configurator` (immutable) is the only caller of the `configure_*` hooks, and
        its owner is trusted within the bounds each of its setters enforces; the
        guardian can only pause new risk. Every external function is nonreentrant
        (each module states the pragma; the lock is one for the whole contract).
        Conservation: token balance == sum(collateral) + pool_assets + insurance_fund.
"""

from interfaces import IClearinghouse
from modules import accounts
from modules import configuration
from modules import ledger
from modules import liquidation
from modules import markets
from modules import pool
from modules import trading

# IPoolHooks (`pool_state`, `pool_pull`, `pool_add`, `pool_pay`) is implemented by the extension,
# at this address: the vault calls them here and `__default__` runs them.

initializes: ledger
initializes: markets[ledger := ledger]
initializes: accounts[ledger := ledger, markets := markets]
initializes: trading[ledger := ledger, markets := markets, acct := accounts]
initializes: liquidation[ledger := ledger, markets := markets, acct := accounts]
initializes: pool[ledger := ledger, markets := markets]
initializes: configuration[markets := markets, accounts := accounts, pool := pool]

exports: (
    ledger.collateral_token,
    ledger.token_scale,
    ledger.collateral,
    ledger.total_debt,
    ledger.claims,
    ledger.total_claims,
    markets.market_count,
    markets.paused,
    markets.price_updater,
    markets.update_prices,
    trading.trade,
    trading.trade_with_prices,
    liquidation.liquidate,
    liquidation.liquidate_many,
    liquidation.liquidate_with_prices,
    liquidation.margin_status,
    pool.lp_token,
    pool.pool_reserve_bps,
    configuration.configurator,
    configuration.guardian,
)


# The extension: the engine's cold functions, run in this contract's storage (delegatecall).
extension: public(immutable(address))


interface IWiring:
    def collateral_token() -> address: view
    def lp_token() -> address: view
    def configurator() -> address: view
    def price_updater() -> address: view


@deploy
def __init__(
    collateral_token_: address,
    lp_token_: address,
    configurator_: address,
    price_updater_: address,
    extension_: address,
):
    """
    @param collateral_token_ The settlement ERC20 (<= 18 decimals).
    @param lp_token_ The LPVault, fixed for life: it alone calls the `pool_*` hooks. Deploy
           it first, then this engine, then call its `bind(engine)`.
    @param configurator_ The Configurator, fixed for life: it alone calls the `configure_*`
           hooks. Deploy it first, then this engine, then call its `bind(engine, ...)`, which
           checks `configurator() == configurator` and sets the guardian and parameters.
    @param price_updater_ Verifies the signed prices `update_prices` and the `*_with_prices`
           entry points bring (a PriceVerifier or a Pyth adapter); empty for push prices only.
    @param extension_ The ClearinghouseExtension deployed with the same first four arguments:
           the cold functions this engine delegates (`__default__`).
    """
    ledger.__init__(collateral_token_)
    markets.__init__(price_updater_)
    pool.__init__(lp_token_)
    configuration.__init__(configurator_)
    # The extension runs in this storage: it must be wired exactly as this engine is.
    w: IWiring = IWiring(extension_)
    assert (
        staticcall w.collateral_token() == collateral_token_
        and staticcall w.lp_token() == lp_token_
        and staticcall w.configurator() == configurator_
        and staticcall w.price_updater() == price_updater_
    ), "clearinghouse: extension wiring"
    extension = extension_


@payable
@external
@reentrant
@raw_return
def __default__() -> Bytes[320]:
    """
    @notice Every other selector of `IClearinghouse` (`liquidation_preview`, `settle_claim`,
            `fund_insurance`, `deposit`, `withdraw`, the views) runs in the extension, in
            this contract's storage; its return data or its revert reason comes back as it
            is. An unknown selector reverts there.
            This forwarder takes no lock itself (`@reentrant`): the function it runs takes
            the engine's one lock, in this storage, as every other entry point does.
    """
    return raw_call(extension, msg.data, max_outsize=320, is_delegate_call=True)
