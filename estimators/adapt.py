"""MALA's warm-up: its step size from the Metropolis acceptance rate of full-batch chains, and,
when asked, a warm-up that starts hot and cools to the target nβ.

The acceptance rate of a Langevin proposal measures its discretisation error, so it is a
model-free way to set ε. sltlab targets 0.8 for MALA rather than the asymptotically optimal
0.574 of Roberts & Rosenthal (1998): on potentials with quartic or steeper growth MALA is not
geometrically ergodic (Roberts & Tweedie 1996, §4.2), and at acceptance 0.57 chains that step
into the tails stick there for thousands of steps (measured on K = w⁴: the chains' spread is
forty times larger at ε for 0.57 than at ε for 0.86). ε is tuned by dual averaging (Nesterov 2009, as in Hoffman &
Gelman 2014, Alg. 5, with their constants γ = 0.05, t0 = 10, κ = 0.75) from a start found by
doubling or halving until the one-step acceptance crosses 1/2 (ibid., Alg. 4).

Annealing. Chains start at w*, and in a singular posterior the soft directions (along the set
of minima, held only by the localisation γ) relax in about 1/(ε·γ) steps, while ε shrinks like
1/nβ with the stiff ones: at n = 10⁶ chains on deep linear networks of thousands of parameters
were still climbing after 120,000 steps, up to 15 % below the exact LLC. The spread along the
soft directions depends on nβ only weakly (through the stiff directions' volume), so with
``anneal = F`` the first half of the warm-up runs at nβ/F and raises nβ geometrically to the
target in ``ANNEAL_STAGES`` stages (ε·(nβ + γ) dual-averaged to the same acceptance across
the stages), a cooling schedule as in simulated annealing (Kirkpatrick, Gelatt &
Vecchi 1983): the soft directions relax F times faster and the stiff ones contract within a
few steps of each stage. The target stays exact: the chains only start where the warm-up
ended, and the step is adapted at the target nβ in the second half. Chains cooled this way
come to the typical set from outside, as chains from w* come from inside, and too hot a start
overshoots: on U = nβ·(ab)²/2 + (γ/2)‖w‖² at nβ = 10⁵, γ = 1, after 2,000 warm-up steps E‖w‖²
over 400 chains was 0.09 from w*, 0.26 ± 0.02 cooled from nβ/100 and 0.51 ± 0.05 from nβ/10⁴,
against the exact 0.307.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import Tensor

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.cooled_share import cooled_chains, cooled_count
from sltlab.estimators.mala import MALAState, mala
from sltlab.estimators.posterior import LocalPosterior, chain_centers, common_noise
from sltlab.estimators.sampling import Batches, Trace, progress_bar


MALA_TARGET_ACCEPTANCE = 0.8
ANNEAL_STAGES = 10


class Adaptation(NamedTuple):
    step_size: float
    target_acceptance: float
    achieved_acceptance: float   # mean over the last half of the steps at the target nβ
    warmup_steps: int
    final_state: MALAState       # where the warm-up's chains ended, at the target nβ
    cooled: np.ndarray | None = None   # [C] bool: the chains cooled from nβ/anneal, where only some were


class DualAveraging:
    """Hoffman & Gelman (2014), Alg. 5: log ε driven to a target acceptance, with its iterate
    average as the final step; for one step (``log_step`` a number: plain float arithmetic, which
    runs at every warm-up step) or for K groups at once (``log_step`` a tensor [K], each group
    driven by its own mean acceptance [K])."""

    def __init__(self, log_step: float | Tensor, target_acceptance: float):
        self.target, self.mu, self.count = target_acceptance, log_step + math.log(10), 0
        self.log_step = log_step
        self.error = self.log_average = torch.zeros_like(log_step) if isinstance(log_step, Tensor) else 0.0

    @property
    def step_size(self) -> float | Tensor:
        return _exp(self.log_step)

    @property
    def averaged_step_size(self) -> float | Tensor:
        return _exp(self.log_average)

    def update(self, acceptance: float | Tensor) -> float | Tensor:
        """The next log ε after one step's acceptance (a number, or [K] per group)."""
        self.count += 1
        if isinstance(self.error, Tensor):
            acceptance = torch.as_tensor(acceptance, dtype=self.error.dtype, device=self.error.device)
        self.error = self.error + ((self.target - acceptance) - self.error) / (self.count + 10)
        self.log_step = self.mu - math.sqrt(self.count) / 0.05 * self.error
        weight = self.count ** -0.75
        self.log_average = weight * self.log_step + (1 - weight) * self.log_average
        return self.log_step


