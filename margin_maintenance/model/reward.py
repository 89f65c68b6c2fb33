"""The keeper reward, bit for bit as `accounts._gas_reward`, `accounts._note_gas` and
`liquidation._fee_split` compute it (SPEC section 3, issue "loss layers").

A liquidation of n positions pays the keeper clamp(max(g * (1 + p), g + m) + share * fee,
minimum, maximum), g = gas price * (LIQ_GAS_BASE + LIQ_GAS_PER_POSITION * n) * ETH/USD. The
gas price is a stored, smoothed value: trades and liquidations step it toward the block's base
fee by at most an eighth per block, never below a floor, because a node answers `eth_call`
with a base fee of 0 and the views must agree with the transactions. The clamped gas part is
the reserve both requirements hold, so an account that becomes liquidatable can pay it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .constants import BPS, WAD, constant

LIQ_GAS_BASE = constant("LIQ_GAS_BASE")
LIQ_GAS_PER_POSITION = constant("LIQ_GAS_PER_POSITION")
GAS_FLOOR_UNIT = constant("GAS_FLOOR_UNIT")
MASK64 = constant("MASK64")
MASK96 = constant("MASK96")


@dataclass(frozen=True)
class KeeperGas:
    """`accounts.keeper_gas`, decoded (codec layout). `eth_market` None: gas pricing off."""

    gas_price: int = 0  # wei, smoothed
    eth_price: int = 0  # WAD, the last ETH/USD mark the engine saw
    block: int = 0  # of the last step
    premium_bps: int = 0
    eth_market: int | None = None
    floor: int = 0  # wei

    @classmethod
    def from_word(cls, word: int) -> KeeperGas:
        market = (word >> 216) & 255
        return cls(
            gas_price=word & MASK64,
            eth_price=(word >> 64) & MASK96,
            block=(word >> 160) & (2**40 - 1),
            premium_bps=(word >> 200) & 0xFFFF,
            eth_market=market - 1 if market else None,
            floor=(word >> 224) * GAS_FLOOR_UNIT,
        )

    @property
    def on(self) -> bool:
        return self.eth_market is not None


def gas_units(positions: int) -> int:
    """The gas a liquidation of `positions` positions is priced for."""
    return LIQ_GAS_BASE + LIQ_GAS_PER_POSITION * positions


def gas_reward(gas: KeeperGas, gas_margin: int, positions: int, token_scale: int) -> int:
    """`accounts._gas_reward`: max(g * (1 + premium), g + margin), token units, g rounded up;
    0 when gas pricing is off."""
    if not gas.on:
        return 0
    unit = WAD * token_scale
    g = (gas.gas_price * gas_units(positions) * gas.eth_price + unit - 1) // unit
    return max(g + g * gas.premium_bps // BPS, g + gas_margin)


def clamp(x: int, low: int, high: int) -> int:
    return min(max(x, low), high)


def step(gas: KeeperGas, basefee: int, block: int, eth_price: int = 0) -> KeeperGas:
    """`accounts._note_gas`: at most one step of an eighth per block toward `basefee`, never
    below the floor; `eth_price` (0: none read) replaces the ETH/USD price."""
    if not gas.on:
        return gas
    gp = gas.gas_price
    if block != gas.block:
        d = gp >> 3
        gp = max(clamp(basefee, gp - d, gp + d), gas.floor)
    return replace(
        gas,
        gas_price=min(gp, MASK64),
        eth_price=min(eth_price or gas.eth_price, MASK96),
        block=block & (2**40 - 1),
    )


@dataclass(frozen=True)
class Split:
    """What `_fee_split` returns."""

    fee_paid: int  # what the account paid of the fee it owed
    reward: int  # to the keeper
    insurance: int  # the fund after it
    from_pool: int  # the part of the reward the pool paid
    owed: int  # the fee the account owed: `fee` and what the reward takes over its share


def fee_split(
    fee: int,
    available: int,
    *,
    keeper_share_bps: int,
    min_reward: int,
    max_reward: int,
    insurance: int,
    third_party: bool,
    gas: int,
    spendable_pool: int,
) -> Split:
    """`liquidation._fee_split`: the account owes `fee` plus what the reward takes over the
    keeper's share of it; pays what it has (`available`) into the fund, which pays the reward;
    when the account falls short, the fund and then the pool (up to its spendable assets) top
    the reward up only to the reserve.
    A self-liquidation owes the same and is paid nothing."""
    cut = fee * keeper_share_bps // BPS
    reward = clamp(gas + cut, min_reward, max_reward)
    owed = fee + max(reward - cut, 0)
    paid = min(owed, max(available, 0))
    ins = insurance + paid
    if not third_party:
        return Split(paid, 0, ins, 0, owed)
    if paid >= reward:  # the account paid it
        return Split(paid, reward, ins - reward, 0, owed)
    # short: the fund, then the pool, top it up only to the reserve (the liveness part)
    target = max(clamp(gas, min_reward, max_reward), paid)
    from_ins = min(target, ins)
    from_pool = min(target - from_ins, spendable_pool)
    return Split(paid, from_ins + from_pool, ins - from_ins, from_pool, owed)
