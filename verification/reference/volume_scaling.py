"""Learning coefficients read off the volume of {K < ε}: a numerical check of exact values.

For a polynomial K ≥ 0 with K(0) = 0 on the box [−b, b]^d, V(ε) = vol{w : K(w) < ε} behaves as
c ε^λ (log 1/ε)^{m−1} as ε → 0, λ the real log canonical threshold and m its multiplicity: V'(ε)
is the state density, whose Mellin transform is the zeta function ∫ K(w)^z dw (Watanabe,
*Algebraic Geometry and Statistical Learning Theory*, 2009, §2.4 and ch. 6). V is computed
without sampling (which cannot reach V(1e-10)): exactly in the last variable, by quadrature on
logarithmic grids in the others. Never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from math import ceil, inf, isfinite, log, prod
from numbers import Real
from typing import Sequence

import numpy as np
import sympy

from sltlab.theory import parse_expression

DEFAULT_EPSILONS = np.logspace(-6, -10, 9)
MAX_VARIABLES = 3
# Steps in s = log(|w_i|/b) for 1 or 2 outer variables; unequal in 2-D so that singular curves
# Σ α_i s_i = const of monomial potentials do not meet the grid at one phase.
LOG_STEP = {1: (0.002,), 2: (0.03, 0.0485)}
MAX_ROOTS = 400_000  # outer steps are widened beyond this many roots of K − ε per ε
SLAB_TOLERANCE = 1e-4  # on the slab |w_i| < t left to the tail, terms with w_i are < this·ε
LEADING_FLOOR = 1e-14  # leading coefficients below this (relative to the largest) are raised to it
# A V(ε) above this share of the box's volume is no small-ε volume: refused. w1²w2², m = 2, fills
# 14 % of [−1, 1]² at ε = 10⁻⁶ and fits right; the boxes that broke a fit were 75–100 % filled.
FILLED_SHARE = 0.5
# The larger and the smaller half of the ε (sharing the middle one) must read λ within this: where fits held
# (five potentials, boxes 1–10⁵) they agreed within 0.003; where they broke, 0.04–0.37 apart. Not caught: a
# fit 3–16 % off with halves 0.002–0.005 apart (a draw of 20 monomial potentials: four lost m at boxes 3, 10).
HALVES_TOLERANCE = 0.01


@dataclass(frozen=True)
class VolumeScaling:
    """A fit of V(ε) ~ c ε^λ (log 1/ε)^{m−1}.

    Attributes
    ----------
    lam, multiplicity : float, int
        Fitted λ and m.
    epsilons, volumes : tuple of float
        The ε and V(ε) fitted.
    residuals : tuple of float
        Rms residual of the log-fit for each candidate m = 1 … d (index m − 1).
    """

    lam: float
    multiplicity: int
    epsilons: tuple[float, ...]
    volumes: tuple[float, ...]
    residuals: tuple[float, ...]


def volume(K, variables: Sequence | None = None, epsilons=None, box: float = 1.0) -> np.ndarray:
    """V(ε) = vol{w ∈ [−b, b]^d : K(w) < ε} for each ε.

    Parameters
    ----------
    K : sympy expression or str
        Polynomial in 1 to 3 variables, rational or float coefficients, K(0) = 0 (K ≥ 0 is
        assumed, not checked).
    variables : sequence of sympy symbols or str, optional
        Their order, the last integrated exactly; default: the free symbols of K sorted by
        name naturally (w2 before w10).
    epsilons : array_like of float, optional
        Positive thresholds; default ``np.logspace(-6, -10, 9)``.
    box : float
        Half-width b of the box.

    Returns
    -------
    numpy.ndarray
        V(ε) for each ε.

    Notes
    -----
    With K = Σ_k a_k(w') x^k in the last variable x, the length ℓ(w') of {x ∈ [−b, b] :
    K(w', x) < ε} is exact up to rounding: the real parts of all roots of K − ε (batched
    companion eigenvalues; in x² if K is even in x) cut [−b, b] into pieces on which K − ε has
    one sign, read at the midpoints (cuts from complex roots are harmless). ℓ is integrated
    over each outer w_i by the trapezoid rule in s = log(|w_i|/b) ∈ [log(t_i/b), 0], on both
    signs unless K is even in w_i; the slab |w_i| < t_i, where the terms of K containing w_i
    are below 1e-4·ε, takes ℓ at its edge. Past MAX_ROOTS roots per ε (outer variables that
    enter K linearly need deep slabs) the steps widen and V is coarser.

    Relative error against closed forms, ε = 1e-6 … 1e-10: ≤ 3e-5 for d = 2 and ≤ 6e-4 for
    d = 3 (largest where ℓ vanishes like a square root: discs, balls); 1.4e-4 where it vanishes
    like a fourth root; 5e-4 for (w1 + w2)², whose box-corner term −ε in V = 4√ε − ε is lost.

    Limitation: the logarithmic grids suit potentials non-degenerate in the Newton sense,
    whose small-K regions hug the coordinate hyperplanes. A zero set crossing an *outer*
    coordinate transversally away from 0 (w1 = w2 in (w1 − w2)² + w3²: λ 0.47 instead of 1)
    is not resolved; zero sets in the last variable (w2 = −w1, w1 = w2², w1² = w2²) are
    exact, so put such a direction last (variables w1, w3, w2 give λ = 1.000 there).
    """
    potential = _Potential(K, variables, box)
    return np.array([potential.volume(eps) for eps in _as_epsilons(epsilons)])


def volume_scaling(K, variables: Sequence | None = None, epsilons=None, box: float = 1.0) -> VolumeScaling:
    """Fit λ and m to V(ε) ~ c ε^λ (log 1/ε)^{m−1}.

    Parameters
    ----------
    K, variables, box
        As for :func:`volume`.
    epsilons : array_like of float, optional
        At least three distinct values in (0, 1); default ``np.logspace(-6, -10, 9)``.

    Notes
    -----
    For each candidate m = 1 … d, log V − (m − 1) log L = log c + λ log ε, L = log(1/ε), is
    fitted by least squares and the m with the smallest residual is taken. For m ≥ 2, λ is then
    refitted with the next-order term of V = ε^λ (c_{m−1} L^{m−1} + c_{m−2} L^{m−2} + …) as β/L,
    β = c_{m−2}/c_{m−1} (for w1²w2² the error in λ falls from 0.006 to 0.0003).

    m shows only in the curvature of log V, about 0.01 over the default range, and a large β
    mimics one factor of L less: m is lost when β ≳ 7, and λ is then ~0.04 low. For
    c·(w1 w2)^{2k} on [−b, b]², β = ln c + 2k(1 + 2 ln b): 8·w1⁶w2⁶ (β = 8.1) gives m = 1,
    λ = 0.13 instead of 2, 1/6, and so does w1²w2² with b = 4; smaller ε (logspace(−10, −20))
    help where K has no cancelling terms, whose rounding errors are ~1e-16. A small
    coefficient at a vertex of the Newton polygon may act only far below ε = 1e-10.
    """
    epsilons = _as_epsilons(epsilons)
    if np.any(epsilons >= 1) or len(np.unique(epsilons)) < 3:
        raise ValueError("volume_scaling needs at least three distinct epsilons in (0, 1)")
    potential = _Potential(K, variables, box)
    try:   # each monomial's size at the box's corner, in floating point as the integration takes it
        largest = max(coefficient * float(box) ** sum(powers) for powers, coefficient in potential.monomials)
    except OverflowError:
        largest = inf
    if not isfinite(largest):
        raise ValueError(f"K overflows on the box [−{box:g}, {box:g}]^d: choose a smaller --box")
    volumes = np.array([potential.volume(eps) for eps in epsilons])
    if np.any(volumes <= 0):
        raise ValueError(f"V(ε) = 0 for some ε in {epsilons.tolist()}: K is not small near 0")
    if volumes.max() <= volumes.min() * (1 + 1e-9):
        raise ValueError(f"V(ε) = {volumes[0]:.4g} at every ε: the box [−{box:g}, {box:g}]^d lies inside {{K < ε}} "
                         "already at the smallest ε, so nothing can be fitted; choose a larger --box")
    box_volume = (2.0 * float(box)) ** len(potential.variables)
    if volumes.max() > FILLED_SHARE * box_volume:
        raise ValueError(f"V({epsilons[np.argmax(volumes)]:.0e}) is {volumes.max() / box_volume:.0%} of the box's "
                         f"volume: {{K < ε}} fills [−{box:g}, {box:g}]^d, far from ε → 0; choose a larger --box")
    lam, multiplicity, residuals = _fit(epsilons, volumes, len(potential.variables))
    if len(epsilons) >= 6:   # the two halves of the range must read one λ: V(ε) a power law over both
        half = len(epsilons) // 2
        order = np.argsort(-epsilons)
        readings = [_fit(epsilons[part], volumes[part], len(potential.variables))[0]
                    for part in (order[:half + 1], order[half:])]
        if abs(readings[0] - readings[1]) > HALVES_TOLERANCE:
            raise ValueError(f"the fit is not settled: λ reads {readings[0]:.4f} on the larger half of the ε and "
                             f"{readings[1]:.4f} on the smaller (on [−{box:g}, {box:g}]^d), so V(ε) is not yet "
                             "c·ε^λ·(log 1/ε)^(m−1) there; on a box nearer 1 it often is")
    return VolumeScaling(lam, multiplicity, tuple(epsilons.tolist()), tuple(volumes.tolist()), residuals)


def _fit(epsilons: np.ndarray, volumes: np.ndarray, dimension: int) -> tuple[float, int, tuple[float, ...]]:
    """λ, m and the rms residual for each candidate m of the fit (:func:`volume_scaling`)."""
    log_eps = np.log(epsilons)
    plain = np.column_stack([np.ones_like(log_eps), log_eps])
    fits = [_least_squares(plain, np.log(volumes) - (m - 1) * np.log(-log_eps)) for m in range(1, dimension + 1)]
    residuals = tuple(residual for _, residual in fits)
    multiplicity = int(np.argmin(residuals)) + 1
    lam = fits[multiplicity - 1][0]
    if multiplicity > 1:
        corrected = np.column_stack([plain, -1 / log_eps])
        lam = _least_squares(corrected, np.log(volumes) - (multiplicity - 1) * np.log(-log_eps))[0]
    return lam, multiplicity, residuals


def _least_squares(design: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """The slope (second coefficient) of a least-squares fit, and its rms residual."""
    coefficients = np.linalg.lstsq(design, target, rcond=None)[0]
    return float(coefficients[1]), float(np.sqrt(np.mean((design @ coefficients - target) ** 2)))


def _as_epsilons(epsilons) -> np.ndarray:
    epsilons = DEFAULT_EPSILONS if epsilons is None else np.atleast_1d(np.asarray(epsilons, dtype=float))
    if epsilons.ndim != 1 or not np.all(np.isfinite(epsilons) & (epsilons > 0)):
        raise ValueError(f"epsilons must be positive finite numbers, got {epsilons.tolist()}")
    return epsilons


class _Potential:
    """K as a polynomial in its last variable, with what the quadrature over the others needs."""

    def __init__(self, K, variables: Sequence | None, box: float):
        expr, variables = parse_expression(K, variables)
        if len(variables) > MAX_VARIABLES:
            raise ValueError(f"K needs 1 to {MAX_VARIABLES} variables, got {len(variables)}")
        try:
            poly = sympy.Poly(expr, *variables)
        except sympy.PolynomialError:
            raise ValueError(f"K = {expr} is not a polynomial in {variables}") from None
        if not all(c.is_Rational or c.is_Float for c in poly.coeffs()):
            raise ValueError(f"K = {expr} has coefficients that are not rational or float numbers")
        if poly.is_zero:
            raise ValueError("K is identically 0")
        if not poly.coeff_monomial(1).is_zero:
            raise ValueError(f"K(0) = {poly.coeff_monomial(1)}, not 0: the origin must be a zero of K")
        if not (isinstance(box, Real) and 0 < box < np.inf):
            raise ValueError(f"box must be a positive number, got {box!r}")
        self.variables, self.box = variables, float(box)
        *self.outer, inner = variables
        self.monomials = [(m, abs(float(c))) for m, c in poly.terms()]
        self.even_in_inner = self._is_even(len(variables) - 1)
        in_inner = sympy.Poly(expr, inner)
        self.coefficient_functions = [sympy.lambdify(self.outer, in_inner.coeff_monomial(inner**k), "numpy")
                                      for k in range(in_inner.degree() + 1)]
        self.max_points = MAX_ROOTS // max(1, in_inner.degree() // 2 if self.even_in_inner else in_inner.degree())

    def volume(self, eps: float) -> float:
        rules = self._outer_rules(eps)
        points = [grid.ravel() for grid in np.meshgrid(*[nodes for nodes, _ in rules], indexing="ij")]
        weights = reduce(np.multiply.outer, [w for _, w in rules], np.ones(())).ravel()
        coefficients = np.stack([np.broadcast_to(np.asarray(f(*points), dtype=float), weights.shape)
                                 for f in self.coefficient_functions], axis=1)
        coefficients *= self.box ** np.arange(coefficients.shape[1])  # x = b·y, y ∈ [−1, 1]
        coefficients[:, 0] -= eps
        return float(self.box * weights @ _lengths_below_zero(coefficients, self.even_in_inner))

    def _is_even(self, index: int) -> bool:
        return all(m[index] % 2 == 0 for m, _ in self.monomials)

    def _outer_rules(self, eps: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Nodes and weights for each outer variable, widened to at most max_points points."""
        slabs = [self._slab_width(i, eps) for i in range(len(self.outer))]
        steps = LOG_STEP.get(len(self.outer), ())
        sizes = [(1 if self._is_even(i) else 2) * (log(self.box / slab) / step + 1)
                 for i, (slab, step) in enumerate(zip(slabs, steps))]
        widening = max(1.0, prod(sizes) / self.max_points) ** (1 / max(len(sizes), 1))
        return [_log_grid_rule(slab, self.box, step * widening, self._is_even(i))
                for i, (slab, step) in enumerate(zip(slabs, steps))]

    def _slab_width(self, index: int, eps: float) -> float:
        """t with Σ |terms of K containing w_i| < SLAB_TOLERANCE·ε wherever |w_i| < t (≤ b)."""
        terms = [(m[index], c, sum(m)) for m, c in self.monomials if m[index] > 0]
        if not terms:
            return self.box
        lowest = min(e for e, _, _ in terms)
        bound = sum(c * self.box ** (degree - lowest) for _, c, degree in terms)
        return min(self.box, (SLAB_TOLERANCE * eps / bound) ** (1.0 / lowest))


def _log_grid_rule(slab: float, box: float, step: float, even: bool) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for ∫_{−b}^{b} f(w) dw: the trapezoid rule in s = log(|w|/b) on
    [log(slab/b), 0], and slab·f(±slab) for |w| < slab; one sign, doubled, if f is even."""
    s = np.linspace(log(slab / box), 0.0, ceil(log(box / slab) / step) + 1)
    nodes = box * np.exp(s)
    half_steps = np.diff(s) / 2
    weights = (np.append(half_steps, 0.0) + np.insert(half_steps, 0, 0.0)) * nodes
    weights[0] += slab
    if even:
        return nodes, 2 * weights
    return np.concatenate([-nodes, nodes]), np.concatenate([weights, weights])


def _lengths_below_zero(coefficients: np.ndarray, even: bool) -> np.ndarray:
    """Length of {y ∈ [−1, 1] : p(y) < 0} for each row of ascending coefficients of p.

    If p is even, the cuts on [0, 1] are √t for the roots t of p(√t), and the length is doubled.
    """
    if even:
        cuts, lower = np.sqrt(np.clip(_real_parts_of_roots(coefficients[:, ::2]), 0.0, 1.0)), 0.0
    else:
        cuts, lower = np.clip(_real_parts_of_roots(coefficients), -1.0, 1.0), -1.0
    ends = np.broadcast_to([lower, 1.0], (len(coefficients), 2))
    breakpoints = np.sort(np.concatenate([ends, cuts], axis=1), axis=1)
    midpoints = (breakpoints[:, 1:] + breakpoints[:, :-1]) / 2
    values = np.zeros_like(midpoints)
    for k in range(coefficients.shape[1] - 1, -1, -1):  # Horner
        values = values * midpoints + coefficients[:, k:k + 1]
    lengths = np.where(values < 0, np.diff(breakpoints, axis=1), 0.0).sum(axis=1)
    return 2 * lengths if even else lengths


def _real_parts_of_roots(coefficients: np.ndarray) -> np.ndarray:
    """Real parts of all roots of each row's polynomial, by batched companion eigenvalues.

    A leading coefficient below LEADING_FLOOR times the largest is raised to that floor: the
    roots this adds lie far outside [−1, 1], and the others move by a rounding-sized amount.
    """
    degree = coefficients.shape[1] - 1
    if degree == 0:
        return np.empty((len(coefficients), 0))
    floor = LEADING_FLOOR * np.abs(coefficients).max(axis=1)
    leading = np.where(np.abs(coefficients[:, -1]) < floor, floor, coefficients[:, -1])
    companion = np.zeros((len(coefficients), degree, degree))
    companion[:, 0, :] = -coefficients[:, -2::-1] / leading[:, None]
    companion[:, np.arange(1, degree), np.arange(degree - 1)] = 1.0
    return np.linalg.eigvals(companion).real
