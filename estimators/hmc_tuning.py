"""HMC as an LLC sampler: its trajectory length, its pilot step and its warm-up.

Directions that the loss leaves flat (in a deep linear network, the orbits W_j → G·W_j,
W_{j+1} → W_{j+1}·G⁻¹ that leave the product unchanged) are held only by the localising prior
(γ/2)‖w − w*‖², yet the local curvature of the other directions, and so λ̂, depends on where
along them a chain is. A Langevin step ε, set by the stiffest direction, moves along them by
diffusion and relaxes them in about 1/(ε·γ) steps: about 1.8·10⁶ for MALA on
[50,50,50,50,50] rank 20 at n = 10⁴ (ε = 1.9·10⁻⁷, γ = 3), far beyond any run. HMC moves
along them ballistically (Neal 2011, §5.4.1): a trajectory of time T crosses a fraction
√γ·T of their oscillation, whatever the stiffest curvature, at T/h gradient evaluations for a
leapfrog step h. Here T = π/(4√γ), an eighth of the localising prior's period, at most; each
trajectory lasts a time drawn between T/2 and T (``hmc_from_config``).

``draws``, ``burnin`` and ``thin`` count trajectories, each at most ``trajectory_steps`` gradient
evaluations. The step is dual-averaged (Hoffman & Gelman 2014, Alg. 5) to acceptance 0.9 over
the burn-in, then held fixed, so every kernel after it is exact. Not to 0.65, the optimum for
smooth targets as d → ∞ (Beskos, Pillai, Roberts, Sanz-Serna & Stuart 2013): singular
posteriors are funnels, stiffer where the chains spread along a flat direction, and a step set
by the average acceptance leaves the chains unable to enter the stiff part. On
U = nβ·(ab)²/2 + (γ/2)(a² + b²) (nβ = 10⁵, γ = 1; exact λ(nβ, γ) = 0.4232 by quadrature), 256
chains × 200 trajectories from w* after 50 read 0.377 ± 0.007 at acceptance 0.65 (−6.7 SE) and
0.418 ± 0.004 at 0.9 (−1.1 SE, −1.2 %), where MALA (5,000 steps of warm-up, 20,000 thinned by 5)
reads 0.4194 ± 0.0013 (−0.9 %). With every trajectory at the full length the same run read
0.411 ± 0.004 at 0.9 (−2.9 SE). HMC is the deep linear family's fallback where MALA's chains
fail the mixing gate (sltlab.verification.defaults), not its first sampler.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Callable

import numpy as np
import torch

from sltlab.estimators.adapt import DualAveraging, initial_step_size, nothing_accepted
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.hmc import hmc
from sltlab.estimators.posterior import LocalPosterior, Sampler
from sltlab.estimators.sampling import Batches, Trace, after_warm_up, progress_bar

HMC_TARGET_ACCEPTANCE = 0.9
MAX_LEAPFROG_STEPS = 20_000
# Warm-up trajectories that may accept nothing at all, their step shrinking by dual averaging at
# each, before the warm-up stops: from a step at which MALA accepted half its moves, a loss
# that can be sampled is accepted long before its step has shrunk this often. Checked on 12
# networks (8 trained MLPs drawn by the fallback bench from seed 9100, its three named ones and
# [2,2,2,1,2] rank 1): the second trajectory, at ten times the pilot step (dual averaging's first
# guess), accepted under 2 % of its chains' moves in all 12, and the first trajectory to accept
# anything was the first in 11, the third in one (the MLP [4,32,32,1]).
NOTHING_ACCEPTED_TRAJECTORIES = 5


def trajectory_steps(step_size: float, localization: float) -> int:
    """Leapfrog steps of one trajectory: its time π/(4√γ) (module docstring) at step h, at
    least 1 and at most ``MAX_LEAPFROG_STEPS``."""
    return max(1, min(MAX_LEAPFROG_STEPS, whole_trajectory_steps(step_size, localization)))


def whole_trajectory_steps(step_size: float, localization: float) -> int:
    """Leapfrog steps of h = ``step_size`` that the whole time π/(4√γ) takes, uncapped."""
    if not localization > 0:
        raise ValueError("hmc needs a localization γ > 0: its trajectory time is π/(4√γ)")
    return math.ceil(math.pi / (4 * math.sqrt(localization)) / step_size)


def hmc_from_config(posterior: LocalPosterior, config: LLCConfig) -> Sampler:
    """Each trajectory lasts between half and all of ``trajectory_steps``, drawn at random
    (:mod:`sltlab.estimators.hmc`): at a fixed length a stiff mode near a resonance hardly moves."""
    longest = trajectory_steps(config.step_size, config.localization)
    return hmc(posterior, step_size=config.step_size, leapfrog_steps=longest, shortest_steps=math.ceil(longest / 2))


def mean_trajectory_steps(step_size: float, localization: float) -> float:
    """Leapfrog steps of an average trajectory of ``hmc_from_config``: drawn uniformly between
    half and all of ``trajectory_steps``."""
    longest = trajectory_steps(step_size, localization)
    return (math.ceil(longest / 2) + longest) / 2


class OverBudget(Exception):
    """A run stopped during or after its warm-up because it would cost more than allowed; the
    message says how much."""


def fallback_over_budget(config: LLCConfig, first_steps: int, *, spent: float = 0.0, done: int = 0,
                         tuned: LLCConfig | None = None) -> str | None:
    """Why the fallback is not run, or not run on (None when it is): its warm-up and draws together
    would take more than ``config.fallback_budget`` times the ``first_steps`` gradient evaluations
    of the first run. Judged before its warm-up, every trajectory at h = √ε of the first run's step
    ε (the pilot rule of :func:`hmc_pilot_step`), above the step the warm-up tuned on every network
    where both were read (0.32–0.8 of it, four networks), so that a fallback refused then would
    cost more still; during its warm-up, after ``done`` trajectories that took about ``spent``
    evaluations, the rest still at h = √ε (at least what they will take); and after it (``tuned``),
    its draws at the step it tuned."""
    if config.fallback_budget is None:
        return None
    fallback = tuned or config.fallback_config()
    step = math.sqrt(config.step_size) if tuned is None else tuned.step_size
    drawn, warming = fallback.draws * fallback.thin, 0 if tuned else fallback.burnin_steps - done
    predicted = spent + (warming + drawn) * mean_trajectory_steps(step, fallback.localization)
    if predicted <= config.fallback_budget * first_steps:
        return None
    longest = f"up to {trajectory_steps(step, fallback.localization):,} leapfrog steps"
    if tuned:
        what = (f" past its warm-up: its {done} warm-up trajectories took about {spent:,.0f} gradient evaluations and "
                f"its {drawn} drawn ones, at the tuned h = {step:.3g} of {longest}, would bring it to about")
    elif done:
        what = (f" on: its first {done} of {fallback.burnin_steps} warm-up trajectories took about {spent:,.0f} "
                f"gradient evaluations, and the other {warming} and its {drawn} drawn ones, even at h = √ε of "
                f"{config.sampler}'s step (h = {step:.3g}) with {longest}, would bring it to at least")
    else:
        what = (f": at h = √ε of {config.sampler}'s step (h = {step:.3g}; warm-ups have tuned smaller steps), its "
                f"{warming} warm-up and {drawn} drawn trajectories of {longest} would take about")
    return (f"the fallback {config.fallback} was not run{what} {predicted:,.0f} gradient evaluations, "
            f"{predicted / first_steps:.3g} times the {first_steps:,} of {config.sampler}'s run, over the budget "
            f"of {config.fallback_budget:g} times; sampler='hmc' (--sampler hmc) runs it")


def hmc_pilot_step(posterior: LocalPosterior, batches: Batches, config: LLCConfig,
                   generator: torch.Generator) -> tuple[float, str]:
    """h = √ε for MALA's pilot ε (one leapfrog step of size h is a MALA step of ε = h²)."""
    step = math.sqrt(initial_step_size(posterior, batches, config.chains, generator))
    return step, "√ε of MALA's pilot ε (one-step acceptance 1/2 from w*)"


