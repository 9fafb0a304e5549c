"""The LLC along a saddle-to-saddle run, and the stages found on it set beside the steps where
the end-to-end rank changed.

At every chosen checkpoint λ̂ is estimated against the relabelled problem (targets = the
checkpoint's own outputs, :func:`sltlab.verification.dynamics.saddle_plateaus.relabelled_loss`), where
the checkpoint is an exact minimum whose learning coefficient follows Aoyagi's staircase. The
checkpoints are spaced evenly in log time from a quarter of the predicted first escape
(:mod:`sltlab.verification.dynamics.saddle_schedule`: a prediction, not the observed ranks) to
the end of the run, so :func:`sltlab.estimators.stages.detect_stages` sees every
stage with the same resolution. The rank changes observed in training are the ground truth
no other test of stage detection has: every one must be matched by one detected boundary whose
window holds it, with no boundary left over.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import torch

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.problems import estimate_llc_of_problems
from sltlab.estimators.stages import MIN_CHECKPOINTS, detect_stages
from sltlab.models.deep_linear import DeepLinearNetwork
from sltlab.models.training import TrainingRun
from sltlab.verification.dynamics.saddle_plateaus import SADDLE_ANNEAL, relabelled_loss, stacked_relabelled
from sltlab.verification.dynamics.stage_matching import match_boundaries

# Short MALA chains (warm-up, burn-in and draws as in the plateau sampler): on [10,4,4,4,10] they
# read 6.0, 12.5, 19.3 and 25.6 at plateaus of λ_k = 6, 13, 19.5 and 26, where SGLD at the
# curvature rule's step (ten times smaller) read 2.8, 9.2, 17.5 and 25.5 with R-hat up to 2.2:
# its chains never left w* in the flat directions. 60 checkpoints of 16 chains, not 30 of 32:
# there the rank-2 plateau spans 0.36 in log time, two checkpoints at 30, and its two rank
# changes merged into one boundary; at 60 every change had its own (about 7 s per checkpoint on
# one shared core either way: a run this small costs by the step, not by the chain). Cooled from
# nβ/10 as the plateau sampler: uncooled, the curve of [8,6,6,6,6,8] rose by only about 0.7 at
# its first rank change (λ_k from 12 to 16), too little to be found; cooled, by about 2.
# 4,000 draws, not 500 or 2,000: on [8,8,7], whose λ_k rise by 1.5, 1.5, 1 and 1, the curve's SEs
# of 0.2–0.48 at 500 hid the last rank change from the random start and merged the first three
# into one ramp from the aligned start; at 2,000 the aligned start still merged two (69 missed);
# at 4,000 each change had its own boundary on that draw of one-hidden-layer networks (aligned,
# numpy default_rng(20261204)) and on an independent one (default_rng(20261210)), for half as many
# steps again.
CURVE_SAMPLER = LLCConfig(sampler="mala", chains=16, draws=4000, burnin=2000, localization=1.0,
                          localize_at="true_parameter", anneal=SADDLE_ANNEAL)
CURVE_CHECKPOINTS = 60


def curve_indices(steps: Sequence[int], first_step: float, count: int = CURVE_CHECKPOINTS) -> list[int]:
    """Indices of the checkpoints nearest to ``count`` steps spaced evenly in log(1 + step)
    from ``first_step`` to the last checkpoint (duplicates dropped)."""
    steps = np.asarray(steps, dtype=float)
    start = max(float(first_step), float(steps[1]) if len(steps) > 1 else 0.0)
    targets = np.expm1(np.linspace(np.log1p(start), np.log1p(steps[-1]), count))
    return sorted({int(np.argmin(np.abs(steps - target))) for target in targets})


def llc_curve(run: TrainingRun, network: DeepLinearNetwork, x: torch.Tensor, indices: Sequence[int],
              sampler: LLCConfig, n: int) -> dict[str, list]:
    """λ̂ ± SE (relabelled problem) at the checkpoints ``indices`` of ``run``, sampled together
    (:func:`~sltlab.estimators.problems.estimate_llc_of_problems`): each checkpoint's chains at
    its own centre against its own targets, with its own step, on common random numbers within
    each run (one run holds all 60 checkpoints at the defaults), so that neighbouring checkpoints
    differ by their posteriors rather than their noise (one checkpoint after another at one seed
    shared them too; on independent noise the first rank change of [8,6,6,6,6,8], a rise of
    about 2 at SEs of 0.4, went unfound). A run this small
    costs by the step, not by the chain: one checkpoint after another took about 7 s each."""
    started = time.perf_counter()
    positions = [run.positions[index] for index in indices]
    results = estimate_llc_of_problems([relabelled_loss(network, x, position) for position in positions], positions,
                                       (), sampler, stack=stacked_relabelled, n=n,
                                       shared_noise=True)
    estimates = [result.estimate for result in results]
    return {"steps": [int(run.steps[index]) for index in indices],
            "llc_mean": [estimate.mean for estimate in estimates],
            "llc_se": [estimate.standard_error for estimate in estimates],
            "rhat": [estimate.rhat for estimate in estimates], "seconds": time.perf_counter() - started}


def stages_beside_rank_changes(curve: dict[str, list], true_changes: Sequence[int]) -> dict[str, Any]:
    """detect_stages on ``curve`` and each true rank change matched to a boundary's window. A move
    steepest at the curve's first or last checkpoint places no rank change, so one found leaves
    the rank changes not all matched, as a spurious boundary does."""
    usable = [i for i, (mean, error) in enumerate(zip(curve["llc_mean"], curve["llc_se"]))
              if mean is not None and error is not None and error > 0]
    if len(usable) < MIN_CHECKPOINTS:
        return {"boundaries": [], "edge_moves": [], "matched": [], "missed": list(true_changes), "spurious": [],
                "all_matched": False, "note": f"only {len(usable)} checkpoints had a finite estimate"}
    detection = detect_stages([curve["steps"][i] for i in usable], [curve["llc_mean"][i] for i in usable],
                              [curve["llc_se"][i] for i in usable])
    match = match_boundaries(true_changes, detection.boundaries)
    return {
        "boundaries": [b._asdict() for b in detection.boundaries],
        "edge_moves": [move._asdict() for move in detection.edge_moves],
        "critical_steps": list(detection.critical),
        "bandwidth": detection.bandwidth, "threshold": detection.threshold,
        "matched": [{"true_step": step, "boundary_step": b.step, "window": [b.window_start, b.window_end]}
                    for step, b in match.matched],
        "missed": list(match.missed), "spurious": [b._asdict() for b in match.spurious],
        "all_matched": not match.missed and not match.spurious and not detection.edge_moves,
    }
