"""Stochastic gradient Nosé–Hoover thermostat (Ding, Fang, Babbush, Chen, Skeel & Neven 2014,
Alg. 2): SGLD with momentum p and a per-chain thermostat ξ that absorbs minibatch noise.

    p ← p − ξ·p·h − ∇U(w)·h + √(2A·h)·N(0, I)
    w ← w + p·h
    ξ ← ξ + (pᵀp/d − 1)·h

with U = nβ·L_b + (γ/2)‖w − w*‖², step size h and diffusion A (ξ starts at A, p at 0).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.posterior import LocalPosterior, Sampler, check_step_size, gaussian_noise, potential
from sltlab.estimators.sampling import Batches
from sltlab.estimators.step_size import langevin_step_size


class SGNHTState(NamedTuple):
    position: Tensor
    momentum: Tensor     # p, [C, d]
    thermostat: Tensor   # ξ, [C]


def sgnht(posterior: LocalPosterior, *, step_size: float, diffusion: float = 1.0) -> Sampler:
    """SGNHT with step size h and diffusion A."""
    step_size = check_step_size(step_size)
    if not diffusion > 0:
        raise ValueError(f"diffusion must be positive, got {diffusion}")
    noise_scale = math.sqrt(2 * diffusion * step_size)

    def init(position: Tensor, batch=None) -> SGNHTState:
        return SGNHTState(position, torch.zeros_like(position),
                          torch.full(position.shape[:1], diffusion, dtype=position.dtype, device=position.device))

    def step(state: SGNHTState, batch, noise: Tensor):
        here = potential(posterior, state.position, batch)
        momentum = (state.momentum - step_size * state.thermostat.unsqueeze(-1) * state.momentum
                    - step_size * here.gradient + noise_scale * noise)
        position = state.position + step_size * momentum
        thermostat = state.thermostat + step_size * (momentum.square().mean(-1) - 1)
        return SGNHTState(position, momentum, thermostat), {"loss": here.mean_loss}

    return Sampler("sgnht", init, gaussian_noise, step)


def sgnht_step_size(posterior: LocalPosterior, batches: Batches, config: LLCConfig,
                    generator: torch.Generator) -> tuple[float, str]:
    """SGNHT moves √ε per step where SGLD moves ε (w += h·p with p ~ N(0, 1) at equilibrium),
    so its h is the square root of the Langevin rule's ε."""
    langevin, rule = langevin_step_size(posterior, batches, generator)
    return math.sqrt(langevin), rule + ", square-rooted for SGNHT"


SMALL_DIM = 2   # at most this many parameters: the concern below


def sgnht_concern(dim: int) -> str | None:
    """A sentence when the model has too few parameters for SGNHT's error bar to be trusted. Its
    thermostat ξ is at equilibrium N(A, 1/d) (Ding et al. 2014, §3): in one or two dimensions it
    wanders widely and slowly, and the chains' temperature with it, more slowly than the ESS of
    the draws sees. On K = w1² at nβ = 1086 (exact t·E[K] = 0.4998) the default run (4 chains ×
    1,000 draws after 250 burn-in steps) read 0.630 ± 0.028 with R-hat 1.03 and no other warning;
    over six seeds z averaged +2.2, and with 1,000 to 4,000 burn-in steps the six z-scores still
    spread from −3.4 to +2.4 (MALA's and SGLD's stayed within their standard errors)."""
    if dim > SMALL_DIM:
        return None
    return (f"SGNHT with d = {dim}: its thermostat fluctuates by 1/√d about A, more slowly than the ESS sees, so "
            "λ̂ ± SE is not to be trusted (on K = w1² it read 26 % high with an R-hat that passes): use mala or slice")
