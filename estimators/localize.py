"""Where to localise: the empirical minimum ŵ of L_n reached from a given true parameter.

At the exact true parameter w0 the LLC is biased low by about the factor (1 − β), because
L_n(w0) − L_n(ŵ) ~ χ²_d/(2n) (Watanabe 2018, §3). Optimising L_n on the full data from w0 removes
this; in singular models the optimiser stays on the stratum of w0 (for a deep linear network
the rank does not grow), so ŵ is the empirical minimum near the truth.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, Callable, NamedTuple

import numpy as np
import torch
from scipy.optimize import minimize
from scipy.special import chdtri
from torch import Tensor

from sltlab.estimators.notices import PROJECT_AFTER_SECONDS, LongRunWarning, caller_stacklevel, long_run_left
from sltlab.estimators.posterior import Loss, mean_loss, mean_loss_and_gradient


REACH_QUANTILE = 0.99   # of the localising prior's χ²_d law of γ‖w − w*‖²: where the posterior stops


class Localization(NamedTuple):
    """The centre used and how it was reached."""

    center: Tensor           # [d]
    kind: str                # "empirical_minimum" or "true_parameter"
    iterations: int          # L-BFGS's; where it stopped early (enough_drop), its evaluations of L_n
    gradient_norm: float     # ‖∇L_n‖ at the centre
    loss_drop: float         # L_n(w0) − L_n(ŵ)
    center_loss: float       # L_n at the centre
    distance: float = 0.0    # ‖ŵ − w0‖
    converged: bool = True   # the optimiser met its gradient tolerance


# L_n at a centre the optimiser moved to, below which it may have no minimum at all. Checked on a
# random draw of 24 linear classifiers (2–6 inputs, 2–3 classes, n = 200–4,000, 0–20 % of labels
# flipped): L-BFGS ended at L_n ≤ 1.2e-6 on all 10 whose classes it separated, ≥ 0.056 on the 14 others.
VANISHING_LOSS = 1e-3


def localization_concerns(localization: Localization, nbeta: float, gamma: float, dim: int | None = None
                          ) -> list[str]:
    """What a user must be told about the centre: an optimiser that did not converge, or a move
    that makes the estimate one of a different point than the one given: it lowered nβ·L_n by
    more than d/2, the most any LLC can be, or it went farther than the localised posterior
    reaches, γ‖ŵ − w0‖² above the ``REACH_QUANTILE`` quantile of χ²_d (the prior (γ/2)‖w − ŵ‖²
    alone puts that share of its mass nearer; the loss draws the chains nearer still). d is ``dim``,
    the parameters sampled, where the centre holds frozen ones too (a restriction in a batched run)."""
    concerns = []
    if not localization.converged:
        concerns.append(f"L-BFGS stopped after {localization.iterations} iterations at ‖∇L_n‖ = "
                        f"{localization.gradient_norm:.2e}, above its tolerance: w* may not be a critical point")
    dim = localization.center.numel() if dim is None else dim
    keep = ("the estimate is of the empirical minimum, not of the point given (localize_at='true_parameter', "
            "--localize-at true_parameter, keeps it)")
    if localization.center_loss < VANISHING_LOSS:
        keep += (f"; L_n fell to {localization.center_loss:.2g} there: where it only tends to 0 as the weights grow "
                 "(cross-entropy on classes the model separates) there is no minimum, and the centre is wherever the "
                 "optimiser stopped")
    squared_reach = float(chdtri(dim, 1 - REACH_QUANTILE))
    if nbeta * localization.loss_drop > dim / 2:
        concerns.append(f"localising moved w* by {localization.distance:.3g} and lowered nβ·L_n by "
                        f"{nbeta * localization.loss_drop:.4g} > d/2 = {dim / 2:g}: {keep}")
    elif (spread := gamma * localization.distance ** 2) > squared_reach:
        concerns.append(f"localising moved w* by {localization.distance:.3g}, beyond the localised posterior's reach "
                        f"of {math.sqrt(squared_reach / gamma):.3g} (γ‖ŵ − w0‖² = {spread:.4g} > {squared_reach:.4g}, "
                        f"the {REACH_QUANTILE:.0%} quantile of χ²_{dim}): the chains never come near the point given, "
                        f"and {keep}")
    return concerns


def negative_estimate_concern(mean: float | None, standard_error: float | None,
                              localization: Localization) -> str | None:
    """A sentence when λ̂ lies more than two standard errors below zero. At a local minimum of
    L_n every draw of the localised posterior has L_n(w) ≥ L_n(w*) near w*, so λ̂ = nβ·E[L_n(w) −
    L_n(w*)] cannot be negative: the chains found lower loss, and w* is not a minimum."""
    if mean is None or mean + 2 * (standard_error or 0.0) >= 0:
        return None
    remedy = ("localise at the empirical minimum (localize_at='empirical_minimum')"
              if localization.kind != "empirical_minimum" else
              "check that the loss is bounded below and that nβ is not so large that float rounding of L_n decides "
              "(dtype='float64')")
    return (f"λ̂ = {mean:.4g} is negative: the chains found lower loss than at w* (‖∇L_n(w*)‖ = "
            f"{localization.gradient_norm:.2e}), so w* is not a local minimum and λ̂ is not an LLC; train further, "
            f"or {remedy}")


def gradient_norm(loss: Loss, position: Tensor, data: Any) -> float:
    """‖∇L_n‖ at ``position`` [d], one slice of rows at a time."""
    return float(mean_loss_and_gradient(loss, position.detach().unsqueeze(0), data)[1].norm())


class _FarEnough(Exception):
    """Raised from L-BFGS's objective at the first point where L_n has fallen far enough."""

    def __init__(self, flat: np.ndarray, value: float, gradient: np.ndarray, evaluations: int):
        super().__init__()
        self.flat, self.value, self.gradient, self.evaluations = flat, value, gradient, evaluations


