"""λ̂ at K settings of one loss as one batched run of K·C chains: K centres (the checkpoints of a
training run), or K values of nβ at one centre (a temperature ladder), each group of C chains
with its own centre, nβ and step size (per-chain settings of
:class:`~sltlab.estimators.posterior.LocalPosterior` and of the SGLD kernel).

The chains of a localised posterior never interact (every kernel's formulas act row by row),
so K posteriors side by side are K independent estimates sharing one generator: each group's
λ̂ (Lau, Furman, Wang, Murfet & Wei 2023, Def. 3.1) and its diagnostics come from its own C
chains exactly as :func:`~sltlab.estimators.estimate.estimate_llc_from_loss` gives them, with
other random numbers. Centres share one step size and nβ, so the step size must be given (or
calibrated once): a sampler's own rule measures the curvature at each centre. Temperatures
take each its own step, given (scaled as 1/nβ), from SGLD's rule at that nβ, or from MALA's
warm-up (:func:`~sltlab.estimators.adapt.adapt_step_sizes_in_groups`: every rung's own step by
dual averaging of its own chains' acceptance, all rungs in one warm-up); only these two kernels
take a step per chain.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, NamedTuple, Sequence

import torch
from torch import Tensor

from sltlab.estimators.adapt import MALA_TARGET_ACCEPTANCE, adapt_step_sizes_in_groups
from sltlab.estimators.checks import check_loss_shape, check_memory, checked_centers
from sltlab.estimators.config import LLCConfig, require_config
from sltlab.estimators.estimate import RunInputs, run_inputs, whole_batches_note
from sltlab.estimators.result import LLCResult, result_of_trace
from sltlab.estimators.localize import Localization, localizer
from sltlab.estimators.posterior import LocalPosterior, common_noise, compiled
from sltlab.estimators.sample_on import remedies_not_applied, sample_on_unmixed
from sltlab.estimators.samplers import SAMPLERS
from sltlab.estimators.mala import mala
from sltlab.estimators.metric import metric_not_applied
from sltlab.estimators.sampling import Batches, Trace, after_warm_up, announce_phase, joined, run_chains
from sltlab.estimators.sgld import sgld
from sltlab.estimators.shared_burn_in import longest_burn_in
from sltlab.estimators.step_size import CONCERN_ROWS, concern_curvatures

MAX_CHAINS_PER_RUN = 1024       # chains sampled together at most; more groups are run in turns
MAX_POSITION_NUMBERS = 2 ** 26  # and at most this many numbers in one [chains, d] tensor (256 MiB in float32)
CURVATURE_ROWS = 2 ** 15   # chain-rows of data in one call of the end-of-run curvature, whose graph holds them all
PER_CHAIN_KERNELS = {"sgld": sgld, "mala": mala}   # the kernels that take one step size per chain
# What the paths with extend_unmixed offer in place of a single estimate's reruns.
EXTEND_INSTEAD = "extend_unmixed goes on with the failing groups instead, keeping their draws"
# Samplers whose step, left unset, each group's own warm-up tunes inside the batched run (the
# dual averaging of adapt_step_sizes_in_groups, with MALA's cooling); the others need one given.
WARMED_UP = ("mala",)


class Group(NamedTuple):
    """The settings of one group of C chains: its centre, nβ and step (None: MALA's warm-up
    chooses it), the step's rule in words, and the coordinates its chains move ([d], 1 where
    they move; None: all of them; SGLD only)."""

    localization: Localization
    nbeta: float
    step_size: float | None
    rule: str
    mask: Tensor | None = None


def chains_per_run(chains: int, dim: int) -> int:
    """Chains in one batched run: whole groups, within ``MAX_CHAINS_PER_RUN`` and ``MAX_POSITION_NUMBERS``/d."""
    fits = min(MAX_CHAINS_PER_RUN, MAX_POSITION_NUMBERS // max(dim, 1))
    return max(1, fits // chains) * chains


def batched_runs(groups: int, chains: int, dim: int) -> int:
    """How many runs :func:`estimate_llc_in_groups` takes for ``groups`` groups of ``chains`` chains in d = ``dim``."""
    return -(-groups * chains // chains_per_run(chains, dim))


def sampled_together(count: int, what: str, chains: int, dim: int, how: str) -> str:
    """The note of ``count`` groups (``what``) of ``chains`` chains in d = ``dim`` sampled
    together, ending with ``how`` each group's chains differ."""
    runs = batched_runs(count, chains, dim)
    return (f"the {count} {what} sampled together: {count * chains} chains in {runs} run{'s' if runs > 1 else ''} of "
            f"at most {chains_per_run(chains, dim)}, {how}")


