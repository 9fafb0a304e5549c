"""Any ``nn.Module`` as a batched per-sample loss over chains, through
``torch.func.functional_call`` and ``torch.func.vmap``: the one adapter through which the
estimators take a user's own model.

The module's parameters — all of them, or those a restriction selects — are flattened, in
``named_parameters()`` order, into one position [d]; C chains are a [C, d] tensor. Parameters
left out of a restriction are frozen at the module's values and, like buffers, shared by all
chains; they follow the position's device and dtype. A copy of the module is used, in eval mode
(dropout off, batch-norm from its running statistics: a posterior over weights is a function of
the weights alone), and the user's module is left as it was.

A batch is a tuple of tensors. ``inputs`` names the one the module receives and ``targets`` the
one a per-sample loss compares its outputs with; with ``targets=None`` the loss receives the
whole batch (as a dict when ``fields`` names the tensors: a DataLoader's dict batches).
"""

from __future__ import annotations

import copy
import fnmatch
import math
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel

SampleLoss = Callable[[Tensor, Any], Tensor]   # (output [b, ...], target [b, ...] or the batch) -> [b]


def gaussian_nll(output: Tensor, target: Tensor) -> Tensor:
    """½‖y − f(x)‖² + (k/2)·log 2π per sample: unit-variance Gaussian regression. Outputs and
    targets must have one shape: outputs [b, 1] against targets [b] would broadcast to [b, b]."""
    _check_tensor_output(output, "mse")
    if output.shape != target.shape:
        raise ValueError(f"loss 'mse' compares outputs of shape {_rows(output.shape)} with targets of shape "
                         f"{_rows(target.shape)} (b rows): they must have the same shape (e.g. targets y[:, None] for "
                         "outputs [b, 1])")
    residual = (target - output).reshape(len(output), -1)
    return 0.5 * residual.square().sum(-1) + 0.5 * residual.shape[-1] * math.log(2 * math.pi)


def cross_entropy(output: Tensor, target: Tensor) -> Tensor:
    """−log softmax(f(x))_y per sample: categorical likelihood, of class indices (integer
    targets with one dimension fewer than the outputs) or class probabilities (floating-point
    targets shaped like the outputs)."""
    _check_tensor_output(output, "cross_entropy")
    index_shape = output.shape[:1] + output.shape[2:]
    integers = not (target.is_floating_point() or target.is_complex() or target.dtype == torch.bool)
    if integers and target.shape == index_shape:
        return nn.functional.cross_entropy(output, target.long(), reduction="none")   # torch takes int64 indices
    if not (target.is_floating_point() and target.shape == output.shape):
        kind = "floating-point" if target.is_floating_point() else str(target.dtype).split(".")[-1]
        raise ValueError(f"loss 'cross_entropy' takes class indices (integers) of shape {_rows(index_shape)} or class "
                         f"probabilities (floats) of shape {_rows(output.shape)} for outputs of shape "
                         f"{_rows(output.shape)} (b rows); got {kind} targets of shape {_rows(target.shape)}")
    return nn.functional.cross_entropy(output, target, reduction="none")


def check_class_probabilities(target: Tensor) -> None:
    """Refuse floating-point cross-entropy targets that are not class probabilities, each row
    non-negative and summing to 1 over the classes (dimension 1): with a negative entry
    −Σ_k y_k·log softmax(f)_k is unbounded below in f, so the loss has no minimum and λ̂ no
    meaning; rows of another sum rescale the likelihood, and so nβ, row by row. Integer targets
    (class indices) pass."""
    if not target.is_floating_point() or target.dim() < 2 or target.numel() == 0:
        return
    sums = target.double().sum(1)
    if bool((target < 0).any()) or not bool(((sums - 1).abs() <= 1e-4).all()):
        worst = float((sums - 1).abs().max())
        raise ValueError(f"loss 'cross_entropy' takes floating-point targets as class probabilities (non-negative, "
                         f"each row summing to 1 over dimension 1); got entries down to {float(target.min()):.3g} and "
                         f"row sums off 1 by up to {worst:.3g} (for class indices give integer targets)")


