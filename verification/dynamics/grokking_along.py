"""The grokking network's LLC along training for every seed, through
:func:`~sltlab.estimators.along.estimate_llc_along`, with stages read from each curve.

Each seed's checkpoints share one SGLD step, calibrated
(:func:`~sltlab.estimators.calibrate.calibrate_step_size`: a halving sweep from twice the
curvature rule's step until two pilots agree within 5 %) at the seed's memorisation checkpoint,
and one batched run of all its checkpoints' chains. The memorisation checkpoint, because λ̂
peaks there (on seed 0 about 26 at γ = 1000, 180 at γ = 100) and a 5 % equivalence is then far
above a pilot's noise; after grokking λ̂ is 3–5·10⁻⁴ (0.2 at γ = 100), and calibrating at the
last checkpoint found no stable step.
Stages are the boundaries of :func:`~sltlab.estimators.stages.detect_stages`
(critical points of λ̂ against log training time, Hoogland et al. 2024), set beside the
memorisation and grokking steps: which boundary's window holds each. Nothing here knows where
the stages should be.
"""

from __future__ import annotations

import warnings
from typing import Any

from torch import Tensor

from sltlab.estimators.along import estimate_llc_along
from sltlab.estimators.calibrate import CalibrationError
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.elasticity import Elasticity, elasticity_concern
from sltlab.estimators.functional import FunctionalModel
from sltlab.estimators.sample_losses import cross_entropy
from sltlab.estimators.gate import ESS_MIN, RHAT_MAX
from sltlab.estimators.notices import EstimateWarning
from sltlab.estimators.stages import MIN_CHECKPOINTS, detect_stages
from sltlab.models.modular import ModularAdditionNetwork, ModularRun, ModularSplit
from sltlab.verification.dynamics.stage_matching import match_boundaries

# SGLD on batches of 128 training pairs at each checkpoint, the step calibrated; it comes out
# near 3·10⁻⁵, where the directions held only by γ relax in about 1/(εγ) steps. γ = 1000 makes
# that about 40 steps (at γ = 100, about 300, and 2,000 draws left seed 0's chains with R-hat up
# to 1.08). Yet at 1,000 draws after 500 burn-in steps 19–36 of each seed's 55 checkpoints read a
# block R-hat above 1.05 (up to 1.29) and 5–18 an ESS under 200; at 4,000 after 2,000, 0–9 (17 of
# the 275, up to 1.13: 2 near initialisation, 4 before grokking, 11 through and after it) and
# none under ESS 200; the same checkpoint sampled again reads otherwise (1.090, 1.057, 1.010).
CURVE_CONFIG = LLCConfig(sampler="sgld", chains=4, draws=4000, burnin=2000, localization=1000.0, batch_size=128,
                         localize_at="true_parameter")
# Eight times the draws everywhere left seed 0 with 2 checkpoints above 1.05 at twice the cost of
# four; instead the checkpoints that fail the gate go on from where their chains ended, together,
# up to twice, each time doubling their draws (:mod:`~sltlab.estimators.sample_on`): the 17 of
# 275 that failed at 4,000 draws all passed at 8,000, for about 4 % more chain-steps.
CURVE_EXTENSIONS = 2


def checkpoint_states(run: ModularRun, network: ModularAdditionNetwork) -> list[dict[str, Tensor]]:
    """Every checkpoint's flat position as a state dict of ``network``."""
    model = FunctionalModel(network, cross_entropy)
    return [model.unflatten(position) for position in run.positions]


