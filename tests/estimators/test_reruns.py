"""Chains that fail the mixing gate are run again from where they ended, at most ``reruns``
times, and the result says so; chains that pass at once are left exactly as they were."""

from dataclasses import replace

import numpy as np
import pytest

from sltlab.estimators import LLCConfig
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.notices import MixingWarning
from sltlab.verification.suite import dln_problem

PROBLEM = dln_problem([3, 4, 2], 1, n=2000, seed=0)


def _estimate(config):
    return estimate_llc_from_loss(PROBLEM.loss, PROBLEM.true_parameter, PROBLEM.data, config, n=PROBLEM.n)


def test_a_run_that_fails_the_gate_is_repeated_and_says_so():
    # 40 draws of 4 chains cannot reach an ESS of 200: every run fails, so both reruns happen.
    config = LLCConfig(sampler="sgld", chains=4, draws=40, burnin=0, step_size=1e-4, dtype="float64")
    with pytest.warns(MixingWarning):
        once = _estimate(config)
    with pytest.warns(MixingWarning):
        repeated = _estimate(replace(config, reruns=2))
    assert once.trace.steps == 40 and repeated.trace.steps == 120
    assert repeated.trace.fields["loss"].shape == (4, 40)   # the earlier draws were discarded
    note = repeated.notes[-1]
    assert "failed the mixing gate" in note and "2 time(s)" in note and "120 steps" in note
    assert not any("mixing gate" in text for text in once.notes)


def test_a_run_that_passes_the_gate_is_not_repeated():
    config = LLCConfig(sampler="sgld", chains=4, draws=4000, burnin=1000, step_size=3e-4, dtype="float64")
    plain, allowed = _estimate(config), _estimate(replace(config, reruns=3))
    assert plain.rhat <= 1.05 and plain.ess >= 200
    np.testing.assert_array_equal(allowed.trace.fields["loss"], plain.trace.fields["loss"])
    assert allowed.trace.steps == plain.trace.steps and allowed.notes == plain.notes


def test_reruns_must_not_be_negative():
    with pytest.raises(ValueError, match="reruns must be ≥ 0"):
        LLCConfig(reruns=-1).validate()
