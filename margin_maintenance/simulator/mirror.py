"""A one-position account mirror for screening (pure, exact): which accounts are near maintenance
at a price, so the run reads the chain only there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from margin_maintenance.model import bps_up, notional_up, pnl

from .settings import BPS, WAD

# ---- Margin mirror (pure, exact) ----


@dataclass
class MirrorAccount:
    """One trader as the engine sees it: collateral and a single position."""

    address: str
    market: int  # market id
    size: int  # signed WAD base units
    entry: int  # WAD price
    collateral: int  # token units

    @property
    def open(self) -> bool:
        return self.size != 0


def equity(a: MirrorAccount, price_wad: int, token_scale: int) -> int:
    return a.collateral + (pnl(a.size, a.entry, price_wad, token_scale) if a.size else 0)


def maintenance(
    a: MirrorAccount, price_wad: int, mm_bps: int, token_scale: int, reserve: int = 0
) -> int:
    """The maintenance requirement with the keeper reward `reserve` it holds (the engine's
    `AccountState.reserve`: the minimum reward while gas pricing is off)."""
    if not a.open:
        return 0
    return bps_up(notional_up(abs(a.size), price_wad, token_scale), mm_bps) + reserve


def is_liquidatable(
    a: MirrorAccount, price_wad: int, mm_bps: int, token_scale: int, reserve: int = 0
) -> bool:
    """The engine's `is_liquidatable` for a one-position account."""
    return a.open and equity(a, price_wad, token_scale) < maintenance(
        a, price_wad, mm_bps, token_scale, reserve
    )


def trigger_price_wad(a: MirrorAccount, mm_bps: int, token_scale: int, reserve: int = 0) -> float:
    """The price at which equity meets maintenance (ignoring unit rounding): below it a long
    is liquidatable, above it a short. Negative for a long that can never be (c > notional).
    The reserve counts as collateral the account does not have."""
    d = WAD * token_scale
    r = mm_bps / BPS
    c = a.collateral - reserve
    if a.size > 0:
        return (a.size * a.entry - c * d) / (a.size * (1 - r))
    if a.size < 0:
        s = -a.size
        return (c * d + s * a.entry) / (s * (1 + r))
    return math.nan


def near_maintenance(
    a: MirrorAccount,
    price_wad: int,
    mm_bps: int,
    token_scale: int,
    buffer: float,
    reserve: int = 0,
) -> bool:
    """True when `price_wad` is within `buffer` (a fraction of the price) of the account's
    trigger, or past it: the keeper should read this account now."""
    if not a.open:
        return False
    trigger = trigger_price_wad(a, mm_bps, token_scale, reserve)
    if a.size > 0:
        return price_wad <= trigger * (1 + buffer)
    return price_wad >= trigger * (1 - buffer)


def apply_events(a: MirrorAccount, events: Iterable[Mapping[str, Any]]) -> None:
    """Move the mirror with the account's own events (the ledger rules of audit.py): a
    PositionChanged sets size and entry (the engine re-marks a touched position at the
    execution price) and moves collateral by realised PnL less fee; a liquidation takes its
    fee; bad debt settlement credits what insurance and pool covered."""
    me = a.address.lower()
    for e in events:
        name = e["event"]
        if str(e.get("account", "")).lower() != me:
            continue
        if name == "PositionChanged":
            a.collateral += int(e["realized_pnl"]) - int(e["fee"])
            a.size = int(e["new_size"])
            a.entry = int(e["price"]) if a.size else 0
        elif name == "Liquidated":
            a.collateral -= int(e["fee"])
        elif name == "BadDebtSettled":
            a.collateral += int(e["insurance_covered"]) + int(e["socialised"])
