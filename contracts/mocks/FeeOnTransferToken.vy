# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Fee-on-transfer ERC20 (test double)
@license MIT
@notice A 6-decimal ERC20 that burns `fee_bps` (1% unless the owner changes it,
        rounded down) of every `transfer` and `transferFrom`: the recipient gets
        `amount - amount * fee_bps // 10_000`, as with deflationary or fee-charging
        tokens. At 10_000 bps nothing arrives at all.
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

BPS: constant(uint256) = 10_000  # basis points in one
fee_bps: public(uint256)  # share of every transfer that is burnt


@deploy
def __init__(name_: String[25], symbol_: String[5]):
    ownable.__init__()
    erc20.__init__(name_, symbol_, 6, name_, "1")
    self.fee_bps = 100


@external
def set_fee_bps(fee_bps: uint256):
    ownable._check_owner()
    assert fee_bps <= BPS, "fee token: fee above 100%"
    self.fee_bps = fee_bps


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
    fee: uint256 = amount * self.fee_bps // BPS
    erc20._transfer(owner, to, amount)
    if fee > 0:
        erc20._burn(to, fee)
