"""Stochastic gradient Langevin dynamics, plain and RMSProp-preconditioned.

SGLD (Welling & Teh 2011; THEORY.md §4): Δw = −(ε/2)·∇U(w) + N(0, ε·I), with
U = nβ·L_b + (γ/2)‖w − w*‖² evaluated on a minibatch.
RMSProp-SGLD (pSGLD, Li, Chen, Carlson & Carin 2016, eqs. 4–5): drift and noise scaled by
G = 1/(√V̂ + α), V the running mean of squared gradients of U with bias correction
V̂ = V/(1 − ρ^t) as in Adam; the Γ(θ) correction term is dropped, as in that paper's Alg. 1.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from estimators.posterior import LocalPosterior, Sampler, check_step_size, gaussian_noise, potential


class SGLDState(NamedTuple):
    position: Tensor


class RMSPropState(NamedTuple):
    position: Tensor
    square_average: Tensor   # V, [C, d]
    count: Tensor            # steps taken, [C]


def sgld(posterior: LocalPosterior, *, step_size: float) -> Sampler:
    """Plain SGLD with step size ε."""
    step_size = check_step_size(step_size)
    noise_scale = math.sqrt(step_size)

    def init(position: Tensor, batch=None) -> SGLDState:
        return SGLDState(position)

    def step(state: SGLDState, batch, noise: Tensor):
        here = potential(posterior, state.position, batch)
        position = torch.add(state.position, here.gradient, alpha=-0.5 * step_size).add_(noise, alpha=noise_scale)
        return SGLDState(position), {"loss": here.mean_loss}

    return Sampler("sgld", init, gaussian_noise, step)


def rmsprop_sgld(posterior: LocalPosterior, *, step_size: float, decay: float = 0.99,
                 epsilon: float = 1e-5) -> Sampler:
    """RMSProp-preconditioned SGLD; ``decay`` is ρ and ``epsilon`` the damping α."""
    step_size = check_step_size(step_size)
    if not 0 < decay < 1 or not epsilon > 0:
        raise ValueError(f"need 0 < decay < 1 and epsilon > 0, got {decay} and {epsilon}")

    def init(position: Tensor, batch=None) -> RMSPropState:
        zeros = torch.zeros_like(position)
        return RMSPropState(position, zeros, zeros[:, 0].clone())

    def step(state: RMSPropState, batch, noise: Tensor):
        here = potential(posterior, state.position, batch)
        square_average = decay * state.square_average + (1 - decay) * here.gradient.square()
        count = state.count + 1
        corrected = square_average / (1 - decay ** count).unsqueeze(-1)
        scale = 1.0 / (corrected.sqrt() + epsilon)
        position = (state.position - 0.5 * step_size * scale * here.gradient
                    + (step_size * scale).sqrt() * noise)
        return RMSPropState(position, square_average, count), {"loss": here.mean_loss}

    return Sampler("rmsprop_sgld", init, gaussian_noise, step)
