"""One pilot of the step-size sweep (:mod:`sltlab.estimators.calibrate`): its estimate and
diagnostics as a :class:`SweepPoint`, from one run or from a coupled pair of runs
(:mod:`sltlab.estimators.coupled`), and the guard of the sampler's own move — the
Metropolis–Hastings acceptance of the same move (MALA's test, Roberts & Tweedie 1996),
preconditioned as RMSProp-SGLD preconditions it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from sltlab.estimators.batched import chains_of
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.coupled import paired_difference, run_coupled_pilots
from sltlab.estimators.result import LLCResult
from sltlab.estimators.llc import llc_from_trace
from sltlab.estimators.localize import Localization
from sltlab.estimators.mala import mala
from sltlab.estimators.posterior import LocalPosterior
from sltlab.estimators.rmsprop_sgld import rmsprop_preconditioner
from sltlab.estimators.sampling import Batches, run_chains
from sltlab.estimators.sgld import SGLDState
from sltlab.estimators.streamed import on_device, row_count

ACCEPTANCE_PROBE_STEPS = 100
COUPLED_SAMPLER = "sgld"       # the sampler whose pilots run in coupled pairs
# The Metropolis–Hastings counterpart of each sampler's move: a MALA step with this diagonal
# preconditioner (None: the identity). Samplers missing here have none.
METROPOLIS_MOVES = {"sgld": lambda state, posterior: None,
                    "rmsprop_sgld": lambda state, posterior: rmsprop_preconditioner(state, posterior.localization)}


class SweepPoint(NamedTuple):
    """One pilot: its step, estimate and diagnostics (``None`` where every chain diverged); a
    pilot coupled with one at twice its step also carries λ̂(2ε) − λ̂(ε) from the paired chains."""

    step_size: float
    steps: int
    estimate: float | None
    standard_error: float | None
    rhat: float | None
    diverged_chains: int
    acceptance: float | None    # Metropolis–Hastings acceptance of the same move; None: not measured
    paired_difference: float | None = None
    paired_difference_se: float | None = None


def pilot_point(loss, result: LLCResult, data: tuple[Tensor, ...]) -> SweepPoint:
    """One pilot's estimate as a sweep point, with the acceptance of its move where no chain diverged."""
    estimate = result.estimate
    acceptance = result.acceptance
    if acceptance is None and not result.trace.diverged.any():
        acceptance = _metropolis_acceptance(loss, result.config, result.trace.final_state, result.localization.center,
                                            data)
    return SweepPoint(result.config.step_size, result.trace.steps, estimate.mean, estimate.standard_error,
                      estimate.rhat, len(estimate.diverged_chains), acceptance)


def coupled_pair(loss, data: tuple[Tensor, ...], settings: LLCConfig, localization: Localization, n: int | None,
                  progress: bool) -> tuple[SweepPoint, SweepPoint]:
    """The pilots at ``settings.step_size`` and at half of it, coupled
    (:func:`~sltlab.estimators.coupled.run_coupled_pilots`); the second carries the paired
    difference, the first the acceptance of its move."""
    trace = run_coupled_pilots(loss, data, settings, localization, n=n, progress=progress)
    chains = settings.chains
    points = []
    for rows, step_size, steps in ((slice(0, chains), settings.step_size, trace.steps),
                                   (slice(chains, 2 * chains), settings.step_size / 2, 2 * trace.steps)):
        estimate = llc_from_trace(chains_of(trace, rows, 2), settings.nbeta)
        points.append(SweepPoint(step_size, steps, estimate.mean, estimate.standard_error, estimate.rhat,
                                 len(estimate.diverged_chains), None))
    coarse, fine = points
    if not trace.diverged[:chains].any():
        state = SGLDState(trace.final_state.position[:chains])
        coarse = coarse._replace(acceptance=_metropolis_acceptance(loss, settings, state, localization.center, data))
    difference, standard_error = paired_difference(trace, settings.nbeta, chains)
    return coarse, fine._replace(paired_difference=difference, paired_difference_se=standard_error)


def _metropolis_acceptance(loss, config: LLCConfig, state, center: Tensor, data: tuple[Tensor, ...]) -> float | None:
    """Mean Metropolis–Hastings acceptance of a pilot's own move at its step, from its final
    state on the full data; None for a sampler whose move has no such counterpart."""
    move = METROPOLIS_MOVES.get(config.sampler)
    if move is None:
        return None
    position = state.position
    center = center.to(position)
    full = on_device(data, position.device, position.dtype)
    posterior = LocalPosterior(loss, config.nbeta, config.localization, center)
    batches = Batches(full, row_count(full) or 1)
    sampler = mala(posterior, step_size=config.step_size, preconditioner=move(state, posterior), drift_limit=None)
    generator = torch.Generator(device=position.device).manual_seed(config.seed)
    trace = run_chains(sampler, posterior, batches, chains=len(position), draws=ACCEPTANCE_PROBE_STEPS,
                       generator=generator, initial_state=sampler.init(position, batches.full()))
    return float(trace.fields["acceptance"].mean())
