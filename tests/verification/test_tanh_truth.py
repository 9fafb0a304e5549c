"""The finite-n truth of the one-unit tanh network: the Gaussian integral over a in closed form
and the trapezoid rule over b, against a plain two-dimensional trapezoid rule over (a, b)."""

import numpy as np
import pytest

from sltlab.verification.reference.finite_truth import one_unit_tanh_expectation


def _two_dimensional(x, y, nbeta, localization, points=1200):
    positive = np.geomspace(1e-9, 12.0 / np.sqrt(localization), points)
    axis = np.concatenate([-positive[::-1], [0.0], positive])
    features = np.tanh(np.outer(axis, x))
    first, second = (features * y).mean(1), (features**2).mean(1)           # over b
    gap = -axis[:, None] * first[None, :] + 0.5 * axis[:, None] ** 2 * second[None, :]   # [a, b]
    log_weight = -nbeta * gap - 0.5 * localization * (axis[:, None] ** 2 + axis[None, :] ** 2)
    weight = np.exp(log_weight - log_weight.max())
    numerator = np.trapezoid(np.trapezoid(nbeta * gap * weight, axis, axis=1), axis)
    return numerator / np.trapezoid(np.trapezoid(weight, axis, axis=1), axis)


@pytest.mark.parametrize("nbeta, localization", [(263.1, 1.0), (50.0, 4.0)])
def test_the_closed_form_over_a_agrees_with_the_plain_quadrature(nbeta, localization):
    generator = np.random.default_rng(0)
    x, y = generator.standard_normal(300), generator.standard_normal(300)
    assert one_unit_tanh_expectation(x, y, nbeta, localization) == pytest.approx(
        _two_dimensional(x, y, nbeta, localization), rel=1e-9)


def test_it_is_refused_where_the_grid_cannot_resolve_it():
    with pytest.raises(ValueError, match="need γ > 0"):
        one_unit_tanh_expectation(np.zeros(3), np.zeros(3), 100.0, 0.0)
