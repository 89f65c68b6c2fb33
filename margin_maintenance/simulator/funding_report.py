"""Funding against no funding (pure): the same crash windows, the chain clock following each
file's timestamps in both runs, at the sweep's base point; per window the funding each side
paid or received and what funding changed in bad debt and socialised loss."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .results import ScenarioResult, usd


@dataclass(frozen=True)
class FundingRow:
    crash: str
    label: str
    hours: float  # the window's length
    longs: int  # the driven market's longs' funding, token units (+ received)
    shorts: int
    rate_end: float  # of the price per day
    bad_debt: tuple[int, int]  # (without funding, with it)
    socialised: tuple[int, int]
    liquidations: tuple[int, int]
    lp_pnl: tuple[int, int]

    @property
    def pool(self) -> int:
        """What the pool took the other side of: minus what the traders received."""
        return -(self.longs + self.shorts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "crash": self.crash,
            "label": self.label,
            "hours": self.hours,
            "funding_longs": self.longs,
            "funding_shorts": self.shorts,
            "funding_pool": self.pool,
            "funding_rate_end": self.rate_end,
            "bad_debt": list(self.bad_debt),
            "socialised": list(self.socialised),
            "liquidations": list(self.liquidations),
            "lp_pnl": list(self.lp_pnl),
        }


def pair_rows(
    off: Sequence[ScenarioResult], on: Sequence[ScenarioResult], hours: dict[str, float]
) -> list[FundingRow]:
    """One row per window present in both runs, in the funding run's order."""
    without = {r.crash: r for r in off}
    rows = []
    for r in on:
        o = without.get(r.crash)
        if o is None:
            continue
        rows.append(
            FundingRow(
                crash=r.crash,
                label=r.label,
                hours=hours.get(r.crash, 0.0),
                longs=r.funding_longs,
                shorts=r.funding_shorts,
                rate_end=r.funding_rate_end,
                bad_debt=(o.bad_debt, r.bad_debt),
                socialised=(o.socialised, r.socialised),
                liquidations=(o.n_liquidations, r.n_liquidations),
                lp_pnl=(o.lp_pnl, r.lp_pnl),
            )
        )
    return rows


def _money(units: int) -> str:
    return f"{usd(units):,.0f}"


def _delta(pair: tuple[int, int]) -> str:
    d = usd(pair[1] - pair[0])
    return f"{d:+,.0f}" if d else "0"


def render_markdown(rows: Sequence[FundingRow], header: str) -> str:
    lines = [
        header,
        "",
        "| window | hours | longs' funding | shorts' funding | pool's side | rate at end "
        "(%/day) | bad debt without / with | change | socialised without / with | change "
        "| liquidations without / with |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.label} | {r.hours:,.0f} | {_money(r.longs)} | {_money(r.shorts)} | "
            f"{_money(r.pool)} | {r.rate_end * 100:.3f} | {_money(r.bad_debt[0])} / "
            f"{_money(r.bad_debt[1])} | {_delta(r.bad_debt)} | {_money(r.socialised[0])} / "
            f"{_money(r.socialised[1])} | {_delta(r.socialised)} | {r.liquidations[0]} / "
            f"{r.liquidations[1]} |"
        )
    tot = [sum(getattr(r, f)[i] for r in rows) for f in ("bad_debt", "socialised") for i in (0, 1)]
    lines.append(
        f"| **all windows** | | {_money(sum(r.longs for r in rows))} | "
        f"{_money(sum(r.shorts for r in rows))} | {_money(sum(r.pool for r in rows))} | | "
        f"{_money(tot[0])} / {_money(tot[1])} | {_delta((tot[0], tot[1]))} | "
        f"{_money(tot[2])} / {_money(tot[3])} | {_delta((tot[2], tot[3]))} | |"
    )
    return "\n".join(lines) + "\n"
