"""The start lag of RMSProp-SGLD's chains, which all start at w*: what its λ̂ still lacks from it.

RMSProp-SGLD adapts its diagonal preconditioner G over the burn-in and then holds it
(:mod:`sltlab.estimators.rmsprop_sgld`). With G held, u = G^{-1/2}(w − w*) moves as plain SGLD on
the curvature C̃ = G^{1/2}(nβH + γ)G^{1/2} (Li et al. 2016, eq. 4, with the Euler–Maruyama
Ornstein–Uhlenbeck chain of :mod:`sltlab.estimators.start_spread`): along each eigenvector q_i of C̃,
eigenvalue c̃_i, a step ε scales the variance by a² = (1 − εc̃_i/2)² and adds ε, towards
v∞ = 1/(c̃_i(1 − εc̃_i/4)), and the draws' gap nβ·½δᵀHδ = ½uᵀ(C̃ − γG)u weighs it by
w_i = c̃_i − γ·q_iᵀGq_i. From v = 0 at w*, through the burn-in at its own step (the pilot step where
the sampler chose the step; G taken as held throughout) and on through the draws, the shortfall
is Σ_i ½w_i·(v∞_i − v_i(t)) averaged over the draws. Left out: a pull (w* no critical point), the
off-diagonal terms q_iᵀGq_j, the spread between chains' G (their mean is taken), and directions the
Hessian at w* does not see. A prediction, not a bound. Made from the whole Hessian, so up to
``MAX_METRIC_PARAMETERS`` moving coordinates.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from sltlab.estimators.config import MAX_METRIC_PARAMETERS
from sltlab.estimators.metric import loss_hessian
from sltlab.estimators.posterior import LocalPosterior
from sltlab.estimators.rmsprop_sgld import rmsprop_preconditioner
from sltlab.estimators.sampling import Batches
from sltlab.estimators.start_spread import SPREAD_ROWS, capped_burn_in, rest_limit, said_limit, shortest_burn_in


class PreconditionedModes:
    """The eigen-directions of C̃ (module docstring) with their weights in the draws' gap."""

    def __init__(self, hessian: np.ndarray, preconditioner: np.ndarray, nbeta: float, localization: float):
        root = np.sqrt(preconditioner)
        curvature = root[:, None] * (nbeta * hessian + localization * np.eye(len(root))) * root[None, :]
        self.curvatures, vectors = np.linalg.eigh((curvature + curvature.T) / 2)
        self.weights = self.curvatures - localization * (vectors ** 2 * preconditioner[:, None]).sum(0)

    def variance(self, phases: list[tuple[float, int]], kept: np.ndarray) -> np.ndarray:
        """The variance of each ``kept`` direction after ``phases`` of (step, steps) from w*."""
        curvatures = self.curvatures[kept]
        variance = np.zeros_like(curvatures)
        for step, steps in phases:
            factor = (1.0 - 0.5 * step * curvatures) ** 2
            at_rest = step / (1.0 - factor)
            variance = at_rest + (variance - at_rest) * factor ** float(steps)
        return variance

    def shortfall(self, phases: list[tuple[float, int]], step: float, recorded: np.ndarray) -> tuple[float, float]:
        """The shortfall over draws ``recorded`` steps of ``step`` after ``phases``, and λ̂ at rest.
        Directions with w_i ≤ 0 or c̃_i ≤ 0, or so stiff that a step of the run or of a phase reaches
        εc̃ ≥ 2 (the step's own concern), are left out."""
        fastest = max([step] + [phase for phase, _ in phases])
        kept = (self.weights > 0) & (self.curvatures > 0) & (fastest * self.curvatures < 2.0)
        curvatures, weights = self.curvatures[kept], self.weights[kept]
        factor = (1.0 - 0.5 * step * curvatures) ** 2
        at_rest = step / (1.0 - factor)
        decay = (factor[:, None] ** np.asarray(recorded, dtype=np.float64)).mean(-1)
        lacking = 0.5 * weights * (at_rest - self.variance(phases, kept)) * decay
        return float(lacking.sum()), float((0.5 * weights * at_rest).sum())


def held_modes(posterior: LocalPosterior, batches: Batches, state, alive: Tensor,
               seed: int) -> tuple[PreconditionedModes | None, str | None]:
    """The :class:`PreconditionedModes` at w* with the preconditioner the chains of ``state`` hold
    (their mean over the ``alive`` ones), the Hessian on at most ``SPREAD_ROWS`` rows drawn with
    ``seed``; or None and a note saying why the check cannot be made."""
    dim = posterior.center.shape[-1]
    if dim > MAX_METRIC_PARAMETERS:
        return None, (f"the start-lag check of RMSProp-SGLD (BurnInWarning) was not made: it takes the whole Hessian, "
                      f"and {dim:,} parameters exceed its {MAX_METRIC_PARAMETERS:,}")
    rows = batches.subsample(SPREAD_ROWS, torch.Generator(posterior.center.device).manual_seed(seed))
    try:
        hessian = loss_hessian(posterior.loss, posterior.center, rows).cpu().numpy()
    except (RuntimeError, torch.linalg.LinAlgError) as error:
        said = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return None, f"the start-lag check of RMSProp-SGLD was not made: the Hessian at w* could not be taken ({said})"
    held = rmsprop_preconditioner(state, posterior.localization)[alive].double().mean(0).cpu().numpy()
    return PreconditionedModes(hessian, held, float(posterior.nbeta), posterior.localization), None


