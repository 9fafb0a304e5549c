"""The figure of the Bayesian phase-transition study, drawn from its JSON-ready results: the
posterior occupancy of each phase over n beside the predicted one, the free energies, and (toy
model) the LLC of each k-gon beside its exact λ."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sltlab.verification.catalogue.transitions import CLASS_COLOURS, draw_free_energy, draw_predicted_occupancy
from sltlab.verification.figure_style import new_figure, save


def plot_bayes(studies: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """One row per study: observed occupancy (±2 SE over ladders) over the predicted curves,
    with the predicted and observed crossovers; the free energies; the LLC panel for the toy
    model."""
    columns = 3 if any(study["llc"] for study in studies) else 2
    with new_figure(figsize=(6.2 * columns, 6.6 * len(studies)), layout="constrained") as fig:
        axes = fig.subplots(len(studies), columns, squeeze=False,
                            gridspec_kw={"width_ratios": [1.6] + [1] * (columns - 1)})
        for row, study in zip(axes, studies):
            _occupancy(row[0], study)
            draw_free_energy(row[1], study["curves"], [mark["predicted_n"] for mark in study["transitions"]])
            if columns == 3:
                _llc(row[2], study)
        return save(fig, path)


def _occupancy(ax, study: dict[str, Any]) -> None:
    n = np.array(study["n"])
    curves = study["curves"]
    draw_predicted_occupancy(ax, curves)
    for name, colour in zip(curves["classes"], CLASS_COLOURS):
        row = study["occupancy"].get(name)
        if row is None or max(row["mean"]) < 0.01:
            continue
        ax.errorbar(n, row["mean"], yerr=2 * np.array(row["se"]), fmt="o", color=colour, markersize=4, capsize=2,
                    label=f"{name} (posterior draws)")
    other = study["occupancy"]["other"]
    if max(other["mean"]) >= 0.01:
        ax.errorbar(n, other["mean"], yerr=2 * np.array(other["se"]), fmt="x", color="0.5", markersize=4,
                    label="other (no phase)")
    for mark in study["transitions"]:
        ax.axvline(mark["predicted_n"], color="0.2", linewidth=1)
        if mark["observed_n"] is not None:
            error = mark["observed_se"] or 0.0
            ax.axvspan(mark["observed_n"] - 2 * error, mark["observed_n"] + 2 * error, color="tab:red", alpha=0.25)
            ax.axvline(mark["observed_n"], color="tab:red", linewidth=1.2)
    hull = [mark["observed_by_classifier_setting"].get("label_hull") for mark in study["transitions"]]
    for value in filter(None, hull):
        ax.axvline(value, color="tab:red", linewidth=1.2, linestyle="--")
    ax.plot([], [], color="0.2", label="predicted crossover (with c)")
    ax.plot([], [], color="tab:red", label="observed crossover ± 2 SE")
    if any(hull):
        ax.plot([], [], color="tab:red", linestyle="--", label="observed by the convex-hull vertex count")
    for mark in study["transitions"]:
        observed = ("none" if mark["observed_n"] is None
                    else f"{mark['observed_n']:.0f} ± {mark['observed_se'] or 0:.0f}")
        laplace = "" if mark["predicted_n_laplace"] is None else f", Laplace c {mark['predicted_n_laplace']:.0f}"
        without = "—" if mark["predicted_n_without_constant"] is None else f"{mark['predicted_n_without_constant']:.0f}"
        ax.plot([], [], " ", label=f"{mark['before']} → {mark['after']}: predicted {mark['predicted_n']:.0f} "
                                   f"(no c {without}{laplace}), observed {observed}")
    ax.set_xlim(n[0] / 1.15, n[-1] * 1.15)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    sampler = study["sampler"]
    drawn = ", posterior of a drawn data set per pair of ladders" if study["setup"]["data"] == "sampled" else ""
    ax.set_title(f"{study['title']}{drawn}\n{sampler['chains']} chains ({study['setup']['ladders']} ladders × "
                 f"{study['setup']['rungs']} n), {study['setup']['draws']} draws each, "
                 f"round trips per ladder ≥ {min(sampler['round_trips'])}", fontsize=10)


def _llc(ax, study: dict[str, Any]) -> None:
    rows = study["llc"]
    if not rows:
        ax.set_visible(False)
        return
    positions = np.arange(len(rows))
    ax.bar(positions, [row["lambda_exact_float"] for row in rows], color="tab:blue", alpha=0.35,
           label=r"exact $\lambda$ = rank$\nabla^2 L$/2")
    means = [np.nan if row["llc_mean"] is None else row["llc_mean"] for row in rows]
    errors = [2 * (row["llc_se"] or 0.0) for row in rows]
    ax.errorbar(positions, means, yerr=errors, fmt="s", color="black", capsize=4, label=r"$\hat\lambda$ ± 2 SE (MALA)")
    for x, row in zip(positions, rows):
        if row["relative_error"] is not None:
            ax.annotate(f"{100 * row['relative_error']:+.1f}%", (x, row["llc_mean"]), textcoords="offset points",
                        xytext=(0, 10), ha="center", fontsize=9)
    ax.set_xticks(positions, [row["name"] for row in rows], fontsize=8, rotation=15)
    ax.set_ylabel("learning coefficient")
    ax.set_ylim(0, 1.25 * max(row["lambda_exact_float"] for row in rows))
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"LLC at each k-gon (n = {rows[0]['n']:.0e}, γ = {rows[0]['localization']:g})", fontsize=10)
