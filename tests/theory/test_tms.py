"""The toy model of superposition: the closed-form loss against numerical integration, its exact
derivatives, the k-gon table of Chen et al. (2023), saddles and kinks, and the Laplace constant."""

import math

import mpmath
import numpy as np
import pytest
import sympy
from scipy.integrate import quad

from sltlab.theory.free_energy import critical_n, transitions
from sltlab.theory.tms import kgon, tms_phases
from sltlab.theory.tms_laplace import laplace_constant, laplace_phases
from sltlab.theory.tms_loss import kinks, pack, tms_gradient, tms_hessian, tms_loss, unpack


def integrated_loss(theta, features):
    """L by quadrature of the definition: (1/c) Σ_i ∫₀¹ ‖μe_i − ReLU(μWᵀW e_i + b)‖² dμ."""
    weights, bias = unpack(theta, features)
    gram = weights.T @ weights
    total = 0.0
    for i in range(features):
        def error(mu, i=i):
            target = np.zeros(features)
            target[i] = mu
            return float(((target - np.maximum(mu * gram[:, i] + bias, 0)) ** 2).sum())
        kinks_at = [-bias[j] / gram[j, i] for j in range(features) if gram[j, i] != 0 and 0 < -bias[j] / gram[j, i] < 1]
        total += quad(error, 0, 1, points=kinks_at or None, epsabs=1e-13, epsrel=1e-13)[0]
    return total / features


RANDOM = np.random.default_rng(0)
POINTS = [RANDOM.normal(size=18) for _ in range(4)] + [np.array(kgon(6, 5).parameter), np.array(kgon(6, 6).parameter)]


@pytest.mark.parametrize("theta", POINTS)
def test_the_closed_form_is_the_integral(theta):
    assert math.isclose(tms_loss(theta, 6), integrated_loss(theta, 6), rel_tol=1e-10, abs_tol=1e-12)


@pytest.mark.parametrize("theta", POINTS[:4])
def test_gradient_and_hessian_match_finite_differences(theta):
    step = 1e-6
    basis = np.eye(18)
    numeric = np.array([(tms_loss(theta + step * e, 6) - tms_loss(theta - step * e, 6)) / (2 * step) for e in basis])
    np.testing.assert_allclose(tms_gradient(theta, 6), numeric, atol=1e-8)
    numeric = np.array([(tms_gradient(theta + step * e, 6) - tms_gradient(theta - step * e, 6)) / (2 * step)
                        for e in basis])
    np.testing.assert_allclose(tms_hessian(theta, 6), numeric, atol=1e-7)


def test_pack_and_unpack_are_inverse():
    weights, bias = RANDOM.normal(size=(2, 5)), RANDOM.normal(size=5)
    again = unpack(pack(weights, bias), 5)
    np.testing.assert_array_equal(again[0], weights)
    np.testing.assert_array_equal(again[1], bias)
    with pytest.raises(ValueError):
        unpack(np.zeros(14), 5)


# Chen, Lau, Mendel, Wei & Murfet (2023), c = 6: length, bias, loss, ½‖w*‖², λ.
PUBLISHED = [((6, 5, 0), 1.170460, -0.282297, 0.06874, 3.62417, "7"),
             ((6, 5, 1), 1.170460, -0.282297, 0.06180, 3.62764, "17/2"),
             ((6, 6, 0), 1.320526, -0.618135, 0.04819, 6.37764, "17/2")]


@pytest.mark.parametrize("args, length, bias, loss, half_norm, lam", PUBLISHED)
def test_the_published_kgons_at_six_features(args, length, bias, loss, half_norm, lam):
    point = kgon(*args)
    assert (round(point.length, 6), round(point.bias, 6)) == (length, bias)
    assert round(point.loss, 5) == loss and round(point.half_norm_squared, 5) == half_norm
    assert point.kind == "minimum" and point.coefficient.lam == sympy.Rational(lam)
    assert point.coefficient.multiplicity == 1
    assert point.gradient_norm < 1e-12                       # a critical point of the full loss


@pytest.mark.parametrize("k, lam", [(5, "7"), (6, "17/2"), (7, "10"), (8, "23/2")])
def test_the_kgons_at_eight_features(k, lam):
    point = kgon(8, k)
    assert point.kind == "minimum" and point.coefficient.lam == sympy.Rational(lam) and point.gradient_norm < 1e-12
    table = point.as_dict()
    assert table["largest_zero_eigenvalue"] < 1e-14 < 1e-3 < table["smallest_nonzero_eigenvalue"]


@pytest.mark.parametrize("k, positive", [(6, 1), (5, 1), (5, 2)])
def test_dead_columns_of_both_signs_make_a_saddle(k, positive):
    point = kgon(8, k, positive)
    assert point.kind == "saddle" and point.negative_eigenvalues == 2 and point.coefficient is None
    assert point.gradient_norm < 1e-12


