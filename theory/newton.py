"""Learning coefficients of polynomial potentials by the Newton-polyhedron method.

For K(w) ≥ 0 with K(0) = 0 and a prior φ(w) ∝ Π|w_i|^{h_i} near the origin, let
P(K) = conv(supp K) + R^d_{≥0}. If K is non-degenerate — for every compact face γ of P(K) the
face polynomial K_γ has no zero on the real torus (R∖0)^d — then

    λ = min{⟨h + 1, c⟩ : c ≥ 0, ⟨α, c⟩ ≥ 1 for every exponent α of K},
    m = 1 + dimension of the optimal face of that LP

(the codimension of the face of P(K) hit by the ray t·(h + 1)). Sources: A. N. Varchenko,
"Newton polyhedra and estimation of oscillating integrals", Funct. Anal. Appl. 10 (1976);
for the real case and statistical models S. Lin, "Algebraic methods for evaluating integrals
in Bayesian statistics", PhD thesis, UC Berkeley (2011), chapter on Newton polyhedra;
Watanabe (2009) §2.4. When non-degeneracy cannot be shown the value is refused with
:class:`theory.DegenerateError`: the naive number can be wrong, e.g. (w1 + w2)² has naive 1,
true 1/2.
"""

from __future__ import annotations

import itertools
import random
from fractions import Fraction
from math import comb, gcd, prod
from typing import Sequence

import sympy

from sltlab.theory.coefficient import DegenerateError, Derivation, LearningCoefficient, require_exponents
from sltlab.theory.parsing import abbreviated, parse_expression
from sltlab.theory.polyhedron import affine_dimension, compact_faces, dual_vertices, newton_distance

SOURCE = "Varchenko, Funct. Anal. Appl. 10 (1976); Lin, PhD thesis, UC Berkeley (2011)"


def newton(K, variables: Sequence | None = None, prior: Sequence | None = None) -> LearningCoefficient:
    """λ and m of a polynomial potential K at the origin, from its Newton polyhedron.

    Parameters
    ----------
    K : sympy expression or str
        A polynomial with rational coefficients, K(0) = 0, non-negative near the origin,
        e.g. ``"w1**4 + w2**2"``.
    variables : sequence of str or sympy.Symbol, optional
        The coordinates, in order (default: the free symbols of K, naturally sorted). Extra
        variables that K does not involve are allowed: they are free directions.
    prior : sequence of non-negative rationals, optional
        Prior exponents h with φ(w) ∝ Π|w_i|^{h_i} near 0 (default 0).

    Raises
    ------
    ValueError
        If K is not such a polynomial, or takes negative values near the origin.
    DegenerateError
        If a compact face polynomial vanishes on the real torus, or that cannot be ruled out.
    """
    expr, symbols = parse_polynomial(K, variables)
    poly = sympy.Poly(expr, *symbols)
    terms = dict(poly.terms())
    weights = [1 + h for h in _prior(prior, len(symbols))]

    vertices = dual_vertices(terms)
    faces = compact_faces(terms, vertices)
    for face in faces:
        _check_face(face, terms, symbols)
    distance, optimal = newton_distance(vertices, weights)
    multiplicity = 1 + affine_dimension(optimal)
    hit = ", ".join(f"({', '.join(str(x) for x in v)})" for v in optimal)
    return LearningCoefficient(
        lam=sympy.Rational(distance.numerator, distance.denominator),
        multiplicity=multiplicity,
        dim=len(symbols),
        model="newton",
        parameters={"K": str(expr), "variables": tuple(str(s) for s in symbols),
                    "prior": tuple(str(w - 1) for w in weights)},
        derivation=Derivation(
            "Newton polyhedron: λ = min ⟨h+1, c⟩ over c ≥ 0 with ⟨α, c⟩ ≥ 1, m = 1 + dim of the optimal face",
            f"optimal LP vertices {hit}; "
            f"{'the compact face' if len(faces) == 1 else f'all {len(faces)} compact faces'} non-degenerate on the "
            "real torus",
            SOURCE,
        ),
    )


def parse_polynomial(K, variables: Sequence | None) -> tuple[sympy.Expr, tuple[sympy.Symbol, ...]]:
    """K (:func:`sltlab.theory.parsing.parse_expression`) expanded into a polynomial with
    rational coefficients and K(0) = 0, and its variables."""
    expr, symbols = parse_expression(K, variables)
    if expanded_terms_bound(expr) > MAX_TERMS:
        raise ValueError(f"K may expand into more than {MAX_TERMS:,} terms, the most this exact method takes")
    try:
        expr = sympy.nsimplify(sympy.expand(expr), rational=True)
    except (TypeError, ValueError, OverflowError):   # sympy's own message repeats the number, to thousands of digits
        raise ValueError("coefficients of K must be rational numbers that can be read exactly: write very large or "
                         "small ones as integers or fractions") from None
    if expr == 0:
        raise ValueError("K is identically zero")
    try:
        poly = sympy.Poly(expr, *symbols)
    except sympy.PolynomialError:
        raise ValueError(f"K = {expr} is not a polynomial in {', '.join(map(str, symbols))}") from None
    for coefficient in poly.coeffs():
        if not coefficient.is_Rational:
            raise ValueError(f"coefficients of K must be rational numbers, got {coefficient}")
    constant = poly.coeff_monomial(1)
    if constant != 0:
        raise ValueError(f"K(0) = {constant} ≠ 0: the potential has no zero at the origin")
    return expr, symbols


