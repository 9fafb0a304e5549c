"""A fallback sampler: chains that fail the mixing gate are replaced by a run of HMC from w*,
checked against an exact finite-temperature LLC; a run that passes is left exactly as it was;
settings that cannot hold a fallback are refused, and the paths that cannot apply it say so."""

import math
import warnings
from dataclasses import replace

import pytest
import torch

from sltlab.estimators import LLCConfig
from sltlab.estimators.batched import estimate_llc_at_centers
from sltlab.estimators.calibrate import calibrate_step_size
from sltlab.estimators import estimate as estimate_module
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.hmc_tuning import fallback_over_budget
from sltlab.estimators.gate import mixing_concern

CURVATURES = (1.0, 4.0)
NBETA, GAMMA = 1000.0, 3.0
# MALA with 8 chains × 20 draws after 40 steps cannot reach the gate's ESS of 200.
SHORT_MALA = LLCConfig(sampler="mala", chains=8, draws=20, burnin=40, nbeta=NBETA, localization=GAMMA,
                       localize_at="true_parameter", dtype="float64", fallback="hmc")


def quadratic(position, batch):
    """½·Σ h_i w_i², one 'sample' per chain."""
    return 0.5 * (torch.tensor(CURVATURES, dtype=position.dtype) * position.square()).sum(-1, keepdim=True)


def quadratic_truth() -> float:
    """nβ·E[K] under exp(−nβK − γ‖w‖²/2): ½·Σ nβh/(nβh + γ), exactly."""
    return 0.5 * sum(NBETA * h / (NBETA * h + GAMMA) for h in CURVATURES)


def _estimate(config: LLCConfig):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimate_llc_from_loss(quadratic, torch.zeros(2, dtype=torch.float64), (), config, n=10_000)


def test_chains_failing_the_gate_are_replaced_by_hmc_from_w_star():
    result = _estimate(SHORT_MALA)
    assert result.config.sampler == "hmc" and result.config.fallback is None
    assert result.trace.steps == 50 + 300   # hmc's own counts, in trajectories
    assert mixing_concern(result.estimate) is None and result.warnings == ()
    (note,) = [note for note in result.notes if "failed the mixing gate" in note]
    alone = _estimate(replace(SHORT_MALA, fallback=None))   # what the note reports is that run
    assert note.startswith(f"mala's chains failed the mixing gate after {alone.trace.steps:,} steps and ")
    assert f" s of sampling (R-hat {alone.rhat:.3f}, ESS {alone.ess:.0f}" in note
    assert f"λ̂ = {alone.mean:.6g}), so λ̂ was estimated anew from w* by hmc" in note
    # λ̂ against the exact value: within 4 SE plus a 1 % budget for the finite run
    assert abs(result.mean - quadratic_truth()) <= 4 * result.standard_error + 0.01 * quadratic_truth()


def test_a_fallback_within_its_budget_runs():
    result = _estimate(replace(SHORT_MALA, fallback_budget=1e6))
    assert result.config.sampler == "hmc" and mixing_concern(result.estimate) is None


def _trajectories_cost(step: float, trajectories: int) -> float:
    """Trajectories of on average (⌈L/2⌉ + L)/2 leapfrog steps, L = ⌈(π/(4√γ))/h⌉."""
    longest = math.ceil(math.pi / (4 * math.sqrt(GAMMA)) / step)
    return trajectories * (math.ceil(longest / 2) + longest) / 2


def _refused(budget: float):
    result = _estimate(replace(SHORT_MALA, fallback_budget=budget))
    alone = _estimate(replace(SHORT_MALA, fallback=None))
    assert result.config.sampler == "mala" and torch.equal(torch.as_tensor(result.trace.fields["loss"]),
                                                           torch.as_tensor(alone.trace.fields["loss"]))
    assert any("mixing gate" in warning for warning in result.warnings)
    (note,) = [note for note in result.notes if note.startswith("the fallback hmc was not run")]
    return note, alone


def _warm_up_spending(monkeypatch) -> tuple[list[dict], LLCConfig]:
    """Every budget check of a fallback left to run (what its warm-up had spent, how many
    trajectories it had run, the step it tuned), and the MALA run's settings."""
    checks = []

    def recording(config, first_steps, **spending):
        checks.append(spending)
        return fallback_over_budget(config, first_steps, **spending)

    monkeypatch.setattr(estimate_module, "fallback_over_budget", recording)
    _estimate(replace(SHORT_MALA, fallback_budget=1e6))
    monkeypatch.undo()
    return checks, _estimate(replace(SHORT_MALA, fallback=None))


def test_a_fallback_that_costs_too_much_even_at_the_pilot_step_is_not_started():
    budget = 0.5
    note, alone = _refused(budget)
    predicted = _trajectories_cost(math.sqrt(alone.config.step_size), 50 + 300)   # at h = √ε of MALA's step
    assert predicted > budget * alone.trace.steps
    assert note.startswith("the fallback hmc was not run: at h = √ε of mala's step")
    assert "its 50 warm-up and 300 drawn trajectories of up to" in note
    assert f"would take about {predicted:,.0f} gradient evaluations" in note
    assert f"the {alone.trace.steps:,} of mala's run, over the budget of {budget:g} times" in note


