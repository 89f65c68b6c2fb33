"""Per-window figures from the event ledger: liquidations, insurance, bad debt, the LP pool
(realised, unrealised, mark-to-market), and the run report they make up.

Part of `margin_maintenance.report` (see its docstring).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from margin_maintenance.audit import Ledger, apply_event
from margin_maintenance.model import PoolState

from .windows import CrashClock, PriceMove, PriceUpdate, Segment, driven_updates, price_move

MAX_LP_SAMPLES = 300  # blocks per window at which the LP share price and open PnL are read


# ---- Balance paths ----


@dataclass(frozen=True)
class Snapshot:
    """Balances rebuilt from events, as of the end of `block`."""

    block: int
    insurance_fund: int
    pool_assets: int
    bad_debt: int  # cumulative BadDebtSettled.bad_debt
    socialised: int  # cumulative BadDebtSettled.socialised
    account_debt: int = 0  # sum of negative collateral (the engine's total_debt)
    lp_net_deposits: int = 0  # cumulative LiquidityAdded - LiquidityRemoved assets
    lp_shares: int = 0  # LP shares outstanding

    @property
    def lp_realised(self) -> int:
        """Pool assets not paid in by LPs: cumulative realised LP PnL."""
        return self.pool_assets - self.lp_net_deposits


def ledger_path(events: Iterable[Mapping[str, Any]]) -> list[Snapshot]:
    """A snapshot after every block holding an event, with the audit's ledger rules (so the
    path ends where the audit's rebuild does). Per block, not per event: within one
    liquidation BadDebtSettled is logged before the Liquidated that credits the fee, and an
    event-by-event path would dip below anything the chain ever held."""
    ledger = Ledger()
    path: list[Snapshot] = []
    net_deposits = 0
    evs = sorted(events, key=lambda e: (e["block_number"], e["log_index"]))
    for i, e in enumerate(evs):
        apply_event(ledger, e)
        if e["event"] == "LiquidityAdded":
            net_deposits += int(e["assets"])
        elif e["event"] == "LiquidityRemoved":
            net_deposits -= int(e["assets"])
        if i + 1 == len(evs) or evs[i + 1]["block_number"] != e["block_number"]:
            path.append(
                Snapshot(
                    int(e["block_number"]),
                    ledger.insurance_fund,
                    ledger.pool_assets,
                    ledger.bad_debt_total,
                    ledger.socialised_total,
                    ledger.total_debt,
                    net_deposits,
                    ledger.lp_shares,
                )
            )
    return path


def at_block(path: Sequence[Snapshot], block: int) -> Snapshot:
    """The snapshot in force at the end of `block` (all zero before the first)."""
    i = bisect.bisect_right([s.block for s in path], block) - 1
    return path[i] if i >= 0 else Snapshot(block, 0, 0, 0, 0)


@dataclass(frozen=True)
class LPSample:
    """What the chain says about the LP pool at the end of one block (None: not read)."""

    share_price: int | None  # convert_to_assets(one whole share), token units
    open_profit: int | None = None  # traders' open profit, market side by side (pool_state)
    open_loss: int | None = None  # their open losses as far as their collateral pays them
    claims: int = 0  # realised profit the pool owes and has not paid yet

    @classmethod
    def from_pool(cls, share_price: int | None, ps: PoolState) -> LPSample:
        """A sample from the engine's `pool_state()`: the terms the vault's net value counts
        besides the pool assets."""
        collectable = min(ps.trader_loss, ps.trader_collateral)
        return cls(share_price, ps.trader_profit, collectable, ps.claims)

    @property
    def open_value(self) -> int | None:
        """What the share price counts beyond pool assets and debt: collectable open losses
        less open profit and claims (None: not read)."""
        if self.open_profit is None or self.open_loss is None:
            return None
        return self.open_loss - self.open_profit - self.claims


# ---- Figures ----


@dataclass
class Figures:
    """One report column."""

    segment: Segment
    liquidations: int = 0
    partial: int = 0
    full: int = 0
    accounts_liquidated: int = 0
    liquidators: int = 0
    closed_notional: int = 0
    liquidation_fees: int = 0  # Liquidated.fee: taken from the accounts
    keeper_rewards: int = 0
    insurance_topup: int = 0  # rewards paid beyond the fee: sum of -insurance_delta < 0
    insurance_funded: int = 0  # InsuranceFunded
    insurance_start: int = 0
    insurance_end: int = 0
    insurance_min: int = 0
    bad_debt: int = 0
    bad_debt_events: int = 0
    covered_by_insurance: int = 0
    socialised: int = 0  # taken from the LP pool
    uncovered: int = 0  # left as account debt
    pool_start: int = 0
    pool_end: int = 0
    lp_net_deposits: int = 0  # LiquidityAdded - LiquidityRemoved assets
    share_price_start: int | None = None  # assets per whole LP share (convert_to_assets)
    share_price_end: int | None = None
    open_profit_start: int | None = None  # traders' open profit owed by the pool (LPSample)
    open_profit_end: int | None = None
    open_loss_start: int | None = None  # traders' collectable open losses (LPSample)
    open_loss_end: int | None = None
    claims_start: int = 0  # profit claims owed by the pool (LPSample)
    claims_end: int = 0
    account_debt_start: int = 0  # negative collateral (total_debt), at the share-price blocks
    account_debt_end: int = 0
    haircuts: int = 0  # ProfitHaircut: owed - paid
    trader_realized_pnl: int = 0  # PositionChanged.realized_pnl, trades and liquidations
    liquidation_realized_pnl: int = 0  # the part realised by liquidations
    trading_fees: int = 0  # PositionChanged.fee
    trades: int = 0  # PositionChanged by trade() (liquidation closes excluded)
    price: PriceMove | None = None

    @property
    def lp_pnl(self) -> int:
        """Pool value change not due to LP deposits or withdrawals (realised: trading fees,
        traders' realised losses less profits, socialised bad debt)."""
        return self.pool_end - self.pool_start - self.lp_net_deposits

    @property
    def lp_unrealised(self) -> int | None:
        """What the share price counts beyond `lp_pnl`: the change in the traders' collectable
        open losses, less the changes in their open profit, in profit claims and in account
        debt (None: open PnL not read)."""
        p0, p1 = self.open_profit_start, self.open_profit_end
        l0, l1 = self.open_loss_start, self.open_loss_end
        if p0 is None or p1 is None or l0 is None or l1 is None:
            return None
        return (
            (l1 - l0)
            - (p1 - p0)
            - (self.claims_end - self.claims_start)
            - (self.account_debt_end - self.account_debt_start)
        )

    @property
    def lp_mark_to_market(self) -> int | None:
        """Realised + unrealised: the change of the LPs' redemption value less deposits."""
        u = self.lp_unrealised
        return None if u is None else self.lp_pnl + u

    @property
    def traders_net_loss(self) -> int:
        """Traders' realised losses less their profits: what the pool took from them."""
        return -self.trader_realized_pnl

    @property
    def share_price_change(self) -> float | None:
        if not self.share_price_start or self.share_price_end is None:
            return None
        return self.share_price_end / self.share_price_start - 1


def liquidation_closes(events: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int], list[dict]]:
    """For every Liquidated event, keyed by (tx, log_index), the PositionChanged events of the
    same account logged before it in the same transaction (the legs it closed)."""
    pending: dict[tuple[str, str], list[dict]] = {}
    out: dict[tuple[str, int], list[dict]] = {}
    for e in sorted(events, key=lambda e: (e["block_number"], e["log_index"])):
        key = (str(e.get("tx")), str(e.get("account")))
        if e["event"] == "PositionChanged":
            pending.setdefault(key, []).append(dict(e))
        elif e["event"] == "Liquidated":
            out[(str(e.get("tx")), int(e["log_index"]))] = pending.pop(key, [])
    return out


