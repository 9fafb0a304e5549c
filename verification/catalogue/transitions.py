"""Theory figures of Bayesian phase transitions: the free energy of each phase over n and the
phase occupancy it predicts, with the critical n of every transition.

F_n = n·L + λ·log n − (m − 1)·log log n + c (Watanabe 2009; Chen, Lau, Mendel, Wei & Murfet
2023); a class of phases (a k-gon whatever the sign of its dead biases) counts as one, with
F = −log Σ exp(−F_phase). The curves are computed once into a JSON-ready dict, so a study can
store them and re-plot without the theory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from sltlab.theory.free_energy import Phase, PhaseClass, class_free_energy, predicted_occupancy, transitions
from sltlab.verification.figure_style import new_figure, save, text_points

CLASS_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
                 "tab:olive", "tab:cyan")
VARIANTS = {"with_constant": ("-", "with c = ½‖w*‖²"), "without_constant": ("--", "without c"),
            "laplace": (":", "with the Laplace constant")}


def prediction_curves(classes: Mapping[str, PhaseClass], n: np.ndarray,
                      laplace_classes: Mapping[str, PhaseClass] | None = None) -> dict[str, Any]:
    """F_n of each phase minus the least class free energy (with c), and the predicted
    occupancy of each class with c, without c and (when given) with the Laplace constants, on
    the grid ``n``."""
    energies = {name: class_free_energy(members, n) for name, members in classes.items()}
    lowest = np.min(np.stack(list(energies.values())), axis=0)
    phases = {phase.name: (name, phase.free_energy_float(n)) for name, members in classes.items()
              for phase in ((members,) if isinstance(members, Phase) else members)}
    occupancy = {"with_constant": predicted_occupancy(classes, n),
                 "without_constant": predicted_occupancy(classes, n, with_constant=False)}
    if laplace_classes:
        shares = predicted_occupancy(laplace_classes, n)
        occupancy["laplace"] = np.array([shares[list(laplace_classes).index(name)] if name in laplace_classes
                                         else np.zeros_like(n) for name in classes])
    return {"n": n.tolist(), "classes": list(classes),
            "free_energy": {name: {"class": group, "values": (value - lowest).tolist()}
                            for name, (group, value) in phases.items()},
            "occupancy": {variant: {name: row.tolist() for name, row in zip(classes, shares)}
                          for variant, shares in occupancy.items()}}


def draw_free_energy(ax, curves: dict[str, Any], critical: Sequence[float]) -> None:
    """F_n(phase) − min F_n over n, one line per phase (coloured by its class), and the
    predicted critical n."""
    n = np.array(curves["n"])
    colours = dict(zip(curves["classes"], CLASS_COLOURS))
    seen: dict[str, int] = {}
    for name, curve in curves["free_energy"].items():
        order = seen[curve["class"]] = seen.get(curve["class"], -1) + 1
        ax.plot(n, curve["values"], color=colours[curve["class"]], linestyle=("-", "--", "-.", ":")[order % 4],
                label=name)
    for at in critical:
        ax.axvline(at, color="0.3", linestyle="-", linewidth=0.8)
    log_n_axis(ax, np.log10(n[-1] / n[0]))
    ax.set_ylim(-0.5, 15)
    ax.set_ylabel(r"$F_n - \min F_n$ (nats)")
    ax.set_title("free energy of each phase (with c)")
    ax.legend(fontsize=8, loc="upper right")


def log_n_axis(ax, decades: float) -> None:
    """A logarithmic n axis over ``decades`` decades, labelled in plain numbers at 1, 2 and 5 per
    decade where it spans at most four, at each power of ten beyond (where 1, 2, 5 ran together)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades <= 4 else (1.0,)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("n")


def draw_predicted_occupancy(ax, curves: dict[str, Any], *, variants: Sequence[str] = tuple(VARIANTS)) -> None:
    """The predicted share of each class over n, one line style per variant of c."""
    n = np.array(curves["n"])
    for variant in variants:
        if variant not in curves["occupancy"]:
            continue
        style, _ = VARIANTS[variant]
        for name, colour in zip(curves["classes"], CLASS_COLOURS):
            ax.plot(n, curves["occupancy"][variant][name], color=colour, linestyle=style, linewidth=1.2, alpha=0.8)
    for variant in variants:
        if variant in curves["occupancy"]:
            ax.plot([], [], color="0.3", linestyle=VARIANTS[variant][0], label=f"predicted, {VARIANTS[variant][1]}")
    log_n_axis(ax, np.log10(n[-1] / n[0]))
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("posterior share")


def plot_transitions(classes: Mapping[str, PhaseClass], title: str, path: str | Path, *,
                     laplace_classes: Mapping[str, PhaseClass] | None = None) -> Path:
    """The free energy of each phase (or class) over n and its predicted occupancy, with the
    critical n of every transition; the range of n spans them."""
    found = transitions(classes)
    ends = [t.critical_n for t in (*found, *(transitions(laplace_classes) if laplace_classes else ()))]
    if ends:
        low, high = min(ends) / 4, max(ends) * 4
    else:
        low, high = 3.0, 1e5
    n = np.geomspace(max(3.0, low), high, 400)
    curves = prediction_curves(classes, n, laplace_classes)
    with new_figure(figsize=(14, 4.8), layout="constrained") as fig:
        ax_energy, ax_share = fig.subplots(1, 2)
        draw_free_energy(ax_energy, curves, [t.critical_n for t in found])
        draw_predicted_occupancy(ax_share, curves)
        labels = [f"{t.before} → {t.after}\nn = {t.critical_n:.0f}" for t in found]
        heights = label_heights([t.critical_n for t in found], labels, np.log10(high / max(3.0, low)))
        for t, label, height in zip(found, labels, heights):
            ax_share.axvline(t.critical_n, color="0.3", linewidth=0.8)
            ax_share.annotate(label, (t.critical_n, height), textcoords="offset points", xytext=(4, 0), fontsize=8)
        for name, colour in zip(curves["classes"], CLASS_COLOURS):
            ax_share.plot([], [], color=colour, label=name)
        ax_share.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax_share.set_title("predicted phase occupancy")
        fig.suptitle(title)
        return save(fig, path)


LABEL_HEIGHTS = (0.5, 0.3, 0.7, 0.15, 0.85)   # where transition labels go, in turn, on the share axis


def label_heights(at: Sequence[float], labels: Sequence[str], decades: float, axes_points: float = 400) -> list[float]:
    """A height on the share axis for the label of each transition at n = ``at`` (increasing),
    each the first of ``LABEL_HEIGHTS`` where it does not run into the label before it at that
    height: a label starts at its n and takes its width in the 8-point font (:func:`text_points`)
    of the ``axes_points`` that span ``decades`` decades of n."""
    ends: dict[float, float] = {}   # height → where, in log10 n, the last label placed there ends
    heights = []
    for n, label in zip(at, labels):
        start = np.log10(n)
        width = text_points(label, 8) / axes_points * decades
        crowded = LABEL_HEIGHTS[len(heights) % len(LABEL_HEIGHTS)]   # every height taken: overlap, in turn
        height = next((h for h in LABEL_HEIGHTS if ends.get(h, -np.inf) < start), crowded)
        ends[height] = start + width
        heights.append(height)
    return heights
