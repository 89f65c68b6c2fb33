# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Liquidity-pool share token
@license MIT
@notice ERC20 shares of the clearinghouse's counterparty pool. Only a minter
        (the clearinghouse) mints on `add_liquidity` and burns on
        `remove_liquidity`; holders transfer freely.
@custom:security Minting is gated by snekmate's minter role. The deploy script
        grants it to the clearinghouse, then revokes the deployer's role and
        renounces ownership, so no one else can ever mint or burn.
"""

from ethereum.ercs import IERC20

implements: IERC20

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

exports: (
    erc20.IERC20,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    erc20.is_minter,
    erc20.mint,
    erc20.set_minter,
    erc20.renounce_ownership,
    ownable.owner,
)


@deploy
def __init__(name_: String[25], symbol_: String[5], decimals_: uint8):
    ownable.__init__()
    erc20.__init__(name_, symbol_, decimals_, name_, "1")


@external
def burn_shares(owner: address, amount: uint256):
    """
    @notice Minter-only burn of `owner`'s shares (the pool redeems them).
    """
    assert erc20.is_minter[msg.sender], "erc20: access is denied"
    erc20._burn(owner, amount)