def empirical_minimum(loss: Loss, start: Tensor, data: Any, *, max_iterations: int = 500,
                      tolerance: float = 1e-7, enough_drop: float | None = None,
                      enough_after: float = 0.0) -> Localization:
    """Full-batch L-BFGS on L_n from ``start`` [d] (scipy's L-BFGS-B without bounds, 50
    corrections, its line search enforcing the strong Wolfe conditions; Byrd, Lu, Nocedal & Zhu
    1995) until every gradient component falls below ``tolerance`` or ``max_iterations`` is
    spent. Computed in float64, each value and gradient by autograd one slice of rows at a time.
    torch.optim's L-BFGS would do the same; constructing it imports torch's compiler (about a
    second of every command's start). A non-finite end is refused: there is no centre to sample
    around. With ``enough_drop``, once ``enough_after`` seconds have passed, it stops at the first
    point where L_n lies more than that below its start (not converged): whether it falls that far
    needs no minimum."""
    shape = (1, start.numel())
    begun = time.perf_counter()
    # the comparison (enough_drop) is bounded in time by the stop itself, so it never says it is long
    evaluations, deadline, said = [0], begun + enough_after, [enough_drop is not None]

    def value_and_gradient(flat: np.ndarray) -> tuple[float, np.ndarray]:
        position = torch.from_numpy(flat).to(device=start.device, dtype=torch.float64).reshape(shape)
        value, gradient = mean_loss_and_gradient(loss, position, data)
        value, gradient, evaluations[0] = float(value.sum()), gradient.reshape(-1).cpu().numpy(), evaluations[0] + 1
        if not said[0] and (elapsed := time.perf_counter() - begun) > PROJECT_AFTER_SECONDS:
            said[0] = True
            say_a_long_localisation(elapsed, evaluations[0], max_iterations)
        if (enough_drop is not None and initial - value > enough_drop and math.isfinite(value)
                and time.perf_counter() > deadline):
            raise _FarEnough(flat.copy(), value, gradient, evaluations[0])
        return value, gradient

    begin = start.detach().to(torch.float64).reshape(shape)
    with torch.no_grad():
        initial = float(mean_loss(loss, begin, data).sum())
    check_finite_loss(initial)
    try:
        with np.errstate(all="ignore"):
            found = minimize(value_and_gradient, begin.reshape(-1).cpu().numpy(), jac=True, method="L-BFGS-B",
                             options={"maxiter": max_iterations, "maxcor": 50, "gtol": tolerance, "ftol": 0.0})
        end, final, gradient, iterations = found.x, float(found.fun), found.jac, int(found.nit)
    except _FarEnough as stop:
        end, final, gradient, iterations = stop.flat, stop.value, stop.gradient, stop.evaluations
    center = torch.from_numpy(end).to(device=start.device, dtype=torch.float64)   # final, gradient: as evaluated there
    if not (math.isfinite(final) and bool(torch.isfinite(center).all())):
        raise ValueError("L-BFGS from the given parameter reached a non-finite loss: localize at the given "
                         "parameter (localize_at='true_parameter') or check the model and data")
    distance = float((center - start.to(torch.float64)).norm())
    check_bounded_below(initial, final, distance)
    converged = float(np.abs(gradient).max()) <= 10 * tolerance
    return Localization(center, "empirical_minimum", iterations, float(np.linalg.norm(gradient)),
                        initial - final, final, distance, converged)


