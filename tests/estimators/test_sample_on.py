"""Chains that fail the mixing gate go on from where they ended: going on is one longer run on
the same random numbers, only the failing centres go on, and the warnings issued are those of
the results returned."""

import copy
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from sltlab.estimators import LLCConfig, MixingWarning, estimate_llc_along
from sltlab.estimators.batched import estimate_llc_at_centers
from sltlab.estimators.sample_on import unmixed
from sltlab.estimators.sampling import Trace, joined

# MALA on the full data (a population potential draws no minibatches), so that nothing but the
# chains' own steps draws from the generator between a run and the run that goes on from it.
MALA = LLCConfig(sampler="mala", chains=4, draws=100, burnin=50, nbeta=1000.0, localization=1.0, step_size=3e-4,
                 localize_at="true_parameter", dtype="float64", seed=3)
FLAT, STIFF = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)


def quartic(position, batch):
    """2·Σ w_i⁴(w_i − 1)², one 'sample' per chain, minimal at 0 and at 1: quartic at 0 (the chains
    diffuse slowly, held mostly by γ), curvature 4 at 1 (they relax within a few steps)."""
    return 2 * (position.pow(4) * (position - 1).square()).sum(-1, keepdim=True)


def _at_centers(centers, config, extend_unmixed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimate_llc_at_centers(quartic, centers, (), replace(config, extend_unmixed=extend_unmixed),
                                       n=10_000)


def test_going_on_is_one_longer_run_on_the_same_numbers():
    (short,) = _at_centers([FLAT], MALA, 0)
    assert unmixed(short)                                   # 4 × 100 draws at the flat centre fail the gate
    (went_on,) = _at_centers([FLAT], MALA, 1)
    (longer,) = _at_centers([FLAT], replace(MALA, draws=200), 0)
    assert went_on.config.draws == 200 and went_on.trace.steps == longer.trace.steps == 250
    for name, values in longer.trace.fields.items():
        np.testing.assert_array_equal(went_on.trace.fields[name], values)
    assert went_on.mean == longer.mean and went_on.rhat == longer.rhat
    assert went_on.notes[-1] == (f"its chains failed the mixing gate at 100 draws (R-hat {short.rhat:.3f}, ESS "
                                 f"{short.ess:.0f}, drift {short.estimate.drift:+.1f} SE) and went on to 200")


def test_problems_whose_step_a_warm_up_chose_go_on_at_that_step_as_one_longer_run():
    from sltlab.estimators.problems import estimate_llc_of_problems

    def problems(draws, extend_unmixed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return estimate_llc_of_problems([quartic], [FLAT], (), replace(MALA, step_size=None, draws=draws,
                                                                           extend_unmixed=extend_unmixed),
                                            stack=lambda losses, chains: losses[0], n=10_000)
    (short,) = problems(40, 0)
    assert unmixed(short) and "dual averaging" in short.step_size_rule
    (went_on,), (longer,) = problems(40, 1), problems(80, 0)
    assert went_on.config.step_size == longer.config.step_size == short.config.step_size
    assert went_on.config.draws == 80 and went_on.step_size_rule == longer.step_size_rule
    for name, values in longer.trace.fields.items():
        np.testing.assert_array_equal(went_on.trace.fields[name], values)


def test_problems_of_losses_of_their_own_go_on_restacked_to_the_failing_ones():
    from sltlab.estimators.problems import estimate_llc_of_problems

    def stack(losses, chains):
        def scored(position, batch):
            assert len(position) == len(losses) * chains    # as a stacked loss, it scores exactly its rows
            return torch.cat([loss(position[k * chains:(k + 1) * chains], batch) for k, loss in enumerate(losses)])
        return scored
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flat, stiff = estimate_llc_of_problems([quartic, lambda position, batch: quartic(position, batch)],
                                               [FLAT, STIFF], (), replace(MALA, draws=400, extend_unmixed=1),
                                               stack=stack, n=10_000)
    assert flat.config.draws == 800 and stiff.config.draws == 400   # only the flat one went on, alone


def test_only_the_centres_that_fail_go_on_doubling_each_round():
    config = replace(MALA, draws=400)
    flat_alone, stiff_alone = _at_centers([FLAT, STIFF], config, 0)
    assert unmixed(flat_alone) and not unmixed(stiff_alone)
    flat, stiff = _at_centers([FLAT, STIFF], config, 2)
    assert stiff.config.draws == 400 and stiff.trace.fields["loss"].shape == (4, 400)
    np.testing.assert_array_equal(stiff.trace.fields["loss"], stiff_alone.trace.fields["loss"])
    went_on = [note for note in flat.notes if "failed the mixing gate" in note]
    assert flat.config.draws == 1600 and len(went_on) == 2
    assert went_on[0].startswith(f"its chains failed the mixing gate at 400 draws (R-hat {flat_alone.rhat:.3f}")
    assert went_on[1].startswith("its chains failed the mixing gate at 800 draws")
    assert unmixed(flat)                 # the rounds are spent: still failing, and reported as failing
    assert any(warning.startswith("the chains fail the mixing gate: ESS") for warning in flat.warnings)


def test_warnings_are_those_of_the_results_returned():
    config = replace(MALA, draws=400)
    with warnings.catch_warnings(record=True) as first:
        warnings.simplefilter("always")
        flat_alone, _ = estimate_llc_at_centers(quartic, [FLAT, STIFF], (), config, n=10_000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = estimate_llc_at_centers(quartic, [FLAT, STIFF], (), replace(config, extend_unmixed=1), n=10_000)
    issued = [str(w.message) for w in caught]
    assert sorted(issued) == sorted(message for result in results for message in result.warnings)
    superseded = [str(w.message) for w in first if w.category is MixingWarning
                  and str(w.message) in flat_alone.warnings]
    assert superseded and not set(superseded) & set(issued)
    assert all(w.filename == __file__ for w in caught)     # attributed to the caller's line


def test_joined_traces_count_both_runs():
    def trace(losses, diverged, step, steps, seconds):
        return Trace({"loss": np.array(losses, dtype=float)}, np.array(diverged), np.array(step), None, steps, seconds)

    first = trace([[1, 2], [3, 4], [5, 6]], [False, True, False], [-1, 7, -1], 10, 1.5)
    then = trace([[7], [8], [9]], [False, False, True], [-1, -1, 2], 4, 0.5)
    both = joined(first, then)
    np.testing.assert_array_equal(both.fields["loss"], [[1, 2, 7], [3, 4, 8], [5, 6, 9]])
    np.testing.assert_array_equal(both.diverged, [False, True, True])
    np.testing.assert_array_equal(both.divergence_step, [-1, 7, 12])
    assert both.steps == 14 and both.seconds == 2.0
    with pytest.raises(ValueError, match="functional variance"):
        joined(first._replace(functional_variance=np.zeros(3)), then)


def test_refused_with_the_functional_variance_and_checkpoints_go_on_batched_or_one_by_one():
    with pytest.raises(ValueError, match="extend_unmixed cannot go on with the functional variance"):
        _at_centers([FLAT], replace(MALA, functional_variance=True), 1)
    with pytest.raises(ValueError, match="extend_unmixed must be from 0 to 20"):
        _at_centers([FLAT], MALA, -1)
    module = torch.nn.Linear(2, 1, bias=False)
    data = (torch.randn(50, 2), torch.randn(50, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        along = estimate_llc_along([module, copy.deepcopy(module)], data, step_size=1e-4, chains=2, draws=20, burnin=5,
                                   batched=False, extend_unmixed=1)
    for result in along.results:   # one after the other, each estimate's own going on judges it
        assert result.config.draws == 20   # 2 chains × 20 draws: twice as many could not reach an ESS of 200
        assert any(note.startswith("the chains failed the mixing gate (at 20 draws R-hat") and note.endswith(
            "did not go on (extend_unmixed=, --extend-unmixed): 2 times the draws would not be expected to pass it")
            for note in result.notes)
    torch.manual_seed(0)
    modules = [torch.nn.Sequential(torch.nn.Linear(2, 3, bias=False), torch.nn.Linear(3, 1, bias=False))
               for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restricted = estimate_llc_along(modules, data, restrict_to="1.*", sampler="sgld", step_size=1e-4, chains=2,
                                        draws=20, burnin=5, extend_unmixed=1)
    assert restricted.batched and "not applied" not in restricted.note
    for result in restricted.results:   # 2 chains × 20 draws fail the gate's ESS of 200, so each went on once
        assert result.config.draws == 40 and result.restricted_to == "1.*"
        assert any(note.startswith("its chains failed the mixing gate at 20 draws") for note in result.notes)


def test_the_single_estimates_reruns_are_said_not_applied_to_centres_and_restrictions():
    (result,) = _at_centers([FLAT], replace(MALA, reruns=1), 0)
    assert result.config.draws == 100
    assert any(note.startswith("reruns = 1 was not applied: the centres share one batched run")
               and note.endswith("(extend_unmixed goes on with the failing groups instead, keeping their draws)")
               for note in result.notes)
    module = torch.nn.Linear(2, 1, bias=False)
    data = (torch.randn(50, 2), torch.randn(50, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restricted = estimate_llc_along([module, copy.deepcopy(module)], data, restrict_to="weight", sampler="sgld",
                                        step_size=1e-4, chains=2, draws=20, burnin=5, reruns=1)
    assert restricted.batched
    for checkpoint in restricted.results:   # the restricted batched path says so too
        assert any(note.startswith("reruns = 1 was not applied: the restrictions share one batched run")
                   for note in checkpoint.notes)


def test_the_rungs_of_a_temperature_ladder_go_on_as_the_config_says():
    from sltlab.estimators.ladder import estimate_llc_at_temperatures

    def ladder(config):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return estimate_llc_at_temperatures(quartic, FLAT, (), config, [1000.0, 4000.0], n=10_000)
    alone, went_on = ladder(MALA), ladder(replace(MALA, extend_unmixed=1))
    assert any(unmixed(rung) for rung in alone)
    for before, after in zip(alone, went_on):
        assert after.config.draws == (200 if unmixed(before) else 100)
        assert any(note.startswith("its chains failed the mixing gate at 100 draws") for note in after.notes) \
            == unmixed(before)
