"""λ̂ at K centres of one loss (the checkpoints of a training run) as one batched run of K·C
chains, each group of C chains localised at its own centre (per-chain centres of
:class:`~sltlab.estimators.posterior.LocalPosterior`).

The chains of a localised posterior never interact (every kernel's formulas act row by row),
so K posteriors side by side are K independent estimates sharing one generator: each
checkpoint's λ̂ (Lau, Furman, Wang, Murfet & Wei 2023, Def. 3.1) and its diagnostics come from
its own C chains exactly as :func:`~sltlab.estimators.estimate.estimate_llc_from_loss` gives
them, with other random numbers. What the checkpoints share is a step size and nβ, so the
step size must be given (or calibrated once): a sampler's own rule measures the curvature at
each centre and would give each its own step.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import torch
from torch import Tensor

from sltlab.estimators.checks import check_loss_shape
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.estimate import LLCResult, result_of_trace, run_inputs
from sltlab.estimators.localize import at_true_parameter, empirical_minimum
from sltlab.estimators.posterior import LocalPosterior, compiled
from sltlab.estimators.samplers import SAMPLERS
from sltlab.estimators.sampling import Batches, Trace, announce_phase, run_chains
from sltlab.estimators.step_size import CONCERN_LANCZOS_STEPS, CONCERN_ROWS, top_hessian_eigenvalues_lanczos

MAX_CHAINS_PER_RUN = 1024       # chains sampled together at most; more centres are run in groups
MAX_POSITION_NUMBERS = 2 ** 26  # and at most this many numbers in one [chains, d] tensor (256 MiB in float32)
# Chain-rows of the full data in one power iteration of the end-of-run curvature: its graph
# holds them all, and on the grokking network (n = 1,124) 200 chains at once took 47 s against
# 29 s in groups of 40 (one CPU thread).
CURVATURE_ROWS = 2 ** 15


def chains_per_run(chains: int, dim: int) -> int:
    """How many chains one batched run holds: whole groups of ``chains``, within
    ``MAX_CHAINS_PER_RUN`` and ``MAX_POSITION_NUMBERS``/d, and at least one group."""
    fits = min(MAX_CHAINS_PER_RUN, MAX_POSITION_NUMBERS // max(dim, 1))
    return max(1, fits // chains) * chains


def estimate_llc_at_centers(loss, centers: Sequence[Tensor], data: tuple[Tensor, ...], config: LLCConfig, *,
                            n: int | None = None, progress: bool = False) -> list[LLCResult]:
    """One :class:`LLCResult` per centre [d] (localised as ``config.localize_at`` says, each on
    its own), from runs of at most :func:`chains_per_run` chains, at ``config``'s step size.

    Every result is what :func:`~sltlab.estimators.estimate.estimate_llc_from_loss` reports for
    that centre at a given step (diagnostics, dropped chains and warnings from its own chains);
    its ``trace.seconds`` is its share of the batched run's time.
    """
    if not centers:
        raise ValueError("centers is empty: give at least one parameter vector")
    if config.step_size is None:
        raise ValueError("batched centres share one step size: give step_size (or calibrate it first); "
                         "a sampler's own rule would choose one per centre")
    n, device, dtype, generator, full, resolved, batches = run_inputs(data, config, n)
    starts = [center.to(device=device, dtype=torch.float64) for center in centers]
    if any(start.dim() != 1 or start.shape != starts[0].shape for start in starts):
        raise ValueError(f"every centre must be one vector [d] of the same d; got shapes "
                         f"{sorted({tuple(start.shape) for start in starts})}")
    check_loss_shape(loss, starts[0], full)
    localize = empirical_minimum if config.localize_at == "empirical_minimum" else at_true_parameter
    announce_phase(f"localising {len(starts)} centres", enabled=progress)
    localizations = [localize(loss, start, full) for start in starts]
    per_run = chains_per_run(resolved.chains, starts[0].numel()) // resolved.chains
    results = []
    for first in range(0, len(localizations), per_run):
        group = localizations[first:first + per_run]
        center = torch.stack([localization.center for localization in group]).to(dtype)
        posterior = LocalPosterior(loss, resolved.nbeta, resolved.localization,
                                   center.repeat_interleave(resolved.chains, 0))
        kernel = SAMPLERS[resolved.sampler].kernel(posterior, resolved)
        trace = run_chains(compiled(kernel) if resolved.compile_step else kernel, posterior, batches,
                           chains=len(group) * resolved.chains, draws=resolved.draws, burnin=resolved.burnin,
                           thin=resolved.thin, generator=generator, progress=progress,
                           full_data_every=max(1, resolved.draws // 200) if resolved.functional_variance and data
                           else None)
        curvatures = _curvatures(trace, posterior, batches, resolved, generator)
        for index, localization in enumerate(group):
            rows = slice(index * resolved.chains, (index + 1) * resolved.chains)
            alone = posterior._replace(center=center[index])
            results.append(result_of_trace(chains_of(trace, rows, len(group)), alone, batches, resolved,
                                           localization, "given", generator, n,
                                           curvature=None if curvatures is None else float(curvatures[rows].max())))
    if resolved.fallback is None:
        return results
    note = (f"fallback {resolved.fallback} was not applied: the centres share one batched run at one step, so chains "
            "that fail the mixing gate are reported as they are")
    return [replace(result, notes=result.notes + (note,)) for result in results]


def _curvatures(trace: Trace, posterior: LocalPosterior, batches: Batches, config: LLCConfig,
                generator: torch.Generator) -> Tensor | None:
    """For SGLD's step-size concern (:func:`~sltlab.estimators.step_size.step_size_concern`),
    h_max where each chain ended (0 for a dropped one) on ``CONCERN_ROWS`` rows drawn at random,
    measured for the kept chains of the run in groups holding at most ``CURVATURE_ROWS``
    chain-rows; None for the other samplers."""
    if config.sampler != "sgld" or trace.final_state is None:
        return None
    position = trace.final_state.position
    kept = torch.as_tensor(~trace.diverged, device=position.device).nonzero().flatten()
    curvatures = torch.zeros(len(position), dtype=position.dtype, device=position.device)
    rows = batches.subsample(CONCERN_ROWS, generator)
    group = max(1, CURVATURE_ROWS // max(min(batches.n, CONCERN_ROWS), 1))
    for first in range(0, len(kept), group):
        chains = kept[first:first + group]
        curvatures[chains] = top_hessian_eigenvalues_lanczos(posterior.loss, position[chains], rows,
                                                             generator=generator, steps=CONCERN_LANCZOS_STEPS)
    return curvatures


def chains_of(trace: Trace, rows: slice, share: int) -> Trace:
    """The chains ``rows`` of a batched run's trace, as the trace of a run of those chains alone,
    with ``1/share`` of its time."""
    return trace._replace(fields={name: values[rows] for name, values in trace.fields.items()},
                          diverged=trace.diverged[rows], divergence_step=trace.divergence_step[rows],
                          functional_variance=None if trace.functional_variance is None
                          else trace.functional_variance[rows],
                          seconds=trace.seconds / share, final_state=_state_rows(trace.final_state, rows))


def _state_rows(state: Any, rows: slice) -> Any:
    """A sampler state's fields (tensors with the chain dimension first, possibly nested) at ``rows``."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state[rows]
    return type(state)(*(_state_rows(part, rows) for part in state))
