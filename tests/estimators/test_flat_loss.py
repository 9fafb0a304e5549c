"""A loss that does not depend on the sampled parameters near w* reads λ̂ = 0, with a
note saying why, instead of the rounding between L_n(w*) and the draws' losses flagged as a
negative, unmixed estimate; one that is flat only to the dtype's rounding is said to be so. A
restriction to one layer of a rank-0 deep linear network at its
true parameter (every weight zero) is such a case: the frozen layers' products vanish, and the
exact restricted λ is 0."""

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from sltlab.estimators import LLCConfig, PrecisionWarning, estimate_llc, estimate_llc_from_loss
from sltlab.estimators.llc import llc_from_gaps
from sltlab.estimators.problems import estimate_llc_of_problems
from sltlab.models.deep_linear_losses import StackedFullDataLoss
from sltlab.estimators.gate import mixing_concern
from sltlab.theory.restricted import restricted_deep_linear_balanced
from sltlab.verification.suite import dln_problem

# Runs here are short on purpose: that their chains have not yet spread from w* is said by a
# BurnInWarning (tests/estimators/test_start_spread.py), which these tests leave aside.
pytestmark = pytest.mark.filterwarnings("ignore::sltlab.estimators.notices.BurnInWarning")

WIDTHS, RANK = [2, 2, 3], 0


def test_constant_draws_of_chains_that_moved_are_a_flat_loss_and_otherwise_no_estimate_of_error():
    constant = np.full((4, 50), -0.25)
    flat = llc_from_gaps(constant, 10.0, moved=np.ones(4, dtype=bool))
    assert flat.flat and flat.mean == 0.0 and flat.standard_error == 0.0 and flat.per_chain == [0.0] * 4
    assert mixing_concern(flat) is None
    for moved in (None, np.array([True, True, False, True])):   # a chain that never left w* says nothing
        still = llc_from_gaps(constant, 10.0, moved=moved)
        assert not still.flat and still.mean == -0.25 and still.standard_error is None
        assert "R-hat could not be computed" in mixing_concern(still)
    stuck = llc_from_gaps(constant, 10.0, moved=np.zeros(4, dtype=bool))   # no chain left w*: no estimate
    assert stuck.mean is None and stuck.diverged_chains == [0, 1, 2, 3]
    assert stuck.divergence[0] == "never left w*: its steps are below the rounding of w*"
    rejected = llc_from_gaps(constant, 10.0, acceptance=np.array([0.0, 6e-4, 0.0, 0.85]), moved=np.zeros(4, dtype=bool))
    assert rejected.divergence[0] == "never left w*: every move it proposed was rejected"
    # 6e-4 over 50 draws: fewer than one move expected accepted, so none was (it had been blamed on rounding)
    assert rejected.divergence[1] == "never left w*: every move it proposed was rejected (mean acceptance 0.0006)"
    assert rejected.divergence[3] == "never left w*: its steps are below the rounding of w*"   # accepted, unmoved
    frozen = llc_from_gaps(constant, 10.0, moved=np.zeros(4, dtype=bool), away=np.array([True, True, False, True]))
    assert frozen.mean is None and frozen.diverged_chains == [0, 1, 2, 3]   # away from w*, but standing still
    assert frozen.divergence[0] == "never moved over its draws, away from w*: its steps are below the rounding of its "\
        "coordinates"
    assert frozen.divergence[2] == "never left w*: its steps are below the rounding of w*"


def test_a_single_draw_is_no_flat_loss_and_fails_the_gate():
    """One chain of one draw has no second draw to differ from: its gap is λ̂, unjudged (it had
    read λ̂ = 0 ± 0 as a flat loss, unwarned)."""
    single = llc_from_gaps(np.array([[0.468]]), 10.0, moved=np.ones(1, dtype=bool))
    assert not single.flat and single.mean == 0.468 and single.standard_error is None and single.per_chain == [0.468]
    assert "R-hat could not be computed" in mixing_concern(single)