def say_a_long_localisation(elapsed: float, evaluations: int, max_iterations: int) -> None:
    """A :class:`~sltlab.estimators.notices.LongRunWarning` when L-BFGS, at the pace of its first
    ``evaluations`` passes over the data in ``elapsed`` seconds, could take long to spend the
    ``max_iterations`` it may (about one pass each; :func:`~sltlab.estimators.notices.long_run_left`):
    the one call is quiet in Python, and on a large model localising comes minutes before any
    sampling."""
    left = long_run_left(elapsed, evaluations, max_iterations)
    if left is not None:
        warnings.warn(f"localising w* by L-BFGS may take up to about {left / 60:.0f} more minutes ({max_iterations} "
                      f"iterations at most, {elapsed / evaluations:.3g} s per pass over the data): "
                      "localize_at='true_parameter' samples around the weights given without it (a trained "
                      "checkpoint)", LongRunWarning, stacklevel=caller_stacklevel())


def at_true_parameter(loss: Loss, start: Tensor, data: Any) -> Localization:
    """Localise at the true parameter itself (biased low by about 1 − β; for comparison)."""
    center = start.detach().clone()
    with torch.no_grad():
        value = float(mean_loss(loss, center.unsqueeze(0), data).sum())
    check_finite_loss(value)
    norm = gradient_norm(loss, center, data)
    if not math.isfinite(norm):   # MALA had tuned its step down to 10⁻¹¹² and blamed the step size
        raise ValueError(f"the loss's gradient at the given parameter is {norm} (‖∇L_n‖): the loss is not "
                         "differentiable there (a norm or square root at 0?), and every sampler moves by it; write it "
                         "smoothly (a small ε under the root), or centre elsewhere")
    return Localization(center, "true_parameter", 0, norm, 0.0, value)


def localizer(localize_at: str) -> Callable[[Loss, Tensor, Any], Localization]:
    """The localisation a config's ``localize_at`` names: L-BFGS to the empirical minimum, or the
    given parameter as it is."""
    return empirical_minimum if localize_at == "empirical_minimum" else at_true_parameter


SHIFT_SHARE = 0.02   # the smallest gap reported, as a share of λ̂: the one call's bias budget
# How long the comparison's L-BFGS may run to its minimum before it stops at the first point past
# the gap it reports (a lower bound then, said as "at least")
COMPARE_SECONDS = 10.0


