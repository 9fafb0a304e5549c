"""λ and m together from LLC estimates over a ladder of inverse temperatures, fitted as
λ̂(t) = λ − (m − 1)/log t (:func:`sltlab.estimators.multiplicity.fit_multiplicity`). With SGLD
or MALA the rungs are one batched run, each rung's chains at its own nβ and step (MALA's steps
from one warm-up of all rungs together;
:func:`sltlab.estimators.batched.estimate_llc_at_temperatures`); other samplers run one rung
after another, each its own estimate."""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from torch import Tensor

from sltlab.estimators.batched import PER_CHAIN_KERNELS, batched_runs, estimate_llc_at_temperatures
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.estimate import estimate_llc_from_loss
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
