"""Aoyagi's formula for deep linear networks against every published check, and its
independent twin, reduced-rank regression (§2)."""

import subprocess
import sys

import numpy as np
import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

from sltlab.theory import deep_linear, dln_staircase, normal_crossing, reduced_rank, regular

R = sympy.Rational


@pytest.mark.parametrize("widths, rank, lam, m", [
    ((2, 2, 2), 0, R(3, 2), 1),
    ((2, 2, 2, 2), 0, R(3, 2), 3),
    ((2, 1, 2), 0, R(1), 2),
    ((1, 1, 1, 1), 0, R(1, 2), 3),
])
def test_published_examples(widths, rank, lam, m):
    lc = deep_linear(widths, rank)
    assert (lc.lam, lc.multiplicity) == (lam, m)
    assert isinstance(lc.lam, sympy.Rational)


@pytest.mark.parametrize("widths, expected", [
    ([10, 5, 5, 10], ["25/2", "35/2", "45/2", "55/2", "65/2", "75/2"]),
    ([12, 6, 6, 12], ["18", "24", "30", "36", "42", "48", "54"]),
])
def test_staircases(widths, expected):
    assert [lc.lam for lc in dln_staircase(widths)] == [R(x) for x in expected]


@pytest.mark.parametrize("rank, lam", [(2, R(79, 2)), (5, R(46))])
def test_equal_widths_values_used_in_experiments(rank, lam):
    assert deep_linear([10, 10, 10, 10], rank).lam == lam


def test_a_staircase_of_more_ranks_than_it_lists_is_refused_at_once():
    """[10⁹, 10⁹] would list 10⁹ + 1 coefficients (hours); one rank of it is still answered."""
    with pytest.raises(ValueError, match="has 1,000,000,001 ranks, more than the 10,001 listed"):
        dln_staircase([10**9, 10**9])
    assert deep_linear([10**9, 10**9], 3).lam == R(10**18, 2)   # one layer: regular, d/2


def test_staircase_of_equal_widths_starts_as_published():
    assert [lc.lam for lc in dln_staircase([10, 10, 10, 10])][:6] == [R(67, 2), R(73, 2), R(79, 2), 42, 44, 46]


def test_derivation_names_active_set_and_a():
    lc = deep_linear([10, 10, 10, 10], 2)
    assert "active set" in lc.derivation.case and "a = 2" in lc.derivation.case
    assert "Aoyagi" in lc.derivation.source and lc.dim == 300


def test_ten_layers_of_width_1000_is_exact():
    # By hand: every D_s = 1000 − 500 = 500, so all 11 are active, ℓ = 10, S = 5,500, M* = 550,
    # a = 5,500 − 549·10 = 10 = ℓ (m = 1), and λ = 500·1,500/2 + 0 − 9·5,500²/40 + ½·55·500²
    # = 375,000 − 6,806,250 + 6,875,000 = 443,750.
    lc = deep_linear([1000] * 11, 500)
    assert lc.dim == 10 * 1000 * 1000 and (lc.lam, lc.multiplicity) == (443_750, 1)
    assert isinstance(lc.lam, sympy.Rational)


widths_strategy = st.lists(st.integers(1, 12), min_size=2, max_size=7)


@given(widths_strategy, st.data())
def test_bounds_and_reversal_symmetry(widths, data):
    rank = data.draw(st.integers(0, min(widths)))
    lc = deep_linear(widths, rank)
    assert 0 < lc.lam <= R(lc.dim, 2)
    assert lc.multiplicity >= 1
    reversed_lc = deep_linear(widths[::-1], rank)
    assert (reversed_lc.lam, reversed_lc.multiplicity) == (lc.lam, lc.multiplicity)


@given(widths_strategy)
def test_nondecreasing_in_rank(widths):
    values = [lc.lam for lc in dln_staircase(widths)]
    assert values == sorted(values)