def _liquidation_legs(events: Sequence[Mapping[str, Any]]) -> set[tuple[str, int]]:
    """(tx, log_index) of every PositionChanged that a liquidation logged."""
    return {
        (str(p.get("tx")), int(p["log_index"]))
        for legs in liquidation_closes(events).values()
        for p in legs
    }


def share_price_blocks(seg: Segment, events: Sequence[Mapping[str, Any]]) -> tuple[int | None, int]:
    """Blocks to read the LP share price at for `seg`: the end of the block before it, or,
    when no LP share existed then, the end of the block of the first LP deposit inside it
    (None: no deposit up to the segment end); and the segment's last block."""
    adds = [int(e["block_number"]) for e in events if e["event"] == "LiquidityAdded"]
    if any(b < seg.start_block for b in adds):
        return seg.start_block - 1, seg.end_block
    inside = [b for b in adds if seg.holds(b)]
    return (min(inside) if inside else None), seg.end_block


def compute_figures(
    seg: Segment,
    events: Sequence[Mapping[str, Any]],
    path: Sequence[Snapshot] | None = None,
    share_prices: Mapping[int, int | None] | None = None,
    updates: Sequence[PriceUpdate] = (),
    lp_samples: Mapping[int, LPSample] | None = None,
) -> Figures:
    """The figures of one segment from all events of the run (`path`: `ledger_path(events)`;
    `share_prices`: block -> assets per whole LP share at the end of that block; `lp_samples`:
    block -> `LPSample`, which also gives share prices when `share_prices` is None)."""
    path = ledger_path(events) if path is None else path
    if share_prices is None and lp_samples is not None:
        share_prices = {b: s.share_price for b, s in lp_samples.items()}
    f = Figures(seg)
    liq_legs = _liquidation_legs(events)
    accounts: set[str] = set()
    keepers: set[str] = set()
    for e in events:
        if not seg.holds(int(e["block_number"])):
            continue
        name = e["event"]
        if name == "Liquidated":
            f.liquidations += 1
            if e["full"]:
                f.full += 1
            else:
                f.partial += 1
            accounts.add(str(e["account"]).lower())
            keepers.add(str(e["liquidator"]).lower())
            f.closed_notional += int(e["closed_notional"])
            f.liquidation_fees += int(e["fee"])
            f.keeper_rewards += int(e["keeper_reward"])
            f.insurance_topup += max(-int(e["insurance_delta"]), 0)
        elif name == "BadDebtSettled":
            f.bad_debt_events += 1
            f.bad_debt += int(e["bad_debt"])
            f.covered_by_insurance += int(e["insurance_covered"])
            f.socialised += int(e["socialised"])
            f.uncovered += int(e["uncovered"])
        elif name == "InsuranceFunded":
            f.insurance_funded += int(e["amount"])
        elif name == "LiquidityAdded":
            f.lp_net_deposits += int(e["assets"])
        elif name == "LiquidityRemoved":
            f.lp_net_deposits -= int(e["assets"])
        elif name == "ProfitHaircut":
            f.haircuts += int(e["owed"]) - int(e["paid"])
        elif name == "PositionChanged":
            f.trader_realized_pnl += int(e["realized_pnl"])
            f.trading_fees += int(e["fee"])
            if (str(e.get("tx")), int(e["log_index"])) in liq_legs:
                f.liquidation_realized_pnl += int(e["realized_pnl"])
            else:
                f.trades += 1
    f.accounts_liquidated = len(accounts)
    f.liquidators = len(keepers)

    before = at_block(path, seg.start_block - 1)
    after = at_block(path, seg.end_block)
    f.insurance_start, f.insurance_end = before.insurance_fund, after.insurance_fund
    # The minimum since the fund was first funded (a run's start at zero is no low point).
    funded = next((s.block for s in path if s.insurance_fund > 0), None)
    lows: list[int] = []
    if funded is not None:
        if funded < seg.start_block:
            lows.append(before.insurance_fund)
        lows += [s.insurance_fund for s in path if seg.holds(s.block) and s.block >= funded]
    f.insurance_min = min(lows, default=after.insurance_fund)
    f.pool_start, f.pool_end = before.pool_assets, after.pool_assets

    if share_prices is not None:
        start_at, end_at = share_price_blocks(seg, events)
        f.share_price_start = None if start_at is None else share_prices.get(start_at)
        f.share_price_end = share_prices.get(end_at)
        if lp_samples is not None and start_at is not None:
            s0, s1 = lp_samples.get(start_at), lp_samples.get(end_at)
            if s0 is not None and s1 is not None:
                f.open_profit_start, f.open_profit_end = s0.open_profit, s1.open_profit
                f.open_loss_start, f.open_loss_end = s0.open_loss, s1.open_loss
                f.claims_start, f.claims_end = s0.claims, s1.claims
                f.account_debt_start = at_block(path, start_at).account_debt
                f.account_debt_end = at_block(path, end_at).account_debt
    if seg.market is not None:
        f.price = price_move(updates, seg.market, seg)
    return f


