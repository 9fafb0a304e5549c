"""One-hidden-layer tanh network as a regression model, batched over chains.

f(x; a, b) = Σ_h a_h·tanh(b_h·x): one input, one output, H hidden units, no biases; the
model of Aoyagi & Watanabe (IEICE Trans. J88-D-II, 2005) and Watanabe (2009, §7.6), whose
learning coefficient at the true function f = 0 is :func:`theory.tanh_network`.
Position [C, 2H] holds (a_1..a_H, b_1..b_H).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sltlab.models.counts import whole


class TanhNetwork:
    """``network(position [C, 2H], (x [·, b], y [·, b]))`` gives the per-sample Gaussian NLL
    ½(y − f(x))² + ½·log 2π, [C, b]."""

    def __init__(self, hidden: int):
        self.hidden = whole("the tanh network's hidden units", hidden, 1)

    @property
    def dim(self) -> int:
        return 2 * self.hidden

    def forward(self, position: Tensor, x: Tensor) -> Tensor:
        # Shape comparisons only (no synchronisation): this runs at every step of a chain.
        if position.shape[-1] != self.dim:
            raise ValueError(f"position has {position.shape[-1]} parameters, the network has {self.dim}")
        if x.dim() > 2:
            raise ValueError(f"x must be one input per row, [b] or [C, b] (input width 1, no trailing axis), "
                             f"got shape {list(x.shape)}")
        chains = position.shape[0] if position.dim() == 2 else 1   # a column x [b, 1] would read as b chains
        if x.dim() == 2 and position.dim() <= 2 and x.shape[0] not in (1, chains):
            raise ValueError(f"x [C, b] has rows for {x.shape[0]} chains, position for {chains}: "
                             f"x must be [b], [1, b] or [{chains}, b]")
        outgoing, incoming = position.unflatten(-1, (2, self.hidden)).unbind(-2)   # [C, H] each
        hidden = torch.tanh(x.unsqueeze(-1) * incoming.unsqueeze(-2))             # [C, b, H]
        return (hidden * outgoing.unsqueeze(-2)).sum(-1)

    def __call__(self, position: Tensor, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        residual = y - self.forward(position, x)
        return 0.5 * residual.square() + 0.5 * math.log(2 * math.pi)


def null_regression_data(n: int, *, generator: torch.Generator,
                         dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """n samples from the true function f = 0: x ~ N(0, 1), y ~ N(0, 1) independent."""
    n = whole("n", n, 1)
    x = torch.randn(n, generator=generator, dtype=dtype)
    return x, torch.randn(n, generator=generator, dtype=dtype)
