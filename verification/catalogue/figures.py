"""Theory figures: the deep-linear-network staircase and the width × rank phase diagram."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from sltlab.theory import deep_linear, dln_staircase
from sltlab.theory.coefficient import require_int
from sltlab.theory.deep_linear import validate_widths
from sltlab.verification.figure_style import new_figure, save, text_points
MAX_ANNOTATED_SIDE = 24  # phase diagrams up to this many columns and rows print their values
# Cells narrower than this (points) are drawn without their white edges, which would cover them:
# at 3,000 hidden widths on 16 inches the edges alone filled the picture.
MIN_EDGED_CELL_POINTS = 6.0


def plot_staircase(widths: Sequence[int], path: str | Path) -> Path:
    """Plot the exact λ_k of a deep linear network for every teacher rank k.

    Parameters
    ----------
    widths : sequence of int
        [input, hidden..., output] widths, each ≥ 1.
    path : str or Path
        Where to write the figure (format from the suffix, e.g. ``.png``); parent folders are
        created.

    Returns
    -------
    Path
        The written file.

    Notes
    -----
    λ_k = Aoyagi(widths, r = k) (Aoyagi, Neural Networks 172 (2024), Thm 1) is the plateau
    value predicted along saddle-to-saddle training (Jacot et al. 2021). Ranks whose pole
    has multiplicity m > 1 are labelled with m.
    """
    widths = validate_widths(widths)
    staircase = dln_staircase(widths)
    ranks = np.arange(len(staircase))
    lams = np.array([lc.lam_float for lc in staircase])
    half_dim = staircase[0].dim / 2

    with new_figure(figsize=(7, 4.6), layout="constrained") as fig:
        ax = fig.subplots()
        multiple = np.array([lc.multiplicity > 1 for lc in staircase])
        ax.step(ranks, lams, where="mid", color="tab:blue", alpha=0.35, linewidth=1.5)
        ax.plot(ranks[~multiple], lams[~multiple], "o", color="tab:blue", markersize=7,
                label=r"exact $\lambda_k$ (Aoyagi 2024), m = 1")
        if multiple.any():
            values = sorted({lc.multiplicity for lc in staircase if lc.multiplicity > 1})
            ax.plot(ranks[multiple], lams[multiple], "D", color="tab:red", markersize=7,
                    label=r"exact $\lambda_k$, m > 1 (m = " + ", ".join(map(str, values)) + ")")
        regular_in_view = half_dim <= 2 * lams.max()  # else the reference would flatten the steps
        if regular_in_view:
            ax.axhline(half_dim, color="0.35", linestyle="--", linewidth=1.2,
                       label=f"regular model d/2 = {half_dim:g}")
        else:
            ax.plot([], [], " ", label=f"regular model d/2 = {half_dim:g} (off scale)")
        axes_inches = 0.85 * fig.get_figwidth()   # the axes' share of the figure's width
        for rank, lc in zip(ranks, staircase) if labels_fit([str(lc.lam) for lc in staircase], axes_inches) else ():
            ax.annotate(f"{lc.lam}", (rank, lc.lam_float), textcoords="offset points",
                        xytext=(0, 8), ha="center", va="bottom", fontsize=9, color="0.15")
            if lc.multiplicity > 1:
                ax.annotate(f"m={lc.multiplicity}", (rank, lc.lam_float), textcoords="offset points",
                            xytext=(0, -9), ha="center", va="top", fontsize=9, color="tab:red")
        ax.set_xlabel("rank k of the teacher")
        ax.set_ylabel("learning coefficient λ")
        ax.set_title(f"Deep linear network staircase, widths {list(widths)}, d = {staircase[0].dim}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, (half_dim if regular_in_view else lams.max()) * 1.3)  # legend band on top
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", ncols=2, fontsize=9)
        return save(fig, path)


def labels_fit(labels: Sequence[str], axes_inches: float, fontsize: float = 9) -> bool:
    """Whether one label per point, points evenly spaced across ``axes_inches``, leaves each
    label room (:func:`text_points`) without touching its neighbours."""
    widest = max(text_points(label, fontsize) for label in labels)
    return widest <= 0.9 * 72 * axes_inches / (len(labels) + 1)


def cell_edges(columns: int, rows: int, width_inches: float, height_inches: float) -> dict:
    """pcolormesh's edge settings for a grid of ``columns`` × ``rows`` cells on a figure of that
    size: white edges where every cell is at least ``MIN_EDGED_CELL_POINTS`` wide and high, none
    otherwise (the axes take about 3/4 of the figure's width and 2/3 of its height)."""
    smallest_cell = 72 * min(0.75 * width_inches / columns, 0.65 * height_inches / rows)
    return dict(edgecolors="white", linewidth=0.4) if smallest_cell >= MIN_EDGED_CELL_POINTS else dict(linewidth=0)


# Each cell's λ is exact (Aoyagi's formula over the depth), at a cost that grows with the depth:
# about 7·10⁻⁵ s a cell at depth 3 and 4·10⁻³ s at depth 1,000 (0.23 s at 10,000). These bound a call
# at about 20 s, where --io 3,000 --max-width 3,000 had run for minutes, unsaid.
MAX_PHASE_CELLS = 250_000
MAX_PHASE_DEPTH = 1_000
MAX_PHASE_WORK = 5_000_000   # cells × depth


def plot_phase(depth: int, io: int, max_width: int, path: str | Path) -> Path:
    """Heatmap of λ/(d/2) over hidden width H and teacher rank r for widths [io, H, …, H, io].

    Parameters
    ----------
    depth : int
        Number of weight matrices L ≥ 2 (so L − 1 hidden layers, all of width H).
    io : int
        Input and output width, ≥ 1.
    max_width : int
        Largest hidden width H shown (H = 1, …, max_width).
    path : str or Path
        Where to write the figure (parent folders are created); it is returned.

    Notes
    -----
    λ/(d/2) is 1 for a regular model and smaller the more singular the network; cells with
    r > H (no such teacher) are grey. λ from Aoyagi, Neural Networks 172 (2024), Thm 1.
    """
    depth = require_int("depth", depth, 2)
    io = require_int("io", io, 1)
    max_width = require_int("max_width", max_width, 1)
    cells = (io + 1) * max_width
    if depth > MAX_PHASE_DEPTH or cells > MAX_PHASE_CELLS or cells * depth > MAX_PHASE_WORK:
        raise ValueError(f"the phase diagram is drawn up to depth {MAX_PHASE_DEPTH:,}, {MAX_PHASE_CELLS:,} cells "
                         f"((io + 1) × max_width) and {MAX_PHASE_WORK:,} cells × depth, got depth {depth:,} and "
                         f"{cells:,} cells")
    hidden_widths = np.arange(1, max_width + 1)
    ranks = np.arange(io + 1)
    ratio = np.ma.masked_invalid(np.full((len(ranks), len(hidden_widths)), np.nan))  # masked where r > h
    for column, hidden in enumerate(hidden_widths):
        widths = [io] + [int(hidden)] * (depth - 1) + [io]
        for rank in range(min(int(hidden), io) + 1):
            ratio[rank, column] = deep_linear(widths, rank).regular_ratio

    colormap = matplotlib.colormaps["viridis"].with_extremes(bad="0.85")
    width_inches = min(max(6.5, 0.45 * max_width + 2.5), 16)
    height_inches = min(max(4.5, 0.38 * (io + 1) + 1.8), 12)
    edges = cell_edges(len(hidden_widths), len(ranks), width_inches, height_inches)
    with new_figure(figsize=(width_inches, height_inches), layout="constrained") as fig:
        ax = fig.subplots()
        # the cells' edges given, half a step each side: "nearest" shading has no width to give one column
        image = ax.pcolormesh(np.arange(max_width + 1) + 0.5, np.arange(io + 2) - 0.5, ratio, cmap=colormap, vmin=0,
                              vmax=1, shading="flat", **edges)
        fig.colorbar(image, ax=ax, label="λ / (d/2)")
        if max(ratio.shape) <= MAX_ANNOTATED_SIDE:
            _annotate_cells(ax, hidden_widths, ranks, ratio)
        ax.set_xlabel("hidden width H")
        ax.set_ylabel("rank r of the teacher")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))   # one column: one tick, at H = 1
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        hidden_text = ", ".join(["H"] * (depth - 1)) if depth <= 4 else f"H × {depth - 1}"
        ax.set_title(f"How singular is a deep linear network?\n"
                     f"widths [{io}, {hidden_text}, {io}], L = {depth} weight matrices")
        fig.legend(handles=[Patch(facecolor="0.85", label="r > H: no such teacher")],
                   loc="outside lower right", frameon=False)
        return save(fig, path)


def _annotate_cells(ax, hidden_widths: np.ndarray, ranks: np.ndarray, ratio: np.ma.MaskedArray) -> None:
    fontsize = 8 if len(hidden_widths) <= 16 else 7
    for row, rank in enumerate(ranks):
        for column, hidden in enumerate(hidden_widths):
            if ratio.mask[row, column]:
                continue
            value = float(ratio[row, column])
            ax.text(hidden, rank, f"{value:.2f}", ha="center", va="center", fontsize=fontsize,
                    color="black" if value > 0.6 else "white")
