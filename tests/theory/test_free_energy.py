"""Free energies of phases and critical sample sizes: the arithmetic exactly, the crossing
against Lambert's W, and the published toy-model transitions."""

import math

import numpy as np
import pytest
import sympy

from sltlab.theory import deep_linear
from sltlab.theory.free_energy import (Phase, class_free_energy, critical_n, dln_phases, predicted_occupancy,
                                       preferred_at, transitions)

R = sympy.Rational


def test_dln_phases_are_exact():
    phases = dln_phases([6, 3, 6], ["1", "0.4", "0.2"])
    assert [p.name for p in phases] == ["rank 0", "rank 1", "rank 2", "rank 3"]
    assert [p.loss for p in phases] == [R(3, 5), R(1, 10), R(1, 50), 0]          # ½ Σ_{i>k} s_i²
    assert [p.constant for p in phases] == [0, 1, R(7, 5), R(8, 5)]              # (L/2) Σ_{i≤k} s_i^{2/L}, L = 2
    for k, phase in enumerate(phases):
        exact = deep_linear([6, 3, 6], k)
        assert (phase.lam, phase.multiplicity) == (exact.lam, exact.multiplicity)


def test_the_prior_constant_of_a_deeper_network_is_the_balanced_norm():
    (_, rank_one) = dln_phases([2, 2, 2, 2], [8])
    assert rank_one.constant == 6                                                 # (3/2)·8^{2/3}
    (_, rank_one) = dln_phases([3, 2, 3], ["9/4"])
    assert rank_one.constant == R(9, 4)                                           # nuclear norm for L = 2


def test_the_free_energy_is_the_expansion_term_by_term():
    phase = dln_phases([6, 3, 6], ["1", "0.4", "0.2"])[2]
    n = sympy.Integer(1000)
    expected = n * R(1, 50) + phase.lam * sympy.log(n) - (phase.multiplicity - 1) * sympy.log(sympy.log(n)) + R(7, 5)
    assert sympy.simplify(phase.free_energy(1000) - expected) == 0
    assert sympy.simplify(phase.free_energy(1000, with_constant=False) - (expected - R(7, 5))) == 0
    assert math.isclose(float(phase.free_energy_float(np.array([1000.0]))[0]), float(expected), rel_tol=1e-14)


def test_the_critical_n_is_lamberts_w():
    """n·ΔL + Δλ·log n + Δc = 0 with equal m: n = (Δλ/ΔL)·W₋₁((ΔL/Δλ)·e^{−Δc/Δλ})."""
    before = Phase("lossy", R(7, 100), R(7), 1, R(3))
    after = Phase("rich", R(5, 100), R(17, 2), 1, R(6))
    loss, lam, constant = after.loss - before.loss, after.lam - before.lam, after.constant - before.constant
    exact = (lam / loss * sympy.LambertW(loss / lam * sympy.exp(-constant / lam), -1)).evalf(30)
    assert math.isclose(critical_n(before, after), float(exact), rel_tol=1e-10)
    free = (lam / loss * sympy.LambertW(loss / lam, -1)).evalf(30)
    assert math.isclose(critical_n(before, after, with_constant=False), float(free), rel_tol=1e-10)


def test_transitions_are_in_order_and_each_is_a_crossing():
    phases = dln_phases([6, 3, 6], ["1", "0.4", "0.2"])
    found = transitions(phases)
    assert [(t.before, t.after) for t in found] == [("rank 0", "rank 1"), ("rank 1", "rank 2"), ("rank 2", "rank 3")]
    assert [t.critical_n for t in found] == sorted(t.critical_n for t in found)
    by_name = {p.name: p for p in phases}
    for t in found:
        gap = by_name[t.after].free_energy(t.critical_n) - by_name[t.before].free_energy(t.critical_n)
        assert abs(float(gap)) < 1e-8
        assert t.critical_n_without_constant < t.critical_n         # c grows with the rank here


