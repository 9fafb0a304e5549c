"""Figures of the dynamics studies, drawn from their JSON-ready results (so re-plotting needs
neither training nor sampling)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.transforms import blended_transform_factory
from matplotlib.ticker import NullFormatter

from sltlab.estimators.gate import other_warnings
from sltlab.verification.figure_style import new_figure, save

SETTING_COLOURS = ("tab:purple", "tab:green", "tab:orange", "tab:brown", "tab:pink")
SEED_COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:gray")


def plot_saddle(studies: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """One row per architecture: the excess training loss and the numerical rank over the
    steps, plateaus shaded; λ̂ ± SE at each plateau (relabelled problem) over the exact
    staircase λ_k (Aoyagi 2024); and λ̂ ± 2 SE along training against log time with the true
    rank changes and the stage boundaries found on the curve. The negative control is listed,
    not drawn (it is off scale).
    """
    with new_figure(figsize=(19, 4.6 * len(studies)), layout="constrained") as fig:
        axes = fig.subplots(len(studies), 3, squeeze=False, gridspec_kw={"width_ratios": [1.4, 1, 1.3]})
        for (ax_loss, ax_llc, ax_curve), study in zip(axes, studies):
            _saddle_training(ax_loss, study)
            _saddle_staircase(ax_llc, study)
            _saddle_curve(ax_curve, study)
        return save(fig, path)


def _saddle_curve(ax, study: dict[str, Any]) -> None:
    curve, stages = study["llc_curve"], study["stages"]
    kept = [i for i, v in enumerate(curve["llc_mean"]) if v is not None]
    steps = np.array([curve["steps"][i] for i in kept], dtype=float)
    mean = np.array([curve["llc_mean"][i] for i in kept])
    error = np.array([curve["llc_se"][i] or 0.0 for i in kept])
    ax.fill_between(steps, mean - 2 * error, mean + 2 * error, color="tab:purple", alpha=0.25)
    ax.plot(steps, mean, ".-", color="tab:purple", label=r"$\hat\lambda$ ± 2 SE (relabelled)")
    for row in study["staircase"]:
        ax.axhline(row["lambda_exact_float"], color="tab:blue", alpha=0.25, linewidth=1)
    for n, boundary in enumerate(stages["boundaries"]):
        ax.axvspan(boundary["window_start"], boundary["window_end"], color="tab:orange", alpha=0.25,
                   label="stage boundary window" if n == 0 else None)
    for n, step in enumerate(stages["true_rank_change_steps"]):
        ax.axvline(step, color="black", linestyle="--", linewidth=1, label="rank change (training)" if n == 0 else None)
    ax.set_xscale("log")
    if steps.size and steps.max() >= 10 * steps.min():   # a power of ten labels the axis; minor labels would crowd
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("gradient-descent step (log scale)")
    ax.set_ylabel("learning coefficient")
    ax.legend(loc="upper left", fontsize=8.5)
    for n, move in enumerate(stages["edge_moves"]):
        ax.axvspan(move["window_start"], move["window_end"], facecolor="none", edgecolor="tab:orange", hatch="//",
                   linewidth=0, label="move steepest at an edge, not located" if n == 0 else None)
    verdict = "every rank change matched" if stages["all_matched"] else (
        f"missed {stages['missed']}, {len(stages['spurious'])} spurious"
        + (f", {len(stages['edge_moves'])} at an edge" if stages["edge_moves"] else ""))
    ax.set_title(f"LLC along training, stages found: {verdict}\nfaint lines: exact staircase", fontsize=11)


def _saddle_training(ax, study: dict[str, Any]) -> None:
    steps, loss = np.array(study["steps"]), np.array(study["loss"])
    excess = loss[:-1] - loss[-1]
    ax.semilogy(steps[:-1], np.where(excess > 0, excess, np.nan), color="tab:blue",
                label=r"$L_n(w_t) - L_n(w_{\mathrm{final}})$")
    for plateau in study["plateaus"]:
        shade = 0.06 + 0.05 * (plateau["rank"] % 2)
        ax.axvspan(plateau["first_step"], plateau["last_step"], color="tab:blue", alpha=shade)
        ax.axvline(plateau["checkpoint_step"], color="0.4", linestyle=":", linewidth=1)
    ax.set_xlabel("gradient-descent step")
    ax.set_ylabel("excess training loss")
    rank_axis = ax.twinx()
    rank_axis.step(steps, study["rank"], where="post", color="tab:red", label="numerical rank")
    rank_axis.set_ylabel(f"rank (σ > {study['setup']['rank_tolerance']:g})", color="tab:red")
    rank_axis.set_ylim(-0.3, max(study["rank"]) + 0.5)
    rank_axis.yaxis.get_major_locator().set_params(integer=True)
    handles = ax.get_legend_handles_labels()[0] + rank_axis.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="center right")
    training = study["training"]
    verdict = (f"ranks {study['ranks_visited']} of 0..{training['teacher_rank']}, "
               f"{'targets met' if study['targets_met'] else 'targets MISSED'}")
    ax.set_title(f"widths {study['widths']}: {training['steps_taken']} steps ({verdict})\n"
                 "dotted lines: checkpoints where the LLC was estimated", fontsize=11)


def _saddle_staircase(ax, study: dict[str, Any]) -> None:
    ranks = [row["rank"] for row in study["staircase"]]
    ax.plot(ranks, [row["lambda_exact_float"] for row in study["staircase"]], "o-", color="tab:blue",
            alpha=0.45, label=r"exact $\lambda_k$ (Aoyagi 2024)")
    found = [row for row in study["plateaus"] if row["llc_mean"] is not None]
    ax.errorbar([row["rank"] for row in found], [row["llc_mean"] for row in found],
                yerr=[row["llc_se"] or 0.0 for row in found], fmt="s", color="black", capsize=4, markersize=6,
                label=r"$\hat\lambda$ at the plateau (relabelled)")
    ax.plot([row["rank"] for row in study["plateaus"]], [row["finite_n_truth"]["mean"] for row in study["plateaus"]],
            "x", color="tab:orange", markersize=9, mew=2, label=r"finite-n truth $n\beta\,E[\Delta L]$ (Gibbs)")
    for row in found:
        ax.annotate(f"{100 * row['rel_error']:+.1f}%", (row["rank"], row["llc_mean"]), textcoords="offset points",
                    xytext=(8, -12), fontsize=9)
    controls = ", ".join(_short(row["negative_control_real_data"]["llc_mean"]) for row in study["plateaus"])
    ax.plot([], [], " ", label=f"negative control (real data, not an LLC):\n{controls}")
    ax.set_xlabel("rank k at the plateau")
    ax.set_ylabel(r"learning coefficient")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="upper left", fontsize=8.5)
    ax.set_title(f"LLC at the plateaus (target ±{100 * study['target_relative_error']:g}%)")


def _short(value: float | None) -> str:
    return "diverged" if value is None else f"{value:.3g}"


def plot_grokking(study: dict[str, Any], path: str | Path) -> Path:
    """Losses, accuracies (every seed's test accuracy in grey), λ̂ ± SE under each sampler
    setting of the sensitivity check on shared steps, with the memorisation and grokking steps
    of the studied seed, and every seed's calibrated curve with its stage boundaries."""
    steps = np.array(study["steps"])
    study_row = next(row for row in study["seeds"] if row["seed"] == study["study_seed"])
    marks = [(study_row["memorisation_step"], "memorised"), (study_row["grokking_step"], "grokked")]
    with new_figure(figsize=(10, 14), layout="constrained") as fig:
        ax_loss, ax_accuracy, ax_llc, ax_seeds = fig.subplots(4, 1, sharex=True)
        ax_loss.semilogy(steps, study["train_loss"], color="tab:blue", label="train loss")
        ax_loss.semilogy(steps, study["test_loss"], color="tab:red", label="test loss")
        ax_loss.set_ylabel("cross-entropy")
        for row in study["seeds"]:
            if row["seed"] != study["study_seed"]:
                ax_accuracy.plot(steps, row["test_accuracy"], color="0.7", linewidth=1)
        grokked = f"{study['grokked_seeds']}/{len(study['seeds'])} seeds grok"
        ax_accuracy.plot([], [], color="0.7", label=f"test, other seeds ({grokked})")
        ax_accuracy.plot(steps, study["train_accuracy"], color="tab:blue", label="train")
        ax_accuracy.plot(steps, study["test_accuracy"], color="tab:red", label="test")
        ax_accuracy.set_ylabel("accuracy")
        for curve, colour in zip(study["sensitivity"], SETTING_COLOURS):
            mean = np.array([np.nan if v is None else v for v in curve["llc_mean"]])
            error = np.array([0.0 if v is None else v for v in curve["llc_se"]])
            rho = curve["spearman_with_test_loss"]
            ax_llc.plot(steps, mean, color=colour, label=f"{curve['name']} (Spearman with test loss "
                                                         f"{'n/a' if rho is None else f'{rho:.3f}'})")
            ax_llc.fill_between(steps, np.clip(mean - 2 * error, 1e-3, None), mean + 2 * error, color=colour, alpha=0.2)
        ax_llc.set_yscale("log")
        ax_llc.set_ylabel(r"$\hat\lambda$ ± 2 SE (train data)")
        ax_llc.set_title(f"sensitivity check, seed {study['study_seed']}: fixed sampler settings", fontsize=10)
        _seed_curves(ax_seeds, study)
        ax_seeds.set_xlabel("AdamW step (symmetric log scale)")
        ax_seeds.set_xscale("symlog", linthresh=100)
        ax_seeds.set_xlim(0, steps[-1])
        for ax in (ax_loss, ax_accuracy, ax_llc):
            for step, label in marks:
                if step is not None:
                    ax.axvline(step, color="0.3", linestyle="--", linewidth=1)
                    ax.annotate(label, (step, 1), xycoords=("data", "axes fraction"), xytext=(3, -12),
                                textcoords="offset points", fontsize=9, color="0.3")
            ax.legend(loc="best", fontsize=9)
        ax_loss.set_title(f"(a + b) mod {study['setup']['modulus']}, seed {study['study_seed']}, "
                          f"{study['dim']} parameters, {len(steps)} checkpoints")
        return save(fig, path)


def _seed_curves(ax, study: dict[str, Any]) -> None:
    """Every seed's calibrated λ̂ ± 2 SE with its memorisation (circle) and grokking (triangle)
    steps on the curve; below the curves, one row per seed of its stage boundaries (a tick at the
    boundary, a bar over its window) and of its moves steepest at the first or last checkpoint (a
    dotted bar over the window, no tick: not located)."""
    steps = np.array(study["steps"])
    rows = blended_transform_factory(ax.transData, ax.transAxes)
    floor = min((v for row in study["seeds"] for v in row["curve"].get("llc_mean", []) if v is not None and v > 0),
                default=1e-3) / 2
    for index, row in enumerate(study["seeds"]):
        curve, colour = row["curve"], SEED_COLOURS[index % len(SEED_COLOURS)]
        if "llc_mean" not in curve:
            ax.plot([], [], color=colour, label=f"seed {row['seed']}: calibration failed")
            continue
        mean = np.array([np.nan if v is None else v for v in curve["llc_mean"]])
        error = np.array([0.0 if v is None else v for v in curve["llc_se"]])
        rho = curve.get("spearman_with_test_loss")
        ax.plot(steps, mean, color=colour, linewidth=1.2,
                label=f"seed {row['seed']}: Spearman {'n/a' if rho is None else f'{rho:.4f}'}, "
                      f"max R-hat {curve['max_rhat']:.3f}")
        ax.fill_between(steps, np.clip(mean - 2 * error, floor, None), mean + 2 * error, color=colour, alpha=0.2)
        for step, marker in ((row["memorisation_step"], "o"), (row["grokking_step"], "^")):
            if step is not None and step in study["steps"]:
                ax.plot(step, mean[study["steps"].index(step)], marker, color=colour, markersize=7)
        height = 0.03 + 0.03 * index
        for boundary in curve["stages"]:
            ax.plot([boundary["window_start"], boundary["window_end"]], [height, height], color=colour, linewidth=3,
                    alpha=0.8 if boundary["direction"] == "rise" else 0.3, solid_capstyle="butt", transform=rows)
            ax.plot([boundary["step"]], [height], "|", color=colour, markersize=12, transform=rows)
        for move in curve["edge_moves"]:   # a window with no tick: the curve does not place the move
            ax.plot([move["window_start"], move["window_end"]], [height, height], color=colour, linewidth=3,
                    linestyle=":", solid_capstyle="butt", transform=rows)
    ax.plot([], [], "ko", label="memorised")
    ax.plot([], [], "k^", label="grokked")
    ax.plot([], [], "k|-", linewidth=3, alpha=0.8, markersize=12, label="rise boundary | and window (row per seed)")
    ax.plot([], [], "k|-", linewidth=3, alpha=0.3, markersize=12, label="fall boundary | and its window")
    ax.plot([], [], "k:", linewidth=3, label="move steepest at the first or last checkpoint: window, not located")
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor / 20)
    ax.set_ylabel(r"$\hat\lambda$ ± 2 SE, step calibrated per seed")
    ax.set_title(f"every seed, sgld at γ = {study['curve_config']['localization']:g}, its step calibrated at "
                 "its memorisation checkpoint", fontsize=10)
    ax.legend(loc="center left", fontsize=8)


