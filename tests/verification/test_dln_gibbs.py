"""The blocked-Gibbs reference against an exact Gaussian value and an independent exact sampler."""

import math
import pytest
import torch

from sltlab.estimators import LLCConfig, estimate_llc_from_loss
from sltlab.estimators.localize import empirical_minimum
from sltlab.verification.reference.dln_gibbs import gibbs_draws, reference_llc
from sltlab.verification.suite import dln_problem


def test_one_layer_matches_the_gaussian_posterior_exactly():
    # One layer: L_n is quadratic, the posterior Gaussian with precision nβ·s_i + γ per input
    # direction (s_i the eigenvalues of Σxx, each once per output), so nβ·E[ΔL] = ½·Σ nβ s_i/(nβ s_i + γ).
    problem = dln_problem([3, 2], 1, n=400, seed=3)
    centre = empirical_minimum(problem.loss, problem.true_parameter.double(), None).center
    nbeta, gamma = 60.0, 3.0
    eigenvalues = torch.linalg.eigvalsh(problem.loss.sxx.double())
    exact = 2 * 0.5 * float((nbeta * eigenvalues / (nbeta * eigenvalues + gamma)).sum())
    estimate = reference_llc(problem.loss, centre, nbeta, gamma, chains=8, sweeps=3000, burnin=200, seed=1)
    assert abs(estimate.mean - exact) <= 4 * estimate.standard_error
    assert estimate.standard_error < 0.02 * exact


def test_a_deep_network_agrees_with_mala():
    problem = dln_problem([3, 2, 2, 3], 1, n=2000, seed=0)
    config = LLCConfig(sampler="mala", chains=8, draws=4000, burnin=4000, thin=2, localization=3.0,
                       dtype="float64", seed=5)
    mala = estimate_llc_from_loss(problem.loss, problem.true_parameter, (), config, n=problem.n).estimate
    centre = empirical_minimum(problem.loss, problem.true_parameter.double(), None).center
    gibbs = reference_llc(problem.loss, centre, mala.nbeta, 3.0, chains=8, sweeps=3000, burnin=500, seed=2)
    assert gibbs.rhat < 1.05 and mala.rhat < 1.05
    assert abs(gibbs.mean - mala.mean) <= 4 * math.hypot(gibbs.standard_error, mala.standard_error)


def test_chains_are_independent_and_settings_are_checked():
    problem = dln_problem([2, 2, 2], 1, n=200, seed=0)
    gaps, _ = gibbs_draws(problem.loss, problem.true_parameter, 50.0, 1.0, chains=3, sweeps=20, burnin=0)
    assert gaps.shape == (3, 20) and len({round(float(row[0]), 9) for row in gaps}) == 3
    for nbeta, gamma in ((50.0, 0.0), (-1.0, 1.0)):
        with pytest.raises(ValueError, match="need nβ > 0, γ > 0"):
            gibbs_draws(problem.loss, problem.true_parameter, nbeta, gamma, sweeps=2)
