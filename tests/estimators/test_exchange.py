"""HMC with per-chain step sizes and replica exchange over a ladder of nβ: exactness on a
Gaussian, batching, the swap rule, and the posterior occupancy of a two-phase model against
quadrature."""

import math

import numpy as np
import pytest
import torch

from sltlab.estimators.exchange import run_replica_exchange, swap_rungs, tempered_log_ratio
from sltlab.estimators.hmc import hmc
from sltlab.estimators.posterior import LocalPosterior


def quadratic(position, batch=None):
    return 0.5 * position.square().sum(-1, keepdim=True)


def test_hmc_samples_a_gaussian():
    """U = nβ·½‖w‖² + ½‖w‖²: w ~ N(0, 1/(nβ + 1)) in each coordinate."""
    posterior = LocalPosterior(quadratic, 3.0, 1.0, torch.zeros(3, dtype=torch.float64))
    sampler = hmc(posterior, step_size=0.4, leapfrog_steps=5)
    generator = torch.Generator().manual_seed(0)
    state = sampler.init(torch.zeros(64, 3, dtype=torch.float64), None)
    draws = []
    for step in range(1500):
        state, info = sampler.step(state, None, sampler.noise(state, generator))
        if step >= 300:
            draws.append(state.position)
    draws = torch.stack(draws)
    # The sample variance of N independent draws has SE σ²·√(2/N); ×3 allows for autocorrelation.
    standard_error = 3 * 0.25 * math.sqrt(2 / draws.numel())
    assert abs(float(draws.square().mean()) - 0.25) < 4 * standard_error
    assert abs(float(draws.mean())) < 4 * 3 * math.sqrt(0.25 / draws.numel())
    assert float(info["acceptance"].mean()) > 0.8


def test_a_batched_step_with_per_chain_step_sizes_equals_single_chain_steps():
    posterior = LocalPosterior(quadratic, 10.0, 1.0, torch.zeros(4, dtype=torch.float64))
    generator = torch.Generator().manual_seed(1)
    start = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    sizes = torch.tensor([0.05, 0.1, 0.3], dtype=torch.float64)
    batched = hmc(posterior, step_size=sizes, leapfrog_steps=4)
    noise = batched.noise(batched.init(start, None), generator)
    together, _ = batched.step(batched.init(start, None), None, noise)
    for chain in range(3):
        single = hmc(posterior, step_size=float(sizes[chain]), leapfrog_steps=4)
        alone, _ = single.step(single.init(start[chain:chain + 1], None), None,
                               (noise[0][chain:chain + 1], noise[1][chain:chain + 1], noise[2]))
        torch.testing.assert_close(alone.position[0], together.position[chain])


@pytest.mark.parametrize("size, steps", [(0.0, 3), (-1.0, 3), (float("inf"), 3), (0.1, 0)])
def test_bad_hmc_settings_are_refused(size, steps):
    posterior = LocalPosterior(quadratic, 1.0, 1.0, torch.zeros(2))
    with pytest.raises(ValueError):
        hmc(posterior, step_size=size, leapfrog_steps=steps)


def test_swaps_follow_the_metropolis_rule_on_alternate_pairs():
    losses = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])      # [R = 3 rungs, M = 2 ladders]
    nbetas = torch.tensor([1.0, 2.0, 4.0])
    uniform = torch.full((2, 2), 0.5)
    # Pair (0, 1): log ratio (2 − 1)(L₁ − L₀) = −1 (ladder 0), +1 (ladder 1); log 0.5 ≈ −0.69.
    permutation, accepted, proposed = swap_rungs(tempered_log_ratio(losses, nbetas), uniform, parity=0)
    assert proposed.tolist() == [True, False]
    assert accepted.tolist() == [[False, True], [False, False]]
    assert permutation.tolist() == [[0, 1], [1, 0], [2, 2]]
    # Pair (1, 2): (4 − 2)(2 − L₁) > 0 in both ladders.
    permutation, accepted, _ = swap_rungs(tempered_log_ratio(losses, nbetas), uniform, parity=1)
    assert accepted.tolist() == [[False, False], [True, True]] and permutation.tolist() == [[0, 0], [2, 2], [1, 1]]


def test_replica_exchange_occupancy_matches_quadrature():
    """P = ab (a 1-1-1 linear network) learning s = 0.3 under a N(0, I) prior: the share of the
    posterior nearer the teacher than 0 at each n, by replica exchange and by quadrature."""
    teacher = 0.3

    def loss(position, batch=None):
        return 0.5 * (position[:, :1] * position[:, 1:] - teacher) ** 2

    def record(position):
        return {"learned": (position[:, 0] * position[:, 1] > teacher / 2).double()}

    nbetas = [8.0, 16.0, 32.0, 64.0]
    generator = torch.Generator().manual_seed(2)
    start = torch.randn(4, 16, 2, generator=generator, dtype=torch.float64)
    trace = run_replica_exchange(loss, nbetas, start, leapfrog_steps=4, warmup=300, draws=800, thin=2,
                                 record=record, generator=generator)
    per_ladder = trace.records["learned"].mean(-1)                      # [R, M]
    grid = np.linspace(-7, 7, 2801)
    a, b = np.meshgrid(grid, grid)
    for rung, nbeta in enumerate(nbetas):
        weight = np.exp(-nbeta / 2 * (a * b - teacher) ** 2 - (a * a + b * b) / 2)
        exact = weight[a * b > teacher / 2].sum() / weight.sum()
        estimate, error = per_ladder[rung].mean(), per_ladder[rung].std(ddof=1) / math.sqrt(16)
        # 4 SE over the independent ladders, plus 0.01 for the start (warm-up 300 steps) and the grid.
        assert abs(estimate - exact) < 4 * error + 0.01, (nbeta, estimate, exact, error)
    assert (trace.swap_acceptance > 0.3).all() and (trace.round_trips > 0).all()
    assert set(np.unique(trace.replica[:, 0, -1])) == {0, 1, 2, 3}     # every ladder holds each state once