MAX_TERMS = 10_000   # monomials of expanded K: (x + y + z + w)^1000 would have 1.7e8, a product of 40 binomials 1.1e12


def expanded_terms_bound(expr: sympy.Expr) -> int:
    """An upper bound on the number of monomials of ``expand(expr)``, without expanding: those
    of a sum add, those of a product multiply, and a power p^k of p with t monomials has at most
    C(t + k − 1, k) (the monomials of degree k in t symbols); anything else counts as one. Any
    count above ``MAX_TERMS`` is reported as ``MAX_TERMS + 1``, so the numbers stay small."""
    too_many = MAX_TERMS + 1
    if expr.is_Add:
        return min(too_many, sum(expanded_terms_bound(term) for term in expr.args))
    if expr.is_Mul:
        return min(too_many, prod(expanded_terms_bound(factor) for factor in expr.args))
    if expr.is_Pow and expr.exp.is_Integer and expr.exp > 0:
        terms = expanded_terms_bound(expr.base)
        if terms == 1:
            return 1
        power = int(expr.exp) if expr.exp <= too_many else too_many
        return min(too_many, comb(terms + power - 1, power))
    return 1


def _prior(prior: Sequence | None, d: int) -> tuple[Fraction, ...]:
    """The prior exponents h as Fractions, the number type of the exact LP."""
    if prior is None:
        return (Fraction(0),) * d
    h = require_exponents("prior", prior, allow_fraction=True)
    if len(h) != d:
        raise ValueError(f"prior has {len(h)} exponents but K has {d} variables")
    return tuple(Fraction(int(x.p), int(x.q)) for x in h)


def _face_polynomial(terms: dict, symbols) -> sympy.Expr:
    return sympy.Add(*(c * sympy.Mul(*(s ** e for s, e in zip(symbols, a))) for a, c in sorted(terms.items())))


def _check_face(face, terms, symbols) -> None:
    """Show that K_γ > 0 on the real torus, or raise naming the face γ."""
    face_terms = {a: terms[a] for a in sorted(face)}
    polynomial = _face_polynomial(face_terms, symbols)
    label = (f"K_γ = {abbreviated(str(polynomial))} on the compact face γ = "
             f"conv{{{abbreviated(', '.join(map(str, face_terms)))}}}")
    negative = "K takes negative values arbitrarily close to the origin"
    if len(face_terms) == 1:
        ((alpha, coefficient),) = face_terms.items()
        if coefficient < 0 or any(e % 2 for e in alpha):
            raise ValueError(f"{negative}: its Newton polyhedron has the vertex term {abbreviated(str(polynomial))}")
        return
    # A face negative somewhere had been refused as degenerate (w1² + 3w1w2 + w2²), sending the user to
    # an estimate whose chains all diverged. An edge is decided exactly (100w1² − 201w1w2 + 101w2² is
    # negative only for 1 < w1/w2 < 1.01); a larger face by a witness where one is found.
    if affine_dimension(list(face_terms)) == 1:
        crossing = _edge_sign_change(face_terms, symbols)
        if crossing is not None:
            raise ValueError(f"{negative}: {label} changes sign on the real torus where {crossing}")
        zero = _edge_zero(face_terms, symbols)
        if zero is not None:
            raise DegenerateError(f"{label} vanishes on the real torus where {zero}; "
                                  "the Newton-polyhedron value would be wrong")
    elif (point := _negative_point(face_terms)) is not None:
        raise ValueError(f"{negative}: {label} is negative at w = ({', '.join(map(str, point))}) on the real torus")
    elif not _positive_on_torus(face_terms, symbols):
        raise DegenerateError(f"cannot show that {label} has no zero on the real torus (R∖0)^d; "
                              "the Newton-polyhedron value is refused")


WITNESS_VALUES = tuple(Fraction(v) for v in ("1", "2", "3", "10", "1/2", "1/3", "1/10"))
WITNESS_DRAWS = 128