# ---- The LP pool over a window ----


def thin(blocks: Sequence[int], cap: int) -> list[int]:
    """At most `cap` of `blocks` (sorted), evenly spread, the first and last kept."""
    if len(blocks) <= cap:
        return list(blocks)
    if cap < 2:
        return list(blocks[-cap:]) if cap > 0 else []
    keep = sorted({round(i * (len(blocks) - 1) / (cap - 1)) for i in range(cap)})
    return [blocks[i] for i in keep]


LP_EVENTS = ("PositionChanged", "BadDebtSettled", "LiquidityAdded", "LiquidityRemoved")


def lp_blocks(
    seg: Segment,
    events: Sequence[Mapping[str, Any]],
    updates: Sequence[PriceUpdate],
    cap: int = MAX_LP_SAMPLES,
) -> list[int]:
    """Blocks to read an `LPSample` at for a window's LP path: the end of the block before it,
    then every block in it where a price moved or an event moved the pool, open PnL or debt,
    and its last block (evenly thinned to `cap` in all)."""
    moved = {u.block_number for u in driven_updates(updates) if seg.holds(u.block_number)}
    moved |= {
        int(e["block_number"])
        for e in events
        if e["event"] in LP_EVENTS and seg.holds(int(e["block_number"]))
    }
    inside = thin(sorted(moved | {seg.end_block}), max(cap - 1, 1))
    return [seg.start_block - 1, *inside]


