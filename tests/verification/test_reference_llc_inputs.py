"""The Gibbs reference refuses, in one line and before any draw, an nβ or γ that is not a positive
finite number and a centre that is not a finite point of the network: inf or a NaN centre had
ended in a traceback from deep inside the eigendecompositions."""

from __future__ import annotations

import math

import pytest
import torch

from sltlab.models import DeepLinearNetwork, FullDataLoss, balanced_factorization, teacher_matrix
from sltlab.verification.reference.dln_gibbs import reference_llc, reference_llc_and_elasticity


def _problem():
    generator = torch.Generator().manual_seed(0)
    network = DeepLinearNetwork((3, 2, 3))
    target = teacher_matrix(3, 3, 1, [1.5], generator=generator)
    x = torch.randn(100, 3, generator=generator, dtype=torch.float64)
    centre = balanced_factorization(network, target, 1, generator=generator)
    return FullDataLoss(network, x, x @ target.T), centre


LOSS, CENTRE = _problem()
SHORT = dict(chains=2, sweeps=20, burnin=5)


@pytest.mark.parametrize("nbeta, gamma, got", [
    (math.inf, 1.0, "nβ = inf, γ = 1.0"), (math.nan, 1.0, "nβ = nan, γ = 1.0"), (0.0, 1.0, "nβ = 0.0, γ = 1.0"),
    (-5.0, 1.0, "nβ = -5.0, γ = 1.0"), ("100", 1.0, "nβ = '100', γ = 1.0"), (100.0, math.inf, "nβ = 100.0, γ = inf"),
    (100.0, math.nan, "nβ = 100.0, γ = nan"), (100.0, 0.0, "nβ = 100.0, γ = 0.0"), (100.0, -1, "nβ = 100.0, γ = -1"),
])
def test_nbeta_and_gamma_must_be_positive_finite_numbers(nbeta, gamma, got):
    message = rf"^need nβ > 0, γ > 0, both finite numbers; got {got}$"
    with pytest.raises(ValueError, match=message):
        reference_llc(LOSS, CENTRE, nbeta, gamma, **SHORT)
    with pytest.raises(ValueError, match=message):
        reference_llc_and_elasticity(LOSS, CENTRE, nbeta, gamma, **SHORT)


@pytest.mark.parametrize("centre, message", [
    (CENTRE.clone().index_fill_(0, torch.tensor([2]), math.nan), r"^need a centre of finite numbers; got 1 NaN or "
                                                                 r"±inf among its 12$"),
    (CENTRE.clone().fill_(-math.inf), r"^need a centre of finite numbers; got 12 NaN or ±inf among its 12$"),
    (CENTRE.unsqueeze(0), r"^need a centre of the network's 12 parameters, a tensor \[12\]; got shape \[1, 12\]$"),
    (CENTRE[:5], r"^need a centre of the network's 12 parameters, a tensor \[12\]; got shape \[5\]$"),
    (CENTRE.tolist()[:2], r"^need a centre of the network's 12 parameters, a tensor \[12\]; got \[.*\]$"),
])
def test_the_centre_must_be_a_finite_point_of_the_network(centre, message):
    with pytest.raises(ValueError, match=message):
        reference_llc(LOSS, centre, 100.0, 1.0, **SHORT)


def test_a_valid_point_is_still_sampled():
    estimate = reference_llc(LOSS, CENTRE, 100.0, 1.0, **SHORT)
    assert math.isfinite(estimate.mean) and estimate.mean > 0
    assert estimate.mean == reference_llc(LOSS, CENTRE, 100, 1, **SHORT).mean   # whole numbers as before
    assert math.isclose(reference_llc(LOSS, CENTRE.float(), 100.0, 1.0, **SHORT).mean, estimate.mean, rel_tol=1e-6)


@pytest.mark.parametrize("counts, message", [({"chains": 2.5}, "chains must be a whole number of at least 1, got 2.5"),
                                             ({"sweeps": 0}, "sweeps must be a whole number of at least 1, got 0"),
                                             ({"burnin": -1}, "burnin must be a whole number of at least 0, got -1")])
def test_the_chain_counts_must_be_whole_numbers(counts, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        reference_llc(LOSS, CENTRE, 100.0, 1.0, **{**SHORT, **counts})
