"""A Langevin step size from the curvature of L_n, and a way to measure that curvature.

Euler–Maruyama on U = k·w²/2, w' = (1 − εk/2)·w + √ε·ξ, is stationary at variance
1/(k·(1 − εk/4)), so E[U] and λ̂ come out high by the factor 1 + εk/4. A minibatch of b rows
adds gradient noise of covariance about (nβ²/b)·H (Fisher = Hessian at the truth; Welling &
Teh 2011, §4), raising the temperature by a further ε·nβ²·h/(4b). The stiffest direction of U
has curvature nβ·h_max + γ, so ε = c / (nβ·h_max·(1 + nβ/b) + γ) keeps both biases near c/4
there. At a singular w* the Hessian understates the curvature the chains meet (it vanishes at
w* = 0 in a deep network): take h_max at w* and at :func:`curvature_probe` together.
"""

from __future__ import annotations

import math
from itertools import islice
from typing import Any, Callable

import torch
from torch import Tensor

from sltlab.estimators.lanczos import lanczos_recurrence, tridiagonal
from sltlab.estimators.posterior import (FULL_PASS_ROWS, LocalPosterior, Loss, batch_rows, mean_loss,
                                         mean_loss_and_gradient, row_chunks)
from sltlab.estimators.sampling import Batches

STEP_SCALE = 0.1   # the c of the rule: biases near c/4 = 2.5 %


def top_hessian_eigenvalue(loss: Loss, center: Tensor, data: Any, *, iterations: int = 50,
                           generator: torch.Generator, preconditioner: Tensor | None = None) -> float:
    """The largest of :func:`top_hessian_eigenvalues` over the points."""
    return float(top_hessian_eigenvalues(loss, center, data, iterations=iterations, generator=generator,
                                         preconditioner=preconditioner).max())


def top_hessian_eigenvalues(loss: Loss, center: Tensor, data: Any, *, iterations: int = 50,
                            generator: torch.Generator, preconditioner: Tensor | None = None) -> Tensor:
    """Largest |eigenvalue| of the Hessian of L_n by power iteration, at each of one point or many;
    with a diagonal ``preconditioner`` G (shaped like ``center``), of G^{1/2}·H·G^{1/2}.

    Parameters
    ----------
    loss : callable
        Batched per-sample loss, ``loss(position [C, d], data) -> [C, b]``.
    center : Tensor
        A point [d] or points [C, d], each iterated on its own.
    data : Any
        The full data as ``loss`` takes it, e.g. ``Batches.full()``.
    iterations : int
        Hessian-vector products (Pearlmutter 1994, double backward) per point.
    generator : torch.Generator
        Draws the starting vectors.
    preconditioner : Tensor, optional
        Positive diagonal G per point, as a preconditioned sampler applies it.

    Returns
    -------
    Tensor
        Per point [C], the |Rayleigh quotient| of the last iterate; 0.0 where the Hessian vanishes.
    """
    if iterations < 1:
        raise ValueError(f"need at least one iteration, got {iterations}")
    point = center.detach().reshape(-1, center.shape[-1]).clone()
    product_with = hessian_vector_products(loss, point, data)
    root = torch.ones_like(point) if preconditioner is None else preconditioner.reshape(point.shape).sqrt()
    vector = torch.randn(point.shape, generator=generator, dtype=point.dtype, device=point.device)
    vector = vector / vector.norm(dim=-1, keepdim=True)
    value = torch.zeros(len(point), dtype=point.dtype, device=point.device)
    for _ in range(iterations):
        product = root * product_with(root * vector)
        value = (product * vector).sum(-1)
        vector = product / product.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(point.dtype).tiny)
    return value.abs()


