"""Step size from the Metropolis acceptance rate of full-batch MALA pilot chains.

The acceptance rate of a Langevin proposal measures its discretisation error, so it is a
model-free way to set ε. sltlab targets 0.8 for MALA rather than the asymptotically optimal
0.574 of Roberts & Rosenthal (1998): on potentials with quartic or steeper growth MALA is not
geometrically ergodic (Roberts & Tweedie 1996, §4.2), and at acceptance 0.57 chains that step
into the tails stick there for thousands of steps (measured on K = w⁴: the chains' spread is
forty times larger at ε for 0.57 than at ε for 0.86). ε is tuned by dual averaging (Nesterov 2009, as in Hoffman &
Gelman 2014, Alg. 5, with their constants γ = 0.05, t0 = 10, κ = 0.75) from a start found by
doubling or halving until the one-step acceptance crosses 1/2 (ibid., Alg. 4).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.mala import mala
from sltlab.estimators.posterior import LocalPosterior, chain_centers
from sltlab.estimators.sampling import Batches


MALA_TARGET_ACCEPTANCE = 0.8


class Adaptation(NamedTuple):
    step_size: float
    target_acceptance: float
    achieved_acceptance: float   # mean over the last half of the warm-up
    warmup_steps: int


def _acceptance(posterior, batch, state, step_size, generator):
    sampler = mala(posterior, step_size=step_size)
    state, info = sampler.step(state, batch, sampler.noise(state, generator))
    return state, float(info["acceptance"].mean())


def adapt_step_size(posterior: LocalPosterior, batches: Batches, *, target_acceptance: float,
                    chains: int, warmup_steps: int, generator: torch.Generator) -> Adaptation:
    """Dual-averaged ε for which full-batch MALA chains from the centre accept at the target."""
    if not 0 < target_acceptance < 1 or warmup_steps < 10:
        raise ValueError("need 0 < target acceptance < 1 and at least 10 warm-up steps")
    batch = batches.full()
    start = chain_centers(posterior.center, chains).clone()
    state = mala(posterior, step_size=1.0).init(start, batch)
    step_size = 1.0 / (posterior.nbeta + posterior.localization)
    _, rate = _acceptance(posterior, batch, state, step_size, generator)
    direction = 1.0 if rate > 0.5 else -1.0
    for _ in range(60):  # Alg. 4: double or halve until the acceptance crosses 1/2
        _, rate = _acceptance(posterior, batch, state, step_size * 2.0**direction, generator)
        if (rate > 0.5) != (direction > 0):
            break
        step_size *= 2.0**direction
    mu, averaged_error, log_step, log_average = math.log(10 * step_size), 0.0, math.log(step_size), 0.0
    rates = []
    for m in range(1, warmup_steps + 1):
        state, rate = _acceptance(posterior, batch, state, math.exp(log_step), generator)
        rates.append(rate)
        averaged_error += ((target_acceptance - rate) - averaged_error) / (m + 10)
        log_step = mu - math.sqrt(m) / 0.05 * averaged_error
        weight = m ** -0.75
        log_average = weight * log_step + (1 - weight) * log_average
    achieved = sum(rates[warmup_steps // 2:]) / len(rates[warmup_steps // 2:])
    return Adaptation(math.exp(log_average), target_acceptance, achieved, warmup_steps)


def mala_step_size(posterior: LocalPosterior, batches: Batches, config: LLCConfig,
                   generator: torch.Generator) -> tuple[float, str]:
    """MALA's step: dual averaging to acceptance 0.8 over max(200, burn-in) warm-up steps."""
    warmup = adapt_step_size(posterior, batches, target_acceptance=MALA_TARGET_ACCEPTANCE, chains=config.chains,
                             warmup_steps=max(200, config.burnin or 0), generator=generator)
    rule = (f"dual averaging to MALA acceptance {MALA_TARGET_ACCEPTANCE} over {warmup.warmup_steps} warm-up steps "
            f"(reached {warmup.achieved_acceptance:.2f})")
    return warmup.step_size, rule
