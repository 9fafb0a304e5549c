"""Per-chain centres: a posterior whose centre is [C, d] runs C localised posteriors as one
batch. Each chain must see only its own centre, so a batched step is the steps of its slices,
and equal centres give the trace of one shared centre."""

import numpy as np
import pytest
import torch

from sltlab.estimators.hmc import hmc
from sltlab.estimators.mala import mala
from sltlab.estimators.posterior import LocalPosterior, chain_centers
from sltlab.estimators.rmsprop_sgld import rmsprop_sgld
from sltlab.estimators.sampling import Batches, run_chains
from sltlab.estimators.sgld import sgld
from sltlab.estimators.sgnht import sgnht
from sltlab.estimators.slice import slice_sampler
from sltlab.models.deep_linear import DeepLinearNetwork
from sltlab.models.deep_linear_losses import FullDataLoss

CENTRES, CHAINS = 3, 2


def _problem():
    g = torch.Generator().manual_seed(5)
    network = DeepLinearNetwork([3, 4, 2])
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = torch.randn(40, 2, generator=g, dtype=torch.float64)
    centres = torch.randn(CENTRES, network.dim, generator=g, dtype=torch.float64) / 2
    return network, (x, y), centres, g


KERNELS = {   # name: (kernel, options, minibatches of 8 rows?)
    "sgld": (sgld, dict(step_size=1e-3), True),
    "rmsprop_sgld": (rmsprop_sgld, dict(step_size=1e-2, adapt_steps=5), True),
    "sgnht": (sgnht, dict(step_size=1e-2), True),
    "mala": (mala, dict(step_size=3e-3), False),
    "hmc": (hmc, dict(step_size=3e-3, leapfrog_steps=3), False),
    "slice": (slice_sampler, dict(width=0.5), False),
}


def _rows(value, rows: slice):
    """The chains ``rows`` of a tensor, or of every tensor of a (nested) tuple; a number (HMC's
    trajectory length, one for all chains) as it is."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, torch.Tensor):
        return value[rows]
    return type(value)(*(_rows(part, rows) for part in value)) if hasattr(value, "_fields") else \
        tuple(_rows(part, rows) for part in value)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_a_step_with_one_centre_per_chain_is_the_steps_of_its_slices(name):
    """Three centres × two chains in one batch against three runs of two chains at one centre,
    on the same noise and minibatches: float64, so any leak between chains would show far above
    rounding (10⁻¹² relative)."""
    network, data, centres, g = _problem()
    kernel, options, minibatch = KERNELS[name]
    loss = network if minibatch else FullDataLoss(network, *data)
    batches = Batches(data, 8) if minibatch else Batches((), 1)
    batch = batches.draw(CENTRES * CHAINS, g)
    per_chain = centres.repeat_interleave(CHAINS, 0)
    position = per_chain + 0.05 * torch.randn(per_chain.shape, generator=g, dtype=torch.float64)
    batched = kernel(LocalPosterior(loss, 30.0, 2.0, per_chain), **options)
    state = batched.init(position, batch)
    for _ in range(3):   # steps on from the first, so that cached fields (MALA's, HMC's) are exercised too
        noise = batched.noise(state, g)
        together, info = batched.step(state, batch, noise)
        for k in range(CENTRES):
            rows = slice(k * CHAINS, (k + 1) * CHAINS)
            alone = kernel(LocalPosterior(loss, 30.0, 2.0, centres[k]), **options)
            part_batch = _rows(batch, rows) if minibatch else batch
            single, single_info = alone.step(_rows(state, rows), part_batch, _rows(noise, rows))
            for got, want in zip(_rows(together, rows), single):
                torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
            for field, values in single_info.items():
                torch.testing.assert_close(info[field][rows], values, rtol=1e-12, atol=1e-12)
        state = together


@pytest.mark.parametrize("case", ["sgld_minibatch", "mala_full", "sgld_diverging"])
def test_equal_per_chain_centres_give_the_shared_centre_trace(case):
    """The same seed, the centre given once ([d]) or repeated for every chain ([C, d]): the same
    trace, the same divergences and restarts, the same final positions, bit for bit."""
    network, data, centres, _ = _problem()
    kernel, options, loss, batches = {
        "sgld_minibatch": (sgld, dict(step_size=1e-3), network, Batches(data, 8)),
        "mala_full": (mala, dict(step_size=3e-3), FullDataLoss(network, *data), Batches((), 1)),
        "sgld_diverging": (sgld, dict(step_size=0.066), FullDataLoss(network, *data), Batches((), 1)),
    }[case]
    traces = []
    for centre in (centres[0], centres[0].expand(4, -1).clone()):
        posterior = LocalPosterior(loss, 30.0, 2.0, centre)
        traces.append(run_chains(kernel(posterior, **options), posterior, batches, chains=4, draws=15, burnin=10,
                                 thin=2, generator=torch.Generator().manual_seed(11)))
    shared, per_chain = traces
    assert sorted(shared.fields) == sorted(per_chain.fields)
    for field in shared.fields:
        np.testing.assert_array_equal(per_chain.fields[field], shared.fields[field])
    assert per_chain.divergence_step.tolist() == shared.divergence_step.tolist()
    np.testing.assert_array_equal(per_chain.final_state.position.numpy(), shared.final_state.position.numpy())
    if case == "sgld_diverging":
        assert shared.diverged.any()


def test_a_diverged_chain_restarts_at_its_own_centre():
    network, data, centres, _ = _problem()
    per_chain = centres.repeat_interleave(CHAINS, 0)
    posterior = LocalPosterior(FullDataLoss(network, *data), 30.0, 2.0, per_chain)
    trace = run_chains(sgld(posterior, step_size=0.066), posterior, Batches((), 1), chains=len(per_chain), draws=1,
                       burnin=11, generator=torch.Generator().manual_seed(11))
    restarted = torch.as_tensor(trace.divergence_step == 11)   # diverged at the last step: back at its centre
    assert restarted.any()
    torch.testing.assert_close(trace.final_state.position[restarted], per_chain[restarted], rtol=0, atol=0)


def test_a_centre_that_fits_no_chain_count_is_a_one_line_error():
    with pytest.raises(ValueError, match="neither") as error:
        chain_centers(torch.zeros(3, 5), 4)
    assert "\n" not in str(error.value)