def _rows(shape: Sequence[int]) -> str:
    """A per-sample shape with its rows as b: [b, 1]."""
    return "[" + ", ".join(["b", *map(str, shape[1:])]) + "]"


def _check_tensor_output(output: Any, loss: str) -> None:
    if not isinstance(output, Tensor):
        raise ValueError(f"the module returned a {type(output).__name__}, not a tensor: loss {loss!r} needs the "
                         "outputs as one tensor; pass a callable loss (outputs, batch) -> per-sample losses instead")


def selected_parameters(module: nn.Module, restrict_to: str | Sequence[str] | None) -> tuple[str, ...]:
    """Names of the parameters ``restrict_to`` selects (all when None): each pattern is a
    parameter's name, a glob over names (``"layers.2.*"``) or a submodule's name (``"layers.2"``).
    A pattern that matches nothing is a ``ValueError`` listing the names there are."""
    names = tuple(name for name, _ in module.named_parameters())
    if not names:
        raise ValueError(f"the module ({type(module).__name__}) has no parameters to sample")
    if restrict_to is None:
        return names
    patterns = (restrict_to,) if isinstance(restrict_to, str) else tuple(restrict_to)
    if not patterns or not all(isinstance(pattern, str) and pattern for pattern in patterns):
        raise ValueError(f"restrict_to takes parameter names or glob patterns, got {restrict_to!r}")
    for pattern in patterns:
        if not any(_matches(name, pattern) for name in names):
            shown = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
            raise ValueError(f"restrict_to {pattern!r} matches no parameter of the module; its parameters are: {shown}")
    return tuple(name for name in names if any(_matches(name, pattern) for pattern in patterns))


def _matches(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern) or name.startswith(pattern + ".")


def _module_notes(module: nn.Module, sampled: Sequence[str]) -> tuple[str, ...]:
    """What the caller should know about how the module is sampled: its mode, parameters it had
    frozen, and forward hooks, which run inside the sampler."""
    notes = []
    if any(part.training for part in module.modules()):
        notes.append("the module (or a submodule) was in training mode: it is sampled in eval mode (dropout off, "
                     "batch norm from its running statistics)")
    frozen = [name for name, parameter in module.named_parameters() if not parameter.requires_grad and name in sampled]
    if frozen:
        notes.append(f"{len(frozen)} parameter tensor(s) with requires_grad=False sampled too ({', '.join(frozen[:4])}"
                     f"{', …' if len(frozen) > 4 else ''}): restrict_to= samples a subset")
    if any(part._forward_hooks or part._forward_pre_hooks for part in module.modules()):
        notes.append("the module's forward hooks run at every step of every chain, inside torch.func.vmap: tensors "
                     "they keep are not usable outside it")
    return tuple(notes)


