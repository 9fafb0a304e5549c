"""The two sides of a start that cooled only some chains: chains that have not forgotten which side
they came from pass R-hat and fail the gate on the gap between the sides."""

import numpy as np
import pytest

from sltlab.estimators import diagnostics
from sltlab.estimators.gate import SIDES_MAX, gate_reading, mixing_concern, readings_pass, unmixed
from sltlab.estimators.llc import llc_from_gaps, sides_z
from sltlab.estimators.sampling import Trace, after_warm_up, joined
from sltlab.estimators.batched import chains_of
from tests.estimators.test_drift import stationary_chains

HALVES = np.array([True] * 4 + [False] * 4)


def test_sides_that_have_not_met_pass_r_hat_and_fail_the_gate():
    apart = 10 + stationary_chains(0) + np.where(HALVES, 0.3, 0.0)[:, None]   # the cooled half 0.3 spreads above
    estimate = llc_from_gaps(apart, 1.0, cooled=HALVES)
    assert diagnostics.rhat(apart) < 1.05 and estimate.rhat < 1.05 and estimate.ess > 200
    assert abs(estimate.drift) < 4
    assert estimate.sides > SIDES_MAX and unmixed(estimate)
    concern = mixing_concern(estimate)
    assert "have not yet forgotten where they started" in concern and "likely low" in concern
    assert f"sides {estimate.sides:+.1f} SE" in gate_reading(estimate)
    assert not readings_pass(estimate.rhat, estimate.ess, [], estimate.drift, estimate.sides)
    assert readings_pass(estimate.rhat, estimate.ess, [], estimate.drift, 3.9) and readings_pass(1.0, 900.0, [], 0.0)
    below = llc_from_gaps(10 + stationary_chains(0) - np.where(HALVES, 0.3, 0.0)[:, None], 1.0, cooled=HALVES)
    assert below.sides < -SIDES_MAX and "between two sides that have not met" in mixing_concern(below)


def test_sides_of_one_stationary_run_read_about_one_standard_error_apart():
    sides = np.array([sides_z(stationary_chains(seed), HALVES) for seed in range(40)])
    # z is standard normal between halves of stationary chains: P(|z| > 4) = 6e-5 each
    assert 0.6 < sides.std() < 1.4 and np.abs(sides).max() < SIDES_MAX
    estimate = llc_from_gaps(10 + stationary_chains(3), 1.0, cooled=HALVES)
    assert mixing_concern(estimate) is None and not unmixed(estimate)
    assert sides_z(stationary_chains(3), ~HALVES) == pytest.approx(-estimate.sides)   # sides swapped: sign turned


def test_no_sides_without_two_sides_or_enough_draws():
    values = 10 + stationary_chains(1)
    assert sides_z(values, np.ones(8, dtype=bool)) is None and sides_z(values, np.zeros(8, dtype=bool)) is None
    assert sides_z(values[:, :15], HALVES) is None
    assert sides_z(np.ones((8, 40)), HALVES) is None   # constant draws: no standard error
    assert llc_from_gaps(values, 1.0).sides is None   # no chain cooled: no sides
    assert "sides" not in gate_reading(llc_from_gaps(values, 1.0))


def test_a_dropped_chain_leaves_its_side_and_a_side_with_none_left_gives_no_sides():
    values = 10 + stationary_chains(2)
    one_gone = llc_from_gaps(values, 1.0, {0: "diverged"}, cooled=HALVES)
    assert one_gone.sides == pytest.approx(sides_z(values[1:], HALVES[1:]))
    none_left = llc_from_gaps(values, 1.0, {c: "diverged" for c in range(4)}, cooled=HALVES)
    assert none_left.mean is not None and none_left.sides is None


def test_the_cooled_chains_stay_named_through_the_run_its_continuation_and_its_groups():
    def trace(cooled, draws=5):
        fields = {"loss": np.zeros((8, draws))}
        return Trace(fields, np.zeros(8, dtype=bool), np.full(8, -1), None, draws, 1.0, None, cooled)
    warm = trace(HALVES, 0)._replace(fields={})
    run = after_warm_up(warm, trace(None))
    assert run.cooled.tolist() == HALVES.tolist()
    assert joined(run, trace(None)).cooled.tolist() == HALVES.tolist()
    assert chains_of(run, slice(2, 6), 2).cooled.tolist() == [True, True, False, False]
    assert after_warm_up(trace(None, 0)._replace(fields={}), trace(None)).cooled is None


def test_a_checkpoint_whose_sides_disagree_is_not_counted_as_mixed():
    from types import SimpleNamespace

    from sltlab.estimators.along import LLCAlongTraining

    def result(sides):
        estimate = SimpleNamespace(drift=0.3, sides=sides)
        return SimpleNamespace(rhat=1.01, ess=900.0, estimate=estimate)
    along = LLCAlongTraining((result(None), result(3.9), result(6.0)), None, None)
    assert along.mixed == [True, True, False]