def test_every_warm_up_trajectory_is_counted_against_the_budget(monkeypatch):
    checks, _ = _warm_up_spending(monkeypatch)
    assert [check.get("done", 0) for check in checks] == list(range(51))   # before, after each of 50
    spent = [0.0] + [check["spent"] for check in checks[1:]]
    assert all(later >= earlier + 1 for earlier, later in zip(spent, spent[1:]))   # at least a leapfrog step each
    assert checks[-1]["tuned"].step_size > 0 and all("tuned" not in check for check in checks[:-1])


def test_a_fallback_whose_warm_up_spends_the_budget_stops_during_it(monkeypatch):
    checks, alone = _warm_up_spending(monkeypatch)
    pilot = math.sqrt(alone.config.step_size)
    before = _trajectories_cost(pilot, 350)
    during = [check["spent"] + _trajectories_cost(pilot, 350 - check["done"]) for check in checks[1:-1]]
    assert max(during) > before   # the warm-up tuned steps below the pilot's
    budget = (before + max(during)) / 2
    stopped_after = next(index for index, predicted in enumerate(during, 1) if predicted > budget)
    note, _ = _refused(budget / alone.trace.steps)
    assert note.startswith(f"the fallback hmc was not run on: its first {stopped_after} of 50 warm-up trajectories "
                           f"took about {checks[stopped_after]['spent']:,.0f} gradient evaluations")
    assert f"would bring it to at least {during[stopped_after - 1]:,.0f} gradient evaluations" in note


def test_a_fallback_whose_tuned_step_makes_its_draws_too_costly_stops_after_its_warm_up(monkeypatch):
    checks, alone = _warm_up_spending(monkeypatch)
    pilot, final = math.sqrt(alone.config.step_size), checks[-1]
    after = final["spent"] + _trajectories_cost(final["tuned"].step_size, 300)
    highest_before = max(check.get("spent", 0) + _trajectories_cost(pilot, 350 - check.get("done", 0))
                         for check in checks[:-1])
    assert highest_before < after
    note, _ = _refused((highest_before + after) / 2 / alone.trace.steps)
    assert note.startswith(f"the fallback hmc was not run past its warm-up: its 50 warm-up trajectories took about "
                           f"{final['spent']:,.0f} gradient evaluations and its 300 drawn ones, at the tuned h = "
                           f"{final['tuned'].step_size:.3g}")
    assert f"would bring it to about {after:,.0f} gradient evaluations" in note


def test_without_a_fallback_the_failing_chains_are_reported_as_they_are():
    result = _estimate(replace(SHORT_MALA, fallback=None))
    assert result.config.sampler == "mala" and not any("anew" in note for note in result.notes)
    assert any("mixing gate" in warning for warning in result.warnings)


def test_chains_that_pass_the_gate_are_untouched_by_the_fallback():
    passing = replace(SHORT_MALA, draws=2000, burnin=500)
    kept, plain = _estimate(passing), _estimate(replace(passing, fallback=None))
    assert mixing_concern(kept.estimate) is None
    assert kept.config.sampler == "mala" and kept.notes == plain.notes
    assert torch.equal(torch.as_tensor(kept.trace.fields["loss"]), torch.as_tensor(plain.trace.fields["loss"]))


@pytest.mark.parametrize("config, message", [
    (LLCConfig(sampler="hmc", fallback="hmc"), "fallback must be one of hmc and differ from the sampler"),
    (LLCConfig(sampler="mala", fallback="sgld"), "fallback must be one of hmc"),
    (LLCConfig(sampler="mala", fallback="hmc", localization=0.0), "hmc needs a localization γ > 0"),
    (LLCConfig(sampler="mala", fallback="hmc", fallback_budget=0.0), "fallback_budget must be a positive multiple"),
    (LLCConfig(sampler="mala", fallback="hmc", fallback_budget=math.inf), "fallback_budget must be a positive"),
    (LLCConfig(sampler="mala", fallback="hmc", fallback_budget=True), "fallback_budget must be a number or None"),
])
def test_a_fallback_that_cannot_run_is_refused(config, message):
    with pytest.raises(ValueError, match=message):
        config.validate()


def test_a_minibatch_run_cannot_fall_back_to_an_exact_sampler():
    per_row = lambda position, batch: position.square().sum(-1, keepdim=True) * batch[0].T
    config = LLCConfig(sampler="sgld", batch_size=10, fallback="hmc")
    with pytest.raises(ValueError, match="^the fallback hmc compares energies on the full data"):
        estimate_llc_from_loss(per_row, torch.zeros(2), (torch.ones(100, 1),), config)


def test_calibration_reads_the_rule_step_without_falling_back():
    """Its four-draw probe fails the gate by design; with a fallback it would report HMC's step."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chosen = calibrate_step_size(quadratic, torch.zeros(2, dtype=torch.float64), (), SHORT_MALA, n=10_000)
        plain = calibrate_step_size(quadratic, torch.zeros(2, dtype=torch.float64), (),
                                    replace(SHORT_MALA, fallback=None), n=10_000)
    assert chosen.step_size == plain.step_size


def test_batched_centres_say_that_the_fallback_was_not_applied():
    config = replace(SHORT_MALA, step_size=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (result,) = estimate_llc_at_centers(quadratic, [torch.zeros(2, dtype=torch.float64)], (), config, n=10_000)
    assert result.config.sampler == "mala"
    assert any(note.startswith("fallback hmc was not applied") for note in result.notes)
