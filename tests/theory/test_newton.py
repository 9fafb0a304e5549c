"""Newton-polyhedron learning coefficients: valid examples exactly, every
degenerate example refused, properties against normal crossings and an independent LP."""

from fractions import Fraction

import numpy as np
import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linprog

from sltlab.theory import DegenerateError, newton, normal_crossing
from sltlab.theory.newton import MAX_TERMS, expanded_terms_bound

R = sympy.Rational


@pytest.mark.parametrize("K, lam, m", [
    ("w1**4 + w2**2", R(3, 4), 1),
    ("w1**4 + w2**4", R(1, 2), 1),
    ("(w1**2 + w2**2)**2", R(1, 2), 1),
    ("w1**2*w2**4 + w1**4*w2**2", R(1, 3), 1),
    ("w1**2 + w1**2*w2**2", R(1, 2), 1),
    ("(w1*w2)**2 + (w1*w2**2)**2", R(1, 2), 2),
    ("w1**6 + w2**4", R(5, 12), 1),
    ("w1**2*w2**2 + w3**4", R(3, 4), 2),
    ("w1**2*w2**2", R(1, 2), 2),
    ("(w1*w2*w3)**2", R(1, 2), 3),
    ("w1**2 + w2**2 + w3**2", R(3, 2), 1),
])
def test_valid_examples(K, lam, m):
    lc = newton(K)
    assert (lc.lam, lc.multiplicity) == (lam, m)
    assert "non-degenerate" in lc.derivation.case


@pytest.mark.parametrize("K, witness", [
    ("(w1 + w2)**2", "w1/w2 = -1"),          # naive 1, true 1/2
    ("(w1 - w2**2)**2", "w1/w2**2 = 1"),     # naive 3/4, true 1/2
    ("(w1**2 - w2**2)**2", "w1/w2 = -1"),    # λ right but m wrong (true m = 2)
    ("(w1 + w2 + w3)**2", "w2/w3 = -1"),
])
def test_degenerate_examples_are_refused_naming_the_face(K, witness):
    with pytest.raises(DegenerateError, match="compact face") as info:
        newton(K)
    assert witness in str(info.value)


def test_a_polyhedron_with_too_many_candidate_vertices_is_refused_at_once():
    """A sum of 16 squares has C(32, 16) = 6.0e8 choices of 16 constraints: it ran out of memory."""
    with pytest.raises(ValueError, match="16 points in 16 variables has 6.01e\\+08 candidate vertices"):
        newton("+".join(f"w{i}**2" for i in range(1, 17)))


def test_many_points_on_one_face_name_one_vertex_exactly():
    """(x² + y²)^k: all k + 1 terms lie on the face x + y = 2k, so C(k + 3, 2) bases give the one
    vertex (1/2k, 1/2k); each used to be solved again in exact rationals (k = 100 took 19 s)."""
    from sltlab.theory.polyhedron import dual_vertices
    points = [(2 * i, 2 * (100 - i)) for i in range(101)]
    assert dual_vertices(points) == [(Fraction(1, 200), Fraction(1, 200))]
    assert dual_vertices([(2, 0), (1, 1), (0, 3)]) == [(Fraction(1, 2), Fraction(1, 2)),
                                                       (Fraction(2, 3), Fraction(1, 3))]
    lc = newton("(x**2 + y**2)**100")
    assert (lc.lam, lc.multiplicity) == (sympy.Rational(1, 100), 1)


@pytest.mark.parametrize("K, bound", [("x**2 + y**2", 2), ("(x + y)**3", 4), ("(x + y + z)**2 * (x + 1)", 12),
                                      ("(x**2 + y**2)**(10**9)", MAX_TERMS + 1), ("x**(10**9)", 1)])
def test_the_number_of_terms_is_bounded_before_expanding(K, bound):
    assert expanded_terms_bound(sympy.sympify(K)) == bound


@pytest.mark.parametrize("K", ["(x + y + z + w)**1000", "*".join(f"(x{i} + x{i + 1})" for i in range(40))])
def test_a_potential_that_expands_into_too_many_terms_is_refused_at_once(K):
    """(x + y + z + w)^1000 has 1.7e8 terms and a product of 40 binomials 2^40: both ran for hours."""
    with pytest.raises(ValueError, match="may expand into more than 10,000 terms"):
        newton(K)


def test_a_long_face_is_named_in_one_short_line():
    with pytest.raises(DegenerateError) as info:
        newton("(x + y)**300")
    message = str(info.value)
    assert "x/y = -1" in message and " … " in message and "\n" not in message and len(message) < 600


@pytest.mark.parametrize("K, said", [
    ("w1**2 + 3*w1*w2 + w2**2", "changes sign on the real torus where w1/w2 = -3/2 - sqrt(5)/2"),   # had been
    # refused as degenerate: it vanishes on the torus too
    ("100*w1**2 - 201*w1*w2 + 101*w2**2", "changes sign on the real torus where w1/w2 = 1"),   # < 0 on (1, 1.01) only
    ("w1**4 + w2**4 - 3*w1**2*w2**2 + w1**6", "changes sign on the real torus where w1/w2 = -sqrt(5)/2 - 1/2"),
    ("w1**4 + w2**4 + w3**4 - 5*w1**2*w2*w3", "is negative at w = (1, 1, 1)"),   # a face of dimension 2, no edge
])
def test_a_face_negative_on_the_torus_is_a_negative_potential_not_a_degenerate_one(K, said):
    with pytest.raises(ValueError, match="^K takes negative values arbitrarily close to the origin") as info:
        newton(K)
    assert not isinstance(info.value, DegenerateError) and said in str(info.value)


