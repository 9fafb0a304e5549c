"""Figures of a verification suite: estimate against exact λ, relative error against d, the
calibration sweeps, and trace plots of failed cases."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from sltlab.verification.figure_style import new_figure, save

FAMILY_MARKERS = {"dln": "o", "reduced_rank": "s", "regular": "D", "normal_crossing": "^", "newton": "v",
                  "tanh": "P", "random": "o"}


def _estimated(lines):
    return [line for line in lines if line.get("llc_mean") is not None]


def _family(line) -> str:
    return "random" if "random" in line.get("tags", ()) else line["family"]


def plot_estimate_vs_exact(lines: list[dict[str, Any]], path: Path) -> Path:
    """λ̂ ± 3 SE against λ on log–log axes with the line y = x; failed cases in red."""
    with new_figure(figsize=(6.4, 5.6)) as figure:
        axes = figure.subplots()
        for line in _estimated(lines):
            colour = "tab:blue" if line["passed"] else "tab:red"
            axes.errorbar(line["lambda_exact_float"], line["llc_mean"], yerr=3 * (line["llc_se"] or 0), fmt="none",
                          ecolor=colour, elinewidth=1.2, capsize=2)
            axes.plot(line["lambda_exact_float"], line["llc_mean"], FAMILY_MARKERS.get(_family(line), "o"),
                      color=colour, markersize=6, alpha=0.85)
        values = [v for line in _estimated(lines) for v in (line["lambda_exact_float"], line["llc_mean"]) if v > 0]
        low, high = (min(values) / 1.5, max(values) * 1.5) if values else (0.1, 10)
        axes.plot([low, high], [low, high], color="0.4", linewidth=1, linestyle="--", label="y = x")
        axes.set(xscale="log", yscale="log", xlim=(low, high), ylim=(low, high), xlabel="exact λ",
                 ylabel="estimate λ̂ (± 3 SE)", title="Estimates against exact learning coefficients")
        _legend(axes, lines, extra=[axes.get_lines()[-1]])
        axes.grid(True, which="both", alpha=0.25)
        return _save(figure, path)


def plot_error_vs_dim(lines: list[dict[str, Any]], path: Path) -> Path:
    """Relative error (λ̂ − λ)/λ against the number of parameters d."""
    with new_figure(figsize=(6.8, 4.4)) as figure:
        axes = figure.subplots()
        for line in _estimated(lines):
            error = line["llc_mean"] / line["lambda_exact_float"] - 1
            bar = 3 * (line["llc_se"] or 0) / line["lambda_exact_float"]
            colour = "tab:blue" if line["passed"] else "tab:red"
            axes.errorbar(line["dim"], 100 * error, yerr=100 * bar, fmt=FAMILY_MARKERS.get(_family(line), "o"),
                          color=colour, ecolor=colour, capsize=2, markersize=6, alpha=0.85)
        axes.axhline(0, color="0.4", linewidth=1)
        axes.set(xscale="log", xlabel="parameters d", ylabel="relative error of λ̂ (%, ± 3 SE)",
                 title="Relative error against model size")
        axes.xaxis.set_minor_formatter(NullFormatter())
        _legend(axes, lines)
        axes.grid(True, which="both", alpha=0.25)
        return _save(figure, path)


def plot_calibration(lines: list[dict[str, Any]], path: Path) -> Path | None:
    """One panel per swept case: pilot λ̂ ± 2 SE against the step size, the chosen step
    marked, and the exact λ as a horizontal line; no figure when no case was swept (the exact
    samplers are not)."""
    swept = [line for line in lines if (line.get("calibration") or {}).get("sweep")]
    if not swept:
        return None
    columns = min(4, len(swept))
    rows = -(-len(swept) // columns)
    with new_figure(figsize=(3.6 * columns, 2.9 * rows)) as figure:
        grid = figure.subplots(rows, columns, squeeze=False)
        for axes, line in zip(grid.flat, swept):
            sweep = line["calibration"]["sweep"]
            points = [p for p in sweep if p["estimate"] is not None]
            axes.errorbar([p["step_size"] for p in points], [p["estimate"] for p in points],
                          yerr=[2 * (p["standard_error"] or 0) for p in points], fmt="o-", color="tab:blue", capsize=2)
            axes.axhline(line["lambda_exact_float"], color="0.3", linestyle="--", linewidth=1)
            if "chosen" in line["calibration"]:
                axes.axvline(line["calibration"]["chosen"], color="tab:green", linewidth=1.2)
            axes.set_xscale("log")
            axes.xaxis.set_minor_formatter(NullFormatter())
            axes.set_title(_short(line["id"]), fontsize=9)
            axes.tick_params(labelsize=8)
        for axes in list(grid.flat)[len(swept):]:
            axes.set_visible(False)
        figure.supxlabel("step size ε (green: chosen; dashed: exact λ)")
        figure.supylabel("pilot λ̂ ± 2 SE")
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


def _legend(axes, lines, extra=()) -> None:
    handles = [Line2D([], [], marker=marker, linestyle="none", color="0.3", label=family)
               for family, marker in FAMILY_MARKERS.items() if any(_family(line) == family for line in lines)]
    handles += [Line2D([], [], color="tab:red", marker="o", linestyle="none", label="gate failed")]
    axes.legend(handles=handles + list(extra), loc="best", frameon=False, fontsize=9)


def trace_file_name(case_id: str) -> str:
    return "trace-" + re.sub(r"[^A-Za-z0-9._-]+", "_", case_id).strip("_") + ".png"


def _short(case_id: str) -> str:
    return case_id if len(case_id) <= 40 else case_id[:37] + "…"


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    return save(figure, path)
