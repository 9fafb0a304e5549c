"""V(ε) = vol{w ∈ [−b, b]^d : K(w) < ε} of a polynomial K in 1 to 3 variables, without sampling:
exactly in the last variable (the real roots of K − ε cut it into pieces of one sign), by the
trapezoid rule on logarithmic grids in the others (:func:`sltlab.verification.reference.volume_scaling.volume`
states the method and its accuracy). Never imports torch.
"""

from __future__ import annotations

from functools import reduce
from math import ceil, log, prod
from numbers import Real
from typing import Sequence

import numpy as np
import sympy

from sltlab.theory import parse_expression

MAX_VARIABLES = 3
# Steps in s = log(|w_i|/b) for 1 or 2 outer variables; unequal in 2-D so that singular curves
# Σ α_i s_i = const of monomial potentials do not meet the grid at one phase.
LOG_STEP = {1: (0.002,), 2: (0.03, 0.0485)}
MAX_ROOTS = 400_000  # outer steps are widened beyond this many roots of K − ε per ε
SLAB_TOLERANCE = 1e-4  # on the slab |w_i| < t left to the tail, terms with w_i are < this·ε
LEADING_FLOOR = 1e-14  # leading coefficients below this (relative to the largest) are raised to it


class PotentialVolume:
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
        return float(self.box * weights @ lengths_below_zero(coefficients, self.even_in_inner))

    def _is_even(self, index: int) -> bool:
        return all(m[index] % 2 == 0 for m, _ in self.monomials)

    def _outer_rules(self, eps: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Nodes and weights for each outer variable, widened to at most max_points points."""
        slabs = [self._slab_width(i, eps) for i in range(len(self.outer))]
        steps = LOG_STEP.get(len(self.outer), ())
        sizes = [(1 if self._is_even(i) else 2) * (log(self.box / slab) / step + 1)
                 for i, (slab, step) in enumerate(zip(slabs, steps))]
        widening = max(1.0, prod(sizes) / self.max_points) ** (1 / max(len(sizes), 1))
        return [log_grid_rule(slab, self.box, step * widening, self._is_even(i))
                for i, (slab, step) in enumerate(zip(slabs, steps))]

    def _slab_width(self, index: int, eps: float) -> float:
        """t with Σ |terms of K containing w_i| < SLAB_TOLERANCE·ε wherever |w_i| < t (≤ b)."""
        terms = [(m[index], c, sum(m)) for m, c in self.monomials if m[index] > 0]
        if not terms:
            return self.box
        lowest = min(e for e, _, _ in terms)
        bound = sum(c * self.box ** (degree - lowest) for _, c, degree in terms)
        return min(self.box, (SLAB_TOLERANCE * eps / bound) ** (1.0 / lowest))


def log_grid_rule(slab: float, box: float, step: float, even: bool) -> tuple[np.ndarray, np.ndarray]:
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


def lengths_below_zero(coefficients: np.ndarray, even: bool) -> np.ndarray:
    """Length of {y ∈ [−1, 1] : p(y) < 0} for each row of ascending coefficients of p.

    If p is even, the cuts on [0, 1] are √t for the roots t of p(√t), and the length is doubled.
    """
    if even:
        cuts, lower = np.sqrt(np.clip(real_parts_of_roots(coefficients[:, ::2]), 0.0, 1.0)), 0.0
    else:
        cuts, lower = np.clip(real_parts_of_roots(coefficients), -1.0, 1.0), -1.0
    ends = np.broadcast_to([lower, 1.0], (len(coefficients), 2))
    breakpoints = np.sort(np.concatenate([ends, cuts], axis=1), axis=1)
    midpoints = (breakpoints[:, 1:] + breakpoints[:, :-1]) / 2
    values = np.zeros_like(midpoints)
    for k in range(coefficients.shape[1] - 1, -1, -1):  # Horner
        values = values * midpoints + coefficients[:, k:k + 1]
    lengths = np.where(values < 0, np.diff(breakpoints, axis=1), 0.0).sum(axis=1)
    return 2 * lengths if even else lengths


def real_parts_of_roots(coefficients: np.ndarray) -> np.ndarray:
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
