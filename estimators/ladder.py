"""λ and m together from LLC estimates over a ladder of inverse temperatures, fitted as
λ̂(t) = λ − (m − 1)/log t (:func:`sltlab.estimators.multiplicity.fit_multiplicity`). With SGLD
or MALA the rungs are one batched run, each rung's chains at its own nβ and step (MALA's steps
from one warm-up of all rungs together;
:func:`estimate_llc_at_temperatures`); other samplers run one rung
after another, each its own estimate."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import NamedTuple, Sequence

import torch
from torch import Tensor

from sltlab.estimators.batched import (EXTEND_INSTEAD, PER_CHAIN_KERNELS, Group, batched_runs, chains_per_run,
                                       estimate_llc_in_groups_until_mixed)
from sltlab.estimators.checks import check_loss_shape, check_memory, check_position
from sltlab.estimators.config import LLCConfig, require_config
from sltlab.estimators.estimate import estimate_llc_from_loss, run_inputs
from sltlab.estimators.result import LLCResult
from sltlab.estimators.localize import localizer
from sltlab.estimators.posterior import LocalPosterior
from sltlab.estimators.sample_on import remedies_not_applied
from sltlab.estimators.samplers import SAMPLERS
from sltlab.estimators.multiplicity import MultiplicityFit, fit_multiplicity, temperature_ladder


class LadderEstimate(NamedTuple):
    """(nβ, λ̂, SE) per rung; the fit, or why there is none; how the rungs were sampled; and per
    rung its R-hat, ESS, dropped chains and warnings."""

    rungs: list[tuple[float, float | None, float | None]]
    fit: MultiplicityFit | None
    reason: str | None
    how: str = ""
    diagnostics: tuple[dict, ...] = ()


def estimate_over_temperatures(loss, true_parameter: Tensor, data: tuple[Tensor, ...], config: LLCConfig, *,
                               count: int, n: int, progress: bool = False) -> LadderEstimate:
    """LLC estimates at ``count`` values of nβ over two decades around ``config.nbeta`` (which
    must be resolved), fitted for λ and m. A step the user gave is rescaled as 1/nβ; otherwise
    each temperature resolves its own."""
    if config.nbeta is None:
        raise ValueError("the ladder is centred on a given nβ: resolve config.nbeta first")
    nbetas = temperature_ladder(config.nbeta, count)
    if config.sampler in PER_CHAIN_KERNELS:
        results = estimate_llc_at_temperatures(loss, true_parameter, data, config, nbetas, n=n, progress=progress)
        runs = batched_runs(count, config.chains, true_parameter.numel())
        together = "as one batched run" if runs == 1 else f"in {runs} batched runs of whole rungs"
        how = (f"the {count} rungs sampled together {together}, each rung's {config.chains} chains at its own nβ and "
               "step (dropped chains reported per rung, not rerun)")
    else:
        results = []
        for nbeta in nbetas:
            step_size = None if config.step_size is None else config.step_size * config.nbeta / nbeta
            results.append(estimate_llc_from_loss(loss, true_parameter, data,
                                                  replace(config, nbeta=nbeta, step_size=step_size),
                                                  n=n, progress=progress))
        how = f"the {count} rungs sampled one after another: {config.sampler} takes one step size for all its chains"
    rungs = [(nbeta, one.estimate.mean, one.estimate.standard_error) for nbeta, one in zip(nbetas, results)]
    diagnostics = tuple({"nbeta": nbeta, "rhat": one.estimate.rhat, "ess": one.estimate.ess,
                         "dropped_chains": list(one.estimate.diverged_chains), "warnings": list(one.warnings)}
                        for nbeta, one in zip(nbetas, results))
    if any(mean is None or not se for _, mean, se in rungs):
        return LadderEstimate(rungs, None, "an estimate on the ladder diverged or has no standard error", how,
                              diagnostics)
    return LadderEstimate(rungs, fit_multiplicity(*zip(*rungs)), None, how, diagnostics)


def estimate_llc_at_temperatures(loss, true_parameter: Tensor, data: tuple[Tensor, ...], config: LLCConfig,
                                 nbetas: Sequence[float], *, n: int | None = None,
                                 progress: bool = False) -> list[LLCResult]:
    """One :class:`LLCResult` per nβ at one centre (localised once, as ``config.localize_at``
    says), as one batched run. A step size given is ``config``'s at ``config.nbeta`` and is
    scaled as 1/nβ; otherwise each nβ takes the sampler's own rule there (MALA: its warm-up, all
    rungs at once). Only samplers in ``PER_CHAIN_KERNELS`` take a step per chain; dropped chains
    are reported, not rerun; rungs whose chains fail the mixing gate go on as ``config.extend_unmixed`` says."""
    require_config(config)
    if config.sampler not in PER_CHAIN_KERNELS:
        raise ValueError(f"a batched temperature ladder needs a kernel with a step per chain "
                         f"({', '.join(PER_CHAIN_KERNELS)}), not {config.sampler}")
    if config.step_size is not None and config.nbeta is None:
        raise ValueError("a given step size is scaled from config.nbeta as 1/nβ: give nbeta too")
    if isinstance(nbetas, (str, bytes)) or not hasattr(nbetas, "__iter__") or getattr(nbetas, "ndim", 1) != 1:
        raise ValueError(f"nbetas must be a list of numbers (one per temperature), got {nbetas!r}"[:200])
    nbetas = [float(nbeta) for nbeta in nbetas]
    if not nbetas or not all(1 < nbeta < math.inf for nbeta in nbetas):
        raise ValueError(f"nbetas must be one or more finite numbers above 1, got {nbetas}")
    for nbeta in nbetas:   # each in the range the dtype holds, as config.nbeta is checked
        replace(config, nbeta=nbeta).validate()
    check_position(true_parameter, "the true parameter")
    inputs = run_inputs(data, config, n)
    start = true_parameter.to(device=inputs.device, dtype=torch.float64)
    check_loss_shape(loss, start, inputs.full)
    check_memory(len(nbetas) * config.chains, start.numel(), config.draws, inputs.dtype, inputs.device,
                 at_once=chains_per_run(config.chains, start.numel()))
    localize = localizer(config.localize_at)
    localization = localize(loss, start, inputs.full)
    resolved, kind = inputs.resolved, SAMPLERS[config.sampler]
    groups = []
    for nbeta in nbetas:
        if config.step_size is not None:
            step_size, rule = config.step_size * config.nbeta / nbeta, f"given at nβ = {config.nbeta:g}, scaled as 1/nβ"
        elif kind.warm_up is not None:
            step_size, rule = None, ""   # the warm-up of all rungs together chooses each rung's step
        else:
            posterior = LocalPosterior(loss, nbeta, resolved.localization, localization.center.to(inputs.dtype))
            step_size, rule = kind.step_size_rule(posterior, inputs.batches, replace(resolved, nbeta=nbeta),
                                                  inputs.generator)
        groups.append(Group(localization, nbeta, step_size, rule))
    results = estimate_llc_in_groups_until_mixed(loss, groups, inputs, data_given=bool(data), progress=progress)
    return remedies_not_applied(results, resolved, "the rungs share one batched run", EXTEND_INSTEAD)
