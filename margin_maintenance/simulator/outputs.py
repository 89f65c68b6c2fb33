"""Plots (matplotlib Agg) and writing report.md, results.json and the PNGs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .paths import CrashPath
from .render import _axis_value, render_report
from .results import ScenarioResult, SimulationResults, usd
from .settings import AXES, AXIS_TITLES, REPORT_FILE, RESULTS_FILE

# ---- Plots (matplotlib Agg) ----


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


PNG_METADATA = {"Software": None}  # no version stamp: same inputs, same bytes


def _save(plt: Any, fig: Any, out: Path) -> Path:
    """Lay out `fig`, write it to `out` as a reproducible PNG and close it."""
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, metadata=PNG_METADATA)
    plt.close(fig)
    return out


def plot_crash(result: ScenarioResult, path: CrashPath, out: Path) -> Path:
    """Price path with liquidation markers; insurance fund, bad debt and socialised loss."""
    plt = _pyplot()
    hours = path.hours()
    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(10, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    ax1.plot(hours, result.raw_price, color="0.6", lw=1, label="rescaled close (no impact)")
    if result.price != result.raw_price:
        ax1.plot(hours, result.price, color="C0", lw=1.4, label="oracle price (with impact)")
    else:
        ax1.plot(hours, result.price, color="C0", lw=1.4, label="oracle price")
    if result.push_price and result.push_price != result.price:
        ax1.step(hours, result.push_price, where="post", color="C4", lw=1, label="push feed answer")
    groups = (
        ("partial", "^", "C1", lambda r: not r.full),
        ("full, no bad debt", "v", "C3", lambda r: r.full and r.bad_debt == 0),
        ("full with bad debt", "X", "k", lambda r: r.bad_debt > 0),
    )
    for name, marker, color, pick in groups:
        rs = [r for r in result.liquidations if pick(r)]
        if rs:
            ax1.scatter(
                [hours[r.step] for r in rs],
                [r.price_usd for r in rs],
                marker=marker,
                s=[20 + 60 * min(1.0, usd(r.closed_notional) / 50_000) for r in rs],
                color=color,
                alpha=0.8,
                zorder=3,
                label=f"{name} ({len(rs)})",
            )
    ax1.set_ylabel(f"{path.symbol} (USD)")
    ax1.set_title(f"{path.label}: {result.point.label}", fontsize=11)
    ax1.legend(loc="best", fontsize=8)
    ax1.grid(alpha=0.3)
    s = result.series()
    ax2.plot(hours, s["insurance"], color="C2", label="insurance fund")
    ax2.plot(hours, s["bad_debt"], color="k", label="bad debt (cumulative)")
    ax2.plot(hours, s["socialised"], color="C3", ls="--", label="socialised (cumulative)")
    ax2.set_ylabel("USD")
    ax2.set_xlabel("hours since the first row")
    ax2.legend(loc="best", fontsize=8)
    ax2.grid(alpha=0.3)
    return _save(plt, fig, out)


def plot_sweep(res: SimulationResults, out: Path) -> Path:
    """Heatmaps, one per axis: loss past the insurance fund (`ScenarioResult.lp_loss`) per
    crash (rows) and swept value (columns), the solvency threshold outlined on the mm and
    insurance axes."""
    import numpy as np

    plt = _pyplot()
    summaries = {c.path.name: c for c in res.summaries()}
    axes_shown = [a for a in AXES if len(res.config.sweep.values(a)) > 0]
    n_rows = len(res.crashes)
    fig, axs = plt.subplots(
        1,
        len(axes_shown),
        figsize=(3.2 * len(axes_shown) + 3, 0.42 * n_rows + 2.2),
        squeeze=False,
    )
    vmax = max((usd(s.lp_loss) for s in res.swept), default=0.0) or 1.0
    for j, axis in enumerate(axes_shown):
        ax = axs[0][j]
        values = sorted(set(res.config.sweep.values(axis)))
        grid = np.full((n_rows, len(values)), np.nan)
        for i, p in enumerate(res.crashes):
            for s in res.for_crash(p.name):
                if axis in s.axes:
                    grid[i, values.index(s.point.value(axis))] = usd(s.lp_loss)
        ax.imshow(grid, aspect="auto", cmap="Reds", vmin=0, vmax=vmax)
        for i in range(n_rows):
            for k in range(len(values)):
                v = grid[i, k]
                if not np.isnan(v):
                    ax.text(
                        k,
                        i,
                        f"{v:,.0f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if v > 0.6 * vmax else "black",
                    )
        if axis in ("mm_bps", "insurance_usd"):
            for i, p in enumerate(res.crashes):
                t = summaries[p.name].thresholds[axis].value
                if t is not None:
                    k = values.index(t)
                    ax.add_patch(
                        plt.Rectangle((k - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="C2", lw=2.5)
                    )
        ax.set_xticks(range(len(values)))
        ax.set_xticklabels([_axis_value(axis, v) for v in values], fontsize=8)
        ax.set_xlabel(AXIS_TITLES[axis], fontsize=9)
        ax.set_yticks(range(n_rows))
        ax.set_yticklabels([p.label for p in res.crashes] if j == 0 else [], fontsize=8)
    fig.suptitle(
        "Loss past the insurance fund (USD: socialised, plus bad debt left unsettled) per crash "
        "and swept value; green box = solvency threshold",
        fontsize=10,
    )
    return _save(plt, fig, out)


def write_outputs(res: SimulationResults, out_dir: Path) -> Path:
    """report.md, results.json and the PNGs under `out_dir`; returns the report's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots: dict[str, str] = {}
    if any(res.config.sweep.values(a) for a in AXES):  # a lone point has no heatmap
        plot_sweep(res, out_dir / "sweep_heatmap.png")
        plots["sweep"] = "sweep_heatmap.png"
    for c in res.summaries():
        rel = f"plots/{c.path.name}.png"
        plot_crash(c.base, c.path, out_dir / rel)
        plots[c.path.name] = rel
    (out_dir / RESULTS_FILE).write_text(json.dumps(res.to_dict(), indent=1, sort_keys=True) + "\n")
    report = out_dir / REPORT_FILE
    report.write_text(render_report(res, plots))
    return report