def _exp(value: float | Tensor) -> float | Tensor:
    return value.exp() if isinstance(value, Tensor) else math.exp(value)


def _group_acceptance(posterior, batch, state, step_sizes: Tensor, chains: int, generator, shared_noise: bool):
    """One MALA step of K groups of ``chains`` chains, each group at its own ε ([K], float64; or
    each chain at its own, [K·chains]), on
    common random numbers when ``shared_noise``; the new state and each group's mean acceptance
    [K]. One group steps at a plain number, the kernel's scalar path."""
    groups = len(state.position) // chains
    step = (float(step_sizes[0]) if len(step_sizes) == 1 else step_sizes.to(state.position) if len(step_sizes) > groups
            else step_sizes.to(state.position).repeat_interleave(chains))
    sampler = mala(posterior, step_size=step)
    sampler = common_noise(sampler, groups) if shared_noise else sampler
    state, info = sampler.step(state, batch, sampler.noise(state, generator))
    return state, info["acceptance"].reshape(groups, chains).mean(-1).to(step_sizes)


def _group_positions(posterior: LocalPosterior, chains: int) -> Tensor:
    """The chains' starting positions: ``chains`` copies of a shared centre [d], or the per-chain centres."""
    return chain_centers(posterior.center, chains).clone() if posterior.center.dim() == 1 else posterior.center.clone()


def _initial_steps(posterior: LocalPosterior, batch, chains: int, generator: torch.Generator,
                   shared_noise: bool = False) -> Tensor:
    """Alg. 4 for K groups at once: from 1/(nβ + γ), each group doubles or halves its ε until one
    step's acceptance from its centre crosses 1/2; [K] in float64."""
    fresh = mala(posterior, step_size=1.0).init(_group_positions(posterior, chains), batch)
    step = 1.0 / (_group_nbetas(posterior, len(fresh.position), chains) + posterior.localization)
    _, rate = _group_acceptance(posterior, batch, fresh, step, chains, generator, shared_noise)
    direction = torch.where(rate > 0.5, 1.0, -1.0).to(step)
    settled = torch.zeros(len(step), dtype=torch.bool, device=step.device)
    for _ in range(60):
        _, rate = _group_acceptance(posterior, batch, fresh, step * 2.0**direction, chains, generator,
                                    shared_noise)
        settled |= (rate > 0.5) != (direction > 0)
        step = torch.where(settled, step, step * 2.0**direction)
        if bool(settled.all()):
            break
    return step


def _group_nbetas(posterior: LocalPosterior, count: int, chains: int) -> Tensor:
    """Each group's nβ [K] in float64, from one nβ or one per chain."""
    nbeta = torch.as_tensor(posterior.nbeta, dtype=torch.float64, device=posterior.center.device)
    return nbeta.expand(count)[::chains]


def initial_step_size(posterior: LocalPosterior, batches: Batches, chains: int, generator: torch.Generator) -> float:
    """Alg. 4 (:func:`_initial_steps`) for the ``chains`` chains of one centre."""
    return float(_initial_steps(posterior, batches.full(), chains, generator)[0])