def _negative_point(terms: dict) -> tuple[Fraction, ...] | None:
    """A point of the real torus where Σ c_α w^α < 0, evaluated exactly, among every sign pattern
    of ±1 (d ≤ 6) and then seeded draws of ±``WITNESS_VALUES``; None where none is found, which
    shows nothing. Where the face polynomial K_γ is negative at x, K is negative arbitrarily close
    to the origin: along w_i = t^{a_i}·x_i, with a the weight whose minimum over the polyhedron
    the face attains (value q), K(w) = t^q·K_γ(x) + o(t^q) as t → 0⁺."""
    exact = [(alpha, Fraction(str(c))) for alpha, c in terms.items()]
    d, draws = len(exact[0][0]), random.Random(0)
    signs = itertools.product((Fraction(1), Fraction(-1)), repeat=d) if d <= 6 else iter(())
    others = (tuple(draws.choice(WITNESS_VALUES) * draws.choice((1, -1)) for _ in range(d))
              for _ in range(WITNESS_DRAWS))
    for point in itertools.chain(signs, others):
        if sum(c * prod(x ** e for x, e in zip(point, alpha)) for alpha, c in exact) < 0:
            return point
    return None


def _positive_on_torus(terms: dict, symbols) -> bool:
    """A sufficient test that Σ c_α w^α > 0 on (R∖0)^d; False means "not shown".

    Positive even monomials are positive; a sum of parts in disjoint variables is positive
    when each part is; collinear supports reduce exactly to one variable; a quadratic form is
    positive when its Hessian is positive definite (Sylvester's criterion).
    """
    if all(c > 0 and all(e % 2 == 0 for e in a) for a, c in terms.items()):
        return True
    parts = _variable_disjoint_parts(terms)
    if len(parts) > 1:
        return all(_positive_on_torus(part, symbols) for part in parts)
    if affine_dimension(sorted(terms)) == 1:
        return _edge_zero(terms, symbols) is None
    if any(sum(a) != 2 for a in terms):
        return False
    used = [s for i, s in enumerate(symbols) if any(a[i] for a in terms)]
    return bool(sympy.hessian(_face_polynomial(terms, symbols), used).is_positive_definite)


def _variable_disjoint_parts(terms: dict) -> list[dict]:
    """Group the terms into classes that share no variable (connected components)."""
    parts: list[tuple[set[int], dict]] = []
    for alpha, c in terms.items():
        used = {i for i, e in enumerate(alpha) if e}
        touching = [p for p in parts if p[0] & used]
        merged = (used.union(*(p[0] for p in touching)), {alpha: c})
        for variables, part in touching:
            merged[1].update(part)
            parts.remove((variables, part))
        parts.append(merged)
    return [part for _, part in parts]


def _edge_zero(terms: dict, symbols) -> str | None:
    """Where a collinear sum Σ c_α w^α vanishes on the torus, or None if it does not.

    With endpoints α0, α1 and δ = (α1 − α0)/gcd primitive, the sum is w^{α0}·p(w^δ) for a
    univariate p; some entry of δ is odd, so w^δ takes every value in R∖0 on the torus, and
    p(0) ≠ 0. Hence it vanishes there exactly when p has a real root (decided exactly).
    """
    univariate, monomial = _edge_univariate(terms, symbols)
    roots = sympy.real_roots(univariate)
    if not roots:
        return None
    return f"{monomial} = {roots[0]}"


def _edge_univariate(terms: dict, symbols) -> tuple[sympy.Poly, sympy.Expr]:
    """The univariate p and the monomial w^δ of a collinear sum w^{α0}·p(w^δ) (:func:`_edge_zero`)."""
    start, end = min(terms), max(terms)  # lexicographic order is monotone along a line
    step = gcd(*(e - s for s, e in zip(start, end)))
    delta = tuple((e - s) // step for s, e in zip(start, end))
    pivot = next(i for i, x in enumerate(delta) if x)
    t = sympy.Symbol("t")
    univariate = sympy.Poly(sum(terms[a] * t ** ((a[pivot] - start[pivot]) // delta[pivot]) for a in terms), t)
    return univariate, sympy.Mul(*(s ** e for s, e in zip(symbols, delta)))


def _edge_sign_change(terms: dict, symbols) -> str | None:
    """Where a collinear sum w^{α0}·p(w^δ) changes sign on the torus: at a real root of p of odd
    multiplicity (decided exactly). With the coordinates other than an odd entry j of δ at 1,
    w^δ = w_j^{δ_j} runs through R∖0 and w^{α0} keeps one sign on each side of 0, so p's sign change
    at a root r ≠ 0 (p(0) ≠ 0) is the sum's. None where p keeps its sign."""
    univariate, monomial = _edge_univariate(terms, symbols)
    for factor, multiplicity in univariate.sqf_list()[1]:
        roots = sympy.real_roots(factor) if multiplicity % 2 else []
        if roots:
            return f"{monomial} = {roots[0]}"
    return None
