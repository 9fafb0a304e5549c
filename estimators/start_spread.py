"""Chains that start together at w* and have not yet spread: what an SGLD λ̂ still lacks from it.

Every SGLD chain starts at w*, so along a direction of curvature c = nβh + γ of the localised
potential U = nβ·L_n + (γ/2)‖w − w*‖² all chains spread at one rate, which neither R-hat
(between chains that all lag alike) nor the drift between quarters of the draws sees. In the
quadratic model of U at w*, the unadjusted step w' = w − (ε/2)·∇U + √ε·ξ is, per direction, the
autoregression v' = (1 − εc/2)·v + √ε·ξ (the Euler–Maruyama Ornstein–Uhlenbeck chain; Roberts &
Tweedie 1996, Bernoulli 2(4), §1.2), so after t steps from w* the variance is
v_t = v_∞·(1 − (1 − εc/2)^{2t}) with v_∞ = 1/(c·(1 − εc/4)). The draws' gap nβ·½h·v_t then
falls short of its stationary value by ½·nβh·v_∞·(1 − εc/2)^{2t}. Summed over the Hessian's
directions and averaged over the recorded steps, that is the shortfall this module predicts.
Directions the Hessian does not see (h = 0) add nothing in this model though they may lag too,
so at a singular w* the prediction is a lower bound.
"""

from __future__ import annotations

import numpy as np
import torch

from sltlab.estimators.config import MAX_METRIC_PARAMETERS
from sltlab.estimators.metric import hessian_metric
from sltlab.estimators.posterior import LocalPosterior

SHORTFALL_SHARE = 0.02   # the bias budget of one call: a predicted shortfall above it (and above the SE) is said
SHORTFALL_FLOOR = 0.01   # ... and above a hundredth of a half-dimension: less is no lag worth saying, even at λ̂ = 0


def predicted_shortfall(curvatures: np.ndarray, localization: float, step_size: float,
                        recorded_steps: np.ndarray) -> tuple[float, float]:
    """The quadratic model's shortfall of λ̂ (module docstring) over draws recorded
    ``recorded_steps`` steps after w*, for the curvatures c of U at w*; and the curvature of the
    direction that lacks the most (0 where none does). Directions with h ≤ 0, or so stiff that
    εc ≥ 2 (the step-size check's concern), are left out."""
    curvatures = np.asarray(curvatures, dtype=np.float64)
    curvatures = curvatures[(curvatures > localization) & (step_size * curvatures < 2.0)]
    if curvatures.size == 0:
        return 0.0, 0.0
    contraction = 1.0 - 0.5 * step_size * curvatures
    stationary = 0.5 * (curvatures - localization) / (curvatures * (1.0 - 0.25 * step_size * curvatures))
    powers = 2.0 * np.asarray(recorded_steps, dtype=np.float64)
    lacking = stationary * (np.abs(contraction)[:, None] ** powers).mean(-1)
    return float(lacking.sum()), float(curvatures[int(np.argmax(lacking))])


def start_spread_concern(posterior: LocalPosterior, data, step_size: float, steps: int, draws: int, thin: int,
                         mean: float | None, standard_error: float | None) -> str | None:
    """For SGLD's chains from w*: a sentence where the predicted shortfall exceeds both λ̂'s
    standard error, ``SHORTFALL_SHARE`` of |λ̂| and ``SHORTFALL_FLOOR``; None where it does not, or where the Hessian
    at w* cannot be taken (over ``MAX_METRIC_PARAMETERS`` parameters, or no second derivative).
    The Hessian is that of the loss on ``data``: the caller passes at most ``CONCERN_ROWS`` rows
    drawn at random, so that its d Hessian-vector products do not grow with the data set."""
    if mean is None or standard_error is None or posterior.center.shape[-1] > MAX_METRIC_PARAMETERS:
        return None
    try:
        curvatures = hessian_metric(posterior.loss, posterior.center, data, float(posterior.nbeta),
                                    posterior.localization).curvatures.double().cpu().numpy()
    except (RuntimeError, torch.linalg.LinAlgError):
        return None
    recorded = steps - thin * (draws - np.arange(draws))   # a draw reads L_b where the step began
    shortfall, slowest = predicted_shortfall(curvatures, posterior.localization, step_size, recorded)
    if not shortfall > max(standard_error, SHORTFALL_SHARE * abs(mean), SHORTFALL_FLOOR):
        return None
    share = f" ({shortfall / abs(mean):.0%} of it)" if mean != 0 else ""
    needed = 3.0 / (step_size * slowest)
    return (f"the chains, all started at w*, have not yet spread out: the quadratic model of the loss at w* predicts "
            f"λ̂ = {mean:.4g} short by about {shortfall:.3g}{share} over these draws, most along a direction of "
            f"curvature {slowest:.3g}, which relaxes in about {needed:,.0f} steps of ε = {step_size:.3g} against the "
            f"run's {steps:,}; R-hat cannot see a lag that all chains share; give a longer burn-in (burnin=, "
            "--burnin) or use a Metropolis-adjusted sampler (mala), whose tuned step is larger")