class FunctionalModel:
    """``model(position [C, d], batch)`` gives the per-sample loss [C, b] of every chain.

    The batch's tensors may be per chain ([C, b, ...]) or shared ([1, b, ...]); ``position`` may
    be a single [1, d] row evaluated on per-chain batches. ``restrict_to`` (names or glob
    patterns, :func:`selected_parameters`) samples those parameters only.
    """

    def __init__(self, module: nn.Module, sample_loss: SampleLoss = gaussian_nll, *,
                 restrict_to: str | Sequence[str] | None = None, inputs: int | str = 0,
                 targets: int | str | None = -1, fields: Sequence[str] | None = None):
        self.module = copy.deepcopy(module).eval()
        self.sample_loss = sample_loss
        self.inputs, self.targets = inputs, targets
        self.fields = None if fields is None else tuple(fields)
        self.names = selected_parameters(self.module, restrict_to)
        self.notes = _module_notes(module, self.names)
        parameters = dict(self.module.named_parameters())
        self.shapes = tuple(parameters[name].shape for name in self.names)
        self.sizes = tuple(parameters[name].numel() for name in self.names)
        frozen = {name: value.detach() for name, value in parameters.items() if name not in self.names}
        self._constants = {**dict(self.module.named_buffers()), **frozen}
        self._placed: dict = {}   # (device, dtype) -> buffers and frozen parameters there, cast once

    @property
    def dim(self) -> int:
        return sum(self.sizes)

    def flatten(self) -> Tensor:
        """The module's current values of the sampled parameters as one position [d]."""
        parameters = dict(self.module.named_parameters())
        return torch.cat([parameters[name].detach().reshape(-1) for name in self.names])

    def unflatten(self, position: Tensor) -> dict[str, Tensor]:
        """Views of ``position`` [C, d] as the sampled parameters, each [C, *shape]."""
        if position.shape[-1] != self.dim:
            raise ValueError(f"position has {position.shape[-1]} parameters, the module has {self.dim}")
        blocks = position.split(self.sizes, dim=-1)
        return {name: block.reshape(*position.shape[:-1], *shape)
                for name, block, shape in zip(self.names, blocks, self.shapes)}

    def _constants_like(self, like: Tensor) -> dict[str, Tensor]:
        key = (like.device, like.dtype)
        if key not in self._placed:
            self._placed[key] = {name: value.to(device=like.device,
                                                dtype=like.dtype if value.is_floating_point() else value.dtype)
                                 for name, value in self._constants.items()}
        return self._placed[key]

    def _one_chain(self, parameters: dict[str, Tensor], constants: dict[str, Tensor], batch: tuple[Tensor, ...]):
        view = dict(zip(self.fields, batch)) if self.fields is not None else batch
        output = functional_call(self.module, {**parameters, **constants}, (view[self.inputs],))
        return self.sample_loss(output, view if self.targets is None else view[self.targets])

    def __call__(self, position: Tensor, batch: Sequence[Tensor]) -> Tensor:
        # Attention's inference fast path (nn.MultiheadAttention, nn.TransformerEncoderLayer in eval
        # mode) has no derivative, and the fused attention kernels no second derivative: the
        # samplers need gradients and the step-size rule Hessian-vector products.
        fast_path = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            with sdpa_kernel(SDPBackend.MATH):
                return self._batched(position, batch)
        except RuntimeError as error:
            raise ValueError(self._explain(error, position, batch)) from None
        finally:
            torch.backends.mha.set_fastpath_enabled(fast_path)

    def _explain(self, error: RuntimeError, position: Tensor, batch: Sequence[Tensor]) -> str:
        """Say where the call failed: run it again, recording the layers (modules without
        children) entered and left, and whether the module's forward returned (then the loss failed)."""
        events: list[tuple[str, str]] = []
        hooks = []
        for name, module in self.module.named_modules():
            if not list(module.children()):
                described = f"{f'layer {name}' if name else 'the module'} ({type(module).__name__})"
                hooks.append(module.register_forward_pre_hook(lambda *_, d=described: events.append(("in", d))))
                hooks.append(module.register_forward_hook(lambda *_, d=described: events.append(("after", d))))
        hooks.append(self.module.register_forward_hook(lambda *_: events.append(("returned", ""))))
        try:
            self._batched(position, batch)
        except RuntimeError:
            pass
        finally:
            for hook in hooks:
                hook.remove()
        kind, described = events[-1] if events else ("before", "")
        where = {"in": f"at {described}", "after": f"in the module's forward after {described}",
                 "returned": "in the loss, after the module's forward", "before": "in the module's forward, before "
                 "its first layer"}[kind]
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"the module cannot be evaluated batched over chains (torch.func.vmap) {where}: {first_line}"

    def _batched(self, position: Tensor, batch: Sequence[Tensor]) -> Tensor:
        batch = tuple(batch)
        constants = self._constants_like(position)
        parameters = self.unflatten(position)
        chains_in_position, chains_in_batch = len(position) > 1, len(batch[0]) > 1
        if not chains_in_batch:
            batch = tuple(t[0] for t in batch)
        if not chains_in_position:
            parameters = {name: value[0] for name, value in parameters.items()}
        if not (chains_in_position or chains_in_batch):
            return self._one_chain(parameters, constants, batch).unsqueeze(0)
        in_dims = (0 if chains_in_position else None, None, 0 if chains_in_batch else None)
        return vmap(self._one_chain, in_dims=in_dims)(parameters, constants, batch)
