"""A constant dense metric for MALA: the inverse curvature of the localised posterior at w*.

MALA with a constant metric G proposes w' = w − (ε/2)·G·∇U(w) + √ε·G^{1/2}ξ (Girolami &
Calderhead 2011, eq. 11); on a Gaussian U of Hessian P it mixes every direction at the same rate
when G ∝ P⁻¹ (Roberts & Stramer 2002, §3). The localised posterior's curvature at w* is
P = nβ·∇²L_n(w*) + γ·I (Lau et al. 2023, eq. 7). With the identity metric the step is set by the
stiffest direction, nβ·h_max + γ, and the directions held by γ alone relax over about
(nβ·h_max + γ)/γ steps: on an encoder head of 34 parameters whose curvatures ran from 1,794 down
to 1.0, that was about 2,500 steps, as long as warm-up and burn-in together, and its estimates
spread twice as widely as their standard errors. G = (nβ + γ)·P⁻¹ whitens P and keeps the
meaning of the warm-up's normalised step ε·(nβ + γ). Where ∇²L_n(w*) has negative eigenvalues
(a w* that is no minimum) they count as 0, so P ≥ γ·I. Any positive definite G leaves the target
exact; only the speed of mixing depends on it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable, NamedTuple

import torch
from torch import Tensor

from sltlab.estimators.config import MAX_METRIC_PARAMETERS, LLCConfig
from sltlab.estimators.posterior import LocalPosterior, Loss, potential
from sltlab.estimators.step_size import hessian_vector_products


LAPLACE_SPREAD = 1.0   # auto: the Hessian's metric where U departs from its Gaussian by at most this (in nats)
LAPLACE_DRAWS = 64
HESSIAN_BLOCK = 64     # Hessian-vector products evaluated together


class Metric(NamedTuple):
    """G = A·Aᵀ, held as two [d, d] matrices acting on rows: ``z @ from_whitened`` is the offset
    in the parameters of whitened coordinates z, ``r @ to_whitened`` the whitened coordinates of
    an offset r (so ``to_whitened @ from_whitened`` = I and ‖r @ to_whitened‖² = rᵀG⁻¹r)."""

    to_whitened: Tensor
    from_whitened: Tensor
    curvatures: Tensor   # the eigenvalues of P = nβ·∇²L_n(w*) + γ·I, ascending


def loss_hessian(loss: Loss, center: Tensor, data: Any, coordinates: Tensor | None = None) -> Tensor:
    """The exact Hessian of L_n at the centre [d], in float64, over ``coordinates`` (indices; all
    when None): one Hessian-vector product (Pearlmutter 1994) per coordinate, a row of the identity
    each, in batches of ``HESSIAN_BLOCK`` points (so memory holds the graph of that many points on one
    slice of rows, not of d), in the centre's dtype; symmetrised."""
    dim = center.shape[-1]
    units = torch.eye(dim, dtype=center.dtype, device=center.device)
    units = units if coordinates is None else units[coordinates]
    hessian = torch.cat([hessian_vector_products(loss, center.detach().expand(len(rows), dim), data)(rows)
                         for rows in units.split(HESSIAN_BLOCK)]).to(torch.float64)
    hessian = hessian if coordinates is None else hessian[:, coordinates]
    return (hessian + hessian.T) / 2


def hessian_metric(loss: Loss, center: Tensor, data: Any, nbeta: float, localization: float) -> Metric:
    """G = (nβ + γ)·P⁻¹ at the centre [d] (module docstring), from the exact Hessian of L_n there
    (:func:`loss_hessian`); the eigendecomposition in float64."""
    values, vectors = torch.linalg.eigh(loss_hessian(loss, center, data))
    curvatures = nbeta * values.clamp(min=0.0) + localization
    scale = ((nbeta + localization) / curvatures).sqrt()
    return Metric((vectors / scale).to(center.dtype), (scale.unsqueeze(-1) * vectors.T).to(center.dtype), curvatures)


def laplace_spread(posterior: LocalPosterior, metric: Metric, data: Any, generator: torch.Generator,
                   draws: int = LAPLACE_DRAWS) -> float:
    """How far the Gaussian N(w*, P⁻¹) that the metric assumes is from the posterior at its own
    scale: the standard deviation, over ``draws`` offsets δ = P^{−1/2}ξ, of U(w* + δ) less its
    quadratic model U(w*) + ∇U(w*)·δ + ½δᵀPδ (which is ½‖ξ‖²) — the spread of the log importance
    weights of that Gaussian for the posterior (Laplace 1774; Kass & Raftery 1995, §4.1.1). It is 0
    where the loss is quadratic in the sampled parameters (a network's last layer under squared
    error) and large at a singular w*, where the posterior's quartic and steeper directions are far
    narrower than γ alone holds them; ∞ where U is not finite at a draw."""
    center = posterior.center
    whitened = torch.randn((draws, center.shape[-1]), generator=generator, dtype=center.dtype, device=center.device)
    offsets = whitened @ metric.from_whitened / (float(posterior.nbeta) + posterior.localization) ** 0.5
    here = potential(posterior, center.unsqueeze(0), data, energy=True)
    there = potential(posterior, center + offsets, data, energy=True).energy.to(torch.float64)
    model = (here.energy + (offsets * here.gradient).sum(-1)).to(torch.float64) + 0.5 * whitened.to(
        torch.float64).square().sum(-1)
    residual = there - model
    return float(residual.std()) if bool(torch.isfinite(residual).all()) else math.inf