def off_critical_concern(result, loss: Loss, data: Any) -> str | None:
    """A sentence when ``result`` (an ``LLCResult`` at a centre w* given as it is) reads materially
    below the LLC of the minimum ŵ that L-BFGS finds from w*: by more than λ̂'s standard error and
    ``SHIFT_SHARE`` of λ̂. λ̂ at a centre c is nβ·(E_c[L_n] − L_n(c)); where the two localised
    posteriors overlap (ŵ far inside their reach), E_{w*}[L_n] = E_ŵ[L_n], so
    λ̂(w*) − λ̂(ŵ) = −nβ·(L_n(w*) − L_n(ŵ)), the gap L-BFGS measures, with no sampling. On random
    deep linear networks at the data's generating parameter this gap read 0.577, 0.406, 0.659 and
    4.66 where the two estimates differed by 0.577, 0.406, 0.784 ± 0.23 and 4.62 ± 0.38."""
    localization = result.localization
    if localization.kind != "true_parameter" or result.mean is None:
        return None
    threshold = max(result.standard_error or 0.0, SHIFT_SHARE * abs(result.mean))
    try:   # past COMPARE_SECONDS, L-BFGS stops once the gap is past the threshold (10⁶ weights: 200 s to its end)
        nearby = empirical_minimum(loss, localization.center, data, enough_drop=threshold / result.config.nbeta,
                                   enough_after=COMPARE_SECONDS)
    except ValueError:   # L-BFGS met a non-finite loss: no minimum nearby to compare with
        return None
    gap = result.config.nbeta * nearby.loss_drop
    if gap <= threshold:
        return None
    return (f"the given parameter is not a critical point (‖∇L_n(w*)‖ = {localization.gradient_norm:.2e}): L-BFGS "
            f"from it lowers nβ·L_n by {'' if nearby.converged else 'at least '}{gap:.3g} within {nearby.distance:.2g}"
            f", and λ̂ reads about that much{_share_of(gap, result.mean)} below the LLC of the minimum there, "
            "since λ̂ = nβ·(E[L_n] − L_n(w*)) over a posterior both centres share; localize_at='empirical_minimum' "
            "(--localize-at empirical_minimum) estimates it at the minimum")


def _share_of(gap: float, mean: float) -> str:
    """`` (240 % of λ̂)``, or nothing where λ̂ is 0."""
    return f" ({gap / abs(mean):.0%} of λ̂)" if mean else ""


# How far below its value at the given parameter L-BFGS may take L_n, in units of 1 + |L_n(w0)|,
# before the loss counts as having no lower bound: a negated log-likelihood (−cross-entropy) grows
# without end with the weights' scale, and on a small classifier it fell by 10¹³ units. A fall that
# far ends below −10⁶, so no loss bounded below by −10⁶ (every named loss) can be refused by it.
UNBOUNDED_FALL = 1e6


def check_bounded_below(initial: float, final: float, distance: float) -> None:
    """A loss L-BFGS takes from L_n(w0) to below −``UNBOUNDED_FALL``·(1 + |L_n(w0)|) has no minimum
    to localise at: the posterior exp(−nβ·L_n) is not a distribution, and chains run off with the
    optimiser (a per-sample loss returned with the wrong sign: a log-likelihood, not its negative)."""
    if final < initial - UNBOUNDED_FALL * (1 + abs(initial)):
        raise ValueError(f"L-BFGS from the given parameter took L_n from {initial:.4g} to {final:.3g} as the weights "
                         f"moved by {distance:.3g}: the loss has no lower bound, so exp(−nβ·L_n) is no posterior; "
                         "a per-sample loss must be the negative log-likelihood (−log p, not log p)")


def check_finite_loss(value: float) -> None:
    """L_n at the given parameter must be finite: a NaN or infinite loss there (an output of
    log of a negative number, a loss that divides by zero) leaves no posterior to sample."""
    if not math.isfinite(value):
        raise ValueError(f"the loss at the given parameter is {value} over the data: the model's outputs or the loss "
                         "are not finite there; check the model, the loss and the data")