def estimate_llc_at_centers(loss, centers: Sequence[Tensor], data: tuple[Tensor, ...], config: LLCConfig, *,
                            n: int | None = None, progress: bool = False, rule: str = "given",
                            what: str = "centre") -> list[LLCResult]:
    """One :class:`LLCResult` per centre [d] (localised as ``config.localize_at`` says, each on
    its own; a centre that cannot be is named as ``what`` and its index), from runs of at most
    :func:`chains_per_run` chains, at ``config``'s step size, which ``rule`` says how was chosen;
    with MALA and no step size, each centre's own warm-up tunes its step in the batched run.

    Every result is what :func:`~sltlab.estimators.estimate.estimate_llc_from_loss` reports for
    that centre at a given step (diagnostics, dropped chains and warnings from its own chains);
    its ``trace.seconds`` is its share of the batched run's time. With ``config.extend_unmixed`` = k
    the centres whose chains fail the mixing gate go on, together, up to k times, each time for
    as many draws as they hold (:func:`~sltlab.estimators.sample_on.sample_on_unmixed`).
    """
    centers = checked_centers(centers)
    require_config(config)
    if config.step_size is None and config.sampler not in WARMED_UP:
        raise ValueError("batched centres share one step size: give step_size (or calibrate it first); "
                         f"a sampler's own rule would choose one per centre (only {', '.join(WARMED_UP)} warms "
                         "each centre's own step up in the batched run)")
    inputs = run_inputs(data, config, n)
    starts = [center.to(device=inputs.device, dtype=torch.float64) for center in centers]
    if any(start.dim() != 1 or start.shape != starts[0].shape for start in starts):
        raise ValueError(f"every centre must be one vector [d] of the same d; got shapes "
                         f"{sorted({tuple(start.shape) for start in starts})}")
    check_loss_shape(loss, starts[0], inputs.full)
    check_memory(len(starts) * config.chains, starts[0].numel(), config.draws, inputs.dtype, inputs.device,
                 at_once=chains_per_run(config.chains, starts[0].numel()))
    localize = localizer(config.localize_at)
    announce_phase(f"localising {len(starts)} {what}s", enabled=progress)
    resolved, groups = inputs.resolved, []
    for index, start in enumerate(starts):
        try:
            groups.append(Group(localize(loss, start, inputs.full), resolved.nbeta, resolved.step_size, rule))
        except ValueError as error:
            raise ValueError(f"{what} {index}: {error}") from None
    lag_note = None
    if config.burnin is None:   # SGLD's chains from each w*: the run burns in for the longest lag
        posteriors = [LocalPosterior(loss, resolved.nbeta, resolved.localization, group.localization.center.to(
            inputs.dtype)) for group in groups]
        resolved, lag_note = longest_burn_in(posteriors, [resolved.step_size] * len(groups), inputs.batches,
                                             resolved, what)
        inputs = inputs._replace(resolved=resolved)
    results = estimate_llc_in_groups_until_mixed(loss, groups, inputs, data_given=bool(data), progress=progress)
    notes = ((lag_note,) if lag_note else ()) + whole_batches_note(config, inputs.n)
    results = [replace(result, notes=result.notes + notes) for result in results] if notes else results
    shared = "at one step" if config.step_size is not None else "each at the step its own warm-up tuned"
    return remedies_not_applied(results, resolved, f"the centres share one batched run, {shared}", EXTEND_INSTEAD)


def estimate_llc_in_groups_until_mixed(loss, groups: Sequence[Group], inputs: RunInputs, *, data_given: bool,
                                       progress: bool = False, shared_noise: bool = False,
                                       loss_of: Callable[[Sequence[int]], Any] | None = None,
                                       group_losses: Sequence | None = None) -> list[LLCResult]:
    """:func:`estimate_llc_in_groups`, the groups whose chains fail the mixing gate going on from
    where they ended, each at the step it ran at, together, up to ``extend_unmixed`` times, each
    time doubling their draws (:func:`~sltlab.estimators.sample_on.sample_on_unmixed`); ``loss_of``
    gives the loss of some of the groups (by index) where ``loss`` scores all of them together, and
    ``group_losses`` each group's own."""
    rounds = inputs.resolved.extend_unmixed
    if rounds and inputs.resolved.functional_variance:
        raise ValueError("extend_unmixed cannot go on with the functional variance: it is a total over one run's draws")

    def go_on(chosen: Sequence[int], earlier: Sequence[LLCResult], draws: int) -> list[LLCResult]:
        stepped = [groups[index]._replace(step_size=result.config.step_size, rule=result.step_size_rule)
                   for index, result in zip(chosen, earlier)]   # a step from MALA's warm-up is kept
        return estimate_llc_in_groups(loss if loss_of is None else loss_of(chosen), stepped,
                                      inputs._replace(resolved=replace(inputs.resolved, draws=draws)),
                                      data_given=data_given, progress=progress, shared_noise=shared_noise,
                                      earlier=[result.trace for result in earlier],
                                      group_losses=None if group_losses is None else [group_losses[i] for i in chosen])

    return sample_on_unmixed(lambda: estimate_llc_in_groups(loss, groups, inputs, data_given=data_given,
                                                            progress=progress, shared_noise=shared_noise,
                                                            group_losses=group_losses),
                             go_on, rounds)


