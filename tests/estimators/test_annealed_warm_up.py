"""MALA's warm-up: the annealing stages exactly, the chains it leaves nearer the posterior's
spread along a soft direction than a warm-up at the target nβ, and the run continuing from
where it ended."""

import warnings

import numpy as np
import pytest
import torch

from sltlab.estimators import LLCConfig
from sltlab.estimators.adapt import ANNEAL_STAGES, adapt_step_size, annealing_stages
from sltlab.estimators.cooled_share import cooled_chains, cooling_not_applied, sides_of_the_start
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.notices import EstimateWarning, MixingWarning
from sltlab.estimators.posterior import LocalPosterior, potential
from sltlab.estimators.sampling import Batches
from sltlab.verification.suite import dln_problem


def test_without_annealing_the_warm_up_is_one_stage_at_the_target():
    assert annealing_stages(500.0, 1.0, 2000) == [(500.0, 2000)]


def test_annealing_stages_rise_geometrically_to_the_target_over_the_first_half():
    stages = annealing_stages(1e5, 100.0, 2003)
    assert len(stages) == ANNEAL_STAGES + 1
    assert [steps for _, steps in stages] == [100] * ANNEAL_STAGES + [1003]
    np.testing.assert_allclose([nbeta for nbeta, _ in stages],
                               [1e5 * 100.0 ** (-(ANNEAL_STAGES - k) / ANNEAL_STAGES) for k in range(ANNEAL_STAGES)]
                               + [1e5], rtol=1e-15)
    assert stages[0][0] == pytest.approx(1e3) and stages[-1][0] == 1e5


def _product_posterior():
    """U = nβ·(ab)²/2 + (γ/2)(a² + b²): the b-integral is Gaussian, so the marginal of a is
    ∝ exp(−γa²/2)/√(nβa² + γ) and E[a² + b²] = 2·E[a²] is a one-dimensional quadrature."""
    product = lambda position, batch: 0.5 * (position[..., 0] * position[..., 1]).square().unsqueeze(-1)
    nbeta, gamma = 1e5, 1.0
    grid = np.linspace(-12, 12, 2_000_001)
    density = np.exp(-gamma * grid**2 / 2) / np.sqrt(nbeta * grid**2 + gamma)
    exact = 2 * float((grid**2 * density).sum() / density.sum())
    return LocalPosterior(product, nbeta, gamma, torch.zeros(2, dtype=torch.float64)), exact


def test_annealing_leaves_the_chains_spread_along_the_soft_direction_and_at_the_target():
    """From w* = 0 the step is set by the stiff direction (curvature nβ·a²) and the soft one relaxes
    in about 1/(εγ) ≈ 10⁴ steps: a 2,000-step warm-up at the target leaves the chains at under a
    third of the exact E‖w‖² (0.307), while one that cools from nβ/100 reaches it within 4 standard
    errors over 400 chains (measured 0.088 ± 0.007 and 0.261 ± 0.022)."""
    posterior, exact = _product_posterior()
    spread = {}
    for anneal in (1.0, 100.0):
        warmup = adapt_step_size(posterior, Batches((), 1), target_acceptance=0.8, chains=400, warmup_steps=2000,
                                 generator=torch.Generator().manual_seed(0), anneal=anneal)
        squares = warmup.final_state.position.square().sum(-1).numpy()
        spread[anneal] = (squares.mean(), squares.std(ddof=1) / np.sqrt(len(squares)))
        assert abs(warmup.achieved_acceptance - 0.8) < 0.05
        # The state is cached at the target nβ, where the run continues.
        target = potential(posterior, warmup.final_state.position, None, energy=True)
        torch.testing.assert_close(warmup.final_state.here.energy, target.energy)
    assert spread[1.0][0] < exact / 3
    assert abs(spread[100.0][0] - exact) < 4 * spread[100.0][1]


def test_a_cooled_share_cools_only_the_first_chains_of_each_group_and_leaves_the_others_at_the_target():
    """With half the 400 chains cooled, they reach the exact E‖w‖² within 4 standard errors and the
    others stay under a third of it, as in the test above; all step at one ε·(nβ + γ)."""
    assert cooled_chains(8, 8, 1.0, "cpu") is None
    assert cooled_chains(8, 4, 0.5, "cpu").tolist() == [True, True, False, False] * 2
    assert cooled_chains(3, 3, 0.1, "cpu").tolist() == [True, False, False]   # at least one
    posterior, exact = _product_posterior()
    warmup = adapt_step_size(posterior, Batches((), 1), target_acceptance=0.8, chains=400, warmup_steps=2000,
                             generator=torch.Generator().manual_seed(0), anneal=100.0, cooled_share=0.5)
    squares = warmup.final_state.position.square().sum(-1).numpy()
    cooled, kept = squares[:200], squares[200:]
    assert abs(cooled.mean() - exact) < 4 * cooled.std(ddof=1) / np.sqrt(200)
    assert kept.mean() < exact / 3
    assert abs(warmup.achieved_acceptance - 0.8) < 0.05