def test_predicted_occupancy_is_a_distribution_even_at_the_crossing():
    before, after = Phase("a", R(1, 10), R(2), 1, R(0)), Phase("b", R(0), R(5), 1, R(1))
    at = critical_n(before, after)
    shares = predicted_occupancy([before, after], np.array([at / 10, at, at * 10]))
    np.testing.assert_allclose(shares.sum(0), 1.0)
    np.testing.assert_allclose(shares[:, 1], [0.5, 0.5], atol=1e-9)
    assert shares[0, 0] > 0.99 and shares[1, 2] > 0.99


def test_a_class_of_phases_adds_their_masses():
    a, b = Phase("a", R(1, 10), R(2), 1, R(0)), Phase("b", R(1, 10), R(2), 1, R(0))
    n = np.array([10.0, 100.0])
    np.testing.assert_allclose(class_free_energy([a, b], n), a.free_energy_float(n) - math.log(2))
    np.testing.assert_allclose(class_free_energy(a, n), a.free_energy_float(n))


def test_no_crossing_gives_none():
    cheap, costly = Phase("a", R(0), R(1), 1, R(0)), Phase("b", R(1, 10), R(5), 1, R(0))
    assert critical_n(cheap, costly) is None            # never preferred
    assert critical_n(costly, cheap) is None            # preferred from the start


@pytest.mark.parametrize("values, message", [
    ([], "at least one singular value"), (["x"], "non-negative rational"),
    (["-1"], r"must be positive \(a zero is no mode"),   # had said "non-negative", yet a zero is refused
    (["1", "0"], r"must be positive \(a zero is no mode"), (["1", "1/0"], "non-negative rational"),
    (["1", "1", "1", "1", "1"], "a teacher of 4 outputs and 4 inputs has at most 4 singular values, got 5"),
])
def test_bad_singular_values_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        dln_phases([4, 2, 4], values)


def test_free_energies_below_n_3_or_at_no_finite_n_are_refused():
    with pytest.raises(ValueError, match="sample sizes n ≥ 3"):
        predicted_occupancy(dln_phases([6, 3, 6], ["1", "0.3"]), np.array([1.0, 100.0]))
    for size in (np.inf, np.nan):
        with pytest.raises(ValueError, match="at finite sample sizes"):
            predicted_occupancy(dln_phases([6, 3, 6], ["1", "0.3"]), np.array([100.0, size]))


def test_duplicate_phase_names_are_refused():
    phase = Phase("a", R(0), R(1), 1, R(0))
    with pytest.raises(ValueError):
        transitions([phase, phase])


@pytest.mark.parametrize("call", [lambda: transitions(5), lambda: transitions(None), lambda: transitions(["x"]),
                                  lambda: critical_n(None, dln_phases([4, 2, 4], ["1"])[0]),
                                  # classes of phases need names: a list of lists had ended in an AttributeError
                                  lambda: transitions([[Phase("a", R(1), R(1), 1, R(0))], [Phase("b", R(0), R(2), 1,
                                                                                                 R(0))]]),
                                  lambda: Phase("a", 10 ** 400, R(1), 1, R(0))])   # had raised OverflowError
def test_phases_of_the_wrong_kind_are_one_line_value_errors(call):
    with pytest.raises(ValueError, match="Phase|phase 'a': its loss, λ and constant must be numbers in float's range"):
        call()


def test_a_switch_that_is_later_undone_keeps_its_crossing_without_c():
    """b (λ 3/2, m 5) overtakes a (λ 1) at n = 3.18 and loses again near 2·10¹¹: with c = 0 the
    crossing without c is the same switch, not the last one after which b stays preferred (none)."""
    a, b = Phase("a", R(0), R(1), 1, R(0)), Phase("b", R(0), R(3, 2), 5, R(0))
    found = transitions([a, b])
    assert [(t.before, t.after) for t in found] == [("a", "b"), ("b", "a")]
    assert all(t.critical_n_without_constant == t.critical_n for t in found)
    assert critical_n(a, b, with_constant=False) is None


