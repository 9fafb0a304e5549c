"""Hamiltonian Monte Carlo (Duane, Kennedy, Pendleton & Roweth 1987; Neal 2011) on the
full-batch potential, with one step size per chain.

Each step draws a momentum p ~ N(0, I), runs ``leapfrog_steps`` leapfrog steps of size ε on
H(w, p) = U(w) + ½‖p‖² (Neal 2011, eq. 5.18–5.20) and accepts the end point with probability
min{1, exp(H(w, p) − H(w', p'))}. Exact for the tempered posterior when the batch is the full
data. ε may differ between chains (a tensor [C]): each chain is then its own exact kernel,
which is what a ladder of temperatures needs.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from sltlab.estimators.posterior import LocalPosterior, Potential, Sampler, metropolis_noise, potential


class HMCState(NamedTuple):
    position: Tensor
    here: Potential   # U, ∇U and L at position, cached


def hmc(posterior: LocalPosterior, *, step_size: float | Tensor, leapfrog_steps: int) -> Sampler:
    """HMC with step size ε (a positive float, or a tensor [C] of one per chain) and a fixed
    number of leapfrog steps. Pass the full data as the batch at every step."""
    if leapfrog_steps < 1:
        raise ValueError(f"need at least one leapfrog step, got {leapfrog_steps}")
    epsilon = torch.as_tensor(step_size, dtype=torch.float64)
    if not bool(((epsilon > 0) & torch.isfinite(epsilon)).all()):
        raise ValueError("every step size must be a positive number")

    def init(position: Tensor, batch) -> HMCState:
        return HMCState(position, potential(posterior, position, batch, energy=True))

    def step(state: HMCState, batch, noise):
        momentum, uniform = noise
        here = state.here
        eps = epsilon.to(state.position).reshape(-1, 1) if epsilon.dim() else float(epsilon)
        position, there = state.position, here
        moving = momentum - 0.5 * eps * here.gradient
        for index in range(leapfrog_steps):
            position = position + eps * moving
            there = potential(posterior, position, batch, energy=True)
            moving = moving - (eps if index < leapfrog_steps - 1 else 0.5 * eps) * there.gradient
        start = here.energy + 0.5 * momentum.square().sum(-1)
        end = there.energy + 0.5 * moving.square().sum(-1)
        log_ratio = torch.nan_to_num(start - end, nan=-math.inf)
        accept = torch.log(uniform) < log_ratio
        kept = Potential(*(torch.where(accept.view(-1, *[1] * (new.dim() - 1)), new, old)
                           for new, old in zip(there, here)))
        position = torch.where(accept.unsqueeze(-1), position, state.position)
        info = {"loss": here.mean_loss, "acceptance": torch.clamp(log_ratio, max=0.0).exp()}
        return HMCState(position, kept), info

    return Sampler("hmc", init, metropolis_noise, step)
