"""Figures of a verification suite: estimate against exact λ, relative error against d, the
calibration sweeps, and trace plots of failed cases."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.lines import Line2D

from sltlab.verification.figure_style import ACCEPTED, FAILED, PASSED, label_log_axis, new_figure, save

FAMILY_MARKERS = {"dln": "o", "restricted_dln": "X", "reduced_rank": "s", "regular": "D", "normal_crossing": "^",
                  "newton": "v",
                  "tanh": "P", "random": "o"}
TRUTH_MARK = dict(marker="_", color="k", markersize=12, markeredgewidth=1.5)   # a finite-n truth


def _estimated(lines):
    return [line for line in lines if line.get("llc_mean") is not None]


def _family(line) -> str:
    return "random" if "random" in line.get("tags", ()) else line["family"]


def plot_estimate_vs_exact(lines: list[dict[str, Any]], path: Path) -> Path:
    """λ̂ ± 3 SE against λ on log–log axes with the line y = x. Behind each estimate, in grey,
    the interval its accuracy gate accepts (the band [λ − (m − 1)/log nβ, λ] or the finite-n
    truth, widened by 3 SE and the budget), with the finite-n truth marked where it was computed:
    an estimate below y = x inside its grey bar is right. Colour is the verdict, shape the family;
    cases at the same λ are spread sideways so that none hides another."""
    with new_figure(figsize=(7.6, 5.8)) as figure:
        axes = figure.subplots()
        estimated = _estimated(lines)
        for line, x in zip(estimated, spread_apart([line["lambda_exact_float"] for line in estimated], 0.035)):
            low, high = (line["gates"]["accuracy"]["interval"] if "gates" in line else None) or (None, None)
            if low is not None:
                axes.plot([x, x], [max(low, 1e-9), high], color=ACCEPTED, linewidth=7, solid_capstyle="butt", zorder=1)
            if line.get("finite_n_truth") is not None:
                axes.plot(x, line["finite_n_truth"], **TRUTH_MARK, zorder=2)
            _estimate(axes, line, x, line["llc_mean"], 3 * (line["llc_se"] or 0))
        values = [v for line in estimated for v in (line["lambda_exact_float"], line["llc_mean"]) if v > 0]
        low, high = (min(values) / 1.5, max(values) * 1.5) if values else (0.1, 10)
        axes.plot([low, high], [low, high], color="0.4", linewidth=1, linestyle="--", zorder=0)
        axes.set(xscale="log", yscale="log", xlim=(low, high), ylim=(low, high), xlabel="exact λ",
                 ylabel="estimate λ̂ (± 3 SE)", title="Estimates against exact learning coefficients")
        label_log_axis(axes.xaxis), label_log_axis(axes.yaxis)
        _legend(axes, lines, extra=[Line2D([], [], color="0.4", linestyle="--", label="y = x"),
                                    Line2D([], [], linestyle="none", **TRUTH_MARK, label="finite-n truth")])
        axes.grid(True, which="major", alpha=0.25)
        return _save(figure, path)


def plot_error_vs_dim(lines: list[dict[str, Any]], path: Path) -> Path:
    """Relative error (λ̂ − λ)/λ ± 3 SE against the number of parameters d, each estimate over
    the grey interval its accuracy gate accepts, in the same units, with the finite-n truth's
    own distance from λ marked where it was computed: the part of the error that is the
    estimand's at this nβ, not the estimator's."""
    with new_figure(figsize=(8.4, 4.6)) as figure:
        axes = figure.subplots()
        estimated = _estimated(lines)
        for line, x in zip(estimated, spread_apart([line["dim"] for line in estimated], 0.05)):
            lam = line["lambda_exact_float"]
            if "gates" in line and line["gates"]["accuracy"]["interval"] is not None:
                low, high = line["gates"]["accuracy"]["interval"]
                axes.plot([x, x], [100 * (low / lam - 1), 100 * (high / lam - 1)], color=ACCEPTED, linewidth=7,
                          solid_capstyle="butt", zorder=1)
            if line.get("finite_n_truth") is not None:
                axes.plot(x, 100 * (line["finite_n_truth"] / lam - 1), **TRUTH_MARK, zorder=2)
            _estimate(axes, line, x, 100 * (line["llc_mean"] / lam - 1), 300 * (line["llc_se"] or 0) / lam)
        axes.axhline(0, color="0.4", linewidth=1, zorder=0)
        axes.set(xscale="log", xlabel="parameters d", ylabel="(λ̂ − λ)/λ, % (± 3 SE)",
                 title="Relative error against model size")
        label_log_axis(axes.xaxis)
        _legend(axes, lines, extra=[Line2D([], [], linestyle="none", **TRUTH_MARK, label="finite-n truth")]
                if any(line.get("finite_n_truth") is not None for line in estimated) else ())
        axes.grid(True, which="major", alpha=0.25)
        return _save(figure, path)


def plot_calibration(lines: list[dict[str, Any]], path: Path) -> Path | None:
    """One panel per swept case: pilot λ̂ ± 3 SE against the step size, the chosen step
    marked, and the exact λ as a horizontal line; no figure when no case was swept (the exact
    samplers are not)."""
    swept = [line for line in lines if (line.get("calibration") or {}).get("sweep")]
    if not swept:
        return None
    columns = min(4, len(swept))
    rows = -(-len(swept) // columns)
    with new_figure(figsize=(3.8 * columns, 3.1 * rows)) as figure:
        grid = figure.subplots(rows, columns, squeeze=False)
        for axes, line in zip(grid.flat, swept):
            sweep = line["calibration"]["sweep"]
            points = [p for p in sweep if p["estimate"] is not None]
            axes.errorbar([p["step_size"] for p in points], [p["estimate"] for p in points],
                          yerr=[3 * (p["standard_error"] or 0) for p in points], fmt="o-", color=PASSED, capsize=2)
            axes.axhline(line["lambda_exact_float"], color="0.3", linestyle="--", linewidth=1)
            if "chosen" in line["calibration"]:
                axes.axvline(line["calibration"]["chosen"], color="#009E73", linewidth=1.2)
            axes.set_xscale("log")
            label_log_axis(axes.xaxis)
            axes.set_title(_short(line.get("problem") or line["id"]), fontsize=9)
            axes.tick_params(labelsize=8)
            axes.xaxis.get_offset_text().set_fontsize(8)
        for axes in list(grid.flat)[len(swept):]:
            axes.set_visible(False)
        figure.supxlabel("step size ε (green: chosen; dashed: exact λ)")
        figure.supylabel("pilot λ̂ ± 3 SE")
        return _save(figure, path)


def plot_trace(line: dict[str, Any], path: Path) -> Path:
    """nβ·(L(w) − L(w*)) per chain over the recorded draws of one case, beside λ."""
    with new_figure(figsize=(7.2, 3.8)) as figure:
        axes = figure.subplots()
        for chain, values in enumerate(line.get("trace") or []):
            axes.plot([np.nan if v is None else v for v in values], linewidth=0.8, alpha=0.8, label=f"chain {chain}")
        axes.axhline(line["lambda_exact_float"], color="k", linestyle="--", linewidth=1.2, label="exact λ")
        axes.set(xlabel="recorded draw (subsampled)", ylabel="nβ·(L(w) − L(w*))", title=_short(line["id"]))
        axes.legend(fontsize=7, ncol=5, frameon=False, loc="upper right")
        return _save(figure, path)


def _estimate(axes, line, x: float, y: float, spread: float) -> None:
    """One estimate: its marker (shape: family) and ± ``spread`` bar, coloured by its verdict."""
    colour = PASSED if line["passed"] else FAILED
    axes.errorbar(x, y, yerr=spread, fmt=FAMILY_MARKERS.get(_family(line), "o"), color=colour, ecolor=colour,
                  elinewidth=1.2, capsize=2, markersize=6, zorder=3)


def spread_apart(positions: list[float], step: float) -> list[float]:
    """Log-axis positions moved apart by factors of 1 ± ``step`` where several are equal."""
    seen: dict[float, int] = {}
    counts = {round(value, 9): positions.count(value) for value in positions}
    spread = []
    for value in positions:
        key = round(value, 9)
        index = seen[key] = seen.get(key, -1) + 1
        spread.append(value * (1 + step) ** (index - (counts[key] - 1) / 2))
    return spread


def _legend(axes, lines, extra=()) -> None:
    """Shapes name the families (in grey), colours the verdicts, the grey bar the gate; outside
    the axes, so that it never covers a point."""
    handles = [Line2D([], [], marker=marker, linestyle="none", color="0.35", label=family.replace("_", " "))
               for family, marker in FAMILY_MARKERS.items() if any(_family(line) == family for line in lines)]
    handles += [Line2D([], [], color=PASSED, marker="o", linestyle="none", label="passed"),
                Line2D([], [], color=FAILED, marker="o", linestyle="none", label="gate failed"),
                Line2D([], [], color=ACCEPTED, linewidth=7, label="accepted by the gate")]
    axes.legend(handles=handles + list(extra), loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                fontsize=9)


def trace_file_name(case_id: str) -> str:
    return "trace-" + re.sub(r"[^A-Za-z0-9._-]+", "_", case_id).strip("_") + ".png"


def _short(case_id: str) -> str:
    return case_id if len(case_id) <= 40 else case_id[:37] + "…"


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    return save(figure, path)
