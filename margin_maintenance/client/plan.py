"""Pure decisions and result types: which liquidatable accounts to send, by the keeper's own rules.

Part of `margin_maintenance.client` (see its docstring).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from eth_utils import to_checksum_address

from margin_maintenance.chain.types import AccountStatus
from margin_maintenance.keeper import decisions
from margin_maintenance.model.constants import MAX_BATCH

from .settings import (
    BPS,
    GAS_HEADROOM_BPS,
    KEEPER_BATCH_BASE_GAS,
    KEEPER_ETH_MARKET_ID,
    KEEPER_GAS_PER_ACCOUNT,
    ClientError,
)

# ---- Results ----


@dataclass(frozen=True)
class Preview:
    """`liquidation_preview(account)`: what a liquidation by a third party would do now."""

    account: str
    fraction_wad: int  # share of every position closed, WAD (0 = healthy)
    reward: int  # keeper reward, token units
    bad_debt: int  # token units

    @property
    def liquidatable(self) -> bool:
        return self.fraction_wad > 0


@dataclass(frozen=True)
class ProfitCheck:
    """The keeper's profit rule (`decisions.plan_batches`) and the figures it needs: an account
    goes out only if its reward pays its own marginal gas, and a batch only if it nets at least
    `min_profit_usd` after its gas (`eth_gasPrice` x the keeper's gas figures, at `eth_usd`)."""

    min_profit_usd: Decimal = Decimal(0)  # USD a batch must net after gas (MM_MIN_PROFIT)
    token_usd: Decimal = Decimal(1)  # USD per whole collateral token (MM_TOKEN_USD)
    eth_usd: Decimal | None = None  # USD per ETH; None: market eth_market_id's price on chain
    eth_market_id: int = KEEPER_ETH_MARKET_ID
    gas_per_account: int = KEEPER_GAS_PER_ACCOUNT
    base_gas: int = KEEPER_BATCH_BASE_GAS


@dataclass(frozen=True)
class PlannedTarget:
    """A liquidatable, priced account and what the plan does with it."""

    account: str
    reward: int  # expected keeper reward, token units
    fraction_wad: int  # share of every position closed, WAD
    bad_debt: int  # token units
    batch: int | None  # index into LiquidationPlan.batches; None: not sent
    reason: str  # why it is not sent ("" when it is)
    reward_usd: Fraction | None = None  # None without a profit check
    gas_cost_usd: Fraction | None = None  # its marginal gas (keeper figure) at the node's price

    @property
    def send(self) -> bool:
        return self.batch is not None


@dataclass(frozen=True)
class LiquidationPlan:
    """What a liquidation pass would send: targets ranked by reward (`select_targets`) and the
    `liquidate_many` batches worth sending (`plan_batches`, when there is a profit check)."""

    targets: tuple[PlannedTarget, ...] = ()
    batches: tuple[tuple[str, ...], ...] = ()
    not_liquidatable: tuple[str, ...] = ()  # healthy, or previewed as closing nothing
    cost: decisions.CostModel | None = None  # None: every liquidatable account is sent
    batch_size: int = MAX_BATCH

    @property
    def liquidatable(self) -> list[str]:
        return [t.account for t in self.targets]

    @property
    def to_send(self) -> list[str]:
        return [a for b in self.batches for a in b]

    @property
    def unprofitable(self) -> list[str]:
        return [t.account for t in self.targets if not t.send]

    def batch_reward(self, index: int) -> int:
        wanted = set(self.batches[index])
        return sum(t.reward for t in self.targets if t.account in wanted)

    def batch_gas(self, index: int) -> int:
        """The keeper's gas figure for batch `index` (base + per account)."""
        per, base = (
            (self.cost.per_account_gas, self.cost.base_gas)
            if self.cost is not None
            else (KEEPER_GAS_PER_ACCOUNT, KEEPER_BATCH_BASE_GAS)
        )
        return decisions.batch_gas(len(self.batches[index]), per, base)


@dataclass(frozen=True)
class LiquidationReport:
    """What `liquidate_report` did: accounts liquidated (from `Liquidated` events in the
    receipts), the reward credited to the sender, and the transactions sent."""

    reward: int = 0  # token units, credited to the sender's collateral
    liquidated: tuple[str, ...] = ()
    tx_hashes: tuple[str, ...] = ()
    gas_used: int = 0
    skipped: tuple[str, ...] = ()  # asked for but healthy when checked (nothing sent for them)
    unprofitable: tuple[str, ...] = ()  # liquidatable, left out by the profit check
    plan: LiquidationPlan = field(default_factory=LiquidationPlan)


# ---- Pure helpers ----

batched = decisions.chunked  # consecutive lists of at most `size`, as the keeper splits


def unique_addresses(addresses: Iterable[str]) -> list[str]:
    """Checksummed addresses without repeats, in order of first appearance."""
    seen: dict[str, None] = {}
    for a in addresses:
        seen.setdefault(to_checksum_address(a), None)
    return list(seen)


def gas_limit_for(estimate: int, block_gas_limit: int) -> int:
    """The estimate with headroom, never above the block gas limit."""
    return min(estimate * GAS_HEADROOM_BPS // BPS, block_gas_limit)


def output_fields(out: Any, names: Sequence[str]) -> tuple[Any, ...]:
    """The values of a view's decoded output, in the order of `names`, whatever shape the ABI
    gave it: several unnamed outputs (web3 returns a list), one struct (web3 returns a tuple;
    `w3.codec.decode` a 1-tuple holding it), or named fields (a mapping, or a named tuple with
    `decode_tuples=True`). The encoded bytes are the same in every case."""
    if isinstance(out, Mapping):
        return tuple(out[n] for n in names)
    if hasattr(out, "_asdict"):
        return output_fields(out._asdict(), names)
    values = tuple(out)
    if len(values) == 1 and len(names) > 1 and isinstance(values[0], list | tuple | Mapping):
        return output_fields(values[0], names)
    if len(values) != len(names):
        raise ClientError(f"expected {len(names)} values ({', '.join(names)}), got {out!r}")
    return values


PREVIEW_FIELDS = ("fraction", "reward", "bad_debt")  # IClearinghouse.LiquidationPreview
POSITION_FIELDS = ("size", "entry_price")  # IClearinghouse.Position


def plan_liquidations(
    statuses: Iterable[AccountStatus],
    previews: Mapping[str, Preview],
    batch_size: int = MAX_BATCH,
    cost: decisions.CostModel | None = None,
) -> LiquidationPlan:
    """Rank the liquidatable accounts and batch them with the keeper's rules: `select_targets`
    (priced, closing something, by reward), then `plan_batches` under `cost` (each reward pays
    its own gas, each batch clears `cost.min_profit_usd` after its gas); without `cost` every
    target is sent, `batch_size` per batch."""
    rows = list(statuses)
    keeper_previews = {
        a: decisions.Preview(p.fraction_wad, p.reward, p.bad_debt) for a, p in previews.items()
    }
    targets = decisions.select_targets(rows, keeper_previews, len(rows))
    if cost is None:
        batches = decisions.chunked(targets, batch_size) if targets else []
    else:
        batches, _ = decisions.plan_batches(targets, batch_size, max(1, len(targets)), cost)
    batch_of = {t.account: i for i, b in enumerate(batches) for t in b}
    priced = {t.account for t in targets}
    return LiquidationPlan(
        targets=tuple(_planned(t, batch_of.get(t.account), cost) for t in targets),
        batches=tuple(tuple(t.account for t in b) for b in batches),
        not_liquidatable=tuple(r.account for r in rows if r.account not in priced),
        cost=cost,
        batch_size=batch_size,
    )


def _planned(
    t: decisions.Target, batch: int | None, cost: decisions.CostModel | None
) -> PlannedTarget:
    if cost is None:
        return PlannedTarget(t.account, t.reward, t.fraction, t.bad_debt, batch, "")
    if batch is not None:
        reason = ""
    elif not cost.covers_marginal_gas(t.reward):
        reason = "reward does not pay its gas"
    else:
        reason = "its batch nets under the minimum profit"
    return PlannedTarget(
        t.account,
        t.reward,
        t.fraction,
        t.bad_debt,
        batch,
        reason,
        decisions.reward_usd(t.reward, cost.token_usd, cost.token_decimals),
        decisions.gas_cost_usd(cost.per_account_gas, cost.gas_price_wei, cost.eth_usd),
    )


def _is_healthy_revert(err: Exception) -> bool:
    return "healthy" in str(err).lower()


def _has_function(abi: Sequence[dict[str, Any]], name: str) -> bool:
    return any(e.get("type") == "function" and e.get("name") == name for e in abi)
