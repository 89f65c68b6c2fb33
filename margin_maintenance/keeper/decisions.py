"""Pure keeper decisions: which accounts to liquidate, in what batches, and whether it pays.

Nothing here touches the chain, so every rule is unit-tested on plain values
(`tests/keeper/test_decisions.py`). The I/O around it lives in `core.py`.

Units follow SPEC.md section 1: rewards and requirements in collateral-token units, fractions
in WAD, gas in gas units, gas prices in wei, prices in whole USD.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TypeVar

from margin_maintenance.chain.types import AccountStatus, Preview
from margin_maintenance.model.constants import MAX_BATCH, MAX_STATUS

WAD = 10**18
WEI_PER_ETH = 10**18

# The reference keeper's gas figures (defaults of KeeperSettings; mm-client uses the same).
GAS_PER_ACCOUNT = 35_000  # marginal gas of one more account in a liquidate_many batch
BATCH_BASE_GAS = 60_000  # gas of a liquidate_many before any account
BLOCK_GAS_FILL_BPS = 9_000  # share of the block gas limit one batch may plan for
ETH_MARKET_ID = 0  # the market whose oracle price prices gas (ETH-USD)
REQUEST_GAS = 200_000  # gas of an LP `execute_request` (docs/gas.md: about 150,000-190,000)

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """A liquidatable account with its expected reward."""

    account: str
    reward: int  # token units
    fraction: int  # WAD
    bad_debt: int  # token units
    shortfall: int  # token units below maintenance when read


@dataclass(frozen=True)
class CostModel:
    """What a liquidation costs and what its reward is worth, in USD."""

    gas_price_wei: int
    eth_usd: float | Decimal  # USD per ETH (the gas token)
    token_usd: float | Decimal  # USD per whole collateral token
    token_decimals: int
    per_account_gas: int  # marginal gas of one more account in a liquidate_many batch
    base_gas: int  # gas of a liquidate_many call before any account (intrinsic + overhead)
    min_profit_usd: float | Decimal = 0  # net USD a batch must earn after gas

    def batch_gas(self, n_accounts: int) -> int:
        return batch_gas(n_accounts, self.per_account_gas, self.base_gas)

    def covers_marginal_gas(self, reward: int) -> bool:
        """An account is worth adding to a batch when its reward pays for its own gas."""
        return is_profitable(
            reward,
            self.token_usd,
            self.per_account_gas,
            self.gas_price_wei,
            self.eth_usd,
            0,
            token_decimals=self.token_decimals,
        )

    def batch_profitable(self, rewards: Sequence[int]) -> bool:
        return is_profitable(
            sum(rewards),
            self.token_usd,
            self.batch_gas(len(rewards)),
            self.gas_price_wei,
            self.eth_usd,
            self.min_profit_usd,
            token_decimals=self.token_decimals,
        )


def _exact(x: float | int | Decimal | Fraction) -> Fraction:
    """A price as an exact fraction: 0.1 means one tenth, not the nearest binary float."""
    if isinstance(x, float):
        return Fraction(Decimal(repr(x)))
    return Fraction(x)


def chunked(items: Sequence[T], size: int) -> list[list[T]]:
    """Split `items` into consecutive lists of at most `size`, order preserved."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def status_chunks(accounts: Sequence[str], size: int = MAX_STATUS) -> list[list[str]]:
    """Accounts in groups that one `margin_status` call accepts (at most 512)."""
    if not 1 <= size <= MAX_STATUS:
        raise ValueError(f"margin_status takes 1..{MAX_STATUS} accounts, got {size}")
    return chunked(accounts, size)


def liquidatable_candidates(statuses: Iterable[AccountStatus]) -> list[AccountStatus]:
    """Liquidatable rows, deepest shortfall first (a proxy for reward before any preview:
    a bigger shortfall means a bigger position to close), then by address for determinism.
    Duplicates (same account, any case) are kept once."""
    seen: set[str] = set()
    out: list[AccountStatus] = []
    for s in statuses:
        key = s.account.lower()
        if s.liquidatable and key not in seen:
            seen.add(key)
            out.append(s)
    out.sort(key=lambda s: (-s.shortfall, s.account.lower()))
    return out


