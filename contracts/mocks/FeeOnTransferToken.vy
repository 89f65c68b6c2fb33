# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Fee-on-transfer ERC20 (test double)
@license MIT
@notice A 6-decimal ERC20 that burns 1% (rounded down) of every `transfer` and
        `transferFrom`: the recipient gets `amount - amount // 100`, as with
        deflationary or fee-charging tokens.
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

FEE_BPS: constant(uint256) = 100  # 1% of every transfer is burnt
BPS: constant(uint256) = 10_000  # basis points in one


@deploy
def __init__(name_: String[25], symbol_: String[5]):
    ownable.__init__()
    erc20.__init__(name_, symbol_, 6, name_, "1")


@external
def transfer(to: address, amount: uint256) -> bool:
    self._move(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    erc20._spend_allowance(owner, msg.sender, amount)
    self._move(owner, to, amount)
    return True


@external
def mint(to: address, amount: uint256):
    ownable._check_owner()
    erc20._mint(to, amount)


@internal
def _move(owner: address, to: address, amount: uint256):
    fee: uint256 = amount * FEE_BPS // BPS
    erc20._transfer(owner, to, amount)
    if fee > 0:
        erc20._burn(to, fee)
