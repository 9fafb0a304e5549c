"""RMSProp-SGLD: the preconditioner adapts per chain for a set number of steps, then holds."""

import torch

from sltlab.estimators.posterior import LocalPosterior
from sltlab.estimators.sampling import Batches, run_chains
from sltlab.estimators.rmsprop_sgld import rmsprop_preconditioner, rmsprop_sgld


def quadratic(position, batch):
    return 0.5 * (torch.tensor([100.0, 1.0], dtype=position.dtype) * position.square()).sum(-1, keepdim=True)


def test_preconditioner_adapts_then_holds_and_is_floored_at_gamma():
    posterior = LocalPosterior(quadratic, 10.0, 2.0, torch.zeros(2, dtype=torch.float64))
    sampler = rmsprop_sgld(posterior, step_size=1e-2, adapt_steps=30)
    first = run_chains(sampler, posterior, Batches((), 1), chains=3, draws=1, burnin=29,
                       generator=torch.Generator().manual_seed(0))
    state = first.final_state
    assert (state.count == 30).all()
    later = run_chains(sampler, posterior, Batches((), 1), chains=3, draws=20,
                       generator=torch.Generator().manual_seed(1), initial_state=state)
    assert torch.equal(later.final_state.square_average, state.square_average)
    scale = rmsprop_preconditioner(state, posterior.localization)
    assert bool((scale <= 1 / 2.0**0.5).all())                       # V̂ floored at γ = 2
    assert bool((scale[:, 0] < scale[:, 1]).all())                   # the stiff coordinate gets the smaller G


def test_a_stationary_start_does_not_throw_the_chains_out():
    """At w* the gradient vanishes; without the floor G = 1/α sent the chains to ~1e12."""
    posterior = LocalPosterior(quadratic, 10.0, 2.0, torch.zeros(2, dtype=torch.float64))
    trace = run_chains(rmsprop_sgld(posterior, step_size=1e-2), posterior, Batches((), 1), chains=4, draws=50,
                       generator=torch.Generator().manual_seed(0))
    assert not trace.diverged.any() and (10.0 * trace.fields["loss"] < 100).all()
