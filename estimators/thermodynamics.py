"""The singular fluctuation, as a pure function of traces (Watanabe 2010, JMLR 11, eqs. 17
and 21): V_n = Σ_i Var_w[log p(y_i | x_i, w)], the functional variance over posterior draws,
and ν̂ = (β/2)·V_n. In a regular realisable model ν = d/2 at every β.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

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


def singular_fluctuation(trace: Trace, beta: float, *, dropped: Sequence[int] = ()) -> ChainMean:
    """ν̂ = (β/2)·V_n per chain, from the functional variance the run accumulated, over the chains
    that neither diverged nor are in ``dropped`` (those λ̂ left out: :func:`sltlab.estimators.llc.llc_from_trace`)."""
    if trace.functional_variance is None:
        raise ValueError("the run did not record the functional variance (set full_data_every)")
    left_out = np.array(trace.diverged, dtype=bool, copy=True)
    left_out[list(dropped)] = True
    return chain_mean(0.5 * beta * trace.functional_variance, left_out)