@pytest.mark.parametrize("loss, lam, multiplicity, said", [
    (sympy.nan, R(1), 1, "must be finite"), (R(0), R(-1), 1, "λ ≥ 0"), (R(0), R(1), 0, "integer ≥ 1"),
    (R(0), R(1), True, "integer ≥ 1"), ("x", R(1), 1, "must be numbers")])
def test_a_phase_of_no_loss_no_lambda_or_no_multiplicity_is_refused(loss, lam, multiplicity, said):
    with pytest.raises(ValueError, match=f"^phase 'p': .*{said}"):
        Phase("p", loss, lam, multiplicity, R(0))


@pytest.mark.parametrize("multiplicity", [np.int64(2), sympy.Integer(2), 2])
def test_a_phase_s_multiplicity_is_kept_as_a_plain_int(multiplicity):
    phase = Phase("p", R(0), R(1), multiplicity, R(0))
    assert type(phase.multiplicity) is int and phase.as_dict()["multiplicity"] == 2


@pytest.mark.parametrize("large", ["100000000000000000", "1e30"])
def test_a_term_two_phases_share_cancels_however_large(large):
    """Ranks 1 and 2 of [2, 2, 2] learning s = (S, 1) share S in c: F(rank 1) − F(rank 2) =
    n/2 − log log n − 1 > 0 from n = 3 on, so rank 2 is preferred throughout, whatever S (in
    float64 a shared c of 10¹⁷ had hidden the difference of 1 and reported rank 1 up to n = 8.8)."""
    phases = dln_phases([2, 2, 2], [large, "1"])
    assert transitions(phases) == ()
    assert preferred_at(phases, 3.0) == preferred_at(phases, 1e12) == "rank 2"
    n = np.array([3.0, 10.0, 1e6])
    small = dln_phases([2, 2, 2], ["10", "1"])[1:]   # the same two phases with S = 10
    np.testing.assert_allclose(predicted_occupancy(phases[1:], n), predicted_occupancy(small, n), rtol=1e-12)
    gap = n / 2 - np.log(np.log(n)) - 1
    np.testing.assert_allclose(phases[1].free_energy_float(n, relative_to=phases[2]), gap, rtol=1e-12)


@pytest.mark.parametrize("size", [1, 0, -1, 2.5, "1+I", float("nan")])
def test_a_phase_free_energy_below_three_or_not_a_real_number_is_refused(size):
    """log log n needs n ≥ 3: n = 1 had given nan, and n = −1 the complex I·π/2."""
    phase = Phase("a", R(1, 2), R(1), 2, R(0))
    with pytest.raises(ValueError, match="sample sizes n ≥ 3|finite sample sizes|a number ≥ 3 or a symbol"):
        phase.free_energy(size)
    with pytest.raises(ValueError):
        phase.free_energy_float(np.array([size if isinstance(size, (int, float)) else 1.0]))
    assert phase.free_energy(sympy.Symbol("n")).has(sympy.Symbol("n"))   # symbolic n stays as it was


def test_a_learning_coefficient_given_as_a_float_is_read_as_its_decimal_and_nan_is_refused():
    from sltlab.theory.coefficient import Derivation, LearningCoefficient

    made = Derivation("a formula", "a case", "a source")
    assert LearningCoefficient(0.1, 1, 2, "model", {}, made).lam == R(1, 10)   # its binary value had been kept
    with pytest.raises(ValueError, match="λ must be a finite number, got nan"):   # sympy.Rational(nan) had read 0
        LearningCoefficient(float("nan"), 1, 2, "model", {}, made)


def test_with_constant_is_a_flag():
    with pytest.raises(ValueError, match="^with_constant must be True or False, got 'no'$"):   # had read as true
        transitions(dln_phases([6, 3, 6], ["1", "0.3"]), with_constant="no")
