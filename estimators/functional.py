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
from typing import Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from sltlab.estimators.failure_place import (EVALUATION_ERRORS, first_line_of, keyword_names, locate_failure,
                                              parameters_of, remedy)
from sltlab.estimators.forward_context import evaluating
from sltlab.estimators.module_checks import (dense_embeddings, floating_parameters, module_notes, refuse_complex,
                                              refuse_unsampleable)
from sltlab.estimators.parameter_names import selected_parameters
from sltlab.estimators.sample_losses import LOSSES, SampleLoss, gaussian_nll
from sltlab.estimators.vmap_warnings import QuietBatching


class FunctionalModel:
    """``model(position [C, d], batch)`` gives the per-sample loss [C, b] of every chain.

    The batch's tensors may be per chain ([C, b, ...]) or shared ([1, b, ...]); ``position`` may
    be a single [1, d] row evaluated on per-chain batches. ``restrict_to`` (names or glob
    patterns, :func:`selected_parameters`) samples those parameters only. ``held`` names attributes
    of ``module`` held detached by an earlier copy (:func:`copied_module`), for
    :meth:`refuse_stale` to check as well.
    """

    def __init__(self, module: nn.Module, sample_loss: SampleLoss = gaussian_nll, *,
                 restrict_to: str | Sequence[str] | None = None, inputs: int | str | tuple = 0,
                 targets: int | str | None = -1, fields: Sequence[str] | None = None,
                 held: Sequence[tuple[str, str]] = ()):
        refuse_unsampleable(module)
        self.module, self._detached = copied_module(module, held)
        self.module.eval()
        self.sample_loss = sample_loss
        self.inputs, self.targets = inputs, targets
        self.fields = None if fields is None else tuple(fields)
        parameters = dict(self.module.named_parameters())
        self.names, held = floating_parameters(parameters, selected_parameters(self.module, restrict_to))
        self._forward_parameters = parameters_of(self.module.forward)
        self._named_in_forward = set(keyword_names(self._forward_parameters))
        self.notes = module_notes(module, self.names) + held + dense_embeddings(self.module)
        refuse_complex(parameters, self.names)
        self.shapes = tuple(parameters[name].shape for name in self.names)
        self.sizes = tuple(parameters[name].numel() for name in self.names)
        frozen = {name: value.detach() for name, value in parameters.items() if name not in self.names}
        self._constants = {**dict(self.module.named_buffers()), **frozen}
        self.chain_by_chain = False   # set when vmap cannot batch the module (__call__)
        self._quiet_batching = QuietBatching()
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

    def refuse_stale(self) -> None:
        """After a forward of the copy: a one-line ``ValueError`` for a tensor it holds detached
        (:func:`copied_module`) that the forward did not set anew, one made from the parameters outside
        the forward (a view of a weight taken in ``__init__`` to tie it), which in the copy no longer
        follows the parameters sampled (λ̂ had read 4.21 of such a model, unwarned)."""
        stale = [f"{path}.{name}" if path else name for path, name, held in self._detached
                 if getattr(self.module.get_submodule(path), name, None) is held]
        if stale:
            raise ValueError(untied(stale))

    def _constants_like(self, like: Tensor) -> dict[str, Tensor]:
        key = (like.device, like.dtype)
        if key not in self._placed:
            self._placed[key] = {name: value.to(device=like.device,
                                                dtype=like.dtype if value.is_floating_point() else value.dtype)
                                 for name, value in self._constants.items()}
        return self._placed[key]

    def _one_chain(self, parameters: dict[str, Tensor], constants: dict[str, Tensor], batch: tuple[Tensor, ...]):
        view = dict(zip(self.fields, batch)) if self.fields is not None else batch
        output = functional_call(self.module, {**parameters, **constants}, *self._arguments(view))
        losses = self.sample_loss(output, view if self.targets is None else view[self.targets])
        if not isinstance(losses, Tensor):
            raise TypeError(f"the loss returned a {type(losses).__name__}, not a tensor of per-sample losses [b]")
        return losses

    def _arguments(self, view) -> tuple[tuple, dict]:
        """The module's arguments from a batch, positional and by keyword: the ``inputs`` field, or
        each of a tuple of fields in turn (a module taking (tokens, mask)). Fields of a dict batch
        that the forward names as its own parameters, each once, are passed by name, so their order
        in ``inputs`` does not matter and a forward taking them by keyword only receives them."""
        fields = self.inputs if isinstance(self.inputs, tuple) else (self.inputs,)
        if len(set(fields)) == len(fields) and all(isinstance(field, str) and field in self._named_in_forward
                                                   for field in fields):
            return (), {field: view[field] for field in fields}
        return tuple(view[field] for field in fields), {}

    def __call__(self, position: Tensor, batch: Sequence[Tensor]) -> Tensor:
        """A module that torch.func.vmap cannot batch over chains (an LSTM, a ``.item()`` in its
        forward) is evaluated chain by chain from the first such failure on, and a note says so;
        the numbers are the same, only slower."""
        try:
            return self._batched(position, batch)
        except EVALUATION_ERRORS as error:
            failure = error
        if not self.chain_by_chain and max(len(position), len(batch[0])) > 1:
            self.chain_by_chain = True
            try:
                losses = self._batched(position, batch)
            except EVALUATION_ERRORS as error:   # fails chain by chain too: that failure is explained
                failure = error
            else:
                self.notes += (f"torch.func.vmap cannot batch the module over chains ({first_line_of(failure)}): its "
                               "chains are evaluated one after another, the same numbers more slowly",)
                return losses
        raise ValueError(self._explain(failure, position, batch)) from None

    def gradients_at(self, rows: Sequence[Tensor], values: dict[str, Tensor], *, own: bool = False):
        """The per-sample losses on ``rows`` (one chain) at ``values`` of the sampled parameters
        and the gradients of their sum in each (None where autograd finds no path), as the samplers
        compute them (through ``functional_call``) or, with ``own``, as the module computes them
        with those values written into a copy of it; None when the module or the loss fails there."""
        dtype = next(iter(values.values())).dtype
        rows = _rows_in(rows, dtype)
        view = dict(zip(self.fields, rows)) if self.fields is not None else rows
        try:
            with torch.enable_grad(), evaluating(dtype):
                if own:
                    module = copied_module(self.module)[0]
                    parameters = dict(module.named_parameters())
                    leaves = [parameters[name].requires_grad_(True) for name in self.names]
                    with torch.no_grad():
                        for leaf, name in zip(leaves, self.names):
                            leaf.copy_(values[name])
                    arguments, keywords = self._arguments(view)
                    losses = self.sample_loss(module(*arguments, **keywords),
                                              view if self.targets is None else view[self.targets])
                else:
                    leaves = [values[name].clone().requires_grad_(True) for name in self.names]
                    losses = self._one_chain(dict(zip(self.names, leaves)), self._constants_like(leaves[0]), rows)
                gradients = (torch.autograd.grad(losses.sum(), leaves, allow_unused=True) if losses.requires_grad
                             else (None,) * len(leaves))
        except (ValueError, *EVALUATION_ERRORS):
            return None
        return losses.detach(), gradients

    def unreached(self, rows: Sequence[Tensor]) -> tuple[str, ...]:
        """The sampled parameters from which autograd's graph has no path to the loss on ``rows``
        (tensors [b, ...], one chain) at the module's current values: ones the forward never uses,
        or uses only through a ``.detach()``, ``.data`` or ``torch.no_grad()`` (whether the loss
        then depends on them tells the two apart:
        :func:`~sltlab.estimators.loss_probes.refuse_cut_gradients`). () when the module or the
        loss fails on ``rows`` (the estimate's own checks then say why)."""
        if torch.is_inference_mode_enabled():   # no graph at all: the estimate refuses that itself
            return ()
        current = dict(self.module.named_parameters())
        found = self.gradients_at(rows, {name: current[name].detach() for name in self.names})
        return () if found is None else tuple(name for name, gradient in zip(self.names, found[1]) if gradient is None)

    def outputs(self, rows: Sequence[Tensor], losses: bool = False,
                values: dict[str, Tensor] | None = None) -> Tensor | None:
        """The module's outputs on ``rows`` (tensors [b, ...], one chain) at its current values,
        or at ``values`` for the sampled parameters it names, or with ``losses`` its per-sample
        losses there; None when it fails on them (the estimate's own checks then say why)."""
        current = dict(self.module.named_parameters())
        values = {name: current[name].detach() for name in self.names} | (values or {})
        like = next(iter(values.values()))
        rows, constants = _rows_in(rows, like.dtype), self._constants_like(like)
        view = dict(zip(self.fields, rows)) if self.fields is not None else rows
        try:
            with torch.no_grad(), evaluating(like.dtype):
                if losses:
                    return self._one_chain(values, constants, rows)
                return functional_call(self.module, {**values, **constants}, *self._arguments(view))
        except (ValueError, *EVALUATION_ERRORS):
            return None

    def _explain(self, error: Exception, position: Tensor, batch: Sequence[Tensor]) -> str:
        """Say where the call failed: run it again, one chain on its own first, recording the
        layers (modules without children) entered and left, and whether the module's forward
        returned (then the loss failed). When the one chain runs, some other chain's parameters or
        rows are to blame, and the failure is located in the call of all of them."""
        single = locate_failure(self.module, lambda: self._batched(position[:1], tuple(t[:1] for t in batch)))
        if single is not None:
            where, first_line = single
            view = dict(zip(self.fields, batch)) if self.fields is not None else tuple(batch)
            arguments, keywords = self._arguments(view)
            hint = remedy(where, first_line, own_loss=self.sample_loss not in LOSSES.values(),
                          whole_batch=self.targets is None, forward_parameters=self._forward_parameters,
                          scalar_rows=any(argument.dim() == 2 for argument in (*arguments, *keywords.values())),
                          integer_inputs=any(not argument.is_floating_point()
                                             for argument in (*arguments, *keywords.values())))
            return f"the module and loss cannot be evaluated on the data {where}: {first_line}{hint}"
        located = locate_failure(self.module, lambda: self._batched(position, batch))
        where, first_line = located or ("", first_line_of(error))
        return f"the module cannot be evaluated at every chain's parameters and rows {where}: {first_line}"

    def _batched(self, position: Tensor, batch: Sequence[Tensor]) -> Tensor:
        with evaluating(position.dtype):
            return self._over_chains(position, tuple(batch))

    def _over_chains(self, position: Tensor, batch: tuple[Tensor, ...]) -> Tensor:
        constants = self._constants_like(position)
        parameters = self.unflatten(position)
        chains_in_position, chains_in_batch = len(position) > 1, len(batch[0]) > 1
        if not chains_in_batch:
            batch = tuple(t[0] for t in batch)
        if not chains_in_position:
            parameters = {name: value[0] for name, value in parameters.items()}
        if not (chains_in_position or chains_in_batch):
            return self._one_chain(parameters, constants, batch).unsqueeze(0)
        if self.chain_by_chain:
            chains = len(position) if chains_in_position else len(batch[0])
            return torch.stack([self._one_chain({name: value[chain] for name, value in parameters.items()}
                                                if chains_in_position else parameters, constants,
                                                tuple(t[chain] for t in batch) if chains_in_batch else batch)
                                for chain in range(chains)])
        in_dims = (0 if chains_in_position else None, None, 0 if chains_in_batch else None)
        losses = self._quiet_batching(vmap(self._one_chain, in_dims=in_dims), parameters, constants, batch)
        self.notes += self._quiet_batching.take_note()
        return losses


