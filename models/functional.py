"""Any ``nn.Module`` as a batched per-sample loss over chains, through
``torch.func.functional_call`` and ``torch.func.vmap``, so users can bring their own model.

The module's parameters are flattened, in ``named_parameters()`` order, into one position
[d]; C chains are a [C, d] tensor. A copy of the module is used, in eval mode (dropout off,
batch-norm from its running statistics: a posterior over weights is a function of the weights
alone), and the user's module is left as it was. Buffers are shared by all chains and follow
the position's device and dtype.
"""

from __future__ import annotations

import copy
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
        self.module = copy.deepcopy(module).eval()
        self.sample_loss = sample_loss
        self.notes = ("the module was in training mode: it is sampled in eval mode (dropout off, batch norm from "
                      "its running statistics)",) if module.training else ()
        parameters = dict(self.module.named_parameters())
        self.names = tuple(parameters)
        self.shapes = tuple(p.shape for p in parameters.values())
        self.sizes = tuple(p.numel() for p in parameters.values())
        self._buffers = dict(self.module.named_buffers())
        self._placed: dict = {}   # (device, dtype) -> buffers there, cast once

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

    def _buffers_like(self, like: Tensor) -> dict[str, Tensor]:
        key = (like.device, like.dtype)
        if key not in self._placed:
            self._placed[key] = {name: buffer.to(device=like.device,
                                                 dtype=like.dtype if buffer.is_floating_point() else buffer.dtype)
                                 for name, buffer in self._buffers.items()}
        return self._placed[key]

    def _one_chain(self, parameters: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return self.sample_loss(functional_call(self.module, {**parameters, **buffers}, (x,)), y)

    def __call__(self, position: Tensor, batch: tuple[Tensor, Tensor]) -> Tensor:
        try:
            return self._batched(position, batch)
        except RuntimeError as error:
            raise ValueError(self._explain(error, position, batch)) from None

    def _explain(self, error: RuntimeError, position: Tensor, batch: tuple[Tensor, Tensor]) -> str:
        """Say which layer failed: run the failing call again, recording the layer entered last."""
        entered = []
        hooks = [module.register_forward_pre_hook(lambda module, args, name=name: entered.append((name, module)))
                 for name, module in self.module.named_modules() if not list(module.children())]
        try:
            self._batched(position, batch)
        except RuntimeError:
            pass
        finally:
            for hook in hooks:
                hook.remove()
        where = f"layer {entered[-1][0]} ({type(entered[-1][1]).__name__})" if entered else "the loss"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"the module cannot be evaluated batched over chains (torch.func.vmap) at {where}: {first_line}"

    def _batched(self, position: Tensor, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        buffers = self._buffers_like(position)
        parameters = self.unflatten(position)
        chains_in_position, chains_in_batch = len(position) > 1, len(x) > 1
        if not chains_in_batch:
            x, y = x[0], y[0]
        if not chains_in_position and chains_in_batch:
            parameters = {name: value[0] for name, value in parameters.items()}
        if not (chains_in_position or chains_in_batch):
            return self._one_chain({k: v[0] for k, v in parameters.items()}, buffers, x, y).unsqueeze(0)
        in_dims = (0 if chains_in_position else None, None, 0 if chains_in_batch else None,
                   0 if chains_in_batch else None)
        return vmap(self._one_chain, in_dims=in_dims)(parameters, buffers, x, y)
