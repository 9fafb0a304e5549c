"""A step size the user gives has no rule or sweep behind it, so SGLD's concern after the run reads
its Euler bias: on ½‖w‖² (every direction equally stiff, k = nβ + γ) the stationary variance is
1/(k·(1 − εk/4)), and λ̂ reads εk/(4 − εk) high. Under the general limit εk ≤ 1 steps with
εk = 0.44 and 0.73 had read +16 % and +25 % unwarned."""

import warnings

import pytest
import torch

from sltlab.estimators import LLCConfig, StepSizeWarning, estimate_llc_from_loss
from sltlab.estimators.calibrate import CALIBRATED


def half_square(position, batch):
    return 0.5 * position.square().sum(-1, keepdim=True)


@pytest.mark.parametrize("step_size, bound", [(1e-4, None), (0.003, "12%"), (0.005, "22%")])
def test_a_given_step_whose_euler_bias_exceeds_five_percent_is_said(step_size, bound):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimate_llc_from_loss(half_square, torch.zeros(2), (), n=1000,
                               config=LLCConfig(step_size=step_size, localize_at="true_parameter", dtype="float64"))
    said = [str(w.message) for w in caught
            if issubclass(w.category, StepSizeWarning) and "given is large" in str(w.message)]
    assert len(said) == (bound is not None)
    assert bound is None or f"so λ̂ reads about {bound} high" in said[0]


def test_a_given_step_at_four_times_the_stiffness_is_said_too_large_not_divided_by_zero():
    from sltlab.estimators.posterior import LocalPosterior
    from sltlab.estimators.sampling import Batches
    from sltlab.estimators.step_size import step_size_concern

    posterior = LocalPosterior(half_square, 99.0, 1.0, torch.zeros(2, dtype=torch.float64))   # k = 100, εk = 4
    said = step_size_concern(posterior, Batches((), 1), 0.04, torch.zeros(3, 2, dtype=torch.float64),
                             torch.Generator(), top=1.0, given=True)
    assert said.startswith("the step ε = 0.04 is too large for the curvature")   # had been a ZeroDivisionError


def test_a_step_a_sweep_chose_is_not_said_to_be_given():
    config = LLCConfig(step_size=0.003, localize_at="true_parameter", dtype="float64")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = estimate_llc_from_loss(half_square, torch.zeros(2), (), n=1000, config=config, step_rule=CALIBRATED)
    assert result.step_size_rule == CALIBRATED and not any("given is large" in str(w.message) for w in caught)