@dataclass(frozen=True)
class LPPoint:
    """The LP pool at the end of `block`, PnL counted from the start of a window."""

    block: int
    realised: int  # pool change less LP deposits
    unrealised: int  # change in open value (losses - profit - claims) less change in debt
    share_price: int | None  # convert_to_assets(one whole share)
    open_profit: int  # traders' open profit owed by the pool now
    open_loss: int  # traders' collectable open losses now

    @property
    def total(self) -> int:
        return self.realised + self.unrealised


def lp_path(
    seg: Segment, samples: Mapping[int, LPSample], path: Sequence[Snapshot]
) -> list[LPPoint]:
    """The LP pool at every sampled block of `seg` whose open PnL was read, relative to the end
    of the block before it ([] when that block was not read)."""
    base = seg.start_block - 1
    s0 = samples.get(base)
    v0 = None if s0 is None else s0.open_value
    if v0 is None:
        return []
    b0 = at_block(path, base)
    out = []
    for b in sorted(samples):
        s = samples[b]
        v = s.open_value
        if b < base or b > seg.end_block or v is None:
            continue
        snap = at_block(path, b)
        out.append(
            LPPoint(
                block=b,
                realised=snap.lp_realised - b0.lp_realised,
                unrealised=v - v0 - (snap.account_debt - b0.account_debt),
                share_price=s.share_price,
                open_profit=s.open_profit or 0,
                open_loss=s.open_loss or 0,
            )
        )
    return out


@dataclass
class RunReport:
    """Everything `ape run report` prints and writes."""

    start_block: int
    end_block: int
    segments: list[Segment]
    figures: list[Figures]
    events: list[dict[str, Any]]
    updates: list[PriceUpdate]
    price_decimals: dict[str, int]
    path: list[Snapshot]
    block_times: dict[int, int]
    symbols: dict[int, str]  # market id -> symbol
    clocks: list[CrashClock | None] = field(default_factory=list)  # per window, in order
    lp_samples: dict[int, LPSample] = field(default_factory=dict)
    decimals: int = 6  # the collateral token's
    unit: str = "USDC"  # the collateral token's symbol

    @property
    def windows(self) -> list[Segment]:
        return [s for s in self.segments if s.market is not None]
