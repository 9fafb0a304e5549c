"""Sampler kernels: noise 0 is gradient descent, chains are independent, seeds reproduce."""

import math

import pytest
import torch
from hypothesis import given, strategies as st

from sltlab.estimators.mala import mala
from sltlab.estimators.posterior import LocalPosterior, potential
from sltlab.estimators.sampling import Batches, run_chains
from sltlab.estimators.rmsprop_sgld import rmsprop_sgld
from sltlab.estimators.sgld import sgld
from sltlab.estimators.sgnht import sgnht
from sltlab.models.deep_linear import DeepLinearNetwork

KERNELS = {"sgld": sgld, "rmsprop_sgld": rmsprop_sgld, "sgnht": sgnht, "mala": mala}


def problem(chains=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    network = DeepLinearNetwork([3, 2, 2])
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = torch.randn(40, 2, generator=g, dtype=torch.float64)
    center = 0.5 * torch.randn(network.dim, generator=g, dtype=torch.float64)
    posterior = LocalPosterior(network, 30.0, 2.0, center)
    start = center + 0.1 * torch.randn(chains, network.dim, generator=g, dtype=torch.float64)
    return posterior, Batches((x, y), 8), start, g


def test_sgld_without_noise_is_gradient_descent():
    posterior, batches, start, g = problem()
    batch = batches.draw(4, g)
    sampler = sgld(posterior, step_size=1e-3)
    state, info = sampler.step(sampler.init(start), batch, torch.zeros_like(start))
    leaf = start.clone().requires_grad_(True)
    energy = (posterior.nbeta * posterior.loss(leaf, batch).mean(-1)
              + 0.5 * posterior.localization * (leaf - posterior.center).square().sum(-1))
    (gradient,) = torch.autograd.grad(energy.sum(), leaf)
    torch.testing.assert_close(state.position, start - 0.5e-3 * gradient)
    torch.testing.assert_close(info["loss"], posterior.loss(start, batch).mean(-1))


def test_potential_gradient_matches_finite_differences():
    posterior, batches, start, g = problem(chains=1)
    batch = batches.draw(1, g)
    here = potential(posterior, start, batch, energy=True)
    direction = torch.randn(start.shape, generator=g, dtype=torch.float64)
    h = 1e-6
    up = potential(posterior, start + h * direction, batch, energy=True).energy
    down = potential(posterior, start - h * direction, batch, energy=True).energy
    assert math.isclose(float((up - down) / (2 * h)), float((here.gradient * direction).sum()), rel_tol=1e-6)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_same_seed_gives_identical_chains_and_shapes_are_kept(name):
    traces = []
    for _ in range(2):
        posterior, batches, _, _ = problem()
        sampler = KERNELS[name](posterior, step_size=1e-3)
        traces.append(run_chains(sampler, posterior, batches, chains=3, draws=20, burnin=5,
                                 generator=torch.Generator().manual_seed(7)))
    for field, values in traces[0].fields.items():
        assert values.shape == (3, 20)
        assert (values == traces[1].fields[field]).all()


@pytest.mark.parametrize("name", sorted(KERNELS))
@given(chains=st.integers(1, 5), seed=st.integers(0, 2**16), steps=st.integers(1, 4))
def test_batched_chains_equal_single_chains_on_the_same_noise(name, chains, seed, steps):
    posterior, batches, start, g = problem(chains, seed)
    sampler = KERNELS[name](posterior, step_size=2e-3)
    batch_source = batches.full() if name == "mala" else batches.draw(chains, g)
    together = sampler.init(start[:chains], batches.full())
    alone = [sampler.init(start[c:c + 1], batches.full()) for c in range(chains)]
    for _ in range(steps):
        noise = sampler.noise(together, g)
        together, _ = sampler.step(together, batch_source, noise)
        for c in range(chains):
            one_batch = batch_source if name == "mala" else tuple(t[c:c + 1] for t in batch_source)
            one_noise = tuple(n[c:c + 1] for n in noise) if isinstance(noise, tuple) else noise[c:c + 1]
            alone[c], _ = sampler.step(alone[c], one_batch, one_noise)
    torch.testing.assert_close(together.position, torch.cat([s.position for s in alone]), rtol=1e-12, atol=1e-12)


def test_mala_accepts_everything_on_a_tiny_step_and_reports_acceptance():
    posterior, batches, start, g = problem()
    sampler = mala(posterior, step_size=1e-9)
    state = sampler.init(start, batches.full())
    _, info = sampler.step(state, batches.full(), sampler.noise(state, g))
    assert info["acceptance"].shape == (4,)
    assert bool((info["acceptance"] > 0.999).all())


def test_mala_is_exact_on_a_gaussian():
    """U = nβ·½‖w‖² + (γ/2)‖w‖²: E[nβ·½‖w‖²] = nβ·d/(2(nβ + γ)) exactly, at any step size."""
    square = lambda position, batch: 0.5 * position.square().sum(-1, keepdim=True)
    posterior = LocalPosterior(square, 10.0, 1.0, torch.zeros(3, dtype=torch.float64))
    sampler = mala(posterior, step_size=0.15)   # εk = 1.65: unadjusted Langevin would be 70 % off
    trace = run_chains(sampler, posterior, Batches((), 1), chains=16, draws=4000, burnin=200,
                       generator=torch.Generator().manual_seed(0))
    value = 10.0 * trace.fields["loss"]
    exact = 10.0 * 3 / (2 * 11.0)
    standard_error = value.mean(1).std(ddof=1) / math.sqrt(16)
    assert abs(value.mean() - exact) < 4 * standard_error


@pytest.mark.parametrize("call", [
    lambda p: sgld(p, step_size=0.0), lambda p: sgld(p, step_size=float("nan")),
    lambda p: rmsprop_sgld(p, step_size=1e-3, decay=1.0), lambda p: sgnht(p, step_size=1e-3, diffusion=0.0),
    lambda p: mala(p, step_size=-1.0),
])
def test_bad_hyperparameters_are_refused(call):
    with pytest.raises(ValueError):
        call(problem()[0])


def test_potential_takes_a_closed_form_gradient_when_the_loss_offers_one():
    class ClosedFormOnly:
        """L(w) = ½‖w‖² per chain, offered only in closed form: calling it would fail."""

        def __call__(self, position, batch=None):
            raise AssertionError("the posterior should not call autograd's path")

        def mean_loss_and_gradient(self, position, batch=None):
            return 0.5 * position.square().sum(-1), position.clone()

    center = torch.tensor([1.0, -2.0], dtype=torch.float64)
    position = torch.tensor([[0.5, 3.0], [-1.0, 0.0]], dtype=torch.float64)
    here = potential(LocalPosterior(ClosedFormOnly(), 10.0, 2.0, center), position, None, energy=True)
    torch.testing.assert_close(here.gradient, 10.0 * position + 2.0 * (position - center))
    torch.testing.assert_close(here.mean_loss, 0.5 * position.square().sum(-1))
    torch.testing.assert_close(here.energy, 10.0 * here.mean_loss + (position - center).square().sum(-1))
