"""λ and m together from LLC estimates over a ladder of inverse temperatures, each its own
run at its own nβ, fitted as λ̂(t) = λ − (m − 1)/log t
(:func:`sltlab.estimators.multiplicity.fit_multiplicity`)."""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from torch import Tensor

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.multiplicity import MultiplicityFit, fit_multiplicity, temperature_ladder


class LadderEstimate(NamedTuple):
    """(nβ, λ̂, SE) per rung; the fit, or why there is none."""

    rungs: list[tuple[float, float | None, float | None]]
    fit: MultiplicityFit | None
    reason: str | None


def estimate_over_temperatures(loss, true_parameter: Tensor, data: tuple[Tensor, ...], config: LLCConfig, *,
                               count: int, n: int, progress: bool = False) -> LadderEstimate:
    """LLC estimates at ``count`` values of nβ over two decades around ``config.nbeta`` (which
    must be resolved), fitted for λ and m. A step the user gave is rescaled as 1/nβ; otherwise
    each temperature resolves its own."""
    if config.nbeta is None:
        raise ValueError("the ladder is centred on a given nβ: resolve config.nbeta first")
    rungs = []
    for nbeta in temperature_ladder(config.nbeta, count):
        step_size = None if config.step_size is None else config.step_size * config.nbeta / nbeta
        one = estimate_llc_from_loss(loss, true_parameter, data, replace(config, nbeta=nbeta, step_size=step_size),
                                     n=n, progress=progress)
        rungs.append((nbeta, one.estimate.mean, one.estimate.standard_error))
    if any(mean is None or not se for _, mean, se in rungs):
        return LadderEstimate(rungs, None, "an estimate on the ladder diverged or has no standard error")
    return LadderEstimate(rungs, fit_multiplicity(*zip(*rungs)), None)
