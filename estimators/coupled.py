"""Coupled SGLD pilots: C chains at step ε and C chains at ε/2 driven by the same Brownian path,
so that the difference of their estimates — the discretisation bias the calibration sweep
measures — is estimated with far less noise than from two independent runs.

Two steps of ε/2 with standard normal noises a and b, w' = w − (ε/4)·∇U + √(ε/2)·a, then
with b, and one step of ε with the noise (a + b)/√2, v' = v − (ε/2)·∇U + √(ε/2)·(a + b),
follow the same increment of the Langevin diffusion's Brownian motion: the synchronous coupling
of two Euler–Maruyama discretisations that multilevel Monte Carlo uses (Giles 2008, Oper. Res.
56, §4). Each chain is an exact SGLD chain at its step, so both estimates are those of
independent runs in law; only their difference is less noisy, by as much as the coupled chains
stay together. With minibatches, chain c at ε and chain c at ε/2 see the same rows at the ε
step's time and the fine chain draws fresh rows for its second half step, as a run at ε/2 does.

The coarse chains are rows 0 … C − 1 of one batch of 2C chains and the fine chains rows
C … 2C − 1: one call of the per-chain-step kernel moves both (ε for the coarse rows, ε/2 for
the fine), a second moves the fine rows alone, and every other part of a run
(:func:`~sltlab.estimators.sampling.run_chains`: divergence, recording, L_b(w*)) is as usual.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from sltlab.estimators import diagnostics
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.estimate import run_inputs
from sltlab.estimators.localize import Localization
from sltlab.estimators.posterior import LocalPosterior, Sampler
from sltlab.estimators.sampling import Batches, Trace, run_chains
from sltlab.estimators.sgld import SGLDState, sgld


class PairedBatches(Batches):
    """Minibatches for C coupled pairs: C draws, each given to both chains of its pair."""

    def draw_indices(self, chains: int, generator: torch.Generator) -> Tensor | None:
        half = Batches.draw_indices(self, chains // 2, generator)
        return None if half is None else torch.cat([half, half])


def coupled_sgld(posterior: LocalPosterior, batches: Batches, *, step_size: float, chains: int) -> Sampler:
    """A kernel of 2C chains: rows 0 … C − 1 SGLD at ``step_size`` ε, rows C … 2C − 1 two
    steps of ε/2 per step, coupled (module docstring). ``info["loss"]`` is L_b at the start of
    the step for every row."""
    like = dict(dtype=posterior.center.dtype, device=posterior.center.device)
    both = sgld(posterior, step_size=torch.cat([torch.full((chains,), step_size, **like),
                                                torch.full((chains,), step_size / 2, **like)]))
    fine = sgld(posterior, step_size=step_size / 2)

    def noise(state: SGLDState, generator: torch.Generator):
        shape = (chains, state.position.shape[-1])
        first, second = (torch.randn(shape, generator=generator, dtype=state.position.dtype,
                                     device=state.position.device) for _ in range(2))
        return first, second, batches.draw(chains, generator)

    def step(state: SGLDState, batch, noise):
        first, second, fine_batch = noise
        together, info = both.step(state, batch, torch.cat([(first + second) / math.sqrt(2), first]))
        moved, _ = fine.step(SGLDState(together.position[chains:]), fine_batch, second)
        return SGLDState(torch.cat([together.position[:chains], moved.position])), info

    return Sampler("coupled sgld", both.init, noise, step)


def run_coupled_pilots(loss, data: tuple[Tensor, ...], config: LLCConfig, localization: Localization, *,
                       n: int | None, progress: bool = False) -> Trace:
    """``config.chains`` coupled pairs at ``config.step_size`` and half of it, from the centre of
    ``localization``, for ``config``'s burn-in and draws counted in steps of the larger step; the
    trace's rows are the coarse chains, then the fine."""
    inputs = run_inputs(data, config, n)
    resolved, chains = inputs.resolved, inputs.resolved.chains
    posterior = LocalPosterior(loss, resolved.nbeta, resolved.localization,
                               localization.center.to(device=inputs.device, dtype=inputs.dtype))
    kernel = coupled_sgld(posterior, inputs.batches, step_size=resolved.step_size, chains=chains)
    return run_chains(kernel, posterior, PairedBatches(*inputs.batches), chains=2 * chains, draws=resolved.draws,
                      burnin=resolved.burnin, thin=resolved.thin, generator=inputs.generator, progress=progress)


def paired_difference(trace: Trace, nbeta: float, chains: int) -> tuple[float | None, float | None]:
    """The mean of nβ·(L_b(v) − L_b(w)) over the pairs whose two chains both stayed finite and
    near w* (coarse v, fine w, at the same diffusion time), and its Monte Carlo standard error
    (:func:`sltlab.estimators.diagnostics.mcse_mean`, from the difference series' own ESS);
    (None, None) when no pair or too few draws are left."""
    loss = trace.fields["loss"]
    kept = ~(trace.diverged[:chains] | trace.diverged[chains:])
    if not kept.any() or loss.shape[1] < 4:
        return None, None
    differences = nbeta * (loss[:chains][kept] - loss[chains:][kept])
    standard_error = diagnostics.mcse_mean(differences)
    return float(differences.mean()), float(standard_error) if np.isfinite(standard_error) else None
