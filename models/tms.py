"""The toy model of superposition with two hidden dimensions, batched over chains, with its
population loss in closed form (the high-sparsity limit).

f(x) = ReLU(WᵀW x + b), W ∈ R^{2×c}, b ∈ R^c (Elhage et al. 2022). With one active feature,
x = μ·e_i, i uniform on {1, …, c}, μ ~ U[0, 1] (Chen, Lau, Mendel, Wei & Murfet 2023, §3):

    L(W, b) = (1/c) Σ_i [ψ(‖W_i‖², b_i) + Σ_{j≠i} φ(W_j·W_i, b_j)],
    φ(a, b) = ∫₀¹ ReLU(μa + b)² dμ,   ψ(a, b) = ∫₀¹ (μ − ReLU(μa + b))² dμ.

Both have closed forms (Chen et al. 2023, §3 and App. A; derived independently, with every
branch, in :mod:`sltlab.theory.tms_loss`): φ = (ReLU(a + b)³ − ReLU(b)³)/(3a), which is
a²/3 + ab + b² where a + b and b are both positive; and, for a ≥ 0 with μ_lo = clamp(−b/a, 0, 1)
the start of the interval where μa + b > 0, ψ = 1/3 + φ − 2∫_{μ_lo}^1 μ(μa + b) dμ when
a + b > 0 and 1/3 otherwise.

A position [C, 3c] holds the columns W_1, …, W_c (two coordinates each) and then the biases.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sltlab.models.counts import whole


@dataclass(frozen=True)
class ToyModelOfSuperposition:
    """The population loss L(W, b) of a c-feature toy model; calling it on ``(position [C, 3c],
    batch)`` ignores the batch (there are no data) and returns L per chain as [C, 1]."""

    features: int

    def __post_init__(self):
        object.__setattr__(self, "features", whole("the toy model's features", self.features, 2))

    @property
    def dim(self) -> int:
        return 3 * self.features

    def split(self, position: Tensor) -> tuple[Tensor, Tensor]:
        """Columns [C, c, 2] (row i is W_i) and biases [C, c] of ``position`` [C, 3c]."""
        if position.shape[-1] != self.dim:
            raise ValueError(f"position has {position.shape[-1]} parameters, the toy model has {self.dim}")
        columns = position[..., :2 * self.features].reshape(*position.shape[:-1], self.features, 2)
        return columns, position[..., 2 * self.features:]

    def join(self, columns: Tensor, bias: Tensor) -> Tensor:
        """Inverse of :meth:`split`."""
        return torch.cat([columns.reshape(*columns.shape[:-2], -1), bias], dim=-1)

    def __call__(self, position: Tensor, batch=None) -> Tensor:
        columns, bias = self.split(position)
        gram = columns @ columns.transpose(-1, -2)                          # [C, c, c], a = W_j·W_i
        off = _relu_square_integral(gram, bias.unsqueeze(-2))               # [C, i, j], b = b_j
        off_total = off.sum((-1, -2)) - torch.diagonal(off, dim1=-2, dim2=-1).sum(-1)
        norms = torch.diagonal(gram, dim1=-2, dim2=-1)
        return ((off_total + _self_integral(norms, bias).sum(-1)) / self.features).unsqueeze(-1)


def _relu_square_integral(a: Tensor, b: Tensor) -> Tensor:
    """φ(a, b) = ∫₀¹ ReLU(μa + b)² dμ = (ReLU(a + b)³ − ReLU(b)³)/(3a), written as the
    polynomial a²/3 + ab + b² where both are positive (no cancellation as a → 0); elsewhere at
    most one term is nonzero and then |a| exceeds |b|, so the division is safe."""
    top, bottom = torch.relu(a + b), torch.relu(b)
    both = (top > 0) & (bottom > 0)
    one = (top > 0) ^ (bottom > 0)
    safe = torch.where(one, a, torch.ones_like(a))
    return torch.where(both, a * a / 3 + a * b + b * b,
                       torch.where(one, (top ** 3 - bottom ** 3) / (3 * safe), torch.zeros_like(a)))


def _self_integral(a: Tensor, b: Tensor) -> Tensor:
    """ψ(a, b) = ∫₀¹ (μ − ReLU(μa + b))² dμ for a = ‖W_i‖² ≥ 0: with the active interval
    [μ_lo, 1], μ_lo = clamp(−b/a, 0, 1), ψ = 1/3 + φ − 2∫_{μ_lo}^1 μ(μa + b) dμ
    = 1/3 + φ − 2[a(1 − μ_lo³)/3 + b(1 − μ_lo²)/2] when a + b > 0, and 1/3 otherwise."""
    active = a + b > 0
    safe = torch.where(a > 0, a, torch.ones_like(a))
    low = torch.where(a > 0, (-b / safe).clamp(0, 1), torch.zeros_like(a))
    cross = a * (1 - low ** 3) / 3 + b * (1 - low ** 2) / 2
    return 1 / 3 + torch.where(active, _relu_square_integral(a, b) - 2 * cross, torch.zeros_like(a))