def test_one_draw_at_a_point_that_is_no_minimum_is_an_estimate_with_its_warnings():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(200, 1, generator=generator)
    torch.manual_seed(0)
    with warnings.catch_warnings(record=True) as caught:   # the untrained layer is no critical point: said
        warnings.simplefilter("always")
        result = estimate_llc(torch.nn.Linear(3, 1), (x, y), chains=1, draws=1, localize_at="true_parameter",
                              extend_unmixed=0, fallback=None)
    assert result.mean is not None and result.standard_error is None and result.per_chain == [result.mean]
    assert any("R-hat could not be computed" in str(notice.message) for notice in caught)


@pytest.fixture(scope="module")
def zero_network():
    problem = dln_problem(WIDTHS, RANK, n=2_000, seed=1, per_sample=True)
    return problem.loss.as_module(problem.true_parameter, torch.float32), problem.data


@pytest.mark.parametrize("settings", [dict(draws=400), dict(sampler="sgld", draws=200, batch_size=100)],
                         ids=["mala", "sgld"])
def test_a_layer_whose_frozen_neighbours_vanish_reads_zero_without_a_warning(zero_network, settings):
    module, data = zero_network
    assert restricted_deep_linear_balanced(WIDTHS, RANK, 2).lam_float == 0.0
    result = estimate_llc(module, data, restrict_to="1.weight", **settings)   # any warning fails the test
    assert result.mean == 0.0 and result.standard_error == 0.0 and not result.warnings
    said = "where they went, the loss equalled L_n(w*) to float32's precision, so λ̂ = 0"
    assert any(said in note for note in result.notes)
    assert str(result).startswith("LLCResult: λ̂ = 0, no draw's loss differing from another in float32: where the "
                                   "chains went the loss did not change by more than it rounds")


def test_restrictions_sampled_together_each_read_zero(zero_network):
    module, data = zero_network
    results = estimate_llc(module, data, restrict_to=["0.weight", "1.weight"], sampler="sgld", draws=200,
                           batch_size=100)
    assert [result.mean for result in results] == [0.0, 0.0]
    assert all("so λ̂ = 0" in result.notes[0] for result in results)


def test_a_loss_flat_only_to_float32_is_said_to_be_rounding_not_the_llc():
    """[2,2,2] rank 1 at nβ = 10¹⁰: the chains reach about 10⁻⁵ from w*, where the loss changes by
    less than float32 resolves at L_n(w*) = 2.88, so every draw reads L_n(w*) and λ̂ = 0 (λ = 2); ten
    times their displacement changes it, which the warning says."""
    problem = dln_problem([2, 2, 2], 1, n=1000, seed=0)
    config = LLCConfig(sampler="mala", chains=2, draws=200, burnin=50, nbeta=1e10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data, config, n=problem.n)
    said = [str(w.message) for w in caught if issubclass(w.category, PrecisionWarning)]
    assert result.estimate.flat and result.mean == 0.0
    assert len(said) == 1 and "λ̂ = 0 is that rounding, not the LLC" in said[0] and said[0] in result.warnings


@pytest.mark.parametrize("anneal", [1.0, 100.0])
def test_a_loss_whose_terms_cancel_in_float32_is_said_to_be_rounding(anneal):
    """[3,2,3] rank 1 learning a singular value of 10⁴, its loss from sufficient statistics: terms of
    about 10⁸ summing to a few units, which float32 holds only to several units (λ = 7/2). Chains from
    w* read λ̂ = −289 ± 161 (one a spacing below L_n(w*) at every draw, one at it); with one of them
    cooled from nβ/100 no draw's loss had differed from L_n(w*) (λ̂ = 0) until each MALA proposal's move
    was added to the position at once, and now that run reads −289 too. Ten times the chains'
    displacement changes the loss by far more than float32's spacing at L_n(w*), as a dead zone's
    does, so the flat reading had been a note, and neither had been warned; evaluated in float64 at
    the chains' ends, the gaps are off by 3 and 579."""
    problem = dln_problem([3, 2, 3], 1, n=1000, seed=0, singular_values=[1e4])
    config = LLCConfig(sampler="mala", chains=2, draws=20, burnin=10, anneal=anneal, cooled_share=0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data, config, n=problem.n)
    said = [str(w.message) for w in caught if issubclass(w.category, PrecisionWarning)]
    assert result.estimate.flat or result.mean < 0   # either way no LLC: 7/2 in float64
    assert len(said) == 1 and "the gaps nβ·(L_n(w) − L_n(w*)) that λ̂ averages differ from float32's" in said[0]
    with warnings.catch_warnings(record=True):   # float64, with whatever else the short run warns of
        warnings.simplefilter("always")
        float64 = estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data,
                                         replace(config, dtype="float64"), n=problem.n)
    assert not any("float64" in message for message in float64.warnings)


