"""The toy model of superposition on sampled data: inputs x = μ·e_i with i uniform on the c
features and μ ~ U[0, 1], the distribution whose loss :class:`~sltlab.models.tms.ToyModelOfSuperposition`
gives in closed form (Chen, Lau, Mendel, Wei & Murfet 2023, §3), and the sum of squared errors
E(W, b) = Σ_j ‖x_j − ReLU(WᵀW x_j + b)‖² over a data set's rows, batched over chains.

The sum is computed exactly from sufficient statistics, not row by row. On the rows of feature
i, ‖x − f(x)‖² = μ² − 2μ·ReLU(μa_ii + b_i) + Σ_k ReLU(μa_ki + b_k)², a_ki = W_k·W_i. A term
ReLU(μa + b) is nonzero on the rows with μ above t = −b/a (a > 0), below it (a < 0), or on all
of them (a = 0 < b), so with the feature's magnitudes sorted and their cumulative sums S_p of
μ^p, Σ_j ReLU(μ_j a + b)² = a²S₂ + 2abS₁ + b²S₀ and Σ_j μ_j·ReLU(μ_j a + b) = aS₂ + bS₁ over
those rows, found by one binary search. The gradient follows from the same expression with the
sums held fixed: a row changes sides only where its term vanishes (a test compares both with the
rows' own sum).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from sltlab.models.tms import ToyModelOfSuperposition


def one_sparse_inputs(sets: int, rows: int, features: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``sets`` data sets of ``rows`` inputs each: the active feature [sets, rows] (long) and its
    magnitude [sets, rows] (float64)."""
    active = torch.randint(0, features, (sets, rows), generator=generator)
    return active, torch.rand(sets, rows, generator=generator, dtype=torch.float64)


class SampledSquaredError:
    """E for each of Q chains on its own data set: chain q sees the first ``sizes[q]`` rows of
    set ``sets[q]`` of (``active``, ``magnitudes``) [S, n]."""

    def __init__(self, model: ToyModelOfSuperposition, active: Tensor, magnitudes: Tensor, sets: Sequence[int],
                 sizes: Sequence[int]):
        if len(sets) != len(sizes) or min(sizes) < 1 or max(sizes) > active.shape[1]:
            raise ValueError(f"need one size in 1 … {active.shape[1]} per chain, got {len(sizes)} for {len(sets)}")
        self.model, c = model, model.features
        per_chain = []
        for chain_set, size in zip(sets, sizes):
            feature, magnitude = active[chain_set, :size], magnitudes[chain_set, :size]
            per_chain.append([torch.sort(magnitude[feature == i]).values for i in range(c)])
        longest = max(len(values) for chain in per_chain for values in chain)
        self.sorted = torch.full((len(sizes), c, longest), float("inf"), dtype=magnitudes.dtype)
        self.sums = torch.zeros(3, len(sizes), c, longest + 1, dtype=magnitudes.dtype)   # S_p of the first j rows
        for q, chain in enumerate(per_chain):
            for i, values in enumerate(chain):
                self.sorted[q, i, :len(values)] = values
                for p in range(3):
                    self.sums[p, q, i, 1:len(values) + 1] = torch.cumsum(values ** p, 0)
                    self.sums[p, q, i, len(values) + 1:] = self.sums[p, q, i, len(values)]

    def __call__(self, position: Tensor, chains: Tensor | None = None) -> Tensor:
        """E [P] at ``position`` [P, 3c], each on the data of its chain (``chains`` [P] picks
        them; None: chain p for row p)."""
        ordered, sums = self.sorted, self.sums
        if chains is not None:
            ordered, sums = ordered[chains], sums[:, chains]
        columns, bias = self.model.split(position)
        a = columns @ columns.transpose(-1, -2)              # symmetric: [P, i, k] = W_i·W_k
        b = bias.unsqueeze(-2).expand_as(a)                  # b_k
        threshold = (-b / torch.where(a != 0, a, torch.ones_like(a))).detach().contiguous()
        total = sums[..., -1:]                               # [3, P, c, 1] over all the feature's rows
        at_most = _gathered(sums, torch.searchsorted(ordered, threshold, right=True))    # rows with μ ≤ t
        below = _gathered(sums, torch.searchsorted(ordered, threshold))                  # rows with μ < t
        active = torch.where(a > 0, total - at_most,
                             torch.where(a < 0, below, total.expand_as(below) * (b > 0)))   # [3, P, i, k]
        squares = (a * a * active[2] + 2 * a * b * active[1] + b * b * active[0]).sum((-1, -2))
        own = torch.diagonal(a * active[2] + b * active[1], dim1=-2, dim2=-1).sum(-1)
        return squares - 2 * own + total[2, ..., 0].sum(-1)


def _gathered(sums: Tensor, index: Tensor) -> Tensor:
    """S_p [3, P, i, k] of the first index[P, i, k] sorted rows of feature i."""
    return torch.stack([sums[p].gather(-1, index) for p in range(3)])
