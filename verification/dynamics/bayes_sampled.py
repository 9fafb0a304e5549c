"""The posterior on drawn data, as the Bayesian study samples it with ``--data sampled``.

M/2 data sets are drawn — for the toy model 1-sparse inputs
(:func:`sltlab.models.tms_sampled.one_sparse_inputs`), for a deep linear network x ~ N(0, I),
y = Bx + N(0, I) — and ladders m and m + M/2 share set m, so that the two halves of the ladders,
started in different phases, sample the same posteriors and their agreement still tests
convergence. Rung r of a ladder targets exp(−E_r(w))·N(w; 0, I) with E_r the loss summed over the
first n_r rows of its set: the posterior of a data set of n_r rows, the rungs of one ladder
nested (Chen, Lau, Mendel, Wei & Murfet 2023, §5, sample the posterior of data sets this way; the
default study replaces E_r by n_r·L, L the population loss). E is the toy model's sum of squared
errors, and the deep linear network's ½Σ‖y − Px‖², the unit-variance Gaussian's negative
log-likelihood less its constant. An exchange between rungs r and r + 1 is accepted with
probability min{1, exp[E_r(w_r) + E_{r+1}(w_{r+1}) − E_r(w_{r+1}) − E_{r+1}(w_r)]}: the two cross
terms are computed at every swap round (:func:`sltlab.estimators.exchange.run_replica_exchange`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from sltlab.models.deep_linear_losses import ChainwiseSquaredError
from sltlab.models.tms import ToyModelOfSuperposition
from sltlab.models.tms_sampled import SampledSquaredError, one_sparse_inputs

DATA_STREAM = 1   # the data sets' seed is (seed, DATA_STREAM): the starts and the sampler keep theirs
# n' = this·n gives the same posterior under a unit-variance Gaussian likelihood, where one does:
# the deep linear network's E is that likelihood's; the toy model's sum of squared errors is twice
# it, which on drawn rows is the posterior of no other number of rows
UNIT_VARIANCE_SCALE = {"dln": 1.0, "tms": None}


def sampled_energies(model: str, loss, sizes: np.ndarray, ladders: int, seed: int
                     ) -> tuple[Callable[[Tensor, object], Tensor], Callable[[Tensor, Tensor], Tensor]]:
    """(loss, swap_log_ratio) for ``ladders`` (even) ladders on the integer sample sizes
    ``sizes``: the loss of chain r·M + m is E_r/n_r on data set m mod M/2 (the exchange
    multiplies it by n_r). ``loss`` is the study's population loss, whose network and teacher a
    deep linear network's data are drawn from."""
    rungs, sets = len(sizes), ladders // 2
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, DATA_STREAM]).generate_state(1)[0]))
    slots = [ladder % sets for _ in range(rungs) for ladder in range(ladders)]
    per_chain = [int(size) for size in sizes for _ in range(ladders)]
    if model == "tms":
        active, magnitudes = one_sparse_inputs(sets, int(sizes[-1]), loss.features, generator)
        error = SampledSquaredError(ToyModelOfSuperposition(loss.features), active, magnitudes, slots, per_chain)
    else:
        error = _regression_error(loss, slots, per_chain, sets, generator)
    counts = torch.tensor(per_chain, dtype=torch.float64)
    lower = torch.arange((rungs - 1) * ladders)   # the chains of rungs 0 … R − 2

    def mean_loss(position: Tensor, batch=None) -> Tensor:
        return (error(position) / counts.to(position.dtype)).unsqueeze(-1)

    def swap_log_ratio(positions: Tensor, losses: Tensor) -> Tensor:
        own = losses * torch.as_tensor(sizes, dtype=losses.dtype).unsqueeze(-1)          # E_r(w_r) [R, M]
        flat = positions.reshape(rungs * ladders, -1)
        upper_state_lower_data = error(flat[ladders:], lower).reshape(rungs - 1, ladders)   # E_r(w_{r+1})
        lower_state_upper_data = error(flat[:-ladders], lower + ladders).reshape(rungs - 1, ladders)   # E_{r+1}(w_r)
        return own[:-1] + own[1:] - upper_state_lower_data - lower_state_upper_data

    return mean_loss, swap_log_ratio


def _regression_error(loss, slots: list[int], sizes: list[int], sets: int,
                      generator: torch.Generator) -> ChainwiseSquaredError:
    """½Σ‖y − Px‖² of each chain on the first rows of its set, from the rows' cumulative moments."""
    teacher = loss.teacher.double()
    rows = max(sizes)
    inputs = torch.randn(sets, rows, teacher.shape[1], generator=generator, dtype=torch.float64)
    targets = inputs @ teacher.T + torch.randn(sets, rows, teacher.shape[0], generator=generator, dtype=torch.float64)
    moments = {}
    for chain_set, size in set(zip(slots, sizes)):
        x, y = inputs[chain_set, :size], targets[chain_set, :size]
        moments[chain_set, size] = (x.T @ x, x.T @ y, (y * y).sum())
    xx, xy, yy = (torch.stack([moments[key][part] for key in zip(slots, sizes)]) for part in range(3))
    return ChainwiseSquaredError(loss.network, xx, xy, yy)