def copied_module(module: nn.Module, held: Sequence[tuple[str, str]] = ()
                  ) -> tuple[nn.Module, tuple[tuple[str, str, Tensor], ...]]:
    """A deep copy of ``module``, and the tensors it holds detached. Tensors the module holds as
    plain attributes with a graph behind them (an activation its forward keeps, the weight a pruning
    or weight-norm hook computes from its parameters before each forward) cannot be deep-copied:
    the copy holds them detached, listed as (submodule, attribute, tensor) so that a forward can be
    seen to set them anew (:meth:`FunctionalModel.refuse_stale`). Anything else that cannot be
    copied is a one-line ``ValueError`` naming it, and so is a tensor attribute without a graph that
    shares memory with a parameter (``self.w = self.enc.weight.data``): the forward reads the
    module's own weight there, never the one sampled (a tanh network of 19 parameters so tied read
    λ̂ = 6.42 ± 0.15, unwarned, against 7.53 ± 0.14 for the same function computed in its forward).
    ``held`` names (submodule, attribute) pairs to list as well although they hold no graph: those a
    copy made earlier held detached (a template's copy that took a checkpoint's state, and ran no
    forward that would set them anew)."""
    found = [(path, name, value) for path, part in module.named_modules() for name, value in vars(part).items()
             if isinstance(value, Tensor) and (not value.is_leaf or (path, name) in held)]
    owned = {_storage_of(parameter) for parameter in module.parameters() if parameter.numel()} - {None}
    memory = [f"{path}.{name}" if path else name for path, part in module.named_modules()
              for name, value in vars(part).items() if isinstance(value, Tensor) and value.is_leaf and value.numel()
              and _storage_of(value) in owned]   # .data or .detach() of a weight, read as it is
    if memory:
        raise ValueError(untied(memory))
    memo = {id(value): value.detach().clone() for _, _, value in found}
    try:
        return copy.deepcopy(module, memo), tuple((path, name, memo[id(value)]) for path, name, value in found)
    except Exception as error:   # deepcopy raises whatever the object's own __deepcopy__ or pickling raises
        raise ValueError(f"the module cannot be copied (copy.deepcopy raised {type(error).__name__}: "
                         f"{first_line_of(error)}): a copy in eval mode is sampled so that yours is left as it was; "
                         "set such an attribute to None before the call, or give its class a __deepcopy__") from None


def _storage_of(tensor: Tensor) -> int | None:
    """Where ``tensor``'s memory lies; None for a tensor without storage of its own (a functorch wrapper)."""
    try:
        return tensor.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return None


def untied(names: list[str]) -> str:
    """Why a module holding ``names``, tensors made from its parameters outside the forward, is refused."""
    return (f"the module holds {', '.join(names)} as a plain tensor attribute made from its parameters outside the "
            "forward (a view taken in __init__ to tie weights?), which a copy cannot keep tied to the parameters "
            "sampled, so λ̂ would be of another model: compute it in the forward (e.g. self.encoder.weight.T there), "
            "or delete it if the forward does not read it")


def _rows_in(rows: Sequence[Tensor], dtype: torch.dtype) -> tuple[Tensor, ...]:
    """Rows for one chain at the module's own values: floating columns in its parameters' dtype,
    the others (indices, labels) as they are, none attached to a graph."""
    return tuple(t.detach().to(dtype) if t.is_floating_point() else t.detach() for t in rows)
