"""λ̂ of K problems, each with its own loss and centre (the checkpoints of a training run, each
against its own targets), as one batched run: :func:`estimate_llc_of_problems`.

The chains of a localised posterior never interact, so K problems side by side are K
independent estimates, each as :func:`~sltlab.estimators.estimate.estimate_llc_from_loss` gives
it alone with other random numbers (:mod:`sltlab.estimators.batched`). A small network costs
by the step, not by the chain, so this is where batching pays most. With ``shared_noise`` every
problem is driven by the same random numbers instead (common random numbers,
:func:`~sltlab.estimators.posterior.common_noise`): each estimate keeps its own law and SE,
while the differences between neighbouring problems — the rises and falls of an LLC curve along
training — carry less noise. One checkpoint after another at one seed had that by accident.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from sltlab.estimators.batched import EXTEND_INSTEAD, PER_CHAIN_KERNELS, Group, chains_per_run
from sltlab.estimators.batched import estimate_llc_in_groups_until_mixed
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.estimate import run_inputs
from sltlab.estimators.result import LLCResult
from sltlab.estimators.sample_on import remedies_not_applied
from sltlab.estimators.localize import localizer
from sltlab.estimators.posterior import LocalPosterior
from sltlab.estimators.samplers import SAMPLERS

# The samplers that run problems with losses of their own side by side: SGLD's end-of-run check
# scores some of the chains, which a stacked loss cannot.
STACKS_OWN_LOSSES = ("mala",)


def estimate_llc_of_problems(losses: Sequence, centers: Sequence[Tensor], data: tuple[Tensor, ...],
                             config: LLCConfig, *, stack: Callable[[Sequence, int], Any], n: int | None = None,
                             shared_noise: bool = False, progress: bool = False) -> list[LLCResult]:
    """One :class:`LLCResult` per problem, ``losses[k]`` at ``centers[k]`` [d] (localised as
    ``config.localize_at`` says), as batched runs: ``stack(losses, chains)`` is one loss that
    scores chain row c by ``losses[c // chains]`` (e.g.
    :class:`~sltlab.models.deep_linear_losses.StackedFullDataLoss`; the one loss itself when all
    problems share it, e.g. several centres of one data set). Each problem takes its step as it
    would alone: ``config``'s, its own MALA warm-up, or SGLD's rule at its own centre. With
    ``shared_noise`` the problems of one run share their random numbers (module docstring). With
    ``config.extend_unmixed`` = k the problems whose chains fail the mixing gate go on, together,
    at the step each ran at, up to k times, each time for as many draws as they hold
    (:func:`~sltlab.estimators.sample_on.sample_on_unmixed`)."""
    if not losses or len(losses) != len(centers):
        raise ValueError(f"need one centre per loss, got {len(losses)} losses and {len(centers)} centres")
    if config.step_size is None and config.sampler not in PER_CHAIN_KERNELS:
        raise ValueError(f"problems sampled together each take their own step: give step_size, or use "
                         f"{' or '.join(PER_CHAIN_KERNELS)}, not {config.sampler}")
    if len({id(loss) for loss in losses}) > 1 and config.sampler not in STACKS_OWN_LOSSES:
        raise ValueError(f"problems with losses of their own are sampled together by "
                         f"{', '.join(STACKS_OWN_LOSSES)} only, not {config.sampler}: "
                         "a stacked loss scores all chains at once, and SGLD's end-of-run check scores some of them")
    inputs = run_inputs(data, config, n)
    resolved, kind = inputs.resolved, SAMPLERS[config.sampler]
    localize = localizer(config.localize_at)
    groups = []
    for loss, center in zip(losses, centers):
        localization = localize(loss, center.to(device=inputs.device, dtype=torch.float64), inputs.full)
        if config.step_size is not None or kind.warm_up is not None:
            groups.append(Group(localization, resolved.nbeta, config.step_size, "given" if config.step_size else ""))
        else:
            centre = localization.center.to(inputs.dtype)
            posterior = LocalPosterior(loss, resolved.nbeta, resolved.localization, centre)
            groups.append(Group(localization, resolved.nbeta,
                                *kind.step_size_rule(posterior, inputs.batches, resolved, inputs.generator)))
    per_run = chains_per_run(resolved.chains, groups[0].localization.center.numel()) // resolved.chains
    results = []
    for first in range(0, len(groups), per_run):
        stacked = stack(losses[first:first + per_run], resolved.chains)
        own = losses[first:first + per_run]
        results += estimate_llc_in_groups_until_mixed(stacked, groups[first:first + per_run], inputs,
                                                      data_given=bool(data), progress=progress,
                                                      shared_noise=shared_noise, group_losses=own,
                                                      loss_of=lambda chosen, own=own: stack(
                                                          [own[index] for index in chosen], resolved.chains))
    return remedies_not_applied(results, resolved, "the problems share one batched run", EXTEND_INSTEAD)
