"""Normal crossings, tanh networks and regular models."""

import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

from sltlab.theory import newton, normal_crossing, regular, tanh_network

R = sympy.Rational


@pytest.mark.parametrize("k, h, lam, m", [
    ([1, 1], None, R(1, 2), 2),
    ([1, 1, 1], None, R(1, 2), 3),
    ([1, 2], None, R(1, 4), 1),
    ([1, 2], [1, 0], R(1, 4), 1),
    ([1, 1], [1, 0], R(1, 2), 1),
    ([2, 1], ["1/2", 0], R(3, 8), 1),
    ([0, 3], None, R(1, 6), 1),
])
def test_normal_crossing_examples(k, h, lam, m):
    lc = normal_crossing(k, h)
    assert (lc.lam, lc.multiplicity, lc.dim) == (lam, m, len(k))


exponents = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), min_size=1, max_size=5).filter(
    lambda pairs: any(k for k, _ in pairs))


@given(exponents, st.randoms(use_true_random=False))
def test_normal_crossing_is_permutation_invariant(pairs, rng):
    shuffled = list(pairs)
    rng.shuffle(shuffled)
    a = normal_crossing([k for k, _ in pairs], [h for _, h in pairs])
    b = normal_crossing([k for k, _ in shuffled], [h for _, h in shuffled])
    assert (a.lam, a.multiplicity) == (b.lam, b.multiplicity)


@given(exponents, st.integers(0, 3))
def test_normal_crossing_ignores_a_coordinate_with_exponent_zero(pairs, h_extra):
    a = normal_crossing([k for k, _ in pairs], [h for _, h in pairs])
    b = normal_crossing([k for k, _ in pairs] + [0], [h for _, h in pairs] + [h_extra])
    assert (a.lam, a.multiplicity) == (b.lam, b.multiplicity)
    assert b.dim == a.dim + 1


def test_tanh_values_for_one_to_ten_hidden_units():
    expected = ["1/2", "2/3", "5/6", "1", "11/10", "6/5", "13/10", "7/5", "3/2", "11/7"]
    assert [tanh_network(h).lam for h in range(1, 11)] == [R(x) for x in expected]


def test_tanh_multiplicity_two_on_perfect_squares():
    assert [tanh_network(h).multiplicity for h in (1, 2, 4, 5, 9)] == [2, 1, 2, 1, 2]
    # H = 1 is the normal crossing a²b² (λ = 1/2, m = 2): the two formulas agree there.
    one, crossing = tanh_network(1), normal_crossing([1, 1])
    assert (one.lam, one.multiplicity) == (crossing.lam, crossing.multiplicity)


@given(st.integers(1, 400))
def test_tanh_is_singular_and_grows_with_width(hidden):
    lc, wider = tanh_network(hidden), tanh_network(hidden + 1)
    assert 0 < lc.lam < R(lc.dim, 2) and lc.lam < wider.lam


def test_regular():
    lc = regular(7)
    assert (lc.lam, lc.multiplicity, lc.dim, lc.regular_ratio) == (R(7, 2), 1, 7, 1.0)


@pytest.mark.parametrize("call, message", [
    (lambda: normal_crossing([0, 0]), "no zero"),
    (lambda: normal_crossing([]), "at least one"),
    (lambda: normal_crossing([1, -1]), "non-negative integer"),
    (lambda: normal_crossing([1, 1], [0]), "h has 1 entries"),
    (lambda: normal_crossing([1, 1], [0, -1]), "non-negative"),
    (lambda: normal_crossing([1, 1], [0, "x"]), "non-negative rational"),
    (lambda: normal_crossing([1, 1], [True, 0]), "every entry of h must be a number, got True"),
    (lambda: normal_crossing([1], [10**400]), "at most 1e100 .* got about 1e400"),
    (lambda: newton("w1**2", prior=[10**400]), "at most 1e100"),
    (lambda: tanh_network(0), "at least 1"),
    (lambda: regular(0), "at least 1"),
])
def test_invalid_input_says_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_float_exponent_means_its_decimal_and_infinity_is_refused():
    """0.1 is 1/10, as the command line reads it, not the binary fraction nearest to it; an
    infinite exponent is refused (sympy.Rational(inf) would be 0)."""
    assert normal_crossing([1], [0.1]).lam == sympy.Rational(11, 20) == newton("w1**2", prior=[0.1]).lam
    with pytest.raises(ValueError, match="must be finite"):
        normal_crossing([1], [float("inf")])
