"""The step-size calibration: the sweep, the choice, the loud failure, the run it sets up."""

import pytest
import torch

from sltlab.estimators.calibrate import (Calibration, CalibrationError, SweepPoint, pilots_agree, calibrate_step_size,
                                  calibrated_config)
from sltlab.estimators.config import LLCConfig
from sltlab.models.potential import Potential
from sltlab.theory import parse_expression

QUADRATIC = Potential(*parse_expression("w1**2 + w2**2"))   # regular: λ = d/2 = 1
ORIGIN = torch.zeros(2, dtype=torch.float64)
SHORT_SGLD = LLCConfig(sampler="sgld", chains=8, draws=400, burnin=200, localization=1.0, dtype="float64")


def test_sweep_halves_the_step_and_chooses_half_the_largest_agreeing_step():
    calibration = calibrate_step_size(QUADRATIC, ORIGIN, (), SHORT_SGLD, n=1000, pilot_fraction=0.5)
    steps = [point.step_size for point in calibration.sweep]
    assert steps == pytest.approx([calibration.rule_step_size * f for f in (2, 1, 0.5, 0.25, 0.125)][:len(steps)])
    assert len(steps) >= 3
    chosen = steps.index(calibration.step_size)
    assert chosen >= 1   # never the largest step: always the half of an agreeing pair
    larger, smaller = calibration.sweep[chosen - 1], calibration.sweep[chosen]
    assert abs(larger.estimate - smaller.estimate) <= 2 * (larger.standard_error ** 2 + smaller.standard_error ** 2) ** 0.5 \
        + 0.005 * abs(smaller.estimate)
    assert larger.acceptance >= 0.25 and larger.diverged_chains == 0
    assert calibration.localize_at == "empirical_minimum" and calibration.localization == 1.0
    assert "half the largest step" in calibration.reason


def test_pilots_cover_the_same_diffusion_time():
    calibration = calibrate_step_size(QUADRATIC, ORIGIN, (), SHORT_SGLD, n=1000, pilot_fraction=0.5)
    times = {round(point.steps * point.step_size / calibration.rule_step_size) for point in calibration.sweep}
    assert len(times) == 1


def test_no_stable_step_fails_loudly_with_the_sweep():
    with pytest.raises(CalibrationError, match="no stable step size") as failure:
        calibrate_step_size(QUADRATIC, ORIGIN, (), SHORT_SGLD, n=1000, factors=(4096.0, 2048.0, 1024.0))
    assert len(failure.value.sweep) == 3
    assert all(point.diverged_chains > 0 for point in failure.value.sweep)


def test_factors_must_halve():
    with pytest.raises(ValueError, match="halve"):
        calibrate_step_size(QUADRATIC, ORIGIN, (), SHORT_SGLD, n=1000, factors=(1.0, 0.3))


def test_the_calibrated_run_keeps_its_diffusion_time_up_to_a_cap():
    point = SweepPoint(1.0, 1, 1.0, 0.1, 1.0, 0, None)
    config = LLCConfig(draws=1000, burnin=400)
    quarter = Calibration(0.25, 1.0, (point,), "", 100.0, 1.0, "empirical_minimum")
    assert calibrated_config(config, quarter) == LLCConfig(draws=4000, burnin=1600, step_size=0.25)
    assert calibrated_config(config, quarter, max_scale=2).draws == 2000
    larger = quarter._replace(step_size=2.0)   # a step above the rule never shortens the run
    assert calibrated_config(config, larger).draws == 1000


def test_agreement_needs_close_estimates_finite_chains_and_no_acceptance_collapse():
    smaller = SweepPoint(0.5, 20, 10.0, 0.1, 1.0, 0, 0.9)
    close = SweepPoint(1.0, 10, 10.3, 0.1, 1.0, 0, 0.6)   # |Δ| 0.3 ≤ 2·√0.02 + 0.005·10 = 0.33
    assert pilots_agree(close, smaller, 2.0, 0.005, 0.25)
    assert not pilots_agree(close._replace(estimate=10.4), smaller, 2.0, 0.005, 0.25)
    assert not pilots_agree(close._replace(acceptance=0.2), smaller, 2.0, 0.005, 0.25)
    assert not pilots_agree(close._replace(diverged_chains=1), smaller, 2.0, 0.005, 0.25)
    assert not pilots_agree(close, smaller._replace(estimate=None, standard_error=None), 2.0, 0.005, 0.25)
