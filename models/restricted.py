"""One layer of a deep linear network as a model of its own: the loss as a function of W_l, every
other layer frozen at a given point. With the loss from sufficient statistics,
L_n(W_l) = ½·tr(A W_l B Σxx Bᵀ W_lᵀ Aᵀ) − tr(A W_l B Σxy) + const with A = W_L⋯W_{l+1} and
B = W_{l−1}⋯W_1 (identities at the ends), a quadratic form whose Hessian is
AᵀA ⊗ B Σxx Bᵀ in the row-major order of W_l's entries; its rank is rank(A)·rank(B)
(:func:`sltlab.theory.restricted_deep_linear`)."""

from __future__ import annotations

import torch
from torch import Tensor

from sltlab.models.deep_linear_losses import FullDataLoss


class LayerRestrictedLoss:
    """``loss(position [C, d_l], batch)`` of layer ``layer`` (1 = next to the input) alone, the
    other layers frozen at ``frozen`` [d]; returns what the whole network's loss returns."""

    def __init__(self, loss: FullDataLoss, frozen: Tensor, layer: int):
        shapes = loss.network.shapes
        if not 1 <= layer <= len(shapes):
            raise ValueError(f"layer must lie in 1..{len(shapes)}, got {layer}")
        sizes = [out * inp for out, inp in shapes]
        self.loss, self.layer, self.frozen = loss, layer, frozen.detach()
        self.start, self.stop = sum(sizes[:layer - 1]), sum(sizes[:layer])
        self.shape = shapes[layer - 1]

    @property
    def dim(self) -> int:
        return self.stop - self.start

    def restrict(self, position: Tensor) -> Tensor:
        """Layer ``layer``'s entries of a whole network's position [..., d]."""
        return position[..., self.start:self.stop]

    def embed(self, position: Tensor) -> Tensor:
        """The whole network's position [C, d]: ``position`` [C, d_l] in layer ``layer``, the rest frozen."""
        frozen = self.frozen.to(position).expand(len(position), -1)
        return torch.cat([frozen[:, :self.start], position, frozen[:, self.stop:]], dim=-1)

    def __call__(self, position: Tensor, batch=None) -> Tensor:
        return self.loss(self.embed(position), batch)

    def hessian_eigenvalues(self) -> Tensor:
        """The eigenvalues of ∇²L_n in W_l (it is constant: the loss is quadratic), [d_l]:
        the products of those of AᵀA and B Σxx Bᵀ."""
        weights = self.loss.network.weights(self.frozen.to(torch.float64).unsqueeze(0))
        above = torch.eye(self.shape[0], dtype=torch.float64)
        for weight in weights[self.layer:]:
            above = weight[0] @ above
        below = torch.eye(self.shape[1], dtype=torch.float64)
        for weight in reversed(weights[:self.layer - 1]):
            below = below @ weight[0]
        outer = torch.linalg.eigvalsh(above.T @ above)
        inner = torch.linalg.eigvalsh(below @ self.loss.sxx.to(torch.float64) @ below.T)
        return (outer.clamp_min(0)[:, None] * inner.clamp_min(0)[None, :]).reshape(-1)
