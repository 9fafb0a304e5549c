"""Stochastic gradient Langevin dynamics, plain and RMSProp-preconditioned.

SGLD (Welling & Teh 2011; THEORY.md §4): Δw = −(ε/2)·∇U(w) + N(0, ε·I), with
U = nβ·L_b + (γ/2)‖w − w*‖² evaluated on a minibatch.
RMSProp-SGLD (pSGLD, Li, Chen, Carlson & Carin 2016, eqs. 4–5): drift and noise scaled by
G = 1/(√V̂ + α), V the running mean of squared gradients of U with bias correction
V̂ = V/(1 − ρ^t) as in Adam; the Γ(θ) correction term is dropped, as in that paper's Alg. 1.
V̂ is floored at γ, the curvature the localisation alone gives every coordinate (at
stationarity E[(∂U)²] = E[∂²U] ≥ γ): chains start at a stationary centre where the first
gradients vanish, and an unfloored G = 1/α threw them out (estimates near 10¹² measured).
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
                 epsilon: float = 1e-5, adapt_steps: int | None = None) -> Sampler:
    """RMSProp-preconditioned SGLD; ``decay`` is ρ and ``epsilon`` the damping α.

    With ``adapt_steps`` = k the running mean V is updated for the first k steps only (set it
    to the burn-in) and then held: a constant preconditioner leaves the target invariant with
    no Γ term, so only the discretisation bias remains.
    """
    step_size = check_step_size(step_size)
    if not 0 < decay < 1 or not epsilon > 0:
        raise ValueError(f"need 0 < decay < 1 and epsilon > 0, got {decay} and {epsilon}")
    if adapt_steps is not None and adapt_steps < 1:
        raise ValueError(f"adapt_steps must be at least 1, got {adapt_steps}")

    def init(position: Tensor, batch=None) -> RMSPropState:
        zeros = torch.zeros_like(position)
        return RMSPropState(position, zeros, zeros[:, 0].clone())

    def step(state: RMSPropState, batch, noise: Tensor):
        here = potential(posterior, state.position, batch)
        square_average, count = state.square_average, state.count
        adapting = torch.ones_like(count, dtype=torch.bool) if adapt_steps is None else count < adapt_steps
        if bool(adapting.any()):
            updated = decay * square_average + (1 - decay) * here.gradient.square()
            square_average = torch.where(adapting.unsqueeze(-1), updated, square_average)
            count = count + adapting.to(count.dtype)
        scale = rmsprop_preconditioner(RMSPropState(state.position, square_average, count),
                                       posterior.localization, decay=decay, epsilon=epsilon)
        position = (state.position - 0.5 * step_size * scale * here.gradient
                    + (step_size * scale).sqrt() * noise)
        return RMSPropState(position, square_average, count), {"loss": here.mean_loss}

    return Sampler("rmsprop_sgld", init, gaussian_noise, step)


def rmsprop_preconditioner(state: RMSPropState, localization: float, *, decay: float = 0.99,
                           epsilon: float = 1e-5) -> Tensor:
    """G = 1/(√V̂ + α) with V̂ = V/(1 − ρ^t) floored at γ, per chain and coordinate."""
    corrected = state.square_average / (1 - decay ** state.count.clamp_min(1)).unsqueeze(-1)
    return 1.0 / (corrected.clamp_min(localization).sqrt() + epsilon)
