"""Results (pure): per-scenario figures, solvency thresholds, the whole run's summary."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from margin_maintenance.population import (
    Population,
)

from .config import SimConfig, SweepPoint
from .paths import CrashPath
from .settings import TOKEN_DECIMALS

# ---- Results (pure) ----


@dataclass(frozen=True)
class LiquidationRecord:
    """One `Liquidated` event and what came with it (token units unless named)."""

    step: int  # row the batch landed at
    observed: int  # row the keeper read the account at
    account: str
    market_id: int
    side: int  # +1 long, -1 short (of the position before the liquidation)
    fraction: int  # WAD
    full: bool
    closed_notional: int
    fee: int
    keeper_reward: int
    insurance_delta: int
    price_usd: float
    sold_usd: float  # signed: long notional closed is sold (+), short notional bought (-)
    bad_debt: int = 0
    insurance_covered: int = 0
    socialised: int = 0
    uncovered: int = 0
    haircut: int = 0  # profit owed but not paid (ProfitHaircut)
    generation: int = 0  # 0 = the market's move; g > 0 = needed the impact of generation g-1
    funding: int = 0  # funding the liquidation settled (FundingSettled), token units, + received


@dataclass
class ScenarioResult:
    crash: str  # file stem
    label: str
    point: SweepPoint
    axes: tuple[str, ...]
    rows: int
    oracle: str = "push"  # "push": judged at the push feed's answer; "pull": at signed prices
    onchain_steps: int = 0  # rows whose price was posted
    price: list[float] = field(default_factory=list)  # the market path (USD), impact included
    push_price: list[float] = field(default_factory=list)  # the push feed's answer (USD)
    push_transmissions: int = 0  # new answers the push feed sent
    signed_updates: int = 0  # signed prices the keeper brought on chain (pull)
    signed_refused: int = 0  # signed prices the verifier refused (too far from the push)
    raw_price: list[float] = field(default_factory=list)  # the rescaled file, no impact
    liquidations: list[LiquidationRecord] = field(default_factory=list)
    planned: int = 0  # accounts put in batches by the keeper
    healthy_at_landing: int = 0  # planned, but healthy again when the batch landed
    unprofitable: int = 0  # reads of a liquidatable account whose reward would not pay gas
    reverts: int = 0
    left_liquidatable: int = 0  # accounts still liquidatable after the last row
    underwater_left: int = 0  # their negative equity: bad debt nobody settled (yet)
    insurance_start: int = 0
    insurance_end: int = 0
    lp_value_start: int = 0  # pool assets less traders' unrealised PnL
    lp_value_end: int = 0
    verified: bool = False  # figures matched eth_getLogs
    blocks: tuple[int, int] = (0, 0)  # (first, last) block of the scenario; not reported
    # "": block time not following the file; "off" / "on": it does, without / with funding
    funding: str = ""
    funding_longs: int = 0  # the driven market's longs: funding settled + accrued, + received
    funding_shorts: int = 0  # its shorts, likewise
    funding_rate_end: float = 0.0  # its funding rate at the end, of the price per day

    # -- derived figures --

    @property
    def n_liquidations(self) -> int:
        return len(self.liquidations)

    @property
    def n_full(self) -> int:
        return sum(1 for r in self.liquidations if r.full)

    @property
    def accounts_liquidated(self) -> int:
        return len({r.account for r in self.liquidations})

    @property
    def closed_notional(self) -> int:
        return sum(r.closed_notional for r in self.liquidations)

    @property
    def keeper_rewards(self) -> int:
        return sum(r.keeper_reward for r in self.liquidations)

    @property
    def insurance_topups(self) -> int:
        return sum(-r.insurance_delta for r in self.liquidations if r.insurance_delta < 0)

    @property
    def bad_debt(self) -> int:
        return sum(r.bad_debt for r in self.liquidations)

    @property
    def insurance_covered(self) -> int:
        return sum(r.insurance_covered for r in self.liquidations)

    @property
    def socialised(self) -> int:
        return sum(r.socialised for r in self.liquidations)

    @property
    def uncovered(self) -> int:
        return sum(r.uncovered for r in self.liquidations)

    @property
    def haircut(self) -> int:
        return sum(r.haircut for r in self.liquidations)

    @property
    def lp_loss(self) -> int:
        """Loss past the insurance fund: socialised to LPs, left uncovered, or still sitting
        in an unliquidated account under water at the end. The solvency criterion."""
        return self.socialised + self.uncovered + self.underwater_left

    @property
    def cascade_depth(self) -> int:
        return max((r.generation for r in self.liquidations), default=0)

    @property
    def induced(self) -> int:
        return sum(1 for r in self.liquidations if r.generation > 0)

    @property
    def lp_pnl(self) -> int:
        return self.lp_value_end - self.lp_value_start

    @property
    def min_price_ratio(self) -> float:
        return min(self.price) / self.price[0] if self.price else 1.0

    def series(self) -> dict[str, list[float]]:
        """Per row, in USD: insurance fund, cumulative bad debt and socialised loss."""
        by_step: dict[int, list[LiquidationRecord]] = {}
        for r in self.liquidations:
            by_step.setdefault(r.step, []).append(r)
        ins, bad, soc = self.insurance_start, 0, 0
        out: dict[str, list[float]] = {"insurance": [], "bad_debt": [], "socialised": []}
        for t in range(self.rows):
            for r in by_step.get(t, ()):
                ins += r.insurance_delta - r.insurance_covered
                bad += r.bad_debt
                soc += r.socialised
            out["insurance"].append(usd(ins))
            out["bad_debt"].append(usd(bad))
            out["socialised"].append(usd(soc))
        return out

    def summary(self) -> dict[str, Any]:
        """The reported figures (token units, exact)."""
        return {
            "crash": self.crash,
            "point": asdict(self.point),
            "axes": list(self.axes),
            "rows": self.rows,
            "oracle": self.oracle,
            "onchain_steps": self.onchain_steps,
            "push_transmissions": self.push_transmissions,
            "signed_updates": self.signed_updates,
            "signed_refused": self.signed_refused,
            "liquidations": self.n_liquidations,
            "full": self.n_full,
            "accounts_liquidated": self.accounts_liquidated,
            "planned": self.planned,
            "healthy_at_landing": self.healthy_at_landing,
            "unprofitable": self.unprofitable,
            "reverts": self.reverts,
            "left_liquidatable": self.left_liquidatable,
            "underwater_left": self.underwater_left,
            "closed_notional": self.closed_notional,
            "keeper_rewards": self.keeper_rewards,
            "insurance_topups": self.insurance_topups,
            "insurance_start": self.insurance_start,
            "insurance_end": self.insurance_end,
            "bad_debt": self.bad_debt,
            "insurance_covered": self.insurance_covered,
            "socialised": self.socialised,
            "uncovered": self.uncovered,
            "haircut": self.haircut,
            "lp_pnl": self.lp_pnl,
            "cascade_depth": self.cascade_depth,
            "induced": self.induced,
            "min_price_ratio": round(self.min_price_ratio, 6),
            "verified": self.verified,
        }

    def funding_summary(self) -> dict[str, Any]:
        """The funding figures of a clocked run (empty for the others)."""
        if not self.funding:
            return {}
        return {
            "funding": self.funding,
            "funding_longs": self.funding_longs,
            "funding_shorts": self.funding_shorts,
            "funding_pool": -(self.funding_longs + self.funding_shorts),
            "funding_rate_end": self.funding_rate_end,
        }

    def to_dict(self) -> dict[str, Any]:
        d = self.summary() | self.funding_summary()
        d["liquidation_events"] = [asdict(r) for r in self.liquidations]
        return d


def usd(token_units: int) -> float:
    return token_units / 10**TOKEN_DECIMALS


def generation_of(induced: bool, earlier: Iterable[int]) -> int:
    """A liquidation the market's own move explains is generation 0; one that needed the
    price impact of earlier liquidations is one more than the deepest of them."""
    if not induced:
        return 0
    return 1 + max(earlier, default=0)


# ---- Thresholds (pure) ----


@dataclass(frozen=True)
class Threshold:
    """The smallest swept value from which every larger value had zero socialised loss."""

    axis: str
    value: float | None  # None: none in the sweep (or the axis was not swept)
    zero_loss: tuple[float, ...]  # every swept value with zero loss
    non_monotone: bool  # a smaller value had zero loss too, with a loss in between
    swept: bool = True

    def text(self, fmt: Callable[[float], str]) -> str:
        if not self.swept:
            return "not swept"
        if self.value is None:
            return "none in sweep" + (" (*)" if self.non_monotone else "")
        return fmt(self.value) + (" (*)" if self.non_monotone else "")


def solvency_threshold(axis: str, losses: Iterable[tuple[float, int]]) -> Threshold:
    """`losses`: (swept value, loss) pairs of one crash along one axis. The threshold is the
    smallest value from which every larger swept value had zero loss."""
    pairs = sorted(losses)
    zero = tuple(v for v, loss in pairs if loss == 0)
    value: float | None = None
    for v, loss in reversed(pairs):
        if loss != 0:
            break
        value = v
    non_monotone = bool(zero) and (value is None or zero[0] < value)
    return Threshold(axis, value, zero, non_monotone, swept=bool(pairs))


def implied_insurance(result: ScenarioResult) -> int:
    """Smallest starting insurance fund with no socialised loss, from one run's event trail
    (the path does not depend on the fund, except that top-ups of the minimum keeper reward
    stop when the fund is empty): the fund plus every socialised and uncovered amount when
    there were any, else the fund less its lowest level after covering bad debt."""
    short = result.lp_loss
    if short > 0:
        return result.insurance_start + short
    if result.bad_debt == 0:
        return 0
    fund, lowest = result.insurance_start, result.insurance_start
    for r in result.liquidations:
        fund += r.insurance_delta - r.insurance_covered
        if r.bad_debt:
            lowest = min(lowest, fund)
    return max(0, result.insurance_start - lowest)


@dataclass
class CrashSummary:
    path: CrashPath
    base: ScenarioResult
    thresholds: dict[str, Threshold]
    implied_insurance: int


@dataclass
class SimulationResults:
    config: SimConfig
    population: Population
    crashes: list[CrashPath]
    scenarios: list[ScenarioResult]

    @property
    def swept(self) -> list[ScenarioResult]:
        """The sweep's scenarios (on the configuration's oracle; the others are beside it)."""
        return [s for s in self.scenarios if s.oracle == self.config.oracle.mode]

    def for_crash(self, name: str, oracle: str | None = None) -> list[ScenarioResult]:
        """The crash's scenarios on `oracle` (default: the sweep's)."""
        mode = oracle or self.config.oracle.mode
        return [s for s in self.scenarios if s.crash == name and s.oracle == mode]

    def compared(self) -> list[tuple[CrashPath, ScenarioResult, ScenarioResult]]:
        """(crash, on the push feed, on signed prices) at every point run both ways."""
        out = []
        for path in self.crashes:
            pushed = {s.point: s for s in self.for_crash(path.name, "push")}
            for s in self.for_crash(path.name, "pull"):
                if s.point in pushed:
                    out.append((path, pushed[s.point], s))
        return out

    def summaries(self) -> list[CrashSummary]:
        base = self.config.sweep.base
        out = []
        for path in self.crashes:
            runs = self.for_crash(path.name)
            base_run = next(s for s in runs if s.point == base)
            thresholds = {
                axis: solvency_threshold(
                    axis, [(s.point.value(axis), s.lp_loss) for s in runs if axis in s.axes]
                )
                for axis in ("mm_bps", "insurance_usd")
            }
            out.append(CrashSummary(path, base_run, thresholds, implied_insurance(base_run)))
        return out

    def to_dict(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "seed": cfg.seed,
            "token_decimals": TOKEN_DECIMALS,  # every *_units figure is in these token units
            "config": _plain(asdict(cfg)),
            "crashes": [
                {
                    "name": p.name,
                    "label": p.label,
                    "symbol": p.symbol,
                    "skip": p.skip,
                    "rows": p.rows,
                    "drawdown": round(p.drawdown, 6),
                    "largest_drop": round(p.largest_drop, 6),
                }
                for p in self.crashes
            ],
            "thresholds": {
                c.path.name: {
                    "mm_bps": c.thresholds["mm_bps"].value,
                    "insurance_usd": c.thresholds["insurance_usd"].value,
                    "implied_insurance": c.implied_insurance,
                }
                for c in self.summaries()
            },
            "scenarios": [s.to_dict() for s in self.scenarios],
        }


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x