def select_targets(
    statuses: Iterable[AccountStatus],
    previews: Mapping[str, Preview],
    max_batch: int,
) -> list[Target]:
    """Rank liquidatable accounts by expected reward and keep the best `max_batch`.

    An account needs a row flagged liquidatable and a preview that still closes something
    (`fraction > 0`); a missing preview means "not priced", so it is left for a later block.
    Ties on reward go to the deeper shortfall (the more urgent account), then to the address,
    so two runs over the same data pick the same accounts in the same order.
    """
    if max_batch < 0:
        raise ValueError(f"max_batch must be >= 0, got {max_batch}")
    by_lower = {k.lower(): v for k, v in previews.items()}
    targets: list[Target] = []
    for s in liquidatable_candidates(statuses):
        p = by_lower.get(s.account.lower())
        if p is None or p.fraction == 0:
            continue
        targets.append(Target(s.account, p.reward, p.fraction, p.bad_debt, s.shortfall))
    targets.sort(key=lambda t: (-t.reward, -t.shortfall, t.account.lower()))
    return targets[:max_batch]


def batch_gas(n_accounts: int, per_account_gas: int, base_gas: int) -> int:
    """Gas a liquidate_many over `n_accounts` is expected to use."""
    return base_gas + n_accounts * per_account_gas


def batch_size_for(
    block_gas_limit: int, per_account_gas: int, base_gas: int, cap: int = MAX_BATCH
) -> int:
    """Most accounts one liquidate_many may carry so that it fits in a block (0 if none fits)."""
    if per_account_gas <= 0:
        raise ValueError(f"per_account_gas must be > 0, got {per_account_gas}")
    if not 0 <= cap <= MAX_BATCH:
        raise ValueError(f"cap must be in 0..{MAX_BATCH}, got {cap}")
    room = block_gas_limit - base_gas
    if room < per_account_gas:
        return 0
    return min(cap, room // per_account_gas)


def gas_cost_usd(gas: int, gas_price_wei: int, eth_usd: float | Decimal) -> Fraction:
    """USD cost of `gas` at `gas_price_wei`, exact."""
    return Fraction(gas * gas_price_wei, WEI_PER_ETH) * _exact(eth_usd)


def reward_usd(
    reward_token_units: int, token_usd: float | Decimal, token_decimals: int
) -> Fraction:
    """USD value of a reward in token units, exact."""
    return Fraction(reward_token_units, 10**token_decimals) * _exact(token_usd)


def is_profitable(
    reward_token_units: int,
    token_usd_price: float | Decimal,
    gas_estimate: int,
    gas_price_wei: int,
    eth_usd: float | Decimal,
    margin: float | Decimal,
    *,
    token_decimals: int,
) -> bool:
    """True when the reward, in USD, beats the gas cost by at least `margin` USD.

    Exactly at the margin counts as profitable. Prices are whole USD (per ETH, per whole
    collateral token); `token_decimals` converts the reward out of token units.
    """
    if min(reward_token_units, gas_estimate, gas_price_wei, token_decimals) < 0:
        raise ValueError("amounts, gas and decimals must be >= 0")
    if _exact(token_usd_price) < 0 or _exact(eth_usd) < 0:
        raise ValueError("prices must be >= 0")
    net = reward_usd(reward_token_units, token_usd_price, token_decimals) - gas_cost_usd(
        gas_estimate, gas_price_wei, eth_usd
    )
    return net >= _exact(margin)


def plan_batches(
    targets: Sequence[Target],
    batch_size: int,
    max_batches: int,
    cost: CostModel,
) -> tuple[list[list[Target]], list[Target]]:
    """Group ranked targets into liquidate_many batches worth sending.

    Accounts whose reward does not pay for their own marginal gas are dropped; the rest go
    in rank order into batches of `batch_size`; a batch that does not clear
    `cost.min_profit_usd` after its base gas is dropped (the ones after it earn less, being
    ranked lower, so they are dropped too). Returns (batches, unprofitable targets).
    """
    if batch_size < 1 or max_batches < 1:
        return [], []
    worth = [t for t in targets if cost.covers_marginal_gas(t.reward)]
    skipped = [t for t in targets if not cost.covers_marginal_gas(t.reward)]
    batches: list[list[Target]] = []
    for i, batch in enumerate(chunked(worth, batch_size)):
        if len(batches) == max_batches:
            break  # the rest wait for the next block
        if not cost.batch_profitable([t.reward for t in batch]):
            skipped.extend(worth[i * batch_size :])
            break
        batches.append(batch)
    return batches, skipped


def request_pays(fee: int, gas: int, cost: CostModel) -> bool:
    """Whether an LP request's execution fee (token units) pays for `gas` at the cost
    model's gas price, with the model's minimum profit."""
    return is_profitable(
        fee,
        cost.token_usd,
        gas,
        cost.gas_price_wei,
        cost.eth_usd,
        cost.min_profit_usd,
        token_decimals=cost.token_decimals,
    )
