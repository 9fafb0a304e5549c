"""Hamiltonian Monte Carlo (Duane, Kennedy, Pendleton & Roweth 1987; Neal 2011) on the
full-batch potential, with one step size per chain.

Each step draws a momentum p ~ N(0, I), runs ``leapfrog_steps`` leapfrog steps of size ε on
H(w, p) = U(w) + ½‖p‖² (Neal 2011, eq. 5.18–5.20) and accepts the end point with probability
min{1, exp(H(w, p) − H(w', p'))}. Exact for the tempered posterior when the batch is the full
data. ε may differ between chains (a tensor [C]): each chain is then its own exact kernel,
which is what a ladder of temperatures needs.

A fixed trajectory can last close to a multiple of a stiff mode's half-period and return it
almost where it began, trajectory after trajectory; drawing each trajectory's number of steps
at random breaks that (Neal 2011, §5.4.2.2; Mackenzie 1989), and every draw is its own exact
kernel, so the mixture is exact too.
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


def hmc(posterior: LocalPosterior, *, step_size: float | Tensor, leapfrog_steps: int,
        shortest_steps: int | None = None) -> Sampler:
    """HMC with step size ε (a positive float, or a tensor [C] of one per chain) and
    ``leapfrog_steps`` per trajectory, or, with ``shortest_steps``, a number drawn uniformly
    from ``shortest_steps`` … ``leapfrog_steps`` for each trajectory (one for all chains). Pass
    the full data as the batch at every step."""
    shortest = leapfrog_steps if shortest_steps is None else shortest_steps
    if not 1 <= shortest <= leapfrog_steps:
        raise ValueError(f"need 1 ≤ shortest ≤ leapfrog steps, got {shortest} and {leapfrog_steps}")
    epsilon = torch.as_tensor(step_size, dtype=torch.float64)
    if not bool(((epsilon > 0) & torch.isfinite(epsilon)).all()):
        raise ValueError("every step size must be a positive number")

    def init(position: Tensor, batch) -> HMCState:
        return HMCState(position, potential(posterior, position, batch, energy=True))

    def noise(state: HMCState, generator: torch.Generator) -> tuple[Tensor, Tensor, int]:
        momentum, uniform = metropolis_noise(state, generator)
        if shortest == leapfrog_steps:
            return momentum, uniform, leapfrog_steps
        return momentum, uniform, int(torch.randint(shortest, leapfrog_steps + 1, (), generator=generator,
                                                    device=generator.device))

    def step(state: HMCState, batch, noise):
        momentum, uniform, steps = noise
        here = state.here
        eps = epsilon.to(state.position).reshape(-1, 1) if epsilon.dim() else float(epsilon)
        position, there = state.position, here
        moving = momentum - 0.5 * eps * here.gradient
        for index in range(steps):
            position = position + eps * moving
            there = potential(posterior, position, batch, energy=True)
            moving = moving - (eps if index < steps - 1 else 0.5 * eps) * there.gradient
        start = here.energy + 0.5 * momentum.square().sum(-1)
        end = there.energy + 0.5 * moving.square().sum(-1)
        log_ratio = torch.nan_to_num(start - end, nan=-math.inf)
        accept = torch.log(uniform) < log_ratio
        kept = Potential(*(torch.where(accept.view(-1, *[1] * (new.dim() - 1)), new, old)
                           for new, old in zip(there, here)))
        position = torch.where(accept.unsqueeze(-1), position, state.position)
        info = {"loss": here.mean_loss, "acceptance": torch.clamp(log_ratio, max=0.0).exp(),
                "unfinite": (~(there.energy < math.inf)).to(log_ratio.dtype)}   # rejected: U at its end NaN or +inf
        return HMCState(position, kept), info

    return Sampler("hmc", init, noise, step)
