"""The finite-temperature truth a sampler should reproduce on a toy potential.

For the localised tempered posterior p(w) ∝ exp(−t·K(w) − (γ/2)‖w‖²) at the singular point
w* = 0, t·E_p[K] is what an exact sampler converges to at this t (Lau, Furman, Wang, Murfet &
Wei 2023, Def. 3.1); its distance to λ is finite-t bias, not sampler error. For one or two
variables it is integrated here on a tensor grid that is geometric near each axis (so the
scale t^{−1/(2k)} of every singular direction is resolved) by the trapezoid rule.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import sympy

from sltlab.theory import parse_expression


def _axis(half_width: float, smallest: float, points: int) -> np.ndarray:
    """0, ±geometric points from ``smallest`` to ``half_width``."""
    positive = np.geomspace(smallest, half_width, points)
    return np.concatenate([-positive[::-1], [0.0], positive])


SMALLEST = 1e-9          # the grid's finest resolved |w|
MAX_NBETA = 1e18         # SMALLEST⁻²: see :func:`resolves`


def resolves(nbeta: float, potential=None, variables: Sequence | None = None) -> bool:
    """Whether the grid resolves the posterior at t = ``nbeta``: a monomial c·w^α with a square in
    it confines its variable to about (t·|c|)^{−1/2} where the others are of order one, which the
    grid follows down to ``SMALLEST``, so up to t·max|c| = SMALLEST⁻² (coefficients of order one
    where no ``potential`` is given). Beyond it the integral is wrong (at K = w1²w2², t = 10²⁰ gave
    0.30 against about 0.48; K = 10²⁰·w² at t = 1,086 had read 0 against 0.5)."""
    return nbeta * max(_largest_coefficient(potential, variables), 1.0) <= MAX_NBETA


def _largest_coefficient(potential, variables: Sequence | None) -> float:
    """max |c| over the terms of a polynomial ``potential``; 1 for none, or for no polynomial."""
    if potential is None:
        return 1.0
    expression, symbols = parse_expression(potential, variables)
    try:
        return max(abs(float(c)) for c in sympy.Poly(expression, *symbols).coeffs())
    except sympy.PolynomialError:
        return 1.0


def tempered_expectation(potential, nbeta: float, localization: float, *, variables: Sequence | None = None,
                         points: int = 2000) -> float:
    """t·E[K] under exp(−t·K − (γ/2)‖w‖²), t = ``nbeta`` (at most where :func:`resolves`; a
    ``ValueError`` beyond), γ = ``localization`` > 0; the potential and its variables as
    :func:`sltlab.theory.parse_expression` reads them."""
    if not resolves(nbeta, potential, variables):
        raise ValueError(f"the quadrature resolves t·E[K] up to nβ·max|c| = {MAX_NBETA:g} (c the coefficients of K), "
                         f"got nβ = {nbeta:g}")
    expression, symbols = parse_expression(potential, variables)
    if not 1 <= len(symbols) <= 2:
        raise ValueError(f"numerical integration covers 1 or 2 variables, got {len(symbols)}")
    if localization <= 0 or nbeta <= 0:
        raise ValueError("nβ and the localisation γ must be positive")
    evaluate = sympy.lambdify(symbols, expression, modules="numpy")
    axis = _axis(12.0 / np.sqrt(localization), SMALLEST, points)
    if len(symbols) == 1:
        k = np.broadcast_to(evaluate(axis), axis.shape)
        weight = np.exp(-nbeta * k - 0.5 * localization * axis**2)
        return float(nbeta * np.trapezoid(k * weight, axis) / np.trapezoid(weight, axis))
    inner_kw, inner_w = [], []
    for rows in np.array_split(np.arange(len(axis)), 16):  # bounded memory
        w1, w2 = np.meshgrid(axis[rows], axis, indexing="ij")
        k = np.broadcast_to(evaluate(w1, w2), w1.shape)
        weight = np.exp(-nbeta * k - 0.5 * localization * (w1**2 + w2**2))
        inner_kw.append(np.trapezoid(k * weight, axis, axis=1))
        inner_w.append(np.trapezoid(weight, axis, axis=1))
    return float(nbeta * np.trapezoid(np.concatenate(inner_kw), axis)
                 / np.trapezoid(np.concatenate(inner_w), axis))


def one_unit_tanh_expectation(x: np.ndarray, y: np.ndarray, nbeta: float, localization: float, *,
                              points: int = 2000) -> float:
    """nβ·E[L_n(w) − L_n(0)] under exp(−nβ·(L_n(w) − L_n(0)) − (γ/2)‖w‖²) for the one-unit tanh
    network f(x) = a·tanh(b·x), localised at w* = 0, on the data (x, y). Given b the exponent is a
    quadratic in a: with m₁(b) = mean(y·tanh(bx)) and m₂(b) = mean(tanh(bx)²), ΔL = −a·m₁ + ½a²·m₂,
    so a | b is Gaussian with variance s² = 1/(nβ·m₂ + γ) and mean μ = nβ·m₁·s², E[nβ·ΔL | b] =
    nβ·(−m₁μ + ½m₂(μ² + s²)), and b has the weight s·exp(½·(nβ·m₁)²·s²)·exp(−γb²/2) (the
    Gaussian integral over a); the remaining integral over b is the trapezoid rule on a grid
    geometric near 0."""
    if localization <= 0 or not resolves(nbeta):
        raise ValueError(f"need γ > 0 and nβ ≤ {MAX_NBETA:g}, got γ = {localization:g}, nβ = {nbeta:g}")
    b = _axis(12.0 / np.sqrt(localization), SMALLEST, points)
    features = np.tanh(np.outer(b, x))                        # [grid, n]
    first, second = (features * y).mean(1), (features**2).mean(1)
    variance = 1.0 / (nbeta * second + localization)
    mean = nbeta * first * variance
    conditional = nbeta * (-first * mean + 0.5 * second * (mean**2 + variance))
    log_weight = 0.5 * np.log(variance) + 0.5 * (nbeta * first) ** 2 * variance - 0.5 * localization * b**2
    weight = np.exp(log_weight - log_weight.max())
    return float(np.trapezoid(conditional * weight, b) / np.trapezoid(weight, b))
