"""Metropolis-adjusted Langevin algorithm (Roberts & Tweedie 1996) on the full-batch potential.

Proposal w' = w − (ε/2)∇U(w) + √ε·ξ; accepted with probability
min{1, exp(U(w) − U(w') − [‖w − w' + (ε/2)∇U(w')‖² − ‖w' − w + (ε/2)∇U(w)‖²]/(2ε))}.
Exact for the tempered posterior (no discretisation bias) when the batch is the full data, and
its acceptance rate is a step-size diagnostic for the stochastic-gradient samplers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from sltlab.estimators.posterior import LocalPosterior, Potential, Sampler, check_step_size, potential


class MALAState(NamedTuple):
    position: Tensor
    here: Potential   # U, ∇U and L_n at position, cached


def mala(posterior: LocalPosterior, *, step_size: float) -> Sampler:
    """MALA with step size ε. Pass the full data as the batch at every step."""
    step_size = check_step_size(step_size)
    noise_scale = math.sqrt(step_size)

    def init(position: Tensor, batch) -> MALAState:
        return MALAState(position, potential(posterior, position, batch, energy=True))

    def noise(state: MALAState, generator: torch.Generator):
        position = state.position
        gaussian = torch.randn(position.shape, generator=generator, dtype=position.dtype, device=position.device)
        uniform = torch.rand(position.shape[:1], generator=generator, dtype=position.dtype, device=position.device)
        return gaussian, uniform

    def step(state: MALAState, batch, noise):
        gaussian, uniform = noise
        here = state.here
        proposal = state.position - 0.5 * step_size * here.gradient + noise_scale * gaussian
        there = potential(posterior, proposal, batch, energy=True)
        forward = (proposal - state.position + 0.5 * step_size * here.gradient).square().sum(-1)
        backward = (state.position - proposal + 0.5 * step_size * there.gradient).square().sum(-1)
        log_ratio = here.energy - there.energy - (backward - forward) / (2 * step_size)
        log_ratio = torch.nan_to_num(log_ratio, nan=-math.inf)
        accept = torch.log(uniform) < log_ratio
        position = torch.where(accept.unsqueeze(-1), proposal, state.position)
        kept = Potential(*(torch.where(accept.view(-1, *[1] * (new.dim() - 1)), new, old)
                           for new, old in zip(there, here)))
        info = {"loss": here.mean_loss, "acceptance": torch.clamp(log_ratio, max=0.0).exp()}
        return MALAState(position, kept), info

    return Sampler("mala", init, noise, step)