def hmc_warm_up(config: LLCConfig, posterior: LocalPosterior, batches: Batches, generator: torch.Generator,
                run: Callable[..., Trace], budget: Callable[..., str | None] | None = None
                ) -> tuple[Trace, LLCConfig, str]:
    """The burn-in's trajectories from w*, each at the dual-averaged step of the ones before
    (with its own trajectory_steps); returns their trace, the config at the averaged step and
    the rule in words. One progress bar counts the trajectories, where ``run`` shows bars.
    With a ``budget`` (:func:`fallback_over_budget` but its first two arguments), a sentence from
    it after any trajectory, on the evaluations spent, stops the run (:class:`OverBudget`)."""
    started = time.perf_counter()
    averaging, state, trace, rates = DualAveraging(math.log(config.step_size), HMC_TARGET_ACCEPTANCE), None, None, []
    bar = progress_bar(config.burnin_steps, "hmc warm-up", unit="trajectory",
                       enabled=getattr(run, "keywords", {}).get("progress", False))
    spent = 0.0
    try:
        for done in range(1, config.burnin_steps + 1):
            spent += mean_trajectory_steps(averaging.step_size, config.localization)
            sampler = hmc_from_config(posterior, replace(config, step_size=averaging.step_size))
            step = run(sampler, draws=1, initial_state=state, progress=False)
            if bar is not None:
                bar.update(1)
            state, trace = step.final_state, step if trace is None else after_warm_up(trace, step)
            alive = ~trace.diverged
            rates.append(float(step.fields["acceptance"][alive].mean()) if alive.any() else 0.0)
            averaging.update(rates[-1])
            if done == NOTHING_ACCEPTED_TRAJECTORIES and not any(rates):
                raise ValueError(nothing_accepted("HMC", rates, f"from h = {config.step_size:.2g} to "
                                                  f"{averaging.step_size:.2g}", "trajectories"))
            if budget is not None and done < config.burnin_steps and (refusal := budget(spent=spent, done=done)):
                raise OverBudget(refusal)
    finally:
        if bar is not None:
            bar.close()
    tuned = replace(config, step_size=averaging.averaged_step_size)
    if budget is not None and (refusal := budget(spent=spent, done=config.burnin_steps, tuned=tuned)):
        raise OverBudget(refusal)
    rule = warm_up_rule(config, tuned.step_size, float(np.mean(rates[len(rates) // 2:])))
    return trace._replace(seconds=time.perf_counter() - started), tuned, rule


def warm_up_rule(config: LLCConfig, tuned: float, achieved: float) -> str:
    """The HMC warm-up's rule in words, from its pilot step ``config.step_size`` to ``tuned``; where a
    trajectory's whole time would take more than ``MAX_LEAPFROG_STEPS``, it says so and what such a
    collapse of the step often means (a loss ``0.5·w0² + 0.5·w1.detach()²`` had tuned h to 1.2·10⁻⁵ and
    run 3 s per trajectory with no word)."""
    whole = whole_trajectory_steps(tuned, config.localization)
    capped = "" if whole <= MAX_LEAPFROG_STEPS else (
        f" (capped: the whole time would take {whole:,}; a step {config.step_size / tuned:.2g} times below the "
        "pilot's often means a gradient that misses part of the loss, a .detach() or .data in it)")
    return (f"dual averaging to HMC acceptance {HMC_TARGET_ACCEPTANCE} over {config.burnin_steps} burn-in "
            f"trajectories (reached {achieved:.2f}), then {trajectory_steps(tuned, config.localization):,} leapfrog "
            f"steps of h = {tuned:.3g} at most per trajectory (time π/(4√γ)){capped}, at least half as many, drawn "
            "for each")
