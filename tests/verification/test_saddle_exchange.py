"""Replica exchange at a saddle plateau: the top rung's λ̂ against the blocked-Gibbs truth, and
which plateaus use it."""

import math

import pytest
import torch

from sltlab.estimators.notices import MixingWarning
from sltlab.models.deep_linear import DeepLinearNetwork, balanced_factorization
from sltlab.verification.dynamics.saddle import SaddleSetup
from sltlab.verification.dynamics.saddle_exchange import exchange_llcs
from sltlab.verification.dynamics.saddle_plateaus import relabelled_loss
from sltlab.verification.reference.dln_gibbs import reference_llc



def test_exchange_reads_the_finite_n_truth_at_two_deep_plateaus_in_one_run():
    """Four weight layers, nβ = 100, γ = 1: a rank-0 plateau near the origin and a rank-1 one,
    sampled as one batch, each against its own relabelled loss with its own steps. Every kernel
    is exact after the warm-up (HMC within a rung, Metropolis exchanges), so there is no bias
    budget: each λ̂ must lie within 4 combined standard errors of its Gibbs chains' value."""
    network = DeepLinearNetwork((3, 2, 2, 2, 3))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(500, 3, generator=generator, dtype=torch.float64)
    low = 0.05 * torch.randn(network.dim, generator=generator, dtype=torch.float64)
    target = torch.outer(torch.tensor([1.0, 0.5, -0.5]), torch.tensor([0.8, -0.6, 0.4])).double()
    ranked = balanced_factorization(network, target, 1, generator=generator)
    losses = [relabelled_loss(network, x, position) for position in (low, ranked)]
    results = exchange_llcs(losses, [low, ranked], 100.0, 1.0, rungs=4, ladders=8, warmup=300, draws=600)
    for loss, position, result in zip(losses, (low, ranked), results):
        truth = reference_llc(loss, position, 100.0, 1.0, chains=4, sweeps=1000, burnin=200)
        combined = math.hypot(result["llc_se"], truth.standard_error)
        assert abs(result["llc_mean"] - truth.mean) <= 4 * combined, (result["llc_mean"], truth.mean, combined)
        assert result["diverged_chains"] == [] and result["rhat"] < 1.05
        ladder = result["exchange"]
        assert ladder["nbetas"][0] == pytest.approx(10.0) and ladder["nbetas"][-1] == pytest.approx(100.0)
        assert len(ladder["swap_acceptance"]) == 3 and all(0 < rate < 1 for rate in ladder["swap_acceptance"])
        assert len(ladder["round_trips"]) == 8 and sum(ladder["round_trips"]) > 0
    assert results[0]["llc_mean"] < results[1]["llc_mean"]   # the rank-1 plateau holds more


def test_ladders_that_fail_the_mixing_gate_warn():
    """Two ladders of 20 draws hold far fewer than the gate's ESS of 200."""
    network = DeepLinearNetwork((2, 2, 2, 2))
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(100, 2, generator=generator, dtype=torch.float64)
    position = 0.05 * torch.randn(network.dim, generator=generator, dtype=torch.float64)
    loss = relabelled_loss(network, x, position)
    with pytest.warns(MixingWarning, match="replica exchange: the chains fail the mixing gate"):
        result, = exchange_llcs([loss], [position], 50.0, 1.0, rungs=2, ladders=2, warmup=10, draws=20)
    assert result["ess"] < 200


def test_a_ladder_needs_two_rungs_and_a_span():
    network = DeepLinearNetwork((2, 2, 2))
    position = torch.zeros(network.dim, dtype=torch.float64)
    loss = relabelled_loss(network, torch.ones(4, 2, dtype=torch.float64), position)
    with pytest.raises(ValueError, match="two rungs"):
        exchange_llcs([loss], [position], 10.0, 1.0, rungs=1)
    with pytest.raises(ValueError, match="span"):
        exchange_llcs([loss], [position], 10.0, 1.0, span=1.0)
    with pytest.raises(ValueError, match="one loss per position"):
        exchange_llcs([loss], [position, position], 10.0, 1.0)


def test_plateaus_use_exchange_from_five_weight_layers_unless_told():
    assert SaddleSetup((8, 6, 6, 6, 6, 8)).resolved().plateau_sampler == "exchange"
    assert SaddleSetup((12, 6, 6, 6, 12)).resolved().plateau_sampler == "mala"
    assert SaddleSetup((10, 5, 10)).resolved().plateau_sampler == "mala"
    told = SaddleSetup((8, 6, 6, 6, 6, 8), plateau_sampler="mala")
    assert told.resolved().plateau_sampler == "mala" and "plateau_sampler" not in told.chosen_by_schedule()
    with pytest.raises(ValueError, match="plateau sampler"):
        SaddleSetup((10, 5, 10), plateau_sampler="gibbs").resolved()
    assert SaddleSetup((10, 5, 10)).unmixed_plateaus == "exchange"   # MALA's unmixed plateaus go to exchange
    with pytest.raises(ValueError, match="unmixed plateaus are answered by one of exchange, report"):
        SaddleSetup((10, 5, 10), unmixed_plateaus="gibbs").validate()
