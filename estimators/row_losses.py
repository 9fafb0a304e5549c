"""Per-sample losses over all n rows: the functional variance's running moments, and the table
of every row's loss at the centres from which L_b(w*) on a minibatch is read instead of evaluated.

A per-sample loss ℓ_i(w) does not depend on the other rows, so L_b(w*) = (1/b)·Σ_{i ∈ b} ℓ_i(w*)
is a mean of entries of one table [centres, n] computed once; :func:`center_row_losses` builds it
where that is cheaper than evaluating L_b(w*) at every recorded draw (on the grokking network the
per-draw evaluation took a third of the sampling time), and the numbers agree up to rounding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

if TYPE_CHECKING:
    from sltlab.estimators.sampling import Batches

# The table holds at most this many numbers (64 MiB in float32); beyond it L_b(w*) is evaluated per draw.
CENTER_TABLE_NUMBERS = 2 ** 24


def full_data_losses(loss, position: Tensor, batches: Batches, rows: int | None = None) -> Tensor:
    """Every chain's per-sample losses on all n rows, [C, n], evaluated ``rows`` rows at a time
    (default ``FULL_PASS_ROWS``): a pass holds the intermediate tensors of a batch of ``rows``
    rows per chain, not of n. A per-sample loss does not depend on the other rows, so the
    numbers are those of one pass over all rows up to rounding (a matrix product over fewer
    rows may be blocked differently and differ in the last bits)."""
    if not batches.data:
        return loss(position, None)
    return torch.cat([loss(position, chunk) for chunk in batches.chunks(rows)], dim=-1)


class CenterLosses(NamedTuple):
    """ℓ_i(w*) for every row i at each distinct centre ([K, n]) and the centre of each chain ([C])."""

    table: Tensor
    owner: Tensor

    def mean_at(self, indices: Tensor) -> Tensor:
        """L_b(w*) of every chain on its minibatch rows ``indices`` [C, b], [C]."""
        return self.table[self.owner.unsqueeze(-1), indices].mean(-1)


def center_row_losses(loss, center: Tensor, batches: Batches, *, chains: int, draws: int) -> CenterLosses | None:
    """The table of every row's loss at the chains' centres (``center`` [1 or C, d]) when the
    chains draw minibatches of rows held in memory and building it costs fewer per-sample
    evaluations (K·n, K distinct centres) than L_b(w*) at ``draws`` recorded draws (draws·C·b)
    and fits in ``CENTER_TABLE_NUMBERS``; otherwise None. Streamed rows are read and evaluated
    per draw: a data set may transform its rows at random, and L_b(w*) must see the rows L_b(w) saw."""
    if batches.is_full or batches.streamed:
        return None
    distinct, owner = torch.unique(center, dim=0, return_inverse=True)
    numbers = len(distinct) * batches.n
    if numbers > min(CENTER_TABLE_NUMBERS, draws * chains * batches.batch_size):
        return None
    with torch.no_grad():
        table = full_data_losses(loss, distinct, batches)
    return CenterLosses(table, owner.expand(chains) if len(center) == 1 else owner)


class RunningVariance:
    """Running per-(chain, sample) mean and sum of squared deviations over draws (Welford 1962)."""

    def __init__(self):
        self.count, self.mean, self.squares = 0, None, None

    def add(self, values: Tensor) -> None:
        values = values.double()
        self.count += 1
        if self.mean is None:
            self.mean, self.squares = values.clone(), torch.zeros_like(values)
            return
        delta = values - self.mean
        self.mean += delta / self.count
        self.squares += delta * (values - self.mean)

    def total(self) -> Tensor:
        """Σ_i of the sample variance over draws, per chain."""
        if self.count < 2:
            raise ValueError("the functional variance needs at least two full-data draws")
        return (self.squares / (self.count - 1)).sum(-1)
