"""A single estimate's chains that fail the mixing gate are run again from where they ended, at
most ``reruns`` times, the earlier run discarded; then, while they fail it on R-hat or ESS, they go
on, at most ``extend_unmixed`` times, each time for as many draws as they hold, every draw kept.
The result says so, chains that pass at once are left exactly as they were, and the fallback's
budget is counted against the run before it went on."""

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

import sltlab.estimators.estimate as estimate_module
import sltlab.estimators.going_on as going_on
from sltlab.estimators import LLCConfig
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.notices import MixingWarning
from sltlab.verification.suite import dln_problem

# Runs here are short on purpose: that their chains have not yet spread from w* is said by a
# BurnInWarning (tests/estimators/test_start_spread.py), which these tests leave aside.
pytestmark = pytest.mark.filterwarnings("ignore::sltlab.estimators.notices.BurnInWarning")

PROBLEM = dln_problem([3, 4, 2], 1, n=2000, seed=0)
# 40 draws of 4 chains cannot reach an ESS of 200, nor can 80 or 160: every round fails.
SHORT = LLCConfig(sampler="sgld", chains=4, draws=40, burnin=0, step_size=1e-4, dtype="float64")


def _estimate(config, **options):
    return estimate_llc_from_loss(PROBLEM.loss, PROBLEM.true_parameter, PROBLEM.data, config, n=PROBLEM.n,
                                  **options)


def test_failing_chains_go_on_keeping_every_draw_and_say_so(monkeypatch):
    monkeypatch.setattr(going_on, "could_pass", lambda estimate, growth: True)   # the forecast is tested below
    with pytest.warns(MixingWarning):
        once = _estimate(SHORT)
    with pytest.warns(MixingWarning):
        longer = _estimate(replace(SHORT, extend_unmixed=2))
    assert longer.trace.fields["loss"].shape == (4, 160) and longer.trace.steps == 160
    assert longer.config.draws == 160 and once.config.draws == 40
    # the same chains, the same random numbers: the first run's draws are the longer run's first 40
    np.testing.assert_array_equal(longer.trace.fields["loss"][:, :40], once.trace.fields["loss"])
    (note,) = [text for text in longer.notes if "went on" in text]
    assert note.startswith("the chains failed the mixing gate (at 40 draws R-hat ")
    assert "; at 80 draws R-hat " in note and note.endswith("went on from where they ended to 160 draws, "
                                                             "every draw kept")
    assert not any("went on" in text for text in once.notes)


def test_chains_go_on_only_while_the_rounds_left_could_bring_them_through(monkeypatch):
    with pytest.warns(MixingWarning):
        far = _estimate(replace(SHORT, extend_unmixed=2))   # R-hat 1.28 and ESS 12: four times is not enough
    assert far.trace.fields["loss"].shape == (4, 40) and far.config.draws == 40
    assert any(note.endswith(f"ESS {far.ess:.0f}, drift {far.estimate.drift:+.1f} SE) and did not go on "
                             "(extend_unmixed=, --extend-unmixed): 4 times the draws would not be expected to pass it")
               for note in far.notes)
    answers = iter([True, False])
    monkeypatch.setattr(going_on, "could_pass", lambda estimate, growth: next(answers))
    with pytest.warns(MixingWarning):
        once_then_stopped = _estimate(replace(SHORT, extend_unmixed=2))
    assert once_then_stopped.trace.fields["loss"].shape == (4, 80)
    (note,) = [text for text in once_then_stopped.notes if "extend_unmixed" in text]
    assert "(at 40 draws R-hat " in note and "; at 80 draws R-hat " in note
    assert note.endswith("went on from where they ended to 80 draws, every draw kept, and not further "
                         "(extend_unmixed=, --extend-unmixed): 2 times the draws would not be expected to pass it")


