"""Rebuild every balance of the clearinghouse from its events alone, and compare with the chain.

The rules live in `margin_maintenance.model.ledger` (one table there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from margin_maintenance.events import CLIENT_EVENTS, accounts_in, fetch_events
from margin_maintenance.model.ledger import Ledger, apply_event

# The conservation check: "rebuilt" is the chain's own collateral + pool + insurance.
BALANCE_ITEM = "token.balanceOf(clearinghouse) == collateral + pool_assets + insurance_fund"


def rebuild(events: Iterable[Mapping[str, Any]]) -> Ledger:
    """The ledger after `events`, applied in chain order when they carry `block_number` and
    `log_index` (else in the order given)."""
    evs = list(events)
    if evs and all("block_number" in e and "log_index" in e for e in evs):
        evs.sort(key=lambda e: (e["block_number"], e["log_index"]))
    ledger = Ledger()
    for e in evs:
        apply_event(ledger, e)
    return ledger


@dataclass(frozen=True)
class OnChainState:
    """What the chain says, for the items the ledger can be checked against."""

    collateral: dict[str, int]
    pool_assets: int
    insurance_fund: int
    total_debt: int
    token_balance: int
    lp_supply: int | None = None
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    open_interest: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Difference:
    item: str
    rebuilt: int
    onchain: int

    @property
    def delta(self) -> int:
        return self.onchain - self.rebuilt


def compare(ledger: Ledger, state: OnChainState) -> list[Difference]:
    """Every item where the events and the chain disagree (empty = the audit passes)."""
    diffs: list[Difference] = []

    def check(item: str, rebuilt: int, onchain: int) -> None:
        if rebuilt != onchain:
            diffs.append(Difference(item, rebuilt, onchain))

    for account in sorted(set(ledger.collateral) | set(state.collateral)):
        check(
            f"collateral[{account}]",
            ledger.collateral.get(account, 0),
            state.collateral.get(account, 0),
        )
    check("pool_assets", ledger.pool_assets, state.pool_assets)
    check("insurance_fund", ledger.insurance_fund, state.insurance_fund)
    check("total_debt", ledger.total_debt, state.total_debt)
    if state.lp_supply is not None:
        check("lp_token.totalSupply", ledger.lp_shares, state.lp_supply)
    for key in sorted(state.positions):
        check(f"position[{key[0]}][{key[1]}]", ledger.positions.get(key, 0), state.positions[key])
    rebuilt_oi = ledger.open_interest()
    for market in sorted(state.open_interest):
        long_, short = rebuilt_oi.get(market, (0, 0))
        check(f"open_interest_long[{market}]", long_, state.open_interest[market][0])
        check(f"open_interest_short[{market}]", short, state.open_interest[market][1])
    ledgers = sum(state.collateral.values()) + state.pool_assets + state.insurance_fund
    check(BALANCE_ITEM, ledgers, state.token_balance)
    return diffs


# ---- I/O ----


@dataclass(frozen=True)
class AuditReport:
    block: int
    events: int
    ledger: Ledger
    state: OnChainState
    differences: list[Difference]

    @property
    def ok(self) -> bool:
        return not self.differences


def reads_needed(ledger: Ledger, check_positions: bool = True) -> int:
    """Per-account calls `read_state` makes for this ledger."""
    return len(ledger.collateral) + (len(ledger.positions) if check_positions else 0)


def read_state(
    ch: Any,
    token: Any,
    lp_token: Any | None,
    ledger: Ledger,
    market_ids: Iterable[int],
    block: int,
    check_positions: bool = True,
    progress: Callable[[int], None] | None = None,
) -> OnChainState:
    """On-chain values at `block` for every account and position the ledger knows (one call
    each; `progress(n)` after every n reads, for a progress bar)."""
    at = {"block_id": block}
    tick = progress or (lambda _n: None)
    collateral: dict[str, int] = {}
    for a in ledger.collateral:
        collateral[a] = int(ch.collateral(a, **at))
        tick(1)
    positions: dict[tuple[str, int], int] = {}
    if check_positions:
        for account, market in ledger.positions:
            positions[(account, market)] = int(ch.position(account, market, **at)[0])
            tick(1)
    oi: dict[int, tuple[int, int]] = {}
    for m in market_ids:
        info = ch.market(m, **at)
        oi[int(m)] = (int(info.open_interest_long), int(info.open_interest_short))
    return OnChainState(
        collateral=collateral,
        pool_assets=int(ch.pool_assets(**at)),
        insurance_fund=int(ch.insurance_fund(**at)),
        total_debt=int(ch.total_debt(**at)),
        token_balance=int(token.balanceOf(ch.address, **at)),
        lp_supply=None if lp_token is None else int(lp_token.totalSupply(**at)),
        positions=positions,
        open_interest=oi,
    )


def run_audit(
    ch: Any,
    token: Any,
    lp_token: Any | None,
    market_ids: Iterable[int],
    start_block: int,
    block: int | None = None,
    check_positions: bool = True,
    on_rebuilt: Callable[[Ledger], Callable[[int], None] | None] | None = None,
) -> AuditReport:
    """Fetch events up to `block` (default: the head now), rebuild, read the chain at the same
    block, compare. Pinning one block keeps a running keeper from causing false alarms.
    `on_rebuilt(ledger)` may return a progress callback for the reads (see `reads_needed`)."""
    from ape import chain

    block = chain.blocks.height if block is None else block
    events = fetch_events(ch, CLIENT_EVENTS, start_block, block)
    ledger = rebuild(events)
    progress = on_rebuilt(ledger) if on_rebuilt is not None else None
    state = read_state(ch, token, lp_token, ledger, market_ids, block, check_positions, progress)
    return AuditReport(block, len(events), ledger, state, compare(ledger, state))


__all__ = [
    "BALANCE_ITEM",
    "AuditReport",
    "Difference",
    "Ledger",
    "OnChainState",
    "accounts_in",
    "apply_event",
    "compare",
    "read_state",
    "reads_needed",
    "rebuild",
    "run_audit",
]