def test_the_four_gon_sits_on_a_kink_and_is_refused():
    point = kgon(6, 4)
    assert point.kind == "refused" and "kink" in point.reason and point.coefficient is None
    assert abs(point.bias) < 1e-9


def test_kinks_are_found_where_a_preactivation_vanishes_at_an_end():
    weights = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    assert kinks(pack(weights, np.array([-0.5, -0.5, -0.5])), 3) == []
    found = kinks(pack(weights, np.array([-1.0, -0.5, -0.5])), 3)   # 1 + (−1) = 0 at μ = 1
    assert found and "μ = 1" in found[0]
    assert any("μ = 0" in line for line in kinks(pack(weights, np.array([0.0, -0.5, -0.5])), 3))


@pytest.mark.parametrize("args", [(6, 7), (6, 0), (1, 1), (6, 5, 2), (6, 5, -1), (65, 5)])
def test_bad_kgons_are_refused(args):
    with pytest.raises(ValueError):
        kgon(*args)


def test_more_features_than_an_exact_hessian_can_take_are_refused_at_once():
    with pytest.raises(ValueError, match="features must be at most 64"):
        tms_phases(10**5)


def lambert_crossing(before, after, *, with_constant: bool = True) -> float:
    """n·ΔL + Δλ·log n + Δc = 0 for two phases of equal m: n = (Δλ/ΔL)·W₋₁((ΔL/Δλ)·e^{−Δc/Δλ})."""
    loss, lam = after.loss - before.loss, after.lam - before.lam
    constant = after.constant - before.constant if with_constant else 0
    return float((lam / loss * sympy.LambertW(loss / lam * sympy.exp(-constant / lam), -1)).evalf(30))


def test_the_predicted_five_to_six_transition():
    phases, _ = tms_phases(6)
    (found,) = transitions(phases)
    assert (found.before, found.after) == ("5-gon (1 dead −)", "6-gon")
    by_name = {phase.name: phase for phase in phases}
    pentagon, hexagon = by_name[found.before], by_name[found.after]
    assert math.isclose(found.critical_n, lambert_crossing(pentagon, hexagon), rel_tol=1e-10)
    assert math.isclose(found.critical_n_without_constant, lambert_crossing(pentagon, hexagon, with_constant=False),
                        rel_tol=1e-10)
    assert abs(found.critical_n / 601 - 1) < 0.02 and abs(found.critical_n_without_constant / 445 - 1) < 0.02


def test_the_silent_region_of_a_dead_column_by_monte_carlo():
    point = kgon(6, 5)
    constant = laplace_constant(point)
    draws = np.random.default_rng(1).normal(size=(400_000, 3))
    weights, _ = unpack(np.array(point.parameter), 6)
    dots = (draws[:, :2] @ weights[:, :5]).max(1)
    bias = draws[:, 2]
    silent = (bias < 0) & ((draws[:, :2] ** 2).sum(1) <= -bias) & (dots <= -point.bias) & (dots <= -bias)
    standard_error = math.sqrt(silent.mean() * (1 - silent.mean()) / len(silent))
    assert abs(constant.silent_mass - silent.mean()) < 4 * standard_error
    assert constant.copies == 144 and kgon(6, 6) and laplace_constant(kgon(6, 6)).copies == 120


def test_the_laplace_constant_of_the_hexagon_term_by_term():
    point = kgon(6, 6)
    constant = laplace_constant(point)
    eigenvalues = np.linalg.eigvalsh(tms_hessian(np.array(point.parameter), 6))[1:]   # the rotation is the zero
    expected = -(math.log(120) + math.log(2 * math.pi * math.sqrt(6) * point.length) - 0.5 * math.log(2 * math.pi)
                 - point.half_norm_squared - 0.5 * np.log(eigenvalues).sum())
    assert math.isclose(constant.value, expected, rel_tol=1e-12)
    with pytest.raises(ValueError):
        laplace_constant(kgon(8, 6, 1))                      # a saddle


def test_with_the_laplace_constant_the_hexagon_comes_much_earlier():
    classes = {}
    for phase in laplace_phases(tms_phases(6)[1]):
        classes.setdefault(phase.name[0], []).append(phase)
    found = critical_n(classes["5"], classes["6"])

    def gap(n):   # F_n of the hexagon less that of both pentagons counted as one, −log Σ exp(−F_n), in mpmath
        pentagons = [mpmath.mpf(str(phase.free_energy(n).evalf(30))) for phase in classes["5"]]
        hexagon = mpmath.mpf(str(classes["6"][0].free_energy(n).evalf(30)))
        return hexagon + mpmath.log(sum(mpmath.exp(-energy) for energy in pentagons))

    with mpmath.workdps(30):
        assert math.isclose(found, float(mpmath.findroot(lambda n: gap(sympy.Float(str(n), 30)), 150)), rel_tol=1e-9)
    assert 100 < found < 250   # far below the 601 that ½‖w*‖² alone gives
