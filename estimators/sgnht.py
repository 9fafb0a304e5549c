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


def sgnht_concern() -> str:
    """What every SGNHT estimate must carry: its error bar is not to be trusted at the run lengths
    measured. On sums of squares (exact t·E[K] = d·t/(2t + γ) at nβ = 1086) with the default run
    (4 chains × 1,000 draws after 250 burn-in steps), six seeds each gave mean z-scores of +2.2,
    +2.0, +2.7, +3.7 and +1.7 at d = 1, 2, 3, 6 and 20 (+16 % to +7 %), with R-hat passing; with
    3,000–15,000 burn-in steps the mean error fell to within 1.3 %, but single runs still read z
    of +14.8 and −7.9: the thermostat ξ (at equilibrium N(A, 1/d), Ding et al. 2014, §3) wanders
    more slowly than the draws' ESS sees. A dimension threshold, first tried, did not hold on
    d = 3, 6 and 20. MALA's and SGLD's z-scores on the same potentials stayed within their SE."""
    return ("SGNHT's standard error is not to be trusted: on quadratic potentials of 1 to 20 parameters its z-scores "
            "against the exact value reached +14.8 with an R-hat that passes, and the default burn-in left λ̂ 7–16 % "
            "high: use mala, slice or sgld")