def top_hessian_eigenvalues_lanczos(loss: Loss, points: Tensor, data: Any, *, steps: int,
                                    generator: torch.Generator, mask: Tensor | None = None,
                                    tolerance: float | None = None) -> Tensor:
    """Largest |eigenvalue| of the Hessian of L_n at each of the points [C, d], from ``steps``
    Lanczos steps per point from a random start, all points as one batch
    (:func:`~sltlab.estimators.lanczos.lanczos_recurrence`), then the extreme eigenvalues of the
    tridiagonal T = tridiag(β, α, β), the Ritz values. Without reorthogonalisation the Lanczos
    vectors lose orthogonality once a Ritz value converges, which repeats that value but puts none
    outside the spectrum (Paige 1976), so the estimate stays a
    lower bound; from a random start its error shrinks like a Chebyshev polynomial in the gap,
    far faster than power iteration's (Kuczyński & Woźniakowski 1992). On two random draws of
    ten deep linear networks each (widths 5–50, depth 2–5), the largest of four points' 15-step
    estimates was at worst 1.6 % and 0.02 % low, in the median 5e-9 and 3e-8, where 30 power
    iterations were at worst 1.7 % and 3.1 % low.
    The extreme Ritz values move outwards step by step (Cauchy interlacing), so with ``tolerance``
    the recurrence stops early, once two steps in a row raised no point's estimate by more than
    that fraction of it.
    With ``mask`` [C, d] (1 on the coordinates a chain moves) every vector is kept in that subspace,
    which gives the Hessian of the loss restricted to it."""
    if steps < 1:
        raise ValueError(f"need at least one Lanczos step, got {steps}")
    point = points.detach().reshape(-1, points.shape[-1]).clone()
    start = torch.randn(point.shape, generator=generator, dtype=point.dtype, device=point.device)
    recurrence = lanczos_recurrence(hessian_vector_products(loss, point, data), start, mask)
    alphas, betas, watched, settled = [], [], None, 0
    for alpha, beta in islice(recurrence, steps):
        alphas.append(alpha)
        betas.append(beta)
        if tolerance is not None:
            estimate = _largest_ritz_values(alphas, betas)
            rose = None if watched is None else estimate - watched
            settled = settled + 1 if rose is not None and bool((rose <= tolerance * estimate).all()) else 0
            watched = estimate
            if settled == 2:
                break
    return estimate if tolerance is not None else _largest_ritz_values(alphas, betas)


def _largest_ritz_values(alphas: list[Tensor], betas: list[Tensor]) -> Tensor:
    """The largest |eigenvalue| of each point's tridiagonal T of the Lanczos coefficients so far."""
    return torch.linalg.eigvalsh(tridiagonal(alphas, betas)).abs().amax(-1)


def hessian_vector_products(loss: Loss, point: Tensor, data: Any) -> Callable[[Tensor], Tensor]:
    """v ↦ ∇²L_n(w)·v at every point w of ``point`` [C, d], by double backward (Pearlmutter 1994).

    Up to ``FULL_PASS_ROWS`` rows the gradient's graph is built once and kept for every
    product. Over more rows (:func:`~sltlab.estimators.posterior.row_chunks`) each product
    rebuilds it one slice of rows at a time and sums the slices' products, so memory holds
    the graph of one slice, not of n rows, at twice the arithmetic; the numbers agree with one
    pass up to rounding."""
    chunks = row_chunks(data)
    if len(chunks) == 1:
        leaf = point.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            (gradient,) = torch.autograd.grad(mean_loss(loss, leaf, data).sum(), leaf, create_graph=True)

        def kept_graph(vector: Tensor) -> Tensor:
            return torch.autograd.grad(gradient, leaf, grad_outputs=vector, retain_graph=True)[0]
        return kept_graph
    rows = batch_rows(data)

    def slice_by_slice(vector: Tensor) -> Tensor:
        total = torch.zeros_like(point)
        for chunk in chunks:
            leaf = point.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                part = loss(leaf, chunk).sum(-1).sum() / rows
                (gradient,) = torch.autograd.grad(part, leaf, create_graph=True)
                total += torch.autograd.grad(gradient, leaf, grad_outputs=vector)[0]
        return total
    return slice_by_slice


def curvature_probe(loss: Loss, center: Tensor, data: Any, nbeta: float, *,
                    generator: torch.Generator, growth: float = 1.5, tries: int = 80) -> Tensor:
    """w* + s·ξ, ξ a random unit vector and s the first of 1e-4·growth^k with
    nβ·(L_n(w* + s·ξ) − L_n(w*)) ≥ d/2: the edge of the typical set of a regular posterior
    (E[nβ·ΔL] = λ ≤ d/2), where the curvature the chains reach is measured."""
    direction = torch.randn(center.shape, generator=generator, dtype=center.dtype, device=center.device)
    direction = direction / direction.norm()
    with torch.no_grad():
        base = float(mean_loss(loss, center.unsqueeze(0), data).sum())
        radius = 1e-4
        for _ in range(tries):
            point = center + radius * direction
            if nbeta * (float(mean_loss(loss, point.unsqueeze(0), data).sum()) - base) >= center.numel() / 2:
                break
            radius *= growth
    return point


