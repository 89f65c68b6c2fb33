# pragma version 0.4.3
# pragma optimize codesize
"""
@title Clearinghouse extension: the engine's cold functions, run in the engine's storage
@license MIT
@notice The engine (`Clearinghouse.vy`) forwards every selector it does not know to this
        contract by delegatecall (its `__default__`), so these functions run at the engine's
        address, in its storage, under its one reentrancy lock, with the caller's
        `msg.sender` and `msg.value`: bots and tests see one contract, `IClearinghouse`.
        They are the cold ones (no keeper or trader hot path), moved out to keep the engine
        under EIP-170: `liquidation_preview`, `settle_claim`, `fund_insurance`, and `deposit` and `withdraw`
        (a trader's path, not a keeper's: moved for issue 17's loss layers, about 3,000 gas
        more each for the hop).
@custom:security This file initializes the very modules the engine does, in the same order
        and with the same constructor arguments, so that both compile to one storage and
        transient-storage layout (`tests/test_abi.py` compares the compiler's layouts) and
        hold the same immutables (the engine's constructor checks them). It is never used
        on its own: called directly, it runs on its own empty storage, which holds nothing.
"""

from interfaces import IPoolHooks
from modules import accounts
from modules import configuration
from modules import ledger
from modules import liquidation
from modules import markets
from modules import pool
from modules import trading

implements: IPoolHooks

initializes: ledger
initializes: markets[ledger := ledger]
initializes: accounts[ledger := ledger, markets := markets]
initializes: trading[ledger := ledger, markets := markets, acct := accounts]
initializes: liquidation[ledger := ledger, markets := markets, acct := accounts]
initializes: pool[ledger := ledger, markets := markets]
initializes: configuration[markets := markets, accounts := accounts, pool := pool]

exports: (
    liquidation.liquidation_preview,
    pool.settle_claim,
    accounts.deposit,
    accounts.withdraw,
    pool.fund_insurance,
    pool.pool_state,
    pool.pool_pull,
    pool.pool_add,
    pool.pool_pay,
    markets.mark_price,
    markets.market,
    markets.trader_unrealized_pnl,
    accounts.position,
    accounts.account_market_ids,
    liquidation.is_liquidatable,
    liquidation.equity,
    liquidation.maintenance_requirement,
    liquidation.initial_requirement,
    liquidation.liquidation_params,
    liquidation.keeper_reward_params,
    configuration.configure_keeper_gas,
    pool.pool_assets,
    pool.insurance_fund,
    configuration.configure_market,
    configuration.configure_params,
    configuration.configure_pause,
    configuration.configure_funding,
    markets.market_funding,
    markets.fill_price,
    accounts.accrued_funding,
    # read by the engine's constructor: the same wiring as the engine's own
    ledger.collateral_token,
    pool.lp_token,
    configuration.configurator,
    markets.price_updater,
)


@deploy
def __init__(
    collateral_token_: address, lp_token_: address, configurator_: address, price_updater_: address
):
    """
    @notice The engine's own first four constructor arguments (deploy this first, then the
            engine with its address).
    """
    ledger.__init__(collateral_token_)
    markets.__init__(price_updater_)
    pool.__init__(lp_token_)
    configuration.__init__(configurator_)