@pytest.mark.parametrize("rhat, ess, sides, growth, passes", [
    (1.2, 50, None, 4, True),      # both on the line: 1 + 0.2/4 = 1.05 and 4·50 = 200
    (1.21, 50, None, 4, False),    # R-hat − 1 would still be above 0.05
    (1.2, 49, None, 4, False),     # ESS would still be under 200
    (1.1, 100, None, 2, True),
    (1.1, 100, None, 1, False),
    (1.0, 500, 8.0, 4, True),      # the sides' z falls like 1/√growth: 8/2 = 4, on the line
    (1.0, 500, -8.1, 4, False),
    (1.0, 500, 5.7, 2, False),     # 5.7/√2 = 4.03
])
def test_the_forecast_of_going_on(rhat, ess, sides, growth, passes):
    assert going_on.could_pass(SimpleNamespace(rhat=rhat, ess=ess, sides=sides), growth) is passes


def test_a_run_that_fails_the_gate_is_repeated_and_says_so():
    with pytest.warns(MixingWarning):
        once = _estimate(SHORT)
    with pytest.warns(MixingWarning):
        repeated = _estimate(replace(SHORT, reruns=2))
    assert once.trace.steps == 40 and repeated.trace.steps == 120
    assert repeated.trace.fields["loss"].shape == (4, 40)   # the earlier draws were discarded
    note = repeated.notes[-1]
    assert "failed the mixing gate" in note and "2 time(s)" in note and "120 steps" in note
    assert not any("mixing gate" in text for text in once.notes)


@pytest.mark.filterwarnings("ignore:.*given is large:sltlab.estimators.notices.StepSizeWarning")   # not about the step
@pytest.mark.parametrize("remedy", ["reruns", "extend_unmixed"])
def test_chains_that_pass_are_neither_repeated_nor_go_on(remedy):
    config = LLCConfig(sampler="sgld", chains=4, draws=4000, burnin=1000, step_size=3e-4, dtype="float64")
    plain, allowed = _estimate(config), _estimate(replace(config, **{remedy: 3}))
    assert plain.rhat <= 1.05 and plain.ess >= 200
    np.testing.assert_array_equal(allowed.trace.fields["loss"], plain.trace.fields["loss"])
    assert allowed.trace.steps == plain.trace.steps and allowed.notes == plain.notes
    assert allowed.config.draws == plain.config.draws == 4000


def test_a_run_with_the_functional_variance_does_not_go_on_and_says_why():
    rows = dln_problem([3, 4, 2], 1, n=2000, seed=0, per_sample=True)   # ν̂ needs the per-sample losses
    with pytest.warns(MixingWarning):
        result = estimate_llc_from_loss(rows.loss, rows.true_parameter, rows.data,
                                        replace(SHORT, extend_unmixed=1, functional_variance=True))
    assert result.trace.fields["loss"].shape == (4, 40) and result.fluctuation is not None
    assert any("did not go on (extend_unmixed=, --extend-unmixed): the functional variance is a total over one "
               "run's draws" in note for note in result.notes)


def test_the_fallbacks_budget_counts_the_run_before_it_went_on(monkeypatch):
    asked = []

    def record(config, first_steps, **spending):
        asked.append(first_steps)
        return "refused here"

    monkeypatch.setattr(estimate_module, "fallback_over_budget", record)
    monkeypatch.setattr(going_on, "could_pass", lambda estimate, growth: True)
    config = replace(SHORT, sampler="mala", step_size=None, burnin=10, fallback="hmc", fallback_budget=4.0,
                     extend_unmixed=1)
    with pytest.warns(MixingWarning):
        result = _estimate(config)
    assert result.trace.fields["loss"].shape == (4, 80)   # went on once, by its 40 draws
    assert asked == [result.trace.steps - 40]   # the steps before it went on, not all of them
    assert "refused here" in result.notes and result.config.sampler == "mala"


@pytest.mark.parametrize("remedy", ["reruns", "extend_unmixed"])
@pytest.mark.parametrize("value", [-1, True, 1.5])
def test_the_remedies_take_a_count(remedy, value):
    with pytest.raises(ValueError, match=f"{remedy} must be"):
        LLCConfig(**{remedy: value}).validate()
