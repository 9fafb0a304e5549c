"""Posterior phase occupancy over a ladder of sample sizes, the observed crossover n, and the
checks that the occupancy converged.

Every ladder of the replica-exchange run is an independent Markov chain over the R rungs, so
its time average of each phase's indicator is one estimate of the occupancy per rung, and the
M ladders give a standard error and a jackknife (Quenouille 1956; Efron & Stein 1981) for
anything computed from their pooled means.

The observed crossover of a transition a → b is where b comes to hold more posterior mass than
a: the last sign change, from ≤ 0 to > 0, of the pooled difference D(n) between them over the
rungs, interpolated linearly in log n between the two rungs around it (the same rule as the
predicted n: the largest crossing).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

MIN_MASS = 0.01   # rungs where the two phases hold less than this share together are left out


def occupancy(labels: np.ndarray, label: int) -> np.ndarray:
    """Share of draws with ``label`` per rung and ladder: labels [R, M, draws] → [R, M]."""
    return (labels == label).mean(-1)


def crossover(before: np.ndarray, after: np.ndarray, n: np.ndarray) -> float | None:
    """The observed crossover (module docstring) from shares [R] (or [R, M], pooled over
    ladders first) at sample sizes ``n`` [R]. D is taken as q − ½ with q = p_b/(p_a + p_b),
    b's share of the two phases' mass (equal mass is q = ½ whatever the other phases hold),
    on the rungs where the two phases hold at least :data:`MIN_MASS` together. None when D
    never turns positive for good."""
    before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if before.ndim == 2:
        before, after = before.mean(1), after.mean(1)
    total = before + after
    kept = np.flatnonzero(total >= MIN_MASS)
    difference = after[kept] / total[kept] - 0.5
    turns = [i for i in range(len(kept) - 1) if difference[i] <= 0 < difference[i + 1]]
    if not turns or (difference[turns[-1] + 1:] <= 0).any():
        return None
    i = turns[-1]
    low, high = math.log(n[kept[i]]), math.log(n[kept[i + 1]])
    weight = -difference[i] / (difference[i + 1] - difference[i])
    return float(math.exp(low + weight * (high - low)))


def jackknife_crossover(before: np.ndarray, after: np.ndarray, n: np.ndarray) -> tuple[float | None, float | None]:
    """The pooled crossover from shares [R, M] and its jackknife standard error over the M
    ladders: √((M − 1)/M · Σ(x_(i) − x̄)²). The error is None when some leave-one-out
    estimate has no crossing."""
    estimate = crossover(before, after, n)
    ladders = before.shape[1]
    leave_out = [crossover(np.delete(before, m, 1), np.delete(after, m, 1), n) for m in range(ladders)]
    if estimate is None or any(x is None for x in leave_out):
        return estimate, None
    values = np.array(leave_out)
    return estimate, float(math.sqrt((ladders - 1) / ladders * ((values - values.mean()) ** 2).sum()))


def observed_transition(labels: np.ndarray, before: int, after: int, n: np.ndarray,
                        groups: Sequence[np.ndarray]) -> dict[str, Any]:
    """Everything measured about one transition from labels [R, M, draws]: the crossover with
    its jackknife SE, the crossover seen by each group of ladders (e.g. by where they started)
    and by each half of the draws, and the largest difference between the groups' occupancies
    of ``after`` over the rungs, also in units of its standard error (over the rungs where
    that error is not 0)."""
    share_before, share_after = occupancy(labels, before), occupancy(labels, after)
    estimate, error = jackknife_crossover(share_before, share_after, n)
    half = labels.shape[-1] // 2
    halves = [crossover(occupancy(part, before), occupancy(part, after), n)
              for part in (labels[..., :half], labels[..., half:])]
    by_group = [crossover(share_before[:, g], share_after[:, g], n) for g in groups]
    means = [share_after[:, g].mean(1) for g in groups]
    errors = [share_after[:, g].std(1, ddof=1) / math.sqrt(len(g)) for g in groups]
    combined = np.sqrt(errors[0] ** 2 + errors[1] ** 2)
    gap = np.abs(means[0] - means[1])
    resolved = combined > 0
    z = float((gap[resolved] / combined[resolved]).max()) if resolved.any() else None
    return {"observed_n": estimate, "observed_se": error, "observed_by_start": by_group,
            "observed_by_half": halves, "largest_start_difference_z": z,
            "largest_start_difference": float(gap.max())}


def occupancy_table(labels: np.ndarray, names: dict[str, int]) -> dict[str, dict[str, list[float]]]:
    """Per class (and "other"), the mean share per rung and its standard error over ladders."""
    table = {}
    known = list(names.values())
    for name, label in [*names.items(), ("other", None)]:
        hits = ~np.isin(labels, known) if label is None else labels == label
        shares = hits.mean(-1)
        table[name] = {"mean": shares.mean(1).tolist(),
                       "se": (shares.std(1, ddof=1) / math.sqrt(shares.shape[1])).tolist()}
    return table
