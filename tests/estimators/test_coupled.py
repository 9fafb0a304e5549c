"""Coupled SGLD pilots: each half of a coupled run is an exact SGLD run at its own step on its
own noise, the pairs share minibatches, and the paired difference of a quadratic meets SGLD's
exact stationary difference with a standard error far below that of independent pilots."""

import math

import torch

from sltlab.estimators.batched import chains_of
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.coupled import PairedBatches, coupled_sgld, paired_difference, run_coupled_pilots
from sltlab.estimators.llc import llc_from_trace
from sltlab.estimators.localize import at_true_parameter
from sltlab.estimators.posterior import LocalPosterior
from sltlab.estimators.sampling import Batches, run_chains
from sltlab.estimators.sgld import sgld

CURVATURES = (1.0, 2.0, 0.5)
GAMMA, NBETA = 3.0, 500.0


def quadratic(position, batch):
    """½·Σ h_i w_i², one 'sample' per chain (a population potential)."""
    return 0.5 * (torch.tensor(CURVATURES, dtype=position.dtype) * position.square()).sum(-1, keepdim=True)


def sgld_stationary_llc(step_size: float) -> float:
    """nβ·E[K] under SGLD's stationary law at step ε on U = nβ·K + γ‖w‖²/2: ½·Σ nβh/(k·(1 − εk/4)),
    k = nβh + γ (each coordinate is an AR(1) with that variance)."""
    return sum(0.5 * NBETA * h / ((NBETA * h + GAMMA) * (1 - step_size * (NBETA * h + GAMMA) / 4)) for h in CURVATURES)


def test_each_half_of_a_coupled_run_is_sgld_at_its_step_on_its_own_noise():
    chains, steps, step_size = 3, 40, 0.02
    center = torch.zeros(3, dtype=torch.float64)
    posterior = LocalPosterior(quadratic, 10.0, GAMMA, center)
    generator = torch.Generator().manual_seed(0)
    coupled = coupled_sgld(posterior, Batches((), 1), step_size=step_size, chains=chains)
    noises = [coupled.noise(coupled.init(torch.zeros(2 * chains, 3, dtype=torch.float64)), generator)
              for _ in range(steps)]
    replayed = iter(noises)
    together = run_chains(coupled._replace(noise=lambda state, generator: next(replayed)), posterior,
                          PairedBatches((), 1), chains=2 * chains, draws=steps, generator=generator)
    coarse_noise = iter([(first + second) / math.sqrt(2) for first, second, _ in noises])
    coarse = run_chains(sgld(posterior, step_size=step_size)._replace(noise=lambda state, g: next(coarse_noise)),
                        posterior, Batches((), 1), chains=chains, draws=steps, generator=generator)
    fine_noise = iter([noise for first, second, _ in noises for noise in (first, second)])
    fine = run_chains(sgld(posterior, step_size=step_size / 2)._replace(noise=lambda state, g: next(fine_noise)),
                      posterior, Batches((), 1), chains=chains, draws=2 * steps, generator=generator)
    torch.testing.assert_close(torch.as_tensor(together.fields["loss"][:chains]),
                               torch.as_tensor(coarse.fields["loss"]), rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(torch.as_tensor(together.fields["loss"][chains:]),
                               torch.as_tensor(fine.fields["loss"][:, ::2]), rtol=1e-12, atol=1e-15)


def test_both_chains_of_a_pair_see_the_same_minibatch():
    rows = torch.arange(100.0).unsqueeze(-1)
    (drawn,) = PairedBatches((rows,), 5).draw(6, torch.Generator().manual_seed(0))
    assert drawn.shape == (6, 5, 1) and torch.equal(drawn[:3], drawn[3:]) and not torch.equal(drawn[0], drawn[1])


def test_the_paired_difference_meets_sglds_exact_difference_far_below_independent_noise():
    step_size = 0.4 / (NBETA * max(CURVATURES) + GAMMA)
    config = LLCConfig(sampler="sgld", chains=16, draws=3000, burnin=300, nbeta=NBETA, localization=GAMMA,
                       step_size=step_size, dtype="float64", seed=4)
    center = at_true_parameter(quadratic, torch.zeros(3, dtype=torch.float64), None)
    trace = run_coupled_pilots(quadratic, (), config, center, n=10_000)
    difference, standard_error = paired_difference(trace, NBETA, config.chains)
    exact = sgld_stationary_llc(step_size) - sgld_stationary_llc(step_size / 2)
    assert abs(difference - exact) <= 4 * standard_error, (difference, standard_error, exact)
    coarse, fine = (llc_from_trace(chains_of(trace, rows, 2), NBETA)
                    for rows in (slice(0, 16), slice(16, 32)))
    assert standard_error < 0.2 * math.hypot(coarse.standard_error, fine.standard_error)
    assert abs(fine.mean - sgld_stationary_llc(step_size / 2)) <= 4 * fine.standard_error
