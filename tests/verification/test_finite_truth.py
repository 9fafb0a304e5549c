"""The quadrature truth t·E[K] under exp(−t·K − (γ/2)‖w‖²) against Gaussian integrals in closed
form: K = w₁² gives t/(2t + γ), and K = w₁² + 3w₂² the sum of one such term per direction."""

import math

import pytest

from sltlab.verification.reference.finite_truth import resolves, tempered_expectation


@pytest.mark.parametrize("nbeta", [10.0, 1e3, 1e5, 1e7])
@pytest.mark.parametrize("localization", [1.0, 100.0])
def test_quadratic_potentials_give_their_gaussian_expectations(nbeta, localization):
    one = nbeta / (2 * nbeta + localization)
    assert math.isclose(tempered_expectation("w1**2", nbeta, localization), one, rel_tol=1e-12)
    two = one + 3 * nbeta / (6 * nbeta + localization)
    assert math.isclose(tempered_expectation("w1**2 + 3*w2**2", nbeta, localization), two, rel_tol=1e-12)


def test_a_large_coefficient_counts_in_what_the_grid_resolves():
    """10²⁰·w² confines w to (t·10²⁰)^{−1/2}, far below the grid's finest 10⁻⁹: its truth had read 0
    against 0.5 at t = 1,086."""
    assert resolves(1e3, "w**2") and not resolves(1e3, "100000000000000000000*w**2")
    with pytest.raises(ValueError, match=r"up to nβ·max\|c\| = 1e\+18"):
        tempered_expectation("100000000000000000000*w**2", 1e3, 1.0)