def settling_steps(posterior: LocalPosterior, batches: Batches, state, alive: Tensor, seed: int, *,
                   warm_up_step: float, burnin: int, step: float, draws: int,
                   thin: int) -> tuple[int, str | None, PreconditionedModes | None]:
    """Where RMSProp-SGLD chose its step and no burn-in was given: the steps at the run's ``step`` to
    take after the ``burnin`` that adapted the preconditioner (at ``warm_up_step``) and before the
    draws, the fewest after which the model predicts the draws lack at most ``SHORTFALL_SHARE`` of
    the λ̂ it predicts at rest (and ``SHORTFALL_FLOOR``), at most ``LAG_BURN_IN_CAP`` times the draws'
    steps, with a note; 0 and no note where none are needed or the model cannot be made (the
    check after the run then says why). The model made, for the check after the run to reuse (the
    preconditioner is held from here on)."""
    if not bool(alive.any()):
        return 0, None, None
    modes, _ = held_modes(posterior, batches, state, alive, seed)
    if modes is None:
        return 0, None, None
    recorded = thin * np.arange(draws)   # a draw reads L_b where its step began
    at_rest = modes.shortfall([], step, recorded)[1]
    limit = rest_limit(at_rest)
    needed = shortest_burn_in(lambda extra: modes.shortfall([(warm_up_step, burnin), (step, extra)], step,
                                                            recorded)[0], limit, 0)
    if needed == 0:
        return 0, None, modes
    settling, capped = capped_burn_in(needed, draws, thin)
    note = (f"{settling:,} more burn-in steps at the run's step {step:.3g}, after the {burnin:,} that adapted the "
            f"preconditioner{capped}: the chains start at w*, and with the preconditioner held the quadratic model of "
            f"the loss there predicts that they would otherwise lack more than {limit:.2g} of the λ̂ = {at_rest:.4g} "
            "it predicts at rest (give burnin=, --burnin, to set it)")
    return settling, note, modes


def rmsprop_lag_concern(posterior: LocalPosterior, batches: Batches, final_state, alive: Tensor, seed: int, *,
                        warm_up_step: float, burnin: int, step: float, steps: int, draws: int, thin: int,
                        mean: float | None, standard_error: float | None,
                        modes: PreconditionedModes | None = None) -> tuple[str | None, str | None]:
    """A sentence where the shortfall (module docstring) exceeds λ̂'s standard error,
    ``SHORTFALL_SHARE`` of |λ̂| and ``SHORTFALL_FLOOR``, with the burn-in (at ``warm_up_step``, as
    ``burnin=`` would run it) that would bring it under; or a note saying why the check was not made.
    ``final_state`` holds the chains' held preconditioner; ``alive`` marks the chains kept; of the run's
    ``steps``, those neither burn-in nor before a kept draw (a rerun's, which went on from the run
    before) count as more burn-in at ``step``. ``modes``: the model made before the run, reused
    (:func:`settling_steps`)."""
    if mean is None or standard_error is None or not bool(alive.any()):
        return None, None
    if modes is None:
        modes, note = held_modes(posterior, batches, final_state, alive, seed)
        if modes is None:
            return None, note
    recorded = thin * np.arange(draws)   # a draw reads L_b where its step began
    rerun = max(steps - burnin - draws * thin, 0)
    shortfall, at_rest = modes.shortfall([(warm_up_step, burnin), (step, rerun)], step, recorded)
    limit = said_limit(mean, standard_error)
    if not shortfall > limit:
        return None, None
    burn_in = _burn_in_needed(modes, warm_up_step, burnin, step, recorded, limit)
    then = f", then {rerun:,} at the run's step" if rerun else ""
    return (f"RMSProp-SGLD's chains, all started at w*, have not yet spread out: with its preconditioner held, the "
            f"quadratic model of the loss at w* predicts λ̂ = {mean:.4g} short by about {shortfall:.3g} over these "
            f"draws (λ̂ at rest about {at_rest:.4g}); R-hat cannot see a lag that all chains share; a burn-in of about "
            f"{burn_in:,} steps (burnin=, --burnin; {burnin:,} here{then}) would bring the predicted lag under "
            f"{limit:.2g}, "
            "or use a Metropolis-adjusted sampler (mala)"), None


def _burn_in_needed(modes: PreconditionedModes, warm_up_step: float, burnin: int, step: float, recorded: np.ndarray,
                    limit: float) -> int:
    """The shortest burn-in at ``warm_up_step``, at least ``burnin``, after which the shortfall is at most
    ``limit``: what ``burnin=`` given would run, with no steps after it before the draws."""
    return shortest_burn_in(lambda steps: modes.shortfall([(warm_up_step, steps)], step, recorded)[0], limit, burnin)