def estimate_llc_in_groups(loss, groups: Sequence[Group], inputs: RunInputs, *, data_given: bool,
                           progress: bool = False, shared_noise: bool = False,
                           earlier: Sequence[Trace] | None = None, group_losses: Sequence | None = None
                           ) -> list[LLCResult]:
    """One :class:`LLCResult` per group, the groups sampled together in runs of at most
    :func:`chains_per_run` chains, each group's C chains at its own centre, nβ and step; with
    ``shared_noise`` every group of a run on the same random numbers
    (:func:`~sltlab.estimators.posterior.common_noise`). With ``earlier`` (one finished trace
    per group, every group's step given) each group's chains go on from where that trace ended,
    for ``draws`` more and no burn-in, and its result is read from both traces
    :func:`~sltlab.estimators.sampling.joined`. With ``group_losses`` (one per group, where ``loss``
    scores the groups' chains only all at once, as a stacked loss does) each result's checks after
    the run, which evaluate its chains alone, use its group's own loss."""
    n, device, dtype, generator, _, resolved, batches = inputs
    resolved, metric_note = metric_not_applied(resolved, groups[0].localization.center.expand(len(groups), -1))
    chains = resolved.chains
    per_run = chains_per_run(chains, groups[0].localization.center.numel()) // chains
    results = []
    for first in range(0, len(groups), per_run):
        part = groups[first:first + per_run]
        center = torch.stack([group.localization.center for group in part]).to(dtype)

        def per_chain(values: list[float]) -> Tensor:
            return torch.tensor(values, dtype=dtype, device=device).repeat_interleave(chains)

        posterior = LocalPosterior(loss, per_chain([group.nbeta for group in part]) if len(part) > 1 else part[0].nbeta,
                                   resolved.localization, center.repeat_interleave(chains, 0))
        masks = _chain_masks(part, chains, center)
        if masks is not None and resolved.sampler != "sgld":
            raise ValueError(f"groups confined to some coordinates need sgld's kernel, not {resolved.sampler}")
        warmup = None
        if part[0].step_size is None:
            announce_phase(f"warming up {len(part)} groups' {resolved.sampler} steps together", enabled=progress)
            steps, reached, warmup = adapt_step_sizes_in_groups(
                posterior, batches, chains=chains, warmup_steps=max(200, resolved.burnin_steps), generator=generator,
                anneal=resolved.anneal, cooled_share=resolved.cooled_share, shared_noise=shared_noise,
                progress=progress)
            part = [group._replace(step_size=float(step), rule=(
                f"dual averaging to MALA acceptance {MALA_TARGET_ACCEPTANCE} over {warmup.steps} warm-up steps "
                f"(reached {float(rate):.2f}), every group's own step in one batched warm-up"))
                for group, step, rate in zip(part, steps, reached)]
        if masks is not None:
            kernel = sgld(posterior, step_size=per_chain([g.step_size for g in part]), mask=masks)
        elif len({(group.nbeta, group.step_size) for group in part}) == 1:
            posterior = posterior._replace(nbeta=part[0].nbeta)
            kernel = SAMPLERS[resolved.sampler].kernel(posterior, replace(resolved, step_size=part[0].step_size))
        else:
            kernel = PER_CHAIN_KERNELS[resolved.sampler](posterior, step_size=per_chain([g.step_size for g in part]))
        kernel = common_noise(kernel, len(part)) if shared_noise else kernel
        going_on = None if earlier is None else _stacked_states([t.final_state for t in earlier[first:first + per_run]])
        trace = run_chains(compiled(kernel) if resolved.compile_step else kernel, posterior, batches,
                           chains=len(part) * chains, draws=resolved.draws,
                           burnin=resolved.burnin if earlier is None else 0,
                           thin=resolved.thin, generator=generator, progress=progress,
                           initial_state=going_on if warmup is None else warmup.final_state,
                           full_data_every=max(1, resolved.draws // 200) if resolved.functional_variance and data_given
                           else None)
        if warmup is not None:
            trace = after_warm_up(warmup, trace)
        curvatures = _curvatures(trace, posterior, batches, resolved, generator, masks)
        for index, group in enumerate(part):
            rows = slice(index * chains, (index + 1) * chains)
            alone = posterior._replace(center=center[index], nbeta=group.nbeta,
                                       loss=loss if group_losses is None else group_losses[first + index])
            own = chains_of(trace, rows, len(part))
            own = own if earlier is None else joined(earlier[first + index], own)
            settings = replace(resolved, nbeta=group.nbeta, step_size=group.step_size,
                               draws=own.fields["loss"].shape[1])
            result = result_of_trace(own, alone, batches, settings, group.localization, group.rule, generator, n,
                                     curvature=None if curvatures is None else float(curvatures[rows].max()),
                                     moving=group.mask)
            results.append(result if metric_note is None else replace(result, notes=result.notes + (metric_note,)))
    return results


def _chain_masks(part: Sequence[Group], chains: int, center: Tensor) -> Tensor | None:
    """The coordinates each chain moves, [len(part)·chains, d] (all without a mask); None when no group has one."""
    if all(group.mask is None for group in part):
        return None
    every = torch.ones_like(center[0])
    return torch.stack([every if group.mask is None else group.mask.to(every) for group in part]).repeat_interleave(
        chains, 0)


def _curvatures(trace: Trace, posterior: LocalPosterior, batches: Batches, config: LLCConfig,
                generator: torch.Generator, masks: Tensor | None = None) -> Tensor | None:
    """For SGLD's step-size concern (:func:`~sltlab.estimators.step_size.step_size_concern`),
    h_max where each chain ended (0 for a dropped one) on ``CONCERN_ROWS`` rows drawn at random,
    within the coordinates each chain moves (``masks``); None for the other samplers. Each
    estimate's kept chains are measured on their own, as an estimate alone measures them (in
    calls of at most ``CURVATURE_ROWS`` chain-rows): the Lanczos steps stop once every chain of a
    call has settled, sooner the fewer they are, and more chains to a call did not make a product
    cheaper per chain (on the grokking network 3.2 ms per chain and product in fours, 3.5 in 29s)."""
    if config.sampler != "sgld" or trace.final_state is None:
        return None
    position = trace.final_state.position
    kept = torch.as_tensor(~trace.diverged, device=position.device).nonzero().flatten()
    curvatures = torch.zeros(len(position), dtype=position.dtype, device=position.device)
    rows = batches.subsample(CONCERN_ROWS, generator)
    per_call = max(1, CURVATURE_ROWS // max(min(batches.n, CONCERN_ROWS), 1))
    for first in range(0, len(position), config.chains):
        own = kept[(kept >= first) & (kept < first + config.chains)]
        for start in range(0, len(own), per_call):
            chains = own[start:start + per_call]
            curvatures[chains] = concern_curvatures(posterior.loss, position[chains], rows, generator=generator,
                                                    mask=None if masks is None else masks[chains])
    return curvatures


def chains_of(trace: Trace, rows: slice, share: int) -> Trace:
    """The chains ``rows`` of a batched run's trace, as the trace of a run of those chains alone,
    with ``1/share`` of its time."""
    return trace._replace(fields={name: values[rows] for name, values in trace.fields.items()},
                          diverged=trace.diverged[rows], divergence_step=trace.divergence_step[rows],
                          functional_variance=None if trace.functional_variance is None
                          else trace.functional_variance[rows],
                          seconds=trace.seconds / share, final_state=_state_rows(trace.final_state, rows),
                          cooled=None if trace.cooled is None else trace.cooled[rows])


def _stacked_states(states: Sequence[Any]) -> Any:
    """Sampler states of disjoint chains (fields with the chain dimension first, possibly nested) as one state."""
    if states[0] is None:
        return None
    if isinstance(states[0], Tensor):
        return torch.cat(list(states))
    return type(states[0])(*(_stacked_states(parts) for parts in zip(*states)))


def _state_rows(state: Any, rows: slice) -> Any:
    """A sampler state's fields (tensors with the chain dimension first, possibly nested) at ``rows``."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state[rows]
    return type(state)(*(_state_rows(part, rows) for part in state))
