# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title ERC20 without return values (test double)
@license MIT
@notice A 6-decimal token whose `transfer`, `transferFrom` and `approve` return
        nothing, as USDT's do on Ethereum mainnet. They revert on failure.
@custom:security Test double only. It does not `implements: IERC20` because the
        missing return values are the point.
"""

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

exports: (
    erc20.balanceOf,
    erc20.allowance,
    erc20.totalSupply,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    ownable.owner,
)


@deploy
def __init__(name_: String[25], symbol_: String[5]):
    ownable.__init__()
    erc20.__init__(name_, symbol_, 6, name_, "1")


@external
def transfer(to: address, amount: uint256):
    erc20._transfer(msg.sender, to, amount)


@external
def transferFrom(owner: address, to: address, amount: uint256):
    erc20._spend_allowance(owner, msg.sender, amount)
    erc20._transfer(owner, to, amount)


@external
def approve(spender: address, amount: uint256):
    erc20._approve(msg.sender, spender, amount)


@external
def mint(to: address, amount: uint256):
    ownable._check_owner()
    erc20._mint(to, amount)
