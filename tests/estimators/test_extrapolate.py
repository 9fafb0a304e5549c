"""λ from estimates at several nβ, exactly."""

import math

import pytest

from sltlab.estimators import extrapolate_llc


def test_two_sizes_give_the_line_through_them_and_its_error_propagation():
    lam, shortfall = 35.0, 30.0
    nbetas = (1000.0, 70000.0)
    estimates = [lam - shortfall / math.log(t) for t in nbetas]
    fit = extrapolate_llc(nbetas, estimates, (0.1, 0.2))
    assert fit.lam == pytest.approx(lam, rel=1e-12) and fit.shortfall == pytest.approx(shortfall, rel=1e-12)
    assert fit.chi2 is None
    a, b = 1 / math.log(1000.0), 1 / math.log(70000.0)   # λ = (a·y₂ − b·y₁)/(a − b)
    assert fit.standard_error == pytest.approx(math.hypot(a * 0.2, b * 0.1) / (a - b), rel=1e-12)
    assert fit.weights == pytest.approx((-b / (a - b), a / (a - b)), rel=1e-12)
    assert fit.combine(estimates) == pytest.approx(lam, rel=1e-12)


def test_three_sizes_on_the_line_have_zero_chi2_and_off_it_do_not():
    nbetas = (100.0, 1000.0, 10000.0)
    on_line = [2.0 - 1.5 / math.log(t) for t in nbetas]
    assert extrapolate_llc(nbetas, on_line, (0.01,) * 3).chi2 == pytest.approx(0.0, abs=1e-18)
    bent = [on_line[0], on_line[1] + 0.1, on_line[2]]
    assert extrapolate_llc(nbetas, bent, (0.01,) * 3).chi2 > 10


@pytest.mark.parametrize("arguments, message", [
    (((1000.0,), (1.0,), (0.1,)), "at least two"),
    (((1000.0, 1000.0), (1.0, 1.1), (0.1, 0.1)), "two different"),
    (((1.0, 1000.0), (1.0, 1.1), (0.1, 0.1)), "nβ > 1"),
    (((10.0, 1000.0), (1.0, float("nan")), (0.1, 0.1)), "finite"),
    (((10.0, 1000.0), (1.0, 1.1), (0.1, 0.0)), "positive"),
])
def test_bad_input_is_a_one_line_error(arguments, message):
    with pytest.raises(ValueError, match=message):
        extrapolate_llc(*arguments)