def relaxation_gain(curvatures: Tensor, localization: float) -> float:
    """How many times faster the metric should relax the slowest direction that carries λ̂ than
    the identity does. The directions that carry it are those with nβh ≥ γ (curvature c ≥ 2γ, each
    adding at least half of its ½ to λ); say k of the d. With the identity the step follows the
    stiffest curvature, so a direction of curvature c relaxes c_max/c times slower than it; in the
    metric every direction relaxes alike, but MALA's step shrinks like D^(−1/3) with the D directions
    that set its acceptance (Roberts & Rosenthal 1998, Thm 1): all d in the metric, about the k stiff
    ones in the identity, where the rest barely move. So the gain is (c_max/c_min)·(k/d)^(1/3) over
    the k; 0 when none carries λ̂. With one stiff direction among 108 held by γ alone (a layer of a
    rank-1 deep linear network) it is 0.21: there the identity's ESS was 19,000 and the metric's
    5,000, whose standard errors came out 1.3 times too small over 16 seeds."""
    carrying = curvatures[curvatures >= 2 * localization]
    if len(carrying) == 0:
        return 0.0
    return float(carrying.max() / carrying.min()) * (len(carrying) / len(curvatures)) ** (1 / 3)


def with_metric(config: LLCConfig, posterior: LocalPosterior, data: Any, generator: torch.Generator, *,
                announce: Callable[[str], None] = lambda phase: None,
                ) -> tuple[LocalPosterior, LLCConfig, str | None, str]:
    """The posterior carrying the metric ``config.metric`` asks for, the settings as used, a note
    where an asked-for metric could not be applied (:func:`metric_not_applied`), and the words the
    step's rule adds. ``auto`` takes the Hessian's metric where its Gaussian holds within
    ``LAPLACE_SPREAD`` (:func:`laplace_spread`, on draws from ``generator``) and it should relax λ̂
    faster than the identity (:func:`relaxation_gain` over 1), the identity elsewhere. ``announce``
    is told when the Hessian is about to be taken."""
    config, note = metric_not_applied(config, posterior.center)
    if config.metric == "identity":
        return posterior, config, note, ""
    announce("building MALA's metric from the Hessian at w*")
    try:
        metric = hessian_metric(posterior.loss, posterior.center, data, float(config.nbeta), config.localization)
        failure = ("the Hessian at w* is not finite" if not bool(torch.isfinite(metric.curvatures).all()) else
                   "P = nβ·∇²L_n(w*) + γ·I is singular (γ = 0, and L_n is flat to second order along a direction), "
                   "so the metric would be infinite there" if not float(metric.curvatures[0]) > 0 else None)
    except (RuntimeError, torch.linalg.LinAlgError) as error:   # no double backward through the loss
        failure = f"the Hessian at w* could not be taken ({str(error).splitlines()[0]})"
    if failure is not None:
        if config.metric == "hessian":
            raise ValueError(f"metric = hessian: {failure}; choose metric = identity or auto")
        return posterior, replace(config, metric="identity"), None, f", in the identity metric ({failure})"
    low, high = float(metric.curvatures[0]), float(metric.curvatures[-1])
    words = f"in the metric (nβ + γ)·P⁻¹ of the Hessian at w* (curvatures of P {low:.3g} to {high:.3g})"
    if config.metric == "hessian":
        return posterior._replace(metric=metric), config, None, ", " + words
    spread = laplace_spread(posterior, metric, data, generator)
    gain = relaxation_gain(metric.curvatures, config.localization)
    check = f"U's spread from the Gaussian at w* over {LAPLACE_DRAWS} of its draws {spread:.3g}"
    if spread > LAPLACE_SPREAD:
        return posterior, replace(config, metric="identity"), None, (
            f", in the identity metric ({check}, over {LAPLACE_SPREAD:g}: the Hessian's Gaussian is no guide there)")
    relaxing = f"its predicted gain in relaxing the slowest direction that carries λ̂ {gain:.3g}"
    if gain <= 1:
        return posterior, replace(config, metric="identity"), None, (
            f", in the identity metric ({check}, but {relaxing}, not over 1)")
    return posterior._replace(metric=metric), replace(config, metric="hessian"), None, f", {words}; {check}, {relaxing}"


def metric_not_applied(config: LLCConfig, center: Tensor) -> tuple[LLCConfig, str | None]:
    """Where ``config`` asks for a metric that cannot apply at ``center`` ([d], or [C, d] per chain),
    the settings as used (``metric = "identity"``) and the note that says why: another sampler than
    MALA, chains in groups with centres or nβ of their own, or more than ``MAX_METRIC_PARAMETERS``
    parameters. ``auto`` goes to the identity quietly but for groups, where a single estimate at one
    of their centres may have taken the metric; otherwise ``config`` and None."""
    if config.metric == "identity":
        return config, None
    dim, grouped = center.shape[-1], config.sampler == "mala" and center.dim() != 1
    why = ("only MALA samples with a metric" if config.sampler != "mala" else
           "the chains run in groups, each with a centre or nβ of its own" if grouped else
           f"{dim:,} parameters, over the {MAX_METRIC_PARAMETERS:,} a dense metric is built for"
           if dim > MAX_METRIC_PARAMETERS else None)
    if why is None:
        return config, None
    note = f"metric = {config.metric} was not applied ({why}); the identity was used"
    return replace(config, metric="identity"), note if config.metric == "hessian" or grouped else None