def default_step_size(nbeta: float, localization: float, top_eigenvalue: float, *,
                      batch_size: int | None = None, n: int | None = None, scale: float = STEP_SCALE) -> float:
    """ε = scale/(nβ·|h_max|·(1 + nβ/b) + γ) (module docstring); the nβ/b term only when a
    ``batch_size`` b < ``n`` is given. ``scale`` c = 0.1 keeps the Gaussian bias near 2.5 %."""
    if not (nbeta > 0 and localization >= 0 and scale > 0):
        raise ValueError(f"need nβ > 0, γ ≥ 0 and scale > 0, got {nbeta}, {localization}, {scale}")
    noise = 0.0 if batch_size is None or (n is not None and batch_size >= n) else nbeta / batch_size
    stiffness = nbeta * abs(top_eigenvalue) * (1.0 + noise) + localization
    if not math.isfinite(stiffness):
        raise ValueError(f"the loss's curvature near w* is not finite (h_max = {top_eigenvalue}): the loss or its "
                         "gradient is not finite there, so no step size can be set by it")
    if not stiffness > 0:
        raise ValueError("the Hessian vanishes and γ = 0: no curvature to set a step size by")
    return scale / stiffness


def langevin_step_size(posterior: LocalPosterior, batches: Batches, generator: torch.Generator) -> tuple[float, str]:
    """The Langevin step ε of :func:`default_step_size` for ``posterior``, and the rule in words.

    At a singular centre the Hessian can vanish (a deep network at rank 0), so h_max is
    measured at w* and at :func:`curvature_probe` together, where the chains will be.
    """
    full = batches.full()
    probe = curvature_probe(posterior.loss, posterior.center, full, posterior.nbeta, generator=generator)
    top = top_hessian_eigenvalue(posterior.loss, torch.stack([posterior.center, probe]), full, generator=generator)
    if top == 0 and (slope := float(mean_loss_and_gradient(posterior.loss, probe.unsqueeze(0), full)[1].norm())) > 0:
        raise ValueError(f"SGLD's curvature rule measured no curvature (h_max = 0 at w* and at a probe point) where "
                         f"the loss still changes (‖∇L_n‖ = {slope:.3g} at the probe): the loss is piecewise linear "
                         "near w* (|w|?), so the rule sets no step (c/γ, under which every chain had diverged); give "
                         "a step size (step_size=, --step-size), or use mala")
    minibatch = None if batches.is_full else batches.batch_size
    step_size = default_step_size(posterior.nbeta, posterior.localization, top, batch_size=minibatch, n=batches.n)
    formula = "c/(nβ·h_max + γ)" if minibatch is None else "c/(nβ·h_max·(1 + nβ/b) + γ)"   # full data: no noise term
    rule = (f"{formula} with c = {STEP_SCALE}, h_max = {top:.4g} the top Hessian eigenvalue of L_n at w* and at a "
            f"probe point" + ("" if minibatch is None else f", b = {minibatch}"))
    return step_size, rule


STIFFNESS_LIMIT = 1.0   # ε·k above this: a Gaussian's bias εk/4 exceeds 25 % in that direction
# A step the user gave has no rule or sweep behind it: its concern reads the Euler bias itself. On a
# quadratic with Hessian eigenvalues k_i SGLD's stationary variance is 1/(k_i·(1 − εk_i/4)), so λ̂,
# a sum of per-direction shares of at most ½, reads in expectation at most εk_max/(4 − εk_max) high
# (that, where every direction is as stiff): ½‖w‖² at n = 1,000 read +16 ± 3 % at ε·k = 0.44 (12 %
# expected) and +25 ± 2 % at 0.73 (22 %), unwarned under the limit above.
GIVEN_STEP_BIAS_MAX = 0.05