def test_a_face_whose_positivity_cannot_be_shown_is_refused():
    # The Motzkin polynomial: non-negative, zero at (1, 1, 1) on the torus.
    with pytest.raises(DegenerateError, match="cannot show"):
        newton("w1**4*w2**2 + w1**2*w2**4 + w3**6 - 3*w1**2*w2**2*w3**2")


@pytest.mark.parametrize("K, lam", [
    ("w1**2 - w1*w2 + w2**2", R(1)),                        # a definite form with a cross term
    ("w1**2 + w2**2 + w3**2 - w1*w2 - w2*w3", R(3, 2)),     # definite form, triangle face
    ("w1**2 - w1*w2 + w2**2 + w3**4", R(5, 4)),             # parts in disjoint variables
    ("w1**2 + w2**2 - w1**2*w2", R(1)),                     # negative term off the compact faces
])
def test_mixed_sign_potentials_that_are_provably_non_degenerate(K, lam):
    assert newton(K).lam == lam


@pytest.mark.parametrize("K, variables, message", [
    ("w1**2 +", None, "cannot parse"),
    ("sin(w1)", None, "not a polynomial"),
    ("1/w1", None, "not a polynomial"),
    ("w1**2 + 1", None, "no zero at the origin"),
    ("0", None, "identically zero"),
    ("sqrt(2)*w1**2", None, "rational"),
    ("w1**3 + w2**2", None, "negative values"),
    ("-w1**2", None, "negative values"),
    ("a*w1**2", ["w1"], "not among the variables"),
    ("w1**2", ["w1", "w1"], "distinct"),
    (3, None, "sympy expression or a string"),
])
def test_invalid_input_says_what_is_wrong(K, variables, message):
    with pytest.raises(ValueError, match=message):
        newton(K, variables)


def test_prior_and_float_coefficients_and_xor():
    assert newton("w1^2*w2^2", prior=[1, 0]).lam == R(1, 2)
    assert newton("w1**2*w2**2", prior=[1, 0]).multiplicity == 1
    assert newton("0.5*w1**4 + 2*w2**2").lam == R(3, 4)
    w1, w2 = sympy.symbols("w1 w2")
    assert newton(w1**4 + w2**2, [w2, w1]).lam == R(3, 4)
    with pytest.raises(ValueError, match="prior has 1"):
        newton("w1**2*w2**2", prior=[1])


def _symbols(d):
    return sympy.symbols(f"w1:{d + 1}")


prior_exponents = st.sampled_from(["0", "1/3", "1/2", "1", "3/2", "2", "3"])
monomial_exponents = st.lists(st.tuples(st.integers(0, 3), prior_exponents), min_size=1, max_size=4).filter(
    lambda pairs: any(k for k, _ in pairs))


@given(monomial_exponents)
def test_newton_equals_normal_crossing_on_monomials(pairs):
    k, h = [k for k, _ in pairs], [h for _, h in pairs]
    w = _symbols(len(k))
    K = sympy.Mul(*(wi ** (2 * ki) for wi, ki in zip(w, k)))
    a, b = newton(K, w, prior=h), normal_crossing(k, h)
    assert (a.lam, a.multiplicity) == (b.lam, b.multiplicity)


even_sums = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 2), st.integers(1, 9)),
                     min_size=1, max_size=5).filter(lambda ts: all(any(t[:3]) for t in ts))


def _even_sum(terms):
    w = _symbols(3)
    return sympy.Add(*(c * w[0] ** (2 * a) * w[1] ** (2 * b) * w[2] ** (2 * e) for a, b, e, c in terms)), w


@given(even_sums, st.fractions(min_value=R(1, 100), max_value=100))
def test_scaling_invariance_and_bounds(terms, scale):
    K, w = _even_sum(terms)
    lc, scaled = newton(K, w), newton(sympy.Rational(scale.numerator, scale.denominator) * K, w)
    assert (lc.lam, lc.multiplicity) == (scaled.lam, scaled.multiplicity)
    assert 0 < lc.lam <= R(3, 2) and 1 <= lc.multiplicity <= 3


@given(even_sums, st.permutations([0, 1, 2]))
def test_permutation_invariance_and_free_coordinates(terms, order):
    K, w = _even_sum(terms)
    lc = newton(K, w)
    permuted = newton(K, [w[i] for i in order])
    extra = newton(K, list(w) + [sympy.Symbol("w4")])
    assert (lc.lam, lc.multiplicity) == (permuted.lam, permuted.multiplicity) == (extra.lam, extra.multiplicity)


@given(even_sums)
def test_exact_lp_matches_a_floating_point_solver(terms):
    K, w = _even_sum(terms)
    exponents = np.array([m for m in sympy.Poly(K, *w).monoms()], dtype=float)
    result = linprog(np.ones(3), A_ub=-exponents, b_ub=-np.ones(len(exponents)), bounds=[(0, None)] * 3)
    assert result.status == 0
    assert float(newton(K, w).lam) == pytest.approx(result.fun, abs=1e-9)
