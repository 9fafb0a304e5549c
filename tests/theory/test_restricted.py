"""The restricted learning coefficient of one layer of a deep linear network
(:mod:`sltlab.theory.restricted`): exact values at balanced true parameters, the general rank
form, exact ranks from matrices, and bad input."""

import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

from sltlab.theory import restricted_deep_linear, restricted_deep_linear_at, restricted_deep_linear_balanced

R = sympy.Rational


@pytest.mark.parametrize("rank", [0, 1, 2, 5])
def test_balanced_values_of_every_layer_of_10_5_5_10(rank):
    widths = [10, 5, 5, 10]
    values = [restricted_deep_linear_balanced(widths, rank, layer).lam for layer in (1, 2, 3)]
    assert values == [R(rank * 10, 2), R(rank * rank, 2), R(10 * rank, 2)]
    assert all(isinstance(v, sympy.Rational) for v in values)


def test_rank_zero_gives_zero_and_full_rank_gives_the_regular_value_of_each_layer():
    widths = [4, 4, 4, 4]
    assert [restricted_deep_linear_balanced(widths, 0, layer).lam for layer in (1, 2, 3)] == [0, 0, 0]
    full = [restricted_deep_linear_balanced(widths, 4, layer) for layer in (1, 2, 3)]
    assert [lc.lam for lc in full] == [R(lc.dim, 2) for lc in full] == [8, 8, 8]
    assert "vanishes" in restricted_deep_linear_balanced(widths, 0, 2).derivation.case


def test_a_one_layer_network_is_regular_whatever_the_rank():
    for rank in (0, 2, 3):
        lc = restricted_deep_linear_balanced([3, 7], rank, 1)
        assert (lc.lam, lc.multiplicity, lc.dim) == (R(21, 2), 1, 21)


@given(st.lists(st.integers(1, 9), min_size=3, max_size=6), st.data())
def test_balanced_equals_the_rank_form_and_stays_below_half_the_dimension(widths, data):
    rank = data.draw(st.integers(0, min(widths)))
    depth = len(widths) - 1
    for layer in range(1, depth + 1):
        lc = restricted_deep_linear_balanced(widths, rank, layer)
        above = widths[-1] if layer == depth else rank
        below = widths[0] if layer == 1 else rank
        assert lc.lam == R(above * below, 2) and lc.multiplicity == 1
        assert lc.dim == widths[layer] * widths[layer - 1] and lc.lam <= R(lc.dim, 2)
        assert lc == restricted_deep_linear(widths, layer, rank_above=None if layer == depth else rank,
                                            rank_below=None if layer == 1 else rank)


def _embedded_identity(rows, cols, rank):
    return [[int(i == j and i < rank) for j in range(cols)] for i in range(rows)]


@pytest.mark.parametrize("widths, rank", [([6, 3, 4, 5], 2), ([10, 5, 5, 10], 0), ([4, 4, 4], 4), ([5, 2, 2, 2, 5], 1)])
def test_exact_ranks_of_an_aligned_rank_r_parameter_match_the_balanced_values(widths, rank):
    weights = [_embedded_identity(out, inp, rank) for inp, out in zip(widths, widths[1:])]
    for layer in range(1, len(widths)):
        assert restricted_deep_linear_at(weights, layer) == restricted_deep_linear_balanced(widths, rank, layer)


def test_an_unbalanced_true_parameter_has_other_ranks():
    # W_2 W_1 = 0 with W_1 invertible and W_2 = 0: the first layer's A vanishes, the second sees all inputs.
    weights = [[[1, 0], [0, 1]], [[0, 0], [0, 0]]]
    assert restricted_deep_linear_at(weights, 1).lam == 0
    assert restricted_deep_linear_at(weights, 2).lam == 2
    assert restricted_deep_linear_at([[[1, 2], [2, 4]], [[1, R(1, 3)]]], 2).parameters["rank_below"] == 1


@pytest.mark.parametrize("call, words", [
    (lambda: restricted_deep_linear_balanced([10, 5, 10], 6, 1), "exceeds the smallest width"),
    (lambda: restricted_deep_linear_balanced([10, 5, 10], 2, 3), "layers 1..2"),
    (lambda: restricted_deep_linear_balanced([10, 5, 10], 2, 0), "at least 1"),
    (lambda: restricted_deep_linear([10, 5, 5, 10], 2, rank_above=3), "rank_below is needed"),
    (lambda: restricted_deep_linear([10, 5, 5, 10], 2, rank_above=6, rank_below=1), "exceeds 5"),
    (lambda: restricted_deep_linear([10, 5, 5, 10], 3, rank_above=4, rank_below=1), "identity of width 10"),
    (lambda: restricted_deep_linear([10, 5, 5, 10], 2, rank_above=-1, rank_below=1), "at least 0"),
    (lambda: restricted_deep_linear_at([[[0.5, 1.0]], [[1], [2]]], 1), "exact"),
    (lambda: restricted_deep_linear_at([[[1, 1]], [[1, 2]]], 1), "columns"),
    (lambda: restricted_deep_linear_at([], 1), "at least one"),
    (lambda: restricted_deep_linear_at("ab", 1), "weights must list the matrices"),
    (lambda: restricted_deep_linear_at(5, 1), "weights must list the matrices"),
])
def test_bad_input_is_one_line_value_error(call, words):
    with pytest.raises(ValueError) as error:
        call()
    assert words in str(error.value) and "\n" not in str(error.value)


def test_weights_nested_too_deep_are_refused_in_one_line():
    with pytest.raises(ValueError, match="^every weight must be a matrix: a nested list of integers or rationals$"):
        restricted_deep_linear_at([[[[1]]]], 1)
