# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title ERC20 that returns False (test double)
@license MIT
@notice A 6-decimal token whose `transfer` and `transferFrom` return False instead
        of reverting when the balance or allowance is short, or when the owner has
        switched every transfer off (`set_failing`, like a token pause or block
        list). Nothing moves when it returns False.
@custom:security Test double only.
"""

from ethereum.ercs import IERC20

implements: IERC20

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

exports: (
    erc20.balanceOf,
    erc20.allowance,
    erc20.totalSupply,
    erc20.approve,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    ownable.owner,
)

failing: public(bool)  # True: every transfer returns False


@deploy
def __init__(name_: String[25], symbol_: String[5]):
    ownable.__init__()
    erc20.__init__(name_, symbol_, 6, name_, "1")


@external
def transfer(to: address, amount: uint256) -> bool:
    if self.failing or erc20.balanceOf[msg.sender] < amount:
        return False
    erc20._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    if (
        self.failing
        or erc20.balanceOf[owner] < amount
        or erc20.allowance[owner][msg.sender] < amount
    ):
        return False
    erc20._spend_allowance(owner, msg.sender, amount)
    erc20._transfer(owner, to, amount)
    return True


@external
def mint(to: address, amount: uint256):
    ownable._check_owner()
    erc20._mint(to, amount)


@external
def set_failing(failing: bool):
    ownable._check_owner()
    self.failing = failing