def test_problems_sampled_together_under_a_stacked_loss_are_each_checked_for_rounding():
    """The same network twice as one batched run (a stacked loss scores only all chains at once):
    the check after the run, which had been skipped there, evaluates each problem with its own loss."""
    problem = dln_problem([3, 2, 3], 1, n=1000, seed=0, singular_values=[1e4])
    config = LLCConfig(sampler="mala", chains=2, draws=20, burnin=10)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        results = estimate_llc_of_problems([problem.loss, problem.loss], [problem.true_parameter] * 2, (),
                                           config, n=problem.n, stack=lambda losses, chains: StackedFullDataLoss(
                                               losses, torch.arange(len(losses)).repeat_interleave(chains)))
    assert all(any("that λ̂ averages differ from float32's" in said for said in result.warnings) for result in results)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_loss_flat_over_the_chains_reach_and_rising_beyond_it_is_not_said_to_be_rounding(dtype):
    """Σ relu(|w| − 5)² + 1 is exactly flat within 5 of w* = 0, where the chains stay, and rises
    beyond: ten times their displacement changes it by far more than rounding could hide, so λ̂ = 0
    stands, unwarned (it had been said to be rounding, with float64 as the remedy in float64)."""
    def dead_zone(position, batch):
        return (torch.relu(position.abs() - 5) ** 2).sum(-1, keepdim=True) + 1.0
    config = LLCConfig(sampler="sgld", chains=2, draws=200, dtype=dtype, localize_at="true_parameter", nbeta=100.0)
    result = estimate_llc_from_loss(dead_zone, torch.zeros(3, dtype=torch.float64), (), config, n=1000)
    assert result.estimate.flat and result.mean == 0.0 and not result.warnings


@pytest.mark.parametrize("seed", [0, 3])
def test_a_float64_regression_of_large_residuals_sampled_in_float32_is_said_to_be_rounding(seed):
    """Linear regression (λ = d/2 = 4) of residuals of scale 3·10⁴ at its least-squares fit, sampled in
    float32: L_n(w*) ≈ 9·10⁸, where float32 resolves about 100, so no draw's loss differs and λ̂ = 0, or,
    where the summation order of a CPU's kernels leaves the draws' losses a spacing or two off, each
    chain's λ̂ reads at most twice that spacing times nβ (seed 3: one chain two spacings off, since each
    MALA proposal's move is added to the position at once; one before); either is said to be rounding.
    The check had summed a subsample's losses in float32 (a rounding noise of about 10³) and its own
    gradient at w* (a linear change the full-data draws never saw), and let both read 0 unwarned."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2000, 3, generator=generator, dtype=torch.float64)
    y = x @ torch.randn(3, 2, generator=generator, dtype=torch.float64) + 3e4 * torch.randn(
        2000, 2, generator=generator, dtype=torch.float64)
    fit = torch.linalg.lstsq(torch.cat([x, torch.ones(2000, 1, dtype=torch.float64)], 1), y).solution
    module = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        module.weight.copy_(fit[:3].T)
        module.bias.copy_(fit[3])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = estimate_llc(module, (x, y), draws=200, chains=4, extend_unmixed=0, fallback=None, dtype="float32")
    said = [str(w.message) for w in caught if issubclass(w.category, PrecisionWarning)]
    assert result.config.dtype == "float32" and len(said) == 1
    if result.estimate.flat:   # every draw's float32 loss equal to L_n(w*)'s
        assert result.mean == 0.0 and "λ̂ = 0 is that rounding, not the LLC" in said[0]
    else:   # draws' losses a spacing off L_n(w*)'s, as a CPU's summation order may leave them (seed 3, AMD EPYC:
        # three chains at −nβ·64 and one at 0, λ̂ = −12,630)
        spacing = float(np.spacing(np.float32(result.localization.center_loss)))
        assert all(abs(chain) <= 2.0001 * result.nbeta * spacing for chain in result.estimate.per_chain)
        assert "may carry a rounding bias" in said[0] and "0 is that rounding" not in said[0]
