"""Stochastic gradient Langevin dynamics (Welling & Teh 2011, eq. 4):
Δw = −(ε/2)·∇U(w) + N(0, ε·I), with U = nβ·L_b + (γ/2)‖w − w*‖² evaluated on a minibatch
(the localised posterior of Lau, Furman, Wang, Murfet & Wei 2023, eq. 7). Its step-size rule
is :func:`sltlab.estimators.step_size.langevin_step_size`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from sltlab.estimators.posterior import (LocalPosterior, Sampler, check_step_size, check_step_sizes, gaussian_noise,
                                        potential)


class SGLDState(NamedTuple):
    position: Tensor


def sgld(posterior: LocalPosterior, *, step_size: float | Tensor, mask: Tensor | None = None) -> Sampler:
    """Plain SGLD with step size ε: one for every chain, or one per chain, [C] (chains of several
    settings as one batch). ``mask`` [C, d], 1 where a chain moves and 0 where it stays, confines
    each chain to its coordinates: the drift and the noise of the others are zero, so a chain
    started at w* samples the posterior with those weights frozen there (several weight
    restrictions as one batch)."""
    if mask is not None and not isinstance(step_size, Tensor):
        step_size = torch.full((len(mask),), float(step_size), dtype=mask.dtype, device=mask.device)
    per_chain = isinstance(step_size, Tensor)
    if per_chain:
        step_size = check_step_sizes(step_size)
        drift, spread = (-0.5 * step_size).unsqueeze(-1), step_size.sqrt().unsqueeze(-1)
        if mask is not None:
            drift, spread = drift * mask, spread * mask
    else:
        step_size = check_step_size(step_size)
        noise_scale = math.sqrt(step_size)

    def init(position: Tensor, batch=None) -> SGLDState:
        if per_chain and len(position) != len(step_size):
            raise ValueError(f"{len(step_size)} per-chain step sizes for {len(position)} chains")
        return SGLDState(position)

    def step(state: SGLDState, batch, noise: Tensor):
        here = potential(posterior, state.position, batch)
        # The move, drift and noise, is made first and added to the position once: added alone, a drift
        # below half the spacing of the position's numbers rounds away (float32 near w = 10⁴, spacing
        # 10⁻³: λ̂ read 3.2 for 1.0). Written over the gradient, which the step owns: one fewer tensor.
        if per_chain:
            position = here.gradient.mul_(drift).addcmul_(noise, spread).add_(state.position)
        else:
            position = here.gradient.mul_(-0.5 * step_size).add_(noise, alpha=noise_scale).add_(state.position)
        return SGLDState(position), {"loss": here.mean_loss}

    return Sampler("sgld", init, gaussian_noise, step)
