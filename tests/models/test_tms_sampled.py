"""Losses summed over drawn rows, as the Bayesian study samples their posteriors: the toy
model's sum of squared errors from sorted magnitudes and their cumulative sums, and a deep linear
network's from each chain's moments, against the rows' own sums (exactly), and the replica
exchange's swap ratio on such data against the four energies it is made of."""

import numpy as np
import pytest
import torch

from sltlab.models.deep_linear import DeepLinearNetwork
from sltlab.models.deep_linear_losses import ChainwiseSquaredError, PopulationLoss
from sltlab.models.tms import ToyModelOfSuperposition
from sltlab.models.tms_sampled import SampledSquaredError, one_sparse_inputs
from sltlab.theory.tms import kgon
from sltlab.verification.dynamics.bayes_sampled import sampled_energies

FEATURES = 6
MODEL = ToyModelOfSuperposition(FEATURES)


def rows_sum(position, active, magnitudes, sets, sizes):
    """Σ_j ‖x_j − ReLU(WᵀW x_j + b)‖² row by row, per chain."""
    columns, bias = MODEL.split(position)
    totals = []
    for chain, (chain_set, size) in enumerate(zip(sets, sizes)):
        inputs = torch.zeros(size, FEATURES, dtype=torch.float64)
        inputs[torch.arange(size), active[chain_set, :size]] = magnitudes[chain_set, :size]
        weights = columns[chain].T
        totals.append(((inputs - torch.relu(inputs @ weights.T @ weights + bias[chain])) ** 2).sum())
    return torch.stack(totals)


def chains_and_data():
    generator = torch.Generator().manual_seed(0)
    active, magnitudes = one_sparse_inputs(3, 300, FEATURES, generator)
    random = 0.8 * torch.randn(36, 3 * FEATURES, generator=generator, dtype=torch.float64)
    random[:6, 2:6] = 0.0                                           # dead columns: a = 0 on many pairs
    points = torch.tensor([kgon(FEATURES, 5).parameter, kgon(FEATURES, 6).parameter, kgon(FEATURES, 5, 1).parameter,
                           kgon(FEATURES, 6).parameter], dtype=torch.float64)
    sets, sizes = [0, 1, 2, 0] * 10, [50, 300, 7, 1] * 10
    return torch.cat([random, points]), active, magnitudes, sets, sizes


def test_the_sum_and_its_gradient_equal_the_rows_own_sum():
    position, active, magnitudes, sets, sizes = chains_and_data()
    error = SampledSquaredError(MODEL, active, magnitudes, sets, sizes)
    position = position.requires_grad_(True)
    (fast,) = torch.autograd.grad(error(position).sum(), position)
    (slow,) = torch.autograd.grad(rows_sum(position, active, magnitudes, sets, sizes).sum(), position)
    torch.testing.assert_close(error(position), rows_sum(position, active, magnitudes, sets, sizes), rtol=1e-12,
                               atol=1e-10)
    torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-10)
    chosen = torch.tensor([3, 2, 1, 0] * 10)                         # each position on another chain's data
    torch.testing.assert_close(error(position.detach(), chosen),
                               rows_sum(position.detach(), active, magnitudes, [sets[i] for i in chosen],
                                        [sizes[i] for i in chosen]), rtol=1e-12, atol=1e-10)


def test_many_rows_approach_the_population_loss():
    generator = torch.Generator().manual_seed(1)
    active, magnitudes = one_sparse_inputs(1, 200_000, FEATURES, generator)
    error = SampledSquaredError(MODEL, active, magnitudes, [0], [200_000])
    point = torch.tensor([kgon(FEATURES, 5).parameter], dtype=torch.float64)
    # the mean of 2·10⁵ rows: its standard error is 0.56 % of the 0.0687 here (from 400 chunks of 500 of
    # these rows); the seed is fixed, and this draw lies 0.04 % from the population loss
    assert float(error(point)) / 200_000 == pytest.approx(float(MODEL(point)), rel=0.01)


@pytest.mark.parametrize("sets, sizes", [([0], [0]), ([0, 1], [5]), ([0], [301])])
def test_sizes_outside_the_data_are_refused(sets, sizes):
    active, magnitudes = one_sparse_inputs(2, 300, FEATURES, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="need one size in 1 … 300 per chain"):
        SampledSquaredError(MODEL, active, magnitudes, sets, sizes)


def test_the_swap_ratio_is_made_of_the_four_energies():
    sizes, ladders = np.array([20.0, 45.0, 100.0]), 4
    loss, swap_log_ratio = sampled_energies("tms", MODEL, sizes, ladders, seed=5)
    generator = torch.Generator().manual_seed(2)
    positions = 0.8 * torch.randn(3, ladders, 3 * FEATURES, generator=generator, dtype=torch.float64)
    mean_losses = loss(positions.reshape(-1, 3 * FEATURES), None).reshape(3, ladders)
    energy = {}   # (rung, state): E_rung at the state of that rung, placed on rung's chain slots (their data)
    for rung in range(3):
        for state in range(3):
            slots = positions.clone()
            slots[rung] = positions[state]
            energy[rung, state] = sizes[rung] * loss(slots.reshape(-1, 3 * FEATURES), None).reshape(3, ladders)[rung]
    expected = torch.stack([energy[r, r] + energy[r + 1, r + 1] - energy[r, r + 1] - energy[r + 1, r]
                            for r in range(2)])
    torch.testing.assert_close(swap_log_ratio(positions, mean_losses), expected, rtol=1e-12, atol=1e-9)


def test_the_deep_linear_networks_sum_on_drawn_rows_equals_the_rows_own():
    network = DeepLinearNetwork((3, 2, 4))
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(3, 30, 3, generator=generator, dtype=torch.float64)
    y = torch.randn(3, 30, 4, generator=generator, dtype=torch.float64)
    error = ChainwiseSquaredError(network, x.transpose(1, 2) @ x, x.transpose(1, 2) @ y, (y * y).sum((1, 2)))
    position = torch.randn(3, network.dim, generator=generator, dtype=torch.float64)
    product = network.product(position)
    own = 0.5 * ((y - x @ product.transpose(1, 2)) ** 2).sum((1, 2))
    torch.testing.assert_close(error(position), own, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(error(position.flip(0), torch.tensor([2, 1, 0])), own.flip(0), rtol=1e-12, atol=1e-10)


def test_many_drawn_rows_of_a_deep_linear_network_approach_its_population_loss():
    network = DeepLinearNetwork((3, 2, 4))
    generator = torch.Generator().manual_seed(5)
    population = PopulationLoss(network, torch.randn(4, 3, generator=generator, dtype=torch.float64))
    loss, _ = sampled_energies("dln", population, np.array([10.0, 40_000.0]), ladders=2, seed=0)
    position = torch.randn(4, network.dim, generator=generator, dtype=torch.float64)   # 2 rungs × 2 ladders
    # chain 2 holds the first 40,000 rows of set 0; the mean adds the noise's ½·E‖ε‖² = 2 to ½‖P − B‖². Its
    # standard error is 0.66 % of the 34.2 here, so 2 % is 3 SE; this draw lies 0.02 % from it
    assert float(loss(position)[2]) == pytest.approx(float(population(position[2:3])) + 2.0, rel=0.02)