def test_mala_runs_on_from_its_warm_up_and_counts_its_steps():
    problem = dln_problem([3, 4, 2], 1, n=2000, seed=0)
    config = LLCConfig(sampler="mala", chains=4, draws=100, burnin=300, thin=2, anneal=100.0, dtype="float64")
    with warnings.catch_warnings():   # 100 draws are too few to pass the mixing gate; only the steps matter here
        warnings.simplefilter("ignore", MixingWarning)
        result = estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data, config, n=problem.n)
    assert result.trace.steps == 300 + 300 + 100 * 2   # warm-up, burn-in, draws
    assert "cooling from nβ/100" in result.step_size_rule and result.config.anneal == 100.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MixingWarning)
        halved = estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data,
                                        LLCConfig(**{**vars(config), "cooled_share": 0.5}), n=problem.n)
    assert "to nβ in 10 stages for 2 of the 4 chains" in halved.step_size_rule
    assert result.estimate.sides is None and result.summary()["sides_z"] is None   # every chain cooled: one side
    assert halved.trace.cooled.tolist() == [True, True, False, False]
    assert halved.summary()["sides_z"] == halved.estimate.sides and np.isfinite(halved.estimate.sides)
    sides = sides_of_the_start(100.0, halved.per_chain, halved.trace.cooled)   # 100 draws fail the gate: it names them
    assert sides.startswith(". The 2 chains cooled from nβ/100 read λ̂ = ")
    assert [str(w.message) for w in caught if w.category is MixingWarning] == [halved.warnings[-1]]
    assert halved.warnings[-1].endswith(sides)


def test_the_sides_of_the_start_are_named_only_when_some_chains_cooled():
    halves = np.array([True, True, False, False])
    assert sides_of_the_start(10.0, [2.0, 4.0, 1.0, None], halves) == (". The 2 chains cooled from nβ/10 read λ̂ = 3 "
                                                                       "and the 2 started at w* 1")
    assert sides_of_the_start(10.0, [None, None, 1.0, 2.0], halves) == ""   # a side with no chain kept
    assert sides_of_the_start(10.0, [2.0, 4.0], np.array([True, False])) == (". The chain cooled from nβ/10 read λ̂ = "
                                                                             "2 and the one started at w* 4")
    assert sides_of_the_start(10.0, [2.0, 4.0, 1.0, 1.0], None) == ""   # no mask: none or all cooled


def test_a_cooled_share_without_a_cooling_leaves_no_sides():
    """At anneal = 1 no chain cools, whatever the share: the trace names none, and no sides are read."""
    problem = dln_problem([3, 4, 2], 1, n=2000, seed=0)
    config = LLCConfig(sampler="mala", chains=4, draws=100, burnin=300, anneal=1.0, cooled_share=0.5, dtype="float64")
    with warnings.catch_warnings():   # 100 draws are too few to pass the mixing gate
        warnings.simplefilter("ignore", MixingWarning)
        result = estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data, config, n=problem.n)
    assert result.trace.cooled is None and result.estimate.sides is None and result.config.cooled_share == 1.0


@pytest.mark.parametrize("config", [LLCConfig(sampler="sgld", chains=2, draws=20, anneal=100.0),
                                    LLCConfig(sampler="mala", chains=2, draws=20, step_size=1e-4, anneal=100.0)])
def test_an_anneal_that_cannot_apply_is_reported_and_not_claimed(config):
    """Only MALA's automatic warm-up cools: elsewhere the result says so and holds anneal = 1."""
    problem = dln_problem([3, 4, 2], 1, n=2000, seed=0)
    with warnings.catch_warnings():   # 20 draws fail the mixing gate; only the note matters here
        warnings.simplefilter("ignore", EstimateWarning)
        result = estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data, config, n=problem.n)
    assert result.config.anneal == 1.0
    assert any(note.startswith("anneal = 100 was not applied") for note in result.notes)


def test_annealing_refuses_a_warm_up_too_short_to_hold_its_stages():
    posterior, _ = _product_posterior()
    with pytest.raises(ValueError, match="annealing needs at least 40 warm-up steps, got 39"):
        adapt_step_size(posterior, Batches((), 1), target_acceptance=0.8, chains=2, warmup_steps=39,
                        generator=torch.Generator().manual_seed(0), anneal=100.0)


@pytest.mark.parametrize("anneal", [0.5, float("inf"), float("nan")])
def test_anneal_must_be_a_finite_factor_of_at_least_one(anneal):
    with pytest.raises(ValueError, match="anneal must be a finite factor ≥ 1"):
        LLCConfig(anneal=anneal).validate()


@pytest.mark.parametrize("share", [0.0, 1.5, float("nan")])
def test_the_cooled_share_must_lie_in_zero_to_one(share):
    with pytest.raises(ValueError, match="cooled_share must be a share of the chains in"):
        LLCConfig(cooled_share=share).validate()


@pytest.mark.parametrize("settings, note", [
    (dict(sampler="mala", anneal=10.0, cooled_share=0.5), None),   # applied by MALA's warm-up
    (dict(sampler="sgld", anneal=10.0, cooled_share=0.5), "anneal = 10 and cooled_share = 0.5 were not applied"),
    (dict(sampler="sgld", anneal=10.0, cooled_share=1.0), "anneal = 10 was not applied"),
    (dict(sampler="mala", anneal=1.0, cooled_share=0.5), "cooled_share = 0.5 was not applied: at anneal = 1"),
    (dict(sampler="sgld", anneal=1.0, cooled_share=0.3), "cooled_share = 0.3 was not applied: at anneal = 1"),
    (dict(sampler="sgld", anneal=1.0, cooled_share=1.0), None),
])
def test_a_cooling_asked_for_but_not_run_is_noted_and_reported_as_not_used(settings, note):
    said, used = cooling_not_applied(LLCConfig(**settings), warmed_up=settings["sampler"] == "mala")
    assert (said is None) == (note is None) and (note is None or said.startswith(note))
    assert (used.anneal, used.cooled_share) == ((10.0, 0.5) if note is None and settings["anneal"] > 1 else (1.0, 1.0))
