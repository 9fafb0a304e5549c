"""HMC as an LLC sampler: its trajectory length exactly, its refusal without localisation, and
its estimate on a singular funnel with an exact finite-temperature LLC."""

import math
import warnings

import numpy as np
import pytest
import torch

from sltlab.estimators import LLCConfig
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.hmc_tuning import MAX_LEAPFROG_STEPS, trajectory_steps, warm_up_rule


def test_a_trajectory_lasts_an_eighth_of_the_localising_priors_period():
    assert trajectory_steps(0.01, 4.0) == math.ceil(math.pi / 8 / 0.01) == 40
    assert trajectory_steps(10.0, 1.0) == 1
    assert trajectory_steps(1e-12, 1.0) == MAX_LEAPFROG_STEPS


def test_hmc_without_localisation_is_refused_with_its_reason():
    with pytest.raises(ValueError, match="hmc needs a localization γ > 0"):
        LLCConfig(sampler="hmc", localization=0.0).validate()


def _funnel_truth(nbeta: float, gamma: float) -> float:
    """λ(nβ, γ) = nβ·E[(ab)²/2] under exp(−nβ(ab)²/2 − γ(a² + b²)/2): given a, b is Gaussian of
    precision nβa² + γ, so it is ½·E[nβa²/(nβa² + γ)] over the marginal of a,
    ∝ exp(−γa²/2)/√(nβa² + γ), a one-dimensional quadrature."""
    grid = np.linspace(-12, 12, 2_000_001)
    density = np.exp(-gamma * grid**2 / 2) / np.sqrt(nbeta * grid**2 + gamma)
    return 0.5 * float((nbeta * grid**2 / (nbeta * grid**2 + gamma) * density).sum() / density.sum())


def test_hmc_reaches_the_exact_llc_of_a_singular_funnel_and_counts_trajectories():
    """256 chains × 200 trajectories: 0.418 ± 0.004 against 0.4232 at the acceptance target 0.9
    (within 4 SE + a 1 % budget); at 0.65 the chains cannot enter the funnel's stiff neck and
    read 0.377 ± 0.007, outside it (hmc_tuning's docstring)."""
    product = lambda position, batch: 0.5 * (position[..., 0] * position[..., 1]).square().unsqueeze(-1)
    nbeta, gamma = 1e5, 1.0
    config = LLCConfig(sampler="hmc", chains=256, draws=200, burnin=50, localization=gamma, nbeta=nbeta,
                       localize_at="true_parameter", dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = estimate_llc_from_loss(product, torch.zeros(2, dtype=torch.float64), (), config, n=10**5)
    truth = _funnel_truth(nbeta, gamma)
    assert truth == pytest.approx(0.42317, abs=1e-5)
    assert abs(result.mean - truth) <= 4 * result.standard_error + 0.01 * truth
    assert result.trace.steps == 50 + 200
    assert "dual averaging to HMC acceptance 0.9" in result.step_size_rule and "leapfrog steps" in result.step_size_rule


def test_a_warm_up_whose_step_collapsed_says_its_trajectories_are_capped_and_why():
    pilot = LLCConfig(sampler="hmc", step_size=0.01, localization=1.0, burnin=50)
    assert "capped" not in warm_up_rule(pilot, 0.005, 0.9)   # π/4 in 158 steps
    said = warm_up_rule(pilot, 1.2e-5, 0.9)   # π/4 would take 65,450 steps: shown at 20,000, with no word before
    assert "20,000 leapfrog steps of h = 1.2e-05" in said and "(capped: the whole time would take 65,450; a step " \
        "8.3e+02 times below the pilot's often means a gradient that misses part of the loss" in said
