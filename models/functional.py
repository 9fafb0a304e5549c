"""Any ``nn.Module`` as a batched per-sample loss over chains, through
``torch.func.functional_call`` and ``torch.func.vmap``, so users can bring their own model.

The module's parameters are flattened, in ``named_parameters()`` order, into one position
[d]; C chains are a [C, d] tensor. Buffers are shared by all chains.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

SampleLoss = Callable[[Tensor, Tensor], Tensor]   # (output [b, ...], target [b, ...]) -> [b]


def gaussian_nll(output: Tensor, target: Tensor) -> Tensor:
    """½‖y − f(x)‖² + (k/2)·log 2π per sample: unit-variance Gaussian regression."""
    residual = (target - output).reshape(len(output), -1)
    return 0.5 * residual.square().sum(-1) + 0.5 * residual.shape[-1] * math.log(2 * math.pi)


def cross_entropy(output: Tensor, target: Tensor) -> Tensor:
    """−log softmax(f(x))_y per sample: categorical likelihood."""
    return nn.functional.cross_entropy(output, target, reduction="none")


class FunctionalModel:
    """``model(position [C, d], (x, y))`` gives the per-sample loss [C, b] of every chain.

    ``x``/``y`` may be per chain ([C, b, ...]) or shared ([1, b, ...]); ``position`` may be a
    single [1, d] row evaluated on per-chain batches.
    """

    def __init__(self, module: nn.Module, sample_loss: SampleLoss = gaussian_nll):
        self.module = module
        self.sample_loss = sample_loss
        parameters = dict(module.named_parameters())
        self.names = tuple(parameters)
        self.shapes = tuple(p.shape for p in parameters.values())
        self.sizes = tuple(p.numel() for p in parameters.values())

    @property
    def dim(self) -> int:
        return sum(self.sizes)

    def flatten(self) -> Tensor:
        """The module's current parameters as one position [d]."""
        return torch.cat([p.detach().reshape(-1) for p in self.module.parameters()])

    def unflatten(self, position: Tensor) -> dict[str, Tensor]:
        """Views of ``position`` [C, d] as the module's parameters, each [C, *shape]."""
        if position.shape[-1] != self.dim:
            raise ValueError(f"position has {position.shape[-1]} parameters, the module has {self.dim}")
        blocks = position.split(self.sizes, dim=-1)
        return {name: block.reshape(*position.shape[:-1], *shape)
                for name, block, shape in zip(self.names, blocks, self.shapes)}

    def _one_chain(self, parameters: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return self.sample_loss(functional_call(self.module, parameters, (x,)), y)

    def __call__(self, position: Tensor, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        parameters = self.unflatten(position)
        chains_in_position, chains_in_batch = len(position) > 1, len(x) > 1
        if not chains_in_batch:
            x, y = x[0], y[0]
        if not chains_in_position and chains_in_batch:
            parameters = {name: value[0] for name, value in parameters.items()}
        if not (chains_in_position or chains_in_batch):
            return self._one_chain({k: v[0] for k, v in parameters.items()}, x, y).unsqueeze(0)
        in_dims = (0 if chains_in_position else None, 0 if chains_in_batch else None,
                   0 if chains_in_batch else None)
        return vmap(self._one_chain, in_dims=in_dims)(parameters, x, y)