def plot_llc_along(curves: Sequence[dict[str, Any]], path: str | Path, title: str) -> Path:
    """One panel per curve (``sltlab estimate module`` along checkpoints, one curve per
    restriction): λ̂ ± 2 SE at each checkpoint against its training step (a symmetric log scale
    where the steps span a decade or more, else linear), the checkpoints whose chains fail the
    mixing gate as open red circles, those carrying another warning as open purple triangles,
    those without an estimate as red crosses at 0 (left out of the line), each stage boundary
    ``detect_stages`` found (a dashed line) over its window (shaded; rises in blue, falls in
    orange), and each move steepest at the curve's first or last checkpoint over its window
    (hatched, with no line: not located)."""
    with new_figure(figsize=(8, 1 + 3.5 * len(curves)), layout="constrained") as fig:
        axes = fig.subplots(len(curves), 1, sharex=True, squeeze=False)[:, 0]
        for ax, curve in zip(axes, curves):
            _llc_curve(ax, curve)
        axes[-1].set_xlabel("training step" + (" (symmetric log scale)" if axes[-1].get_xscale() == "symlog" else ""))
        axes[0].set_title(title, fontsize=11)
        return save(fig, path)


def _llc_curve(ax, curve: dict[str, Any]) -> None:
    rows = curve["checkpoints"]
    steps = np.array([row["step"] for row in rows], dtype=float)
    mean = np.array([np.nan if row["llc"] is None else row["llc"] for row in rows])
    error = np.array([0.0 if row["standard_error"] is None else row["standard_error"] for row in rows])
    unmixed = ~np.array([row["mixed"] for row in rows], dtype=bool)
    ax.errorbar(steps, mean, yerr=2 * error, color="k", marker="o", markersize=3, linewidth=1, capsize=2,
                label=r"$\hat\lambda$ ± 2 SE")
    if unmixed.any():
        ax.plot(steps[unmixed], mean[unmixed], "o", markersize=8, markerfacecolor="none", color="tab:red",
                label=f"fails the mixing gate ({int(unmixed.sum())} of {len(steps)})")
    warned = np.array([bool(other_warnings(row["warnings"])) for row in rows], dtype=bool)
    if warned.any():
        ax.plot(steps[warned], mean[warned], "^", markersize=9, markerfacecolor="none", color="tab:purple",
                label=f"carries another warning ({int(warned.sum())} of {len(steps)}; see the text)")
    missing = np.isnan(mean)
    if missing.any():
        ax.plot(steps[missing], np.zeros(int(missing.sum())), "x", color="tab:red", markersize=8,
                label=f"no estimate ({int(missing.sum())} of {len(steps)}), drawn at 0")
    for direction, colour in (("rise", "tab:blue"), ("fall", "tab:orange")):
        found = [stage for stage in curve["stages"] if stage["direction"] == direction]
        for stage in found:
            ax.axvspan(stage["window_start"], stage["window_end"], color=colour, alpha=0.15)
            ax.axvline(stage["step"], color=colour, linestyle="--", linewidth=1)
        if found:
            ax.plot([], [], color=colour, linestyle="--", label=f"{direction} boundary (its window shaded)")
    for n, move in enumerate(curve["edge_moves"]):   # no line: the curve does not show where it is steepest
        ax.axvspan(move["window_start"], move["window_end"], facecolor="none", hatch="//", linewidth=0,
                   edgecolor="tab:blue" if move["direction"] == "rise" else "tab:orange",
                   label=None if n else "move steepest at an edge, not located (its window hatched)")
    positive = steps[steps > 0]
    if len(positive) and positive.max() >= 10 * positive.min():   # a decade or more: log-like, with 0 kept
        ax.set_xscale("symlog", linthresh=float(positive.min()))
    restricted = "every parameter" if curve["restricted_to"] is None else f"restricted to {curve['restricted_to']}"
    stages, edges = len(curve["stages"]), len(curve["edge_moves"])
    ax.set_ylabel(r"$\hat\lambda$" + f"\n{restricted}")
    ax.annotate(f"{stages} stage boundar{'y' if stages == 1 else 'ies'}"
                + (f", {edges} move{'s' if edges > 1 else ''} at an edge" if edges else "")
                + ("" if curve["stages_not_read"] is None else f" ({curve['stages_not_read']})"),
                (0.01, 0.97), xycoords="axes fraction", va="top", fontsize=9)
    ax.legend(loc="best", fontsize=9)