def seed_curve(run: ModularRun, network: ModularAdditionNetwork, split: ModularSplit, config: LLCConfig,
               memorised: int | None, *, extend_unmixed: int = CURVE_EXTENSIONS,
               progress: bool = False) -> dict[str, Any]:
    """λ̂ ± SE, R-hat and ESS at every checkpoint of one seed's run (training pairs only), with
    the step calibrated at the ``memorised`` step's checkpoint (the last when None), unmixed
    checkpoints going on up to ``extend_unmixed`` times; JSON-ready.
    A sweep that finds no stable step is reported as ``calibration_error``, with no curve."""
    steps = run.steps.tolist()
    calibrate_at = steps.index(memorised) if memorised in steps else len(steps) - 1
    with warnings.catch_warnings():   # every checkpoint's mixing is in the curve's rows
        warnings.simplefilter("ignore", EstimateWarning)
        try:
            along = estimate_llc_along(checkpoint_states(run, network), (split.train_pairs, split.train_labels),
                                       model=network, loss="cross_entropy", config=config, calibrate_at=calibrate_at,
                                       extend_unmixed=extend_unmixed, progress=progress)
        except CalibrationError as error:
            return {"calibrated_at_step": steps[calibrate_at], "calibration_error": str(error)}
    resolved, draws = along.results[0].config, [result.config.draws for result in along.results]
    calibrated = along.calibration is not None   # MALA is not calibrated: each checkpoint's warm-up tunes its step
    curve = {"calibrated_at_step": steps[calibrate_at] if calibrated else None,
             "calibration": along.calibration.reason if calibrated else along.note,
             "step_size": resolved.step_size, "draws": min(draws), "draws_per_checkpoint": draws,
             "extend_unmixed": extend_unmixed, "burnin": resolved.burnin,
             "chains": resolved.chains, "nbeta": resolved.nbeta, "batched": along.note,
             "llc_mean": along.means, "llc_se": along.standard_errors, "rhat": along.rhats, "ess": along.esses,
             "diverged_chains": [len(result.estimate.diverged_chains) for result in along.results],
             "gamma_elasticity": [None if r.elasticity is None else r.elasticity.value for r in along.results],
             "gamma_elasticity_se": [None if r.elasticity is None else r.elasticity.standard_error
                                     for r in along.results],
             "sampling_seconds": sum(result.trace.seconds for result in along.results)}
    return curve


def held_by_gamma(curve: dict[str, Any], localization: float) -> dict[str, Any]:
    """How many of a curve's checkpoints read d log λ̂/d log γ below the line where an estimate
    warns that γ holds its chains (:func:`~sltlab.estimators.elasticity.elasticity_concern`);
    nothing for a curve cached before the elasticity was recorded."""
    if "gamma_elasticity" not in curve:
        return {}
    readings = [None if value is None else Elasticity(value, error)
                for value, error in zip(curve["gamma_elasticity"], curve["gamma_elasticity_se"])]
    return {"checkpoints_held_by_gamma": sum(elasticity_concern(e, localization) is not None for e in readings)}


def curve_mixing(rhats: list[float | None], esses: list[float | None]) -> dict[str, Any]:
    """A curve's mixing against the gate (R-hat ≤ ``RHAT_MAX``, ESS ≥ ``ESS_MIN``): its worst
    checkpoint and how many checkpoints fail each part (a checkpoint with no reading fails it)."""
    over = sum(r is None or r > RHAT_MAX for r in rhats)
    return {"max_rhat": max((r for r in rhats if r is not None), default=None), "checkpoints_over_rhat": over,
            "min_ess": min((e for e in esses if e is not None), default=None),
            "checkpoints_under_ess": sum(e is None or e < ESS_MIN for e in esses), "rhat_within_target": over == 0}


def curve_stages(steps: list[int], means: list[float | None], errors: list[float | None],
                 memorised: int | None, grokked: int | None) -> dict[str, Any]:
    """The detected boundaries, the moves steepest at the curve's first or last checkpoint (not
    located), and for the memorisation and the grokking step, each on its own, the boundary whose
    window holds it (None: no boundary's window holds it; one boundary may hold both)."""
    kept = [i for i, (m, s) in enumerate(zip(means, errors)) if m is not None and s is not None and s > 0]
    if len(kept) < MIN_CHECKPOINTS:
        return {"stages": [], "edge_moves": [], "critical_steps": [], "memorisation_boundary": None,
                "grokking_boundary": None}
    detection = detect_stages([steps[i] for i in kept], [means[i] for i in kept], [errors[i] for i in kept])

    def holder(step: int | None) -> int | None:
        matched = match_boundaries([step], detection.boundaries).matched if step is not None else ()
        return matched[0][1].step if matched else None

    return {"stages": [boundary._asdict() for boundary in detection.boundaries],
            "edge_moves": [move._asdict() for move in detection.edge_moves], "critical_steps": list(detection.critical),
            "memorisation_boundary": holder(memorised), "grokking_boundary": holder(grokked)}
