"""The step-size calibration: the sweep, the equivalence rule, the guard of each sampler's own
move, the loud failure, the run it sets up, and calibrated estimates against exact truths."""

import math
from dataclasses import replace

import pytest
import torch

from sltlab.estimators.calibrate import (Calibration, CalibrationError, SweepPoint, calibrate_step_size,
                                         calibrated_config, pilot_verdict)
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.models.potential import Potential
from sltlab.theory import parse_expression
from sltlab.verification.reference import tempered_expectation

QUADRATIC = Potential(*parse_expression("w1**2 + w2**2"))   # regular: λ = d/2 = 1
ORIGIN = torch.zeros(2, dtype=torch.float64)
SHORT_SGLD = LLCConfig(sampler="sgld", chains=16, draws=1000, burnin=250, localization=1.0, dtype="float64")


def test_the_sweep_halves_the_step_and_chooses_half_an_equivalent_pair():
    calibration = calibrate_step_size(QUADRATIC, ORIGIN, (), SHORT_SGLD, n=1000, pilot_fraction=0.5, tolerance=0.1)
    factors = {round(point.step_size / calibration.rule_step_size, 6) for point in calibration.sweep}
    assert factors <= {2, 1, 0.5, 0.25, 0.125} and len(factors) >= 2
    larger, smaller = calibration.sweep[-2:]   # the sweep ends at the first equivalent pair
    assert smaller.step_size == calibration.step_size and math.isclose(larger.step_size, 2 * smaller.step_size)
    # SGLD's pairs are coupled: the pair is judged by its paired difference and that one's SE
    assert abs(smaller.paired_difference) + 1.645 * smaller.paired_difference_se <= 0.1 * smaller.estimate
    assert "shown within 10%" in calibration.reason and "coupled pairs" in calibration.reason


def test_samplers_without_coupling_judge_independent_pilots():
    calibration = calibrate_step_size(QUADRATIC, ORIGIN, (), replace(SHORT_SGLD, sampler="rmsprop_sgld"), n=1000,
                                      pilot_fraction=0.5, tolerance=0.1)
    larger, smaller = calibration.sweep[-2:]
    assert smaller.paired_difference is None
    assert abs(larger.estimate - smaller.estimate) + 1.645 * math.hypot(larger.standard_error, smaller.standard_error) \
        <= 0.1 * smaller.estimate
    assert "independent seeds" in calibration.reason


def test_pilots_have_independent_seeds():
    calibration = calibrate_step_size(QUADRATIC, ORIGIN, (), SHORT_SGLD, n=1000, factors=(1.0, 0.5), pilot_fraction=1.0,
                                      tolerance=10.0)
    same = estimate_llc_from_loss(QUADRATIC, ORIGIN, (),
                                  replace(SHORT_SGLD, step_size=calibration.sweep[0].step_size), n=1000).estimate.mean
    assert calibration.sweep[0].estimate != same   # the pilot did not reuse the run's seed


def test_equivalence_needs_the_interval_of_the_difference_inside_delta():
    smaller = SweepPoint(0.5, 20, 10.0, 0.1, 1.0, 0, 0.9)
    close = SweepPoint(1.0, 10, 10.2, 0.1, 1.0, 0, 0.6)   # 0.2 + 1.645·0.141 = 0.43 ≤ 0.05·10
    assert pilot_verdict(close, smaller, 0.05, 0.25) == "equivalent"
    noisy = close._replace(standard_error=0.3)   # 0.2 ± 0.52 straddles 0.5: noisy pilots prove nothing
    assert pilot_verdict(noisy, smaller, 0.05, 0.25) == "inconclusive"
    assert pilot_verdict(close._replace(estimate=10.45), smaller, 0.05, 0.25) == "inconclusive"   # 0.45 ± 0.23
    assert pilot_verdict(close._replace(estimate=11.0), smaller, 0.05, 0.25) == "different"       # 1.0 ± 0.23
    assert pilot_verdict(close._replace(acceptance=0.2), smaller, 0.05, 0.25) == "different"
    assert pilot_verdict(close._replace(diverged_chains=1), smaller, 0.05, 0.25) == "different"
    assert pilot_verdict(close, smaller._replace(estimate=None, standard_error=None), 0.05, 0.25) == "different"