def annealing_stages(nbeta: float, anneal: float, warmup_steps: int) -> list[tuple[float, int]]:
    """(nβ, steps) of each warm-up stage: with ``anneal`` F > 1, ``ANNEAL_STAGES`` stages over
    the first half at nβ·F^(−(S − k)/S), k = 0 … S − 1, then the rest at nβ."""
    if anneal <= 1:
        return [(nbeta, warmup_steps)]
    per_stage = max(1, warmup_steps // 2 // ANNEAL_STAGES)
    stages = [(nbeta * anneal ** (-(ANNEAL_STAGES - k) / ANNEAL_STAGES), per_stage) for k in range(ANNEAL_STAGES)]
    return stages + [(nbeta, warmup_steps - per_stage * ANNEAL_STAGES)]


def adapt_step_size(posterior: LocalPosterior, batches: Batches, *, target_acceptance: float, chains: int,
                    warmup_steps: int, generator: torch.Generator, initial_step: float | None = None,
                    anneal: float = 1.0, cooled_share: float = 1.0, progress: bool = False) -> Adaptation:
    """Dual-averaged ε for which full-batch MALA chains at one centre accept at the target
    (:func:`adapt_step_sizes_in_groups` for one group)."""
    steps, achieved, trace = adapt_step_sizes_in_groups(posterior, batches, chains=chains, warmup_steps=warmup_steps,
                                                        generator=generator, anneal=anneal, cooled_share=cooled_share,
                                                        target_acceptance=target_acceptance, initial_step=initial_step,
                                                        progress=progress)
    return Adaptation(float(steps[0]), target_acceptance, float(achieved[0]), warmup_steps, trace.final_state,
                      trace.cooled)


def adapt_step_sizes_in_groups(posterior: LocalPosterior, batches: Batches, *, chains: int, warmup_steps: int,
                               generator: torch.Generator, anneal: float = 1.0,
                               target_acceptance: float = MALA_TARGET_ACCEPTANCE,
                               initial_step: float | None = None, shared_noise: bool = False,
                               cooled_share: float = 1.0, progress: bool = False) -> tuple[Tensor, Tensor, Trace]:
    """Dual-averaged ε for K groups of ``chains`` chains at once (consecutive chains, at the
    group's centre and nβ of ``posterior``; one group when the centre is [d]), each group driven
    to ``target_acceptance`` by its own mean acceptance from ``initial_step`` or
    :func:`_initial_steps`, through :func:`annealing_stages` (one stage at nβ unless ``anneal``
    > 1; in each group only the first ``cooled_share`` of its chains cool, the rest stay at nβ),
    on common random numbers when ``shared_noise`` (:func:`common_noise`). Returns the
    groups' steps [K], their acceptance over the last half of the steps at the target nβ [K],
    and the warm-up as a trace whose final state the run continues from; with ``progress``, a bar."""
    if not 0 < target_acceptance < 1 or warmup_steps < 10:
        raise ValueError("need 0 < target acceptance < 1 and at least 10 warm-up steps")
    if not (anneal >= 1 and math.isfinite(anneal)):
        raise ValueError(f"anneal must be a finite factor ≥ 1, got {anneal}")
    if anneal > 1 and warmup_steps < 4 * ANNEAL_STAGES:   # each stage a step at least, and the target a half
        raise ValueError(f"annealing needs at least {4 * ANNEAL_STAGES} warm-up steps, got {warmup_steps}")
    started, batch, shift = time.perf_counter(), batches.full(), posterior.localization
    position = _group_positions(posterior, chains)
    target = _group_nbetas(posterior, len(position), chains)
    step = (_initial_steps(posterior, batch, chains, generator, shared_noise) if initial_step is None
            else torch.full_like(target, initial_step))
    nbeta = posterior.nbeta if torch.as_tensor(posterior.nbeta).dim() > 0 else float(posterior.nbeta)
    normalised, averaging = step * (target + shift), None   # ε·(nβ + γ), about the same at every nβ
    cooled = cooled_chains(len(position), chains, cooled_share, position.device) if anneal > 1 else None
    bar = progress_bar(warmup_steps, "mala warm-up", enabled=progress)
    for factor, steps in annealing_stages(1.0, anneal, warmup_steps):
        if cooled is None or factor == 1.0:
            scale, per_chain = factor, 1
        else:   # the chains left at nβ step at the target's ε·(nβ + γ) with the cooled ones
            scale, per_chain = torch.where(cooled, factor, 1.0).to(position), chains
        stage = posterior._replace(nbeta=nbeta * scale)
        state = mala(stage, step_size=1.0).init(position, batch)
        if averaging is None or factor == 1.0:   # at the target, adapt afresh from the step so far
            averaging, rates = DualAveraging(normalised.log(), target_acceptance), []
        stiffness = target.repeat_interleave(per_chain) * scale + shift   # nβ + γ of the stage, per ε given
        for _ in range(steps):
            chain_steps = averaging.step_size.repeat_interleave(per_chain) / stiffness
            if not bool((chain_steps >= torch.finfo(position.dtype).tiny).all()):   # underflows where it is sampled
                raise ValueError(nothing_accepted("MALA", [float(rate.mean()) for rate in rates],
                                                  f"to {float(chain_steps.min()):.2g}, below what "
                                                  f"{str(position.dtype).split('.')[-1]} holds"))
            state, rate = _group_acceptance(stage, batch, state, chain_steps, chains, generator, shared_noise)
            averaging.update(rate)
            rates.append(rate)
            if bar is not None:
                bar.update(1)
        position, normalised = state.position, averaging.step_size
    if bar is not None:
        bar.close()
    achieved = torch.stack(rates[len(rates) // 2:]).mean(0)
    trace = Trace({}, np.zeros(len(position), dtype=bool), np.full(len(position), -1), None, warmup_steps,
                  time.perf_counter() - started, state, None if cooled is None else cooled.cpu().numpy())
    return averaging.averaged_step_size / (target + shift), achieved, trace


def nothing_accepted(sampler: str, rates: list, shrunk: str, unit: str = "steps") -> str:
    """Why a warm-up stopped: over its ``rates`` (one per warm-up step or trajectory, ``unit``) its
    chains accepted nothing while its step ``shrunk`` (in words)."""
    accepted = float(torch.as_tensor(rates, dtype=torch.float64).mean()) if len(rates) else 0.0
    return (f"{sampler}'s warm-up found no step size its chains accept: over {len(rates)} warm-up {unit} they accepted "
            f"{accepted:.2g} of their proposals while the step shrank {shrunk}; the loss or its gradient near w* is "
            "not finite or changes faster than any step can follow (check the model's outputs and the loss there)")


def mala_pilot_step(posterior: LocalPosterior, batches: Batches, config: LLCConfig,
                    generator: torch.Generator) -> tuple[float, str]:
    """MALA's pilot step (:func:`initial_step_size`); :func:`mala_warm_up` then adapts it."""
    return initial_step_size(posterior, batches, config.chains, generator), "one-step acceptance 1/2 from w*"


def mala_warm_up(config: LLCConfig, posterior: LocalPosterior, batches: Batches, generator: torch.Generator,
                 run: Callable[..., Trace]) -> tuple[Trace, LLCConfig, str]:
    """Dual averaging to acceptance 0.8 over max(200, burn-in) warm-up steps from the pilot
    step, annealed by ``config.anneal``; the run's burn-in and draws continue from its end."""
    started = time.perf_counter()
    warmup = adapt_step_size(posterior, batches, target_acceptance=MALA_TARGET_ACCEPTANCE, chains=config.chains,
                             warmup_steps=max(200, config.burnin_steps), generator=generator,
                             initial_step=config.step_size, anneal=config.anneal, cooled_share=config.cooled_share,
                             progress=getattr(run, "keywords", {}).get("progress", False))
    rule = (f"dual averaging to MALA acceptance {MALA_TARGET_ACCEPTANCE} over {warmup.warmup_steps} warm-up steps "
            f"(reached {warmup.achieved_acceptance:.2f})")
    if config.anneal > 1:
        cooled = cooled_count(config.chains, config.cooled_share)
        cooling = "" if cooled == config.chains else f" for {cooled:,} of the {config.chains:,} chains"
        rule += (f", the first half cooling from nβ/{config.anneal:g} to nβ in {ANNEAL_STAGES} stages{cooling}; "
                 "the run continues from where the warm-up ended")
    chains = config.chains
    trace = Trace({}, np.zeros(chains, dtype=bool), np.full(chains, -1), None, warmup.warmup_steps,
                  time.perf_counter() - started, warmup.final_state, warmup.cooled)
    return trace, replace(config, step_size=warmup.step_size), rule
