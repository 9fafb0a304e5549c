"""Singular fluctuation, WBIC and the two-temperature global λ, as pure functions of traces.

- Singular fluctuation (Watanabe 2010, JMLR 11, eqs. 17 and 21):
  V_n = Σ_i Var_w[log p(y_i | x_i, w)] (the functional variance over posterior draws) and
  ν̂ = (β/2)·V_n. In a regular realisable model ν = d/2 at every β.
- WBIC (Watanabe 2013, JMLR 14, Def. 2 and Thm. 4): WBIC = E^{β*}[n·L_n(w)] with β* = 1/log n,
  and λ̂ = (WBIC − n·L_n(ŵ))/log n.
- Two temperatures (Watanabe 2013, Cor. 3): λ̂ = (E^{β1}[nL_n] − E^{β2}[nL_n])/(1/β1 − 1/β2).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from sltlab.estimators.sampling import Trace


class ChainMean(NamedTuple):
    """A per-chain quantity averaged over the chains that did not diverge."""

    mean: float | None
    standard_error: float | None   # spread across chains / √C; None with one chain
    per_chain: list[float | None]


def chain_mean(values: np.ndarray, diverged: np.ndarray) -> ChainMean:
    kept = values[~diverged]
    per_chain = [float(v) if not bad else None for v, bad in zip(values, diverged)]
    if len(kept) == 0:
        return ChainMean(None, None, per_chain)
    error = float(kept.std(ddof=1) / math.sqrt(len(kept))) if len(kept) > 1 else None
    return ChainMean(float(kept.mean()), error, per_chain)


def singular_fluctuation(trace: Trace, beta: float) -> ChainMean:
    """ν̂ = (β/2)·V_n per chain, from the functional variance the run accumulated."""
    if trace.functional_variance is None:
        raise ValueError("the run did not record the functional variance (set full_data_every)")
    return chain_mean(0.5 * beta * trace.functional_variance, trace.diverged)


def wbic_lambda(n: int, mean_loss: float, minimum_loss: float) -> tuple[float, float]:
    """WBIC = n·E^{β*}[L_n] and the global λ̂ = (WBIC − n·L_n(ŵ))/log n.

    ``mean_loss`` is E[L_n(w)] over draws at β* = 1/log n, ``minimum_loss`` is L_n(ŵ).
    """
    wbic = n * mean_loss
    return wbic, (wbic - n * minimum_loss) / math.log(n)


def two_temperature_lambda(mean_nloss_1: float, beta_1: float, mean_nloss_2: float, beta_2: float) -> float:
    """λ̂ from E[n·L_n] at two inverse temperatures β1 ≠ β2."""
    if beta_1 <= 0 or beta_2 <= 0 or beta_1 == beta_2:
        raise ValueError(f"need two distinct positive inverse temperatures, got {beta_1} and {beta_2}")
    return (mean_nloss_1 - mean_nloss_2) / (1 / beta_1 - 1 / beta_2)
