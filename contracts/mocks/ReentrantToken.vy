# pragma version 0.4.3
"""
@title Re-entrant ERC20 (test double)
@license MIT
@notice A 6-decimal ERC20 whose `transfer` and `transferFrom` call back into a
        configured target after moving the balance, the way an ERC-777 / ERC-1363
        hook or a malicious token would. The owner arms the hook with any calldata
        (e.g. `Clearinghouse.withdraw`) and can make the token act as an account of
        its own (`execute`), so the re-entrant call comes from a funded account.
@custom:security Test double only. This file deliberately has no nonreentrancy
        pragma: the token itself must be re-enterable, so that whatever blocks the
        attack is the clearinghouse's lock and not the token's.
"""

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

MAX_DATA: constant(uint256) = 260  # calldata of the hook call, bytes
MAX_REVERT: constant(uint256) = 256  # revert data kept from a failed hook, bytes

hook_target: public(address)  # contract called back on every transfer; empty = disarmed
hook_data: public(Bytes[MAX_DATA])  # calldata of the call back
hook_strict: public(bool)  # True: a failed call back reverts the transfer with its reason
hook_calls: public(uint256)  # call backs attempted
hook_successes: public(uint256)  # call backs that did not revert
last_hook_revert: public(Bytes[MAX_REVERT])  # revert data of the last failed call back
in_hook: bool  # guards against the hook triggering itself


@deploy
def __init__(name_: String[25], symbol_: String[5]):
    ownable.__init__()
    erc20.__init__(name_, symbol_, 6, name_, "1")


@external
def transfer(to: address, amount: uint256) -> bool:
    erc20._transfer(msg.sender, to, amount)
    self._hook()
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    erc20._spend_allowance(owner, msg.sender, amount)
    erc20._transfer(owner, to, amount)
    self._hook()
    return True


@external
def mint(to: address, amount: uint256):
    ownable._check_owner()
    erc20._mint(to, amount)


@external
def set_hook(target: address, data: Bytes[MAX_DATA], strict: bool):
    """
    @notice Arm (or, with an empty target, disarm) the call back.
    """
    ownable._check_owner()
    self.hook_target = target
    self.hook_data = data
    self.hook_strict = strict


@external
def execute(target: address, data: Bytes[MAX_DATA]) -> Bytes[MAX_REVERT]:
    """
    @notice Call `target` as this contract (owner only), e.g. to approve and deposit.
    """
    ownable._check_owner()
    return raw_call(target, data, max_outsize=MAX_REVERT)


@internal
def _hook():
    target: address = self.hook_target
    if target == empty(address) or self.in_hook:
        return
    self.in_hook = True
    self.hook_calls += 1
    ok: bool = False
    response: Bytes[MAX_REVERT] = b""
    ok, response = raw_call(
        target, self.hook_data, max_outsize=MAX_REVERT, revert_on_failure=False
    )
    self.in_hook = False
    if ok:
        self.hook_successes += 1
        return
    self.last_hook_revert = response
    if self.hook_strict:
        raw_revert(response)