CONCERN_LANCZOS_STEPS = 15   # Lanczos steps at most of the curvature where the chains ended,
# stopped once two steps in a row raise no chain's estimate by more than this fraction: on two random
# draws of ten deep linear networks (widths 5–50, depth 2–5, four points each) the largest estimate
# was then at worst 0.12 % and 0.66 % low (15 steps: 0.12 % and 0.30 %) after a median of 10.5 and
# 11.5 steps; on 20 grokking checkpoints 9.7 and 11 steps, one estimate after another and batched.
CONCERN_LANCZOS_TOLERANCE = 0.01
# Rows of the data the concern's curvature is measured on (all of them when there are no more).
# The Hessian of a random subsample is an unbiased estimate of the full data's, and its top
# eigenvalue, a convex function of it, is on average at least the full data's (Jensen): on
# average the concern errs early, though one subsample may read low. On 10⁴ rows the full-data
# measurement cost 2.4 s of a 6.5 s estimate.
CONCERN_ROWS = FULL_PASS_ROWS


def concern_curvatures(loss: Loss, positions: Tensor, rows: Any, *, generator: torch.Generator,
                       mask: Tensor | None = None) -> Tensor:
    """h_max at each of ``positions`` [C, d] on ``rows`` for the step-size concern: at most
    ``CONCERN_LANCZOS_STEPS`` Lanczos steps, until every position's estimate has settled to
    ``CONCERN_LANCZOS_TOLERANCE``."""
    return top_hessian_eigenvalues_lanczos(loss, positions, rows, generator=generator, steps=CONCERN_LANCZOS_STEPS,
                                           tolerance=CONCERN_LANCZOS_TOLERANCE, mask=mask)


def step_size_concern(posterior: LocalPosterior, batches: Batches, step_size: float, positions: Tensor,
                      generator: torch.Generator, *, top: float | None = None, given: bool = False) -> str | None:
    """For an unadjusted Langevin step: ε·(nβ·h_max·(1 + nβ/b) + γ) with h_max measured where
    the chains ended, and a sentence when it exceeds ``STIFFNESS_LIMIT``. The rule measures the
    curvature at w* and one probe; chains in a wide network reach regions many times stiffer,
    where the step's bias (module docstring) is no longer small and R-hat does not see it. h_max is
    that of the loss on ``CONCERN_ROWS`` rows drawn at random; ``top`` is h_max when already
    measured so at ``positions`` (by :func:`top_hessian_eigenvalues_lanczos`). A ``given`` step
    (no rule or sweep chose it) is said too where the Euler bias it expects where every direction
    is as stiff, εk/(4 − εk), exceeds ``GIVEN_STEP_BIAS_MAX``."""
    if len(positions) == 0:
        return None
    if top is None:
        rows = batches.subsample(CONCERN_ROWS, generator)
        top = float(concern_curvatures(posterior.loss, positions, rows, generator=generator).max())
    noise = 0.0 if batches.is_full else posterior.nbeta / batches.batch_size
    stiffness = step_size * (posterior.nbeta * top * (1.0 + noise) + posterior.localization)
    if given and stiffness <= STIFFNESS_LIMIT and (bias := stiffness / (4 - stiffness)) > GIVEN_STEP_BIAS_MAX:
        return (f"the step ε = {step_size:.3g} given is large for the curvature where the chains ended: ε·(nβ·h_max + "
                f"γ) = {stiffness:.3g}, so λ̂ reads about {bias:.0%} high where every direction is that stiff, less "
                f"where fewer are (Euler's stationary bias 1/(1 − εk/4) per direction); a smaller step size "
                f"(step_size=, --step-size), none (the rule aims at {STEP_SCALE}), or a Metropolis-adjusted sampler "
                "(mala, full data) removes it")
    if stiffness <= STIFFNESS_LIMIT:
        return None
    return (f"the step ε = {step_size:.3g} is too large for the curvature where the chains ended: ε·(nβ·h_max + γ) = "
            f"{stiffness:.3g} > {STIFFNESS_LIMIT:g} (the rule aims at {STEP_SCALE}), so λ̂ carries a discretisation "
            "bias, usually upwards; use a Metropolis-adjusted sampler (mala, full data), a smaller step size "
            "(step_size=, --step-size), or calibrate it (--calibrate)")
