"""RMSProp-preconditioned SGLD (pSGLD, Li, Chen, Carlson & Carin 2016, eqs. 4–5), its pilot
step and its two-phase warm-up.

Drift and noise are scaled by G = 1/(√V̂ + α), V the running mean of squared gradients of U
with bias correction V̂ = V/(1 − ρ^t) as in Adam; the Γ(θ) correction term is dropped, as in
that paper's Alg. 1. V̂ is floored at γ, the curvature the localisation alone gives every
coordinate (at stationarity E[(∂U)²] = E[∂²U] ≥ γ): chains start at a stationary centre where
the first gradients vanish, and an unfloored G = 1/α threw them out (estimates near 10¹²
measured).

Two phases: G adapts over the burn-in with a pilot step and is then held fixed, which leaves
the target invariant with no Γ term; the step of the second phase is set from the
preconditioned curvature at the chains (:func:`adapt_preconditioner`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.posterior import LocalPosterior, Sampler, check_step_size, gaussian_noise, potential
from sltlab.estimators.sampling import Batches, Trace
from sltlab.estimators.step_size import STEP_SCALE, default_step_size, langevin_step_size, top_hessian_eigenvalue


class RMSPropState(NamedTuple):
    position: Tensor
    square_average: Tensor   # V, [C, d]
    count: Tensor            # steps taken, [C]


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
        updated = decay * state.square_average + (1 - decay) * here.gradient.square()
        if adapt_steps is None:
            square_average, count = updated, state.count + 1
        else:   # chains past their adaptation keep V; decided on the device, with no host sync
            adapting = state.count < adapt_steps
            square_average = torch.where(adapting.unsqueeze(-1), updated, state.square_average)
            count = state.count + adapting.to(state.count.dtype)
        scale = rmsprop_preconditioner(RMSPropState(state.position, square_average, count),
                                       posterior.localization, decay=decay, epsilon=epsilon)
        position = state.position + ((step_size * scale).sqrt() * noise - 0.5 * step_size * scale * here.gradient)
        return RMSPropState(position, square_average, count), {"loss": here.mean_loss}

    return Sampler("rmsprop_sgld", init, gaussian_noise, step)


def rmsprop_preconditioner(state: RMSPropState, localization: float, *, decay: float = 0.99,
                           epsilon: float = 1e-5) -> Tensor:
    """G = 1/(√V̂ + α) with V̂ = V/(1 − ρ^t) floored at γ, per chain and coordinate."""
    corrected = state.square_average / (1 - decay ** state.count.clamp_min(1)).unsqueeze(-1)
    return 1.0 / (corrected.clamp_min(localization).sqrt() + epsilon)


def rmsprop_from_config(posterior: LocalPosterior, config: LLCConfig) -> Sampler:
    """The kernel at ``config``'s step, adapting G over its burn-in."""
    return rmsprop_sgld(posterior, step_size=config.step_size, adapt_steps=max(1, config.burnin))


def rmsprop_pilot_step_size(posterior: LocalPosterior, batches: Batches, config: LLCConfig,
                            generator: torch.Generator) -> tuple[float, str]:
    """RMSProp divides the gradient by its root mean square ≈ √(curvature), so its pilot step
    is c/√(stiffness) = √(c·ε), ε the Langevin rule's step."""
    langevin, rule = langevin_step_size(posterior, batches, generator)
    return math.sqrt(STEP_SCALE * langevin), rule + ", as c/√(…) for RMSProp"


def adapt_preconditioner(config: LLCConfig, posterior: LocalPosterior, batches: Batches,
                         generator: torch.Generator, run: Callable[..., Trace]) -> tuple[Trace, LLCConfig, str]:
    """Adapt G over the burn-in at the pilot step, then hold it and set ε = c/λ_max, λ_max the
    top eigenvalue of the preconditioned curvature G^{1/2}·(nβ·H·(1 + nβ/b))·G^{1/2} + γ·G at
    the chains' positions: a diagonal G can amplify a dense stiff direction far beyond what
    ε·√k suggests. Returns the warm-up trace (its final state starts the run), the config at
    the new step and the rule in words."""
    pilot = rmsprop_sgld(posterior, step_size=config.step_size, adapt_steps=config.burnin)
    warmup = run(pilot, draws=1, burnin=config.burnin - 1, thin=1)
    state = warmup.final_state
    scale = rmsprop_preconditioner(state, posterior.localization)
    alive = torch.as_tensor(~warmup.diverged, device=scale.device)
    if not bool(alive.any()):
        return warmup, config, ("every chain diverged while adapting the preconditioner "
                                f"(pilot step {config.step_size:.3g})")
    top = top_hessian_eigenvalue(posterior.loss, state.position[alive], batches.full(), generator=generator,
                                 preconditioner=scale[alive])
    # The same rule as the plain step, with the localisation's curvature scaled by G too.
    step_size = default_step_size(config.nbeta, posterior.localization * float(scale[alive].max()), top,
                                  batch_size=None if batches.is_full else batches.batch_size, n=batches.n)
    stiffness = STEP_SCALE / step_size
    rule = (f"c/λ_max with c = {STEP_SCALE} and λ_max = {stiffness:.4g} the top eigenvalue of the RMSProp-"
            f"preconditioned curvature at the chains after {config.burnin} adapting burn-in steps "
            f"(pilot step {config.step_size:.3g}); the preconditioner is then held fixed")
    return warmup, replace(config, step_size=step_size), rule
