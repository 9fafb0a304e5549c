"""The Langevin step-size rule ε = c/(nβ·|h_max|·(1 + nβ/b) + γ) (sltlab.estimators.step_size):
its value exactly, and a one-line refusal where no curvature can set it."""

import math

import pytest

from sltlab.estimators.step_size import default_step_size


def test_the_rule_is_its_formula_with_the_minibatch_term_only_below_the_whole_data():
    assert default_step_size(100.0, 2.0, -3.0) == pytest.approx(0.1 / (100 * 3 + 2), rel=1e-15)
    assert default_step_size(100.0, 2.0, 3.0, batch_size=50, n=1000) == pytest.approx(
        0.1 / (100 * 3 * (1 + 100 / 50) + 2), rel=1e-15)
    assert default_step_size(100.0, 2.0, 3.0, batch_size=1000, n=1000) == default_step_size(100.0, 2.0, 3.0)


@pytest.mark.parametrize("top, said", [(0.0, "the Hessian vanishes and γ = 0"),
                                       (math.nan, "the loss's curvature near w\\* is not finite"),
                                       (math.inf, "the loss's curvature near w\\* is not finite")])
def test_no_step_is_set_without_a_finite_nonzero_curvature(top, said):
    with pytest.raises(ValueError, match=said):
        default_step_size(100.0, 0.0 if top == 0 else 5.0, top)
