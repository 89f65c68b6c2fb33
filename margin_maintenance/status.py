"""Account health read in batches through `margin_status`, and the pool's figures."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from margin_maintenance.chain.types import AccountStatus
from margin_maintenance.keeper.decisions import chunked as batched
from margin_maintenance.model.constants import MAX_STATUS

AccountRow = AccountStatus  # one row of margin_status (the shared definition)


@dataclass(frozen=True)
class PoolRow:
    pool_assets: int
    insurance_fund: int
    free_liquidity: int
    total_debt: int
    token_balance: int
    lp_supply: int


@dataclass(frozen=True)
class StatusSummary:
    accounts: int
    with_positions: int
    liquidatable: int
    underwater: int  # equity < 0
    total_equity: int
    total_maintenance: int


def unique(addresses: Iterable[str]) -> list[str]:
    """Addresses without repeats (case-insensitive), first spelling and order kept."""
    seen: dict[str, str] = {}
    for a in addresses:
        seen.setdefault(str(a).lower(), str(a))
    return list(seen.values())


def read_margin_status(
    ch: Any, accounts: Sequence[str], batch: int = MAX_STATUS
) -> list[AccountRow]:
    """`margin_status` over `accounts`, `batch` at a time (at most 512)."""
    rows: list[AccountRow] = []
    for chunk in batched(list(accounts), min(batch, MAX_STATUS)):
        for s in ch.margin_status(chunk):
            rows.append(
                AccountRow(
                    str(s.account),
                    int(s.equity),
                    int(s.maintenance),
                    int(s.initial),
                    bool(s.liquidatable),
                )
            )
    return rows


def rank_by_risk(rows: Iterable[AccountRow]) -> list[AccountRow]:
    """Liquidatable first, then by margin ratio ascending; accounts without positions last."""
    return sorted(rows, key=lambda r: (not r.liquidatable, r.margin_ratio, r.account))


def summarize(rows: Sequence[AccountRow]) -> StatusSummary:
    return StatusSummary(
        accounts=len(rows),
        with_positions=sum(1 for r in rows if r.has_position),
        liquidatable=sum(1 for r in rows if r.liquidatable),
        underwater=sum(1 for r in rows if r.equity < 0),
        total_equity=sum(r.equity for r in rows),
        total_maintenance=sum(r.maintenance for r in rows),
    )


def read_pool(ch: Any, token: Any, vault: Any) -> PoolRow:
    return PoolRow(
        pool_assets=int(ch.pool_assets()),
        insurance_fund=int(ch.insurance_fund()),
        free_liquidity=int(vault.free_liquidity()),
        total_debt=int(ch.total_debt()),
        token_balance=int(token.balanceOf(ch.address)),
        lp_supply=int(vault.totalSupply()),
    )


def short_address(address: str) -> str:
    """`0x1234..abcd`: enough to tell accounts apart in a table that fits 100 columns."""
    return f"{address[:6]}..{address[-4:]}"


def fmt_units(amount: int, decimals: int) -> str:
    """Token units as whole tokens with two decimals and thousands separators."""
    return f"{amount / 10**decimals:,.2f}"


__all__ = [
    "MAX_STATUS",
    "AccountRow",
    "PoolRow",
    "StatusSummary",
    "batched",
    "fmt_units",
    "rank_by_risk",
    "read_margin_status",
    "read_pool",
    "short_address",
    "summarize",
    "unique",
]
