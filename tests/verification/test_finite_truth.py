"""The quadrature truth t·E[K] under exp(−t·K − (γ/2)‖w‖²) against Gaussian integrals in closed
form: K = w₁² gives t/(2t + γ), and K = w₁² + 3w₂² the sum of one such term per direction."""

import math

import pytest

from sltlab.verification.reference.finite_truth import tempered_expectation


@pytest.mark.parametrize("nbeta", [10.0, 1e3, 1e5, 1e7])
@pytest.mark.parametrize("localization", [1.0, 100.0])
def test_quadratic_potentials_give_their_gaussian_expectations(nbeta, localization):
    one = nbeta / (2 * nbeta + localization)
    assert math.isclose(tempered_expectation("w1**2", nbeta, localization), one, rel_tol=1e-12)
    two = one + 3 * nbeta / (6 * nbeta + localization)
    assert math.isclose(tempered_expectation("w1**2 + 3*w2**2", nbeta, localization), two, rel_tol=1e-12)
