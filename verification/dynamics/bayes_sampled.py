"""The toy model's posterior on sampled data, as the Bayesian study samples it with
``--data sampled``: M/2 data sets of 1-sparse inputs are drawn
(:func:`sltlab.models.tms_sampled.one_sparse_inputs`), ladders m and m + M/2 sharing set m, so
that the two halves of the ladders, started in different phases, sample the same posteriors and
their agreement still tests convergence; rung r of a ladder targets
exp(−E_r(w))·N(w; 0, I) with E_r the sum of squared errors over its first n_r rows — the
posterior of a data set of n_r rows, the rungs of one ladder nested (Chen, Lau, Mendel, Wei &
Murfet 2023, §5, sample the posterior of data sets this way; the default study replaces E_r by
n_r·L, L the population loss). An exchange between rungs r and r + 1 is then accepted with
probability min{1, exp[E_r(w_r) + E_{r+1}(w_{r+1}) − E_r(w_{r+1}) − E_{r+1}(w_r)]}: the two
cross terms are computed at every swap round (:func:`sltlab.estimators.exchange.run_replica_exchange`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from sltlab.models.tms import ToyModelOfSuperposition
from sltlab.models.tms_sampled import SampledSquaredError, one_sparse_inputs

DATA_STREAM = 1   # the data sets' seed is (seed, DATA_STREAM): the starts and the sampler keep theirs


def sampled_energies(features: int, sizes: np.ndarray, ladders: int, seed: int
                     ) -> tuple[Callable[[Tensor, object], Tensor], Callable[[Tensor, Tensor], Tensor]]:
    """(loss, swap_log_ratio) for ``ladders`` (even) ladders on the integer sample sizes
    ``sizes``: the loss of chain r·M + m is E_r/n_r on data set m mod M/2 (the exchange multiplies
    it by n_r)."""
    rungs, sets = len(sizes), ladders // 2
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, DATA_STREAM]).generate_state(1)[0]))
    active, magnitudes = one_sparse_inputs(sets, int(sizes[-1]), features, generator)
    per_chain = [int(size) for size in sizes for _ in range(ladders)]
    error = SampledSquaredError(ToyModelOfSuperposition(features), active, magnitudes,
                                [ladder % sets for _ in range(rungs) for ladder in range(ladders)], per_chain)
    counts = torch.tensor(per_chain, dtype=torch.float64)
    lower = torch.arange((rungs - 1) * ladders)   # the chains of rungs 0 … R − 2

    def loss(position: Tensor, batch=None) -> Tensor:
        return (error(position) / counts.to(position.dtype)).unsqueeze(-1)

    def swap_log_ratio(positions: Tensor, losses: Tensor) -> Tensor:
        own = losses * torch.as_tensor(sizes, dtype=losses.dtype).unsqueeze(-1)          # E_r(w_r) [R, M]
        flat = positions.reshape(rungs * ladders, -1)
        upper_state_lower_data = error(flat[ladders:], lower).reshape(rungs - 1, ladders)   # E_r(w_{r+1})
        lower_state_upper_data = error(flat[:-ladders], lower + ladders).reshape(rungs - 1, ladders)   # E_{r+1}(w_r)
        return own[:-1] + own[1:] - upper_state_lower_data - lower_state_upper_data

    return loss, swap_log_ratio