def test_no_stable_step_fails_loudly_with_the_sweep():
    with pytest.raises(CalibrationError, match="no stable step size") as failure:
        calibrate_step_size(QUADRATIC, ORIGIN, (), SHORT_SGLD, n=1000, factors=(4096.0, 2048.0, 1024.0))
    assert len(failure.value.sweep) == 4   # two coupled pairs: (4096, 2048) and (2048, 1024)
    assert "the last pair: 16 chain(s) dropped" in str(failure.value)
    assert all(point.diverged_chains > 0 for point in failure.value.sweep)


def test_factors_must_halve():
    with pytest.raises(ValueError, match="halve"):
        calibrate_step_size(QUADRATIC, ORIGIN, (), SHORT_SGLD, n=1000, factors=(1.0, 0.3))


def test_each_sampler_is_guarded_by_its_own_move_or_says_it_is_not():
    rmsprop = calibrate_step_size(QUADRATIC, ORIGIN, (), replace(SHORT_SGLD, sampler="rmsprop_sgld"), n=1000,
                                  factors=(1.0, 0.5), pilot_fraction=1.0, tolerance=10.0)
    assert all(0 < point.acceptance <= 1 for point in rmsprop.sweep)
    sgnht = calibrate_step_size(QUADRATIC, ORIGIN, (), replace(SHORT_SGLD, sampler="sgnht"), n=1000,
                                factors=(1.0, 0.5), pilot_fraction=1.0, tolerance=10.0)
    assert all(point.acceptance is None for point in sgnht.sweep) and "not measured" in sgnht.reason
    exact = calibrate_step_size(QUADRATIC, ORIGIN, (), replace(SHORT_SGLD, sampler="mala"), n=1000)
    assert exact.sweep == () and exact.step_size == exact.rule_step_size and "exact" in exact.reason


def test_the_calibrated_run_keeps_its_diffusion_time_up_to_a_cap():
    point = SweepPoint(1.0, 1, 1.0, 0.1, 1.0, 0, None)
    config = LLCConfig(draws=1000, burnin=400)
    quarter = Calibration(0.25, 1.0, (point,), "", 100.0, 1.0, "empirical_minimum")
    assert calibrated_config(config, quarter) == LLCConfig(draws=4000, burnin=1600, step_size=0.25)
    assert calibrated_config(config, quarter, max_scale=2).draws == 2000
    larger = quarter._replace(step_size=2.0)   # a step above the rule never shortens the run
    assert calibrated_config(config, larger).draws == 1000


@pytest.mark.parametrize("expression", ["w1**2 + w2**2", "w1**2 + 3*w2**2"])
def test_calibrated_sgld_lands_on_the_exact_finite_n_truth(expression):
    """The calibration claims the bias at its step is within δ = 5 %: the calibrated SGLD
    estimate must then lie within 3 SE + 5 % of t·E_t[K], computed by quadrature."""
    potential = Potential(*parse_expression(expression))
    config = LLCConfig(sampler="sgld", chains=64, draws=4000, burnin=1000, localization=1.0, dtype="float64", seed=5)
    calibration = calibrate_step_size(potential, ORIGIN, (), config, n=10_000)
    result = estimate_llc_from_loss(potential, ORIGIN, (), calibrated_config(config, calibration), n=10_000)
    truth = tempered_expectation(expression, result.config.nbeta, 1.0)
    assert abs(result.estimate.mean - truth) <= 3 * result.estimate.standard_error + 0.05 * truth, (result.estimate,
                                                                                                  truth)


def test_a_run_with_an_exact_sampler_is_calibrated_without_running_anything(monkeypatch):
    """Its run tunes its own step: the sweep's rule estimate would only repeat the run's work."""
    from sltlab.estimators import calibrate

    def must_not_run(*args, **kwargs):
        raise AssertionError("an exact sampler ran a calibration")

    monkeypatch.setattr(calibrate, "calibrate_step_size", must_not_run)
    config = replace(SHORT_SGLD, sampler="mala")
    chosen, described = calibrate.calibrate_for_run(QUADRATIC, ORIGIN, (), config, n=1000)
    assert chosen == config and described["sweep"] == [] and described["reason"].startswith("mala is exact")
