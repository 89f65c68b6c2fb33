# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Mock collateral token (USDC-like)
@license MIT
@notice snekmate ERC20 with configurable decimals (6 on local networks) and an
        owner-gated mint, for local networks and tests.
@custom:security Test double: the owner can mint without limit.
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
    erc20.burn,
    ownable.owner,
)


@deploy
def __init__(name_: String[25], symbol_: String[5], decimals_: uint8):
    ownable.__init__()
    erc20.__init__(name_, symbol_, decimals_, name_, "1")


@external
def mint(to: address, amount: uint256):
    """
    @notice Owner-only mint (faucet for local networks).
    """
    ownable._check_owner()
    erc20._mint(to, amount)
