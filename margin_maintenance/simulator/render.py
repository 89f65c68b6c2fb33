"""The report (pure): report.md's tables, findings and method notes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from margin_maintenance.population import (
    summarize,
)

from .results import CrashSummary, ScenarioResult, SimulationResults, usd
from .settings import AXES, AXIS_TITLES

# ---- Report rendering (pure) ----


def _money(token_units: int) -> str:
    return f"{usd(token_units):,.2f}"


def _usd0(x: float) -> str:
    return f"{x:,.0f}"


def _mm(x: float) -> str:
    return f"{x:.0f} bps"


def _ins(x: float) -> str:
    return f"{x:,.0f} USD"


def _row(cells: Iterable[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _swept(scenarios: Iterable[ScenarioResult], axis: str) -> dict[Any, list[ScenarioResult]]:
    """The scenarios that sweep `axis`, grouped by its value in ascending order; empty unless
    the axis took more than one value."""
    groups: dict[Any, list[ScenarioResult]] = {}
    for s in scenarios:
        if axis in s.axes:
            groups.setdefault(getattr(s.point, axis), []).append(s)
    return dict(sorted(groups.items())) if len(groups) > 1 else {}


def _axis_value(axis: str, v: float) -> str:
    if axis == "insurance_usd":
        return f"{v:,.0f}"
    return f"{v:.0f}"


def render_report(res: SimulationResults, plots: Mapping[str, str] | None = None) -> str:
    """The markdown report. Deterministic: no times, no addresses, no block numbers, so the
    same seed and configuration give the same bytes. `plots` maps a key ("sweep" or a crash
    name) to a PNG path relative to the report."""
    plots = plots or {}
    cfg = res.config
    pop = summarize(res.population)
    sweep = cfg.sweep
    base = sweep.base
    summaries = res.summaries()
    lines: list[str] = []
    add = lines.append
    add("# Crash simulation: margin-call cascades and solvency thresholds")
    add("")
    add(
        f"Seed {cfg.seed}. {pop.traders} traders ({pop.longs} long / {pop.shorts} short; "
        + ", ".join(f"{m} {n}" for m, n in pop.per_market.items())
        + f"), leverage {cfg.population.leverage_min:g}x-{cfg.population.leverage_max:g}x "
        f"(mean {pop.mean_leverage:.2f}x), collateral {_usd0(pop.total_collateral_usd)} USD, "
        f"notional {_usd0(pop.total_notional_usd)} USD; LP capital "
        f"{_usd0(pop.lp_capital_usd)} USD."
    )
    add("")
    add(
        f"Engine: initial margin {cfg.initial_margin_bps} bps (fixed), trading fee "
        f"{cfg.trading_fee_bps} bps, partial bound {cfg.max_partial_bps} bps, keeper share "
        f"{cfg.keeper_share_bps} bps of the fee, minimum keeper reward "
        f"{cfg.min_keeper_reward_usd:g} USD. Base point: {base.label}. One axis at a time: "
        + "; ".join(
            f"{AXIS_TITLES[a]} {', '.join(_axis_value(a, v) for v in sweep.values(a))}"
            for a in AXES
        )
        + "."
    )
    add("")
    imp = cfg.impact
    add(
        "Price impact: "
        + (
            f"k = {imp.k:g}, depth {_usd0(imp.depth_usd)} USD (price *= 1 - k * net liquidated "
            "notional / depth after each row, permanently)."
            if imp.on
            else "off (k = 0)."
        )
        + (
            " Prices posted only at rows where an account is within "
            f"{cfg.screen_buffer:.1%} of maintenance (nothing else can change state)."
            if cfg.screen
            else " Every row posted, every account read at every row."
        )
    )
    add("")
    add(
        "Oracle: "
        + (
            f"signed prices ({cfg.oracle.label}): the keeper brings every row's price, "
            "signed 3 of 5, with its reads and batches, and accounts are judged at it; the "
            "base point and the latency axis also run on the push feed alone, compared below."
            if cfg.oracle.pull
            else f"the push feed ({cfg.oracle.label}): accounts are judged at its answer."
        )
    )
    add("")
    verified = all(s.verified for s in res.scenarios)
    add(
        f"{len(res.scenarios)} scenarios over {len(res.crashes)} crash windows; "
        + (
            "every scenario's liquidations, keeper rewards, bad debt and socialised loss "
            "matched the chain's own events (eth_getLogs)."
            if verified
            else "figures NOT checked against eth_getLogs."
        )
    )
    add("")
    if "sweep" in plots:
        add(f"![loss past the insurance fund across the sweep]({plots['sweep']})")
        add("")

    add("## Solvency thresholds")
    add("")
    add(
        "Smallest maintenance margin and smallest insurance fund with zero socialised loss "
        "(each swept with the other parameters at the base point, the smallest value from "
        "which every larger one had none; (*) marks a non-monotone sweep). Socialised loss "
        "here is bad debt past the insurance fund: `BadDebtSettled.socialised` (plus "
        "`uncovered`, and any under-water account the keeper left unliquidated at the end). "
        "The implied insurance is read from the base run's event trail: the starting fund "
        "plus everything socialised, or less its lowest level after covering bad debt."
    )
    add("")
    add(
        _row(
            [
                "crash",
                "rows",
                "max drawdown",
                "largest row drop",
                "mm threshold",
                "insurance threshold",
                "implied insurance (USD)",
                "base: bad debt",
                "base: socialised",
            ]
        )
    )
    add("|---|---:|---:|---:|---|---|---:|---:|---:|")
    for c in summaries:
        add(
            _row(
                [
                    c.path.label,
                    c.path.rows,
                    f"{c.path.drawdown:.1%}",
                    f"{c.path.largest_drop:.1%}",
                    c.thresholds["mm_bps"].text(_mm),
                    c.thresholds["insurance_usd"].text(_ins),
                    _money(c.implied_insurance),
                    _money(c.base.bad_debt),
                    _money(c.base.socialised),
                ]
            )
        )
    add("")

    compared = res.compared()
    if compared:
        add("## Push feed against signed prices")
        add("")
        add(
            "The same windows and points judged at the push feed's answer "
            f"({cfg.oracle.with_mode('push').label}) "
            "and at the row's signed price (brought by the keeper). Loss = bad debt past "
            "the insurance fund (socialised, uncovered, or left under water)."
        )
        add("")
        add(
            _row(
                [
                    "crash",
                    "point",
                    "push: liq",
                    "push: bad debt",
                    "push: loss",
                    "signed: liq",
                    "signed: bad debt",
                    "signed: loss",
                    "signed prices (refused)",
                ]
            )
        )
        add("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for path, a, b in compared:
            add(
                _row(
                    [
                        path.label,
                        a.point.label,
                        a.n_liquidations,
                        _money(a.bad_debt),
                        _money(a.lp_loss),
                        b.n_liquidations,
                        _money(b.bad_debt),
                        _money(b.lp_loss),
                        f"{b.signed_updates} ({b.signed_refused})",
                    ]
                )
            )
        by_point: dict[Any, list[tuple[int, int, int, int]]] = {}
        for _, a, b in compared:
            by_point.setdefault(a.point, []).append((a.bad_debt, b.bad_debt, a.lp_loss, b.lp_loss))
        add("")
        for point, rows in by_point.items():
            add(
                f"- {point.label}: bad debt summed over the windows "
                f"{_money(sum(r[0] for r in rows))} on the push feed, "
                f"{_money(sum(r[1] for r in rows))} on signed prices; loss past the fund "
                f"{_money(sum(r[2] for r in rows))} and {_money(sum(r[3] for r in rows))}."
            )
        add("")

    add("## Findings")
    add("")
    for line in findings(res, summaries):
        add(f"- {line}")
    add("")

    add("## Every scenario")
    add("")
    add(
        "Amounts in USD. liq = Liquidated events (full ones in brackets); rewards = keeper "
        "rewards; top-ups = minimum-reward top-ups paid by the fund; LP PnL = change of pool "
        "assets less traders' unrealised PnL; depth = cascade depth (liquidations caused by "
        "liquidations, generations); stale = planned but healthy when the batch landed; "
        "unsettled = accounts still liquidatable after the last row (their negative equity)."
    )
    add("")
    add(
        _row(
            [
                "crash",
                "axis",
                "point",
                "liq (full)",
                "closed notional",
                "rewards",
                "top-ups",
                "insurance end",
                "bad debt",
                "socialised",
                "uncovered",
                "unsettled",
                "LP PnL",
                "depth",
                "stale",
                "posted rows",
                "oracle",
            ]
        )
    )
    add("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for s in res.scenarios:
        add(
            _row(
                [
                    s.label,
                    ", ".join(a.split("_")[0] for a in s.axes) or "-",
                    s.point.label,
                    f"{s.n_liquidations} ({s.n_full})",
                    _money(s.closed_notional),
                    _money(s.keeper_rewards),
                    _money(s.insurance_topups),
                    _money(s.insurance_end),
                    _money(s.bad_debt),
                    _money(s.socialised),
                    _money(s.uncovered),
                    f"{s.left_liquidatable} ({_money(s.underwater_left)})",
                    _money(s.lp_pnl),
                    s.cascade_depth,
                    s.healthy_at_landing,
                    f"{s.onchain_steps}/{s.rows}",
                    f"signed ({s.signed_updates})" if s.oracle == "pull" else "push",
                ]
            )
        )
    add("")

    add("## Crash windows")
    add("")
    for c in summaries:
        p = c.path
        add(f"### {p.label}")
        add("")
        add(
            f"`{p.name}`: rows {p.skip}-{p.skip + p.rows - 1} of the file, {p.symbol} "
            f"rescaled to start at {p.answers[0] / 1e8:,.2f}; max drawdown {p.drawdown:.1%}, "
            f"largest row-to-row drop {p.largest_drop:.1%}. Base run: "
            f"{c.base.n_liquidations} liquidations ({c.base.n_full} full) of "
            f"{c.base.accounts_liquidated} accounts, keeper rewards "
            f"{_money(c.base.keeper_rewards)}, bad debt {_money(c.base.bad_debt)}, "
            f"socialised {_money(c.base.socialised)}, cascade depth {c.base.cascade_depth}."
        )
        add("")
        if p.name in plots:
            add(f"![{p.label}]({plots[p.name]})")
            add("")

    add("## Method")
    add("")
    for line in METHOD_NOTES:
        add(f"- {line}")
    add("")
    return "\n".join(lines)


METHOD_NOTES = (
    "Each crash file is replayed row by row through the market's mock Chainlink aggregator on "
    "a local chain (the real Clearinghouse, PriceFeed and LP token), rescaled so its first row "
    "equals the market's price: the level is the market's, the percentage moves are real. "
    "Candle wicks are not in the files, so close-only replay understates intrabar extremes.",
    "Population (population.py): leverage drawn from a Beta distribution skewed high, "
    "log-normal collateral, a fixed long share, markets equally likely; every trader opens one "
    "position at the start price. One LP funds the counterparty pool. The market the file does "
    "not drive keeps its price (re-posted before it goes stale).",
    "One deploy and seed, then a provider snapshot restored before every scenario; the swept "
    "parameters are applied with the owner's setters (`set_market_risk` on every market, a "
    "rise applied after the configurator's one-day delay; `fund_insurance`). "
    "The partial bound is raised so partial liquidations stay reachable at "
    "every swept rate (the setter rejects a bound a partial cannot meet).",
    "The keeper is the reference bot's decision code run in-process: `margin_status` and "
    "`liquidation_preview` through its batched reader, then `liquidatable_candidates`, "
    "`select_targets`, `plan_batches` (gas at the configured price) and `liquidate_many`.",
    "Oracle: the push feed transmits a new answer when the market moved the deviation "
    "threshold from its last one or the heartbeat passed, both in the file's time (the "
    "chain's own clock runs compressed, so the push answer is always fresh on chain); each "
    "transmission lands the configured rows late. On signed prices the keeper brings the "
    "row's price (`update_prices`, 3 of 5 EIP-712 signatures, verified against the push "
    "answer: a report farther than the verifier's bound from it is refused, and the row is "
    "judged at the push answer).",
    "Keeper latency L: batches the keeper plans at row t land at row t + L, at that row's "
    "price; accounts already in flight are not planned again, and ones that recovered are "
    "skipped by the contract (counted as stale). Batches due after the last row land at it.",
    "Cascade depth: a liquidation is generation 0 when the account is liquidatable at the "
    "row's price without impact (its state at that row); otherwise it needed the impact of "
    "earlier liquidations and is one generation deeper than the deepest of them.",
    "Thresholds: for each crash, the mm axis (others at the base point) and the insurance "
    "axis; the smallest swept value from which every larger one had zero socialised loss "
    "(BadDebtSettled.socialised summed, plus uncovered debt and under-water accounts left "
    "unliquidated); 'none in sweep' when even the largest had some.",
    "Every figure comes from the events of the keeper's transactions and is checked after "
    "each scenario against the chain's log (eth_getLogs) rebuilt by audit.py's ledger.",
)


def findings(res: SimulationResults, summaries: Sequence[CrashSummary]) -> list[str]:
    """Headline sentences derived from the numbers (deterministic)."""
    out: list[str] = []
    base = res.config.sweep.base
    mm_vals = res.config.sweep.mm_bps
    if summaries and mm_vals:
        none = [c.path.label for c in summaries if c.thresholds["mm_bps"].value is None]
        lowest = [
            c.path.label
            for c in summaries
            if c.thresholds["mm_bps"].value is not None
            and c.thresholds["mm_bps"].value <= min(mm_vals)
        ]
        out.append(
            f"{len(lowest)} of {len(summaries)} crash window(s) had no socialised loss even at "
            f"the lowest swept maintenance margin ({min(mm_vals)} bps)."
        )
        if none:
            out.append(
                f"No swept maintenance margin (up to {max(mm_vals)} bps) avoided socialised "
                "loss in: " + ", ".join(none) + "."
            )
        worst = max(summaries, key=lambda c: (c.base.socialised, c.base.bad_debt, c.path.name))
        out.append(
            f"Worst base-point run: {worst.path.label} (largest row drop "
            f"{worst.path.largest_drop:.1%}): bad debt {_money(worst.base.bad_debt)} USD, "
            f"socialised {_money(worst.base.socialised)} USD, implied insurance "
            f"{_money(worst.implied_insurance)} USD."
        )
    by_mm = _swept(res.swept, "mm_bps")
    if by_mm:
        parts = [
            f"{v} bps: {sum(s.n_liquidations for s in runs)} liquidations, bad debt "
            f"{_money(sum(s.bad_debt for s in runs))}, socialised "
            f"{_money(sum(s.socialised for s in runs))}"
            for v, runs in by_mm.items()
        ]
        out.append("Maintenance margin (summed over the crashes): " + "; ".join(parts) + " USD.")
        inverted = []
        for c in summaries:
            runs = sorted(
                (s.point.mm_bps, s.bad_debt)
                for s in res.for_crash(c.path.name)
                if "mm_bps" in s.axes
            )
            worse = [
                (lo, hi)
                for i, lo in enumerate(runs)
                for hi in runs[i + 1 :]
                if hi[1] > lo[1] and hi[1] > 0
            ]
            if worse:
                lo, hi = max(worse, key=lambda p: p[1][1] - p[0][1])
                inverted.append(
                    f"{c.path.label} ({lo[0]} bps: {_money(lo[1])}, {hi[0]} bps: {_money(hi[1])})"
                )
        if inverted:
            im, fee = res.config.initial_margin_bps, res.config.sweep.base.fee_bps
            lo_mm, hi_mm = min(mm_vals), max(mm_vals)
            out.append(
                f"In {len(inverted)} of {len(summaries)} crash windows a higher maintenance "
                "margin left more bad debt than a lower one: "
                + "; ".join(inverted)
                + ". A partial liquidation only restores the initial margin, so the fraction "
                f"closed at the crossing, (im - mm) / (im - fee), is "
                f"{(im - hi_mm) / (im - fee):.0%} at {hi_mm} bps but "
                f"{(im - lo_mm) / (im - fee):.0%} at {lo_mm} bps: a higher mm leaves more of "
                "the position open to the next gap."
            )
    left = [s for s in res.swept if s.left_liquidatable]
    if left:
        worst_left = max(left, key=lambda s: (s.underwater_left, s.crash))
        out.append(
            f"{len(left)} scenario(s) ended with liquidatable accounts nobody liquidated, worst "
            f"{worst_left.label} ({worst_left.point.label}): {worst_left.left_liquidatable} "
            f"account(s) {_money(worst_left.underwater_left)} USD under water: a "
            "keeper that checks gas leaves open an account whose reward neither the account, "
            "the insurance fund nor the pool's spendable assets can pay (they top it up only "
            "to the reserve the requirements hold)."
        )
    by_latency = _swept(res.swept, "latency")
    if by_latency:
        slow = max(res.config.sweep.latency)
        fast = min(res.config.sweep.latency)
        bad_fast = sum(s.bad_debt for s in by_latency.get(fast, []))
        bad_slow = sum(s.bad_debt for s in by_latency.get(slow, []))
        out.append(
            f"Keeper latency: bad debt summed over the crashes {_money(bad_fast)} USD at "
            f"{fast} block(s), {_money(bad_slow)} USD at {slow}."
        )
    by_fee = _swept(res.swept, "fee_bps")
    if by_fee:
        parts = [
            f"{v} bps: rewards {_money(sum(s.keeper_rewards for s in runs))}, bad debt "
            f"{_money(sum(s.bad_debt for s in runs))}"
            for v, runs in by_fee.items()
        ]
        out.append("Liquidation fee (summed over the crashes): " + "; ".join(parts) + " USD.")
    if res.config.impact.on:
        deepest = max(res.swept, key=lambda s: (s.cascade_depth, s.induced, s.crash))
        total_induced = sum(s.induced for s in res.swept if s.point == base)
        out.append(
            f"Price impact on: {total_induced} induced liquidations at the base point; deepest "
            f"cascade {deepest.cascade_depth} generation(s) in {deepest.label} "
            f"({deepest.point.label})."
        )
    return out