@given(st.lists(st.integers(1, 12), min_size=2, max_size=2), st.data())
def test_one_layer_is_regular(widths, data):
    lc = deep_linear(widths, data.draw(st.integers(0, min(widths))))
    assert (lc.lam, lc.multiplicity) == (R(widths[0] * widths[1], 2), 1)


@given(widths_strategy)
def test_bottleneck_rank(widths):
    r = min(widths)
    lc = deep_linear(widths, r)
    assert (lc.lam, lc.multiplicity) == (R(r * (widths[0] + widths[-1] - r), 2), 1)


@given(st.integers(1, 15), st.integers(1, 15), st.integers(1, 15), st.data())
def test_two_layers_equal_reduced_rank_regression(m, h, n, data):
    rank = data.draw(st.integers(0, min(m, h, n)))
    dln, rrr = deep_linear([m, h, n], rank), reduced_rank(m, h, n, rank)
    assert (dln.lam, dln.multiplicity, dln.dim) == (rrr.lam, rrr.multiplicity, rrr.dim)


@pytest.mark.parametrize("layers", range(1, 11))
def test_scalar_chain_is_a_normal_crossing(layers):
    # Widths [1, …, 1] at rank 0: K ∝ (w_1 ⋯ w_L)², the normal crossing with every k_i = 1.
    chain, crossing = deep_linear([1] * (layers + 1), 0), normal_crossing([1] * layers)
    assert (chain.lam, chain.multiplicity, chain.dim) == (crossing.lam, crossing.multiplicity, crossing.dim)


def test_reduced_rank_exhaustively_equals_deep_linear_on_small_sizes():
    for m in range(1, 8):
        for h in range(1, 8):
            for n in range(1, 8):
                for r in range(min(m, h, n) + 1):
                    a, b = deep_linear([m, h, n], r), reduced_rank(m, h, n, r)
                    assert (a.lam, a.multiplicity) == (b.lam, b.multiplicity), (m, h, n, r)


@pytest.mark.parametrize("m, h, n, r, case", [
    (1, 1, 5, 0, "M + H < N + r"), (5, 1, 1, 0, "N + H < M + r"),
    (1, 5, 1, 0, "M + N < H + r"), (3, 2, 3, 1, "odd"), (3, 2, 3, 0, "even"),
])
def test_reduced_rank_names_its_case(m, h, n, r, case):
    assert case in reduced_rank(m, h, n, r).derivation.case


@pytest.mark.parametrize("call, message", [
    (lambda: deep_linear([10, 0, 10], 0), "at least 1"),
    (lambda: deep_linear([10, -3, 10], 0), "at least 1"),
    (lambda: deep_linear([10, 5, 10], 6), "exceeds"),
    (lambda: deep_linear([10, 5, 10], -1), "at least 0"),
    (lambda: deep_linear([10, 5, 10], None), "rank must be an integer, got None"),
    (lambda: deep_linear([10], 0), "at least an input and an output"),
    (lambda: deep_linear([10, 2.5, 10], 0), "integer"),
    (lambda: deep_linear("10 10", 0), "list of integers"),
    (lambda: deep_linear({2, 3, 2}, 1), "list of integers in order, got {2, 3}"),   # a set drops a width
    (lambda: deep_linear(np.array([[2, 3], [2, 2]]), 1), "every width must be an integer, got array"),
    (lambda: deep_linear([10 ** 200, 3], 1), "at most 1e100 .* a number of 201 digits"),
    (lambda: regular(10 ** 400), "d must be at most 1e100"),
    (lambda: reduced_rank(3, 2, 3, 3), "exceeds"),
    (lambda: reduced_rank(0, 2, 3, 0), "input_dim"),
])
def test_invalid_input_says_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_theory_does_not_import_torch():
    code = "import sys, sltlab.theory as theory; theory.deep_linear([3, 3], 1); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_more_layers_than_the_search_is_bounded_at_are_refused():
    assert deep_linear([3] * 10_001, 1).lam > 0
    with pytest.raises(ValueError, match="^a deep linear network here has at most 10,000 layers"):
        deep_linear([3] * 10_002, 1)