def test_the_ladder_must_increase():
    with pytest.raises(ValueError):
        run_replica_exchange(quadratic, [2.0, 1.0], torch.zeros(2, 2, 3), warmup=10, draws=1,
                             record=lambda p: {}, generator=torch.Generator())


def test_a_drawn_trajectory_length_is_the_fixed_kernel_of_that_length():
    """With ``shortest_steps`` each trajectory's length is drawn from the run's generator, one for
    all chains, in the closed range; the step is then exactly the fixed kernel of that length."""
    posterior = LocalPosterior(quadratic, 10.0, 1.0, torch.zeros(4, dtype=torch.float64))
    generator = torch.Generator().manual_seed(2)
    start = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    drawn = hmc(posterior, step_size=0.1, leapfrog_steps=8, shortest_steps=4)
    lengths = set()
    for _ in range(60):
        noise = drawn.noise(drawn.init(start, None), generator)
        lengths.add(noise[2])
        fixed = hmc(posterior, step_size=0.1, leapfrog_steps=noise[2])
        together, _ = drawn.step(drawn.init(start, None), None, noise)
        alone, _ = fixed.step(fixed.init(start, None), None, noise)
        torch.testing.assert_close(alone.position, together.position, rtol=0, atol=0)
    assert lengths == {4, 5, 6, 7, 8}
    with pytest.raises(ValueError, match="need 1 ≤ shortest ≤ leapfrog steps"):
        hmc(posterior, step_size=0.1, leapfrog_steps=8, shortest_steps=9)


def test_groups_of_ladders_each_sample_their_own_problem_with_their_own_steps():
    """Two groups of 8 ladders in one run: P = ab learning s = 0.3 around a centre at 0, and a
    stiffer problem, 4·(ab − 0.6)² around a centre at (1, 0.6). Each group's occupancy must match
    its own quadrature (4 SE over its ladders, plus 0.01 for the start and the grid), and the
    stiffer group must tune smaller steps at every rung."""
    rungs, each = 4, 8
    group = torch.arange(rungs * 2 * each) % (2 * each) // each                     # chain → group
    teacher = torch.where(group == 0, 0.3, 0.6).double().unsqueeze(-1)
    stiffness = torch.where(group == 0, 1.0, 8.0).double().unsqueeze(-1)
    centers = torch.tensor([[0.0, 0.0], [1.0, 0.6]], dtype=torch.float64)

    def loss(position, batch=None):
        return 0.5 * stiffness * (position[:, :1] * position[:, 1:] - teacher) ** 2

    def record(position):
        return {"learned": (position[:, 0] * position[:, 1] > teacher[:, 0] / 2).double()}

    nbetas = [8.0, 16.0, 32.0, 64.0]
    generator = torch.Generator().manual_seed(3)
    start = centers.repeat_interleave(each, 0).expand(rungs, -1, -1).clone()
    trace = run_replica_exchange(loss, nbetas, start, center=start.reshape(-1, 2), leapfrog_steps=4, warmup=300,
                                 draws=800, thin=2, record=record, generator=generator, groups=2)
    assert trace.step_size.shape == (rungs, 2) and (trace.step_size[:, 1] < trace.step_size[:, 0]).all()
    grid = np.linspace(-7, 7, 2801)
    a, b = np.meshgrid(grid, grid)
    for index, (s, k, (ca, cb)) in enumerate([(0.3, 1.0, (0.0, 0.0)), (0.6, 8.0, (1.0, 0.6))]):
        per_ladder = trace.records["learned"][:, index * each:(index + 1) * each].mean(-1)   # [R, ladders]
        for rung, nbeta in enumerate(nbetas):
            weight = np.exp(-nbeta * k / 2 * (a * b - s) ** 2 - ((a - ca) ** 2 + (b - cb) ** 2) / 2)
            exact = weight[a * b > s / 2].sum() / weight.sum()
            estimate, error = per_ladder[rung].mean(), per_ladder[rung].std(ddof=1) / math.sqrt(each)
            assert abs(estimate - exact) < 4 * error + 0.01, (index, nbeta, estimate, exact, error)
    with pytest.raises(ValueError, match="equal groups"):
        run_replica_exchange(loss, nbetas, start, warmup=10, draws=1, record=record, generator=generator, groups=3)
