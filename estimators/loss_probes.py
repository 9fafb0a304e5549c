"""Checks, before any sampling, that a module and loss give each row a loss of its own: the
posterior exp(−nβ·L_n(w))·φ(w) needs L_n(w) = (1/n)·Σ_i ℓ_i(w), a function of w and of row i
alone (Watanabe 2009, §1.2; Lau, Furman, Wang, Murfet & Wei 2023, eq. 5). Two ways a module
breaks that without failing, each a one-line ``ValueError`` naming the likely cause:

- the losses on the same rows at the same weights differ between two evaluations: the forward
  or the loss draws random numbers even in eval mode (``F.dropout`` without
  ``training=self.training``, noise from ``torch.randn``) or keeps state between calls, and the
  sampler would see a noisy L_n;
- a row's loss differs between the first rows evaluated together and each half of them alone:
  the module normalises over the batch (x − x.mean(0)), reads the rows as one sequence (an RNN
  given [b, features], whose later rows depend on the earlier ones: hence both halves), or the
  loss compares rows with one another (in-batch negatives), so L_n depends on how the rows are
  batched, which every full-data pass and minibatch does its own way. Noise drawn after a seed
  fixed in the forward passes the first check (the same draws at every call) and fails this one
  (row i's draw depends on how many rows come before it). A loss that broadcasts outputs [b, 1]
  against targets [b] into [b, b] fails it too, and is named as such (``refuse_broadcast_in_loss``).

A third check is on the gradient the samplers move by. A sampled parameter from which autograd
finds no path to the loss must leave the loss unchanged when its value sampled moves, and when the
module's own tensor moves under it. If the first fails, a ``.detach()``, ``.data`` or
``torch.no_grad()`` cut the graph: the gradient misses that parameter's part, and SGLD would
sample another posterior (MALA would still be exact, but would move that parameter blind). If
the second fails, the forward reads the tensor through a reference of its own, which the values
sampled never replace, and λ̂ would be of the other parameters only.

A fourth compares the gradient with the module's own: away from the module's weights, the losses
and gradients the samplers compute (through ``functional_call``) must be those of the module with
those weights written into it. Activation checkpointing (``torch.utils.checkpoint``) breaks that
without failing at the module's own weights: it runs the forward again in the backward, with
the module's own parameters, so every gradient would be the one at the checkpoint, not at the
chain.

The losses compare at float rounding's scale: a relative 10⁻⁵, or 10⁻⁶ of the largest loss; the
fourth check's gradients, sums over the rows taken two ways, at a relative 10⁻⁴, or 10⁻⁵ of the
largest entry of the module's own. On a random
draw of 40 modules that do none of this (seed 9800, drawn after the tolerance: MLPs with and
without LayerNorm in float32 and float64, 1-d CNNs, transformer layers with dropout in eval
mode), none was refused by the first two checks. The third, on a later draw of 40 such modules
each given an unused layer and parameter (seed 9900), refused none; with that parameter's sum
added to the outputs under ``torch.no_grad()`` it refused all 31 whose loss it changes (the 9
transformers under cross-entropy, whose loss a constant added to every logit leaves as it was,
rightly not). The fourth refused none of the 120 modules of three such draws (seeds 9800, 9900
and 10000) and all 40 of the last with their forward under ``torch.utils.checkpoint``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sltlab.estimators.checks import loss_gap, refuse_unfloating_losses
from sltlab.estimators.functional import FunctionalModel
from sltlab.estimators.sample_losses import row_shape


def refuse_unreproducible_losses(adapter: FunctionalModel, head: tuple) -> None:
    """Both checks (module docstring) on the first rows ``head`` at the module's current values;
    quiet when the module or loss fails on them, or gives no loss per row (the estimate's own
    checks then say why)."""
    rows = (len(head[0]),)
    first, second = adapter.outputs(head, losses=True), adapter.outputs(head, losses=True)
    if first is None or second is None:
        return
    refuse_unfloating_losses(first)
    if first.shape != rows or second.shape != rows:
        refuse_broadcast_in_loss(adapter, head)
        return
    gap = loss_gap(first, second)
    if gap is not None:
        raise ValueError(f"the loss on the same rows at the same weights differed between two evaluations (by up to "
                         f"{gap:.3g}): the module's forward or the loss draws random numbers even in eval mode "
                         "(F.dropout without training=self.training, noise from torch.randn) or keeps state between "
                         "calls, so the posterior is no function of the weights and λ̂ would be wrong; make them "
                         "deterministic in eval mode (F.dropout(x, p, training=self.training))")
    coupled = _rows_coupled(adapter, head, first, losses=True)
    if coupled is not None:
        part, gap = coupled
        refuse_broadcast_in_loss(adapter, head)
        raise ValueError(f"the loss of a row depends on the other rows evaluated with it (by up to {gap:.3g} "
                         f"between rows {part.start}–{part.stop - 1} alone and among the first {len(first)}): the "
                         "module normalises over the batch (x − x.mean(0)), reads the rows as one sequence, draws "
                         "noise after fixing a seed in the forward (a row's draw then depends on the rows before "
                         "it), or the loss compares rows with one another, so L_n is no sum of per-row losses and "
                         "λ̂ would depend on how the rows are batched; compute each row's output and loss from "
                         "that row alone")


def _rows_coupled(adapter: FunctionalModel, head: tuple, values: Tensor, *, losses: bool) -> tuple[slice, float] | None:
    """The first half of the rows ``head`` (the first, then the second) whose ``values`` there (the
    losses, or the module's outputs) differ when that half is evaluated alone, with the largest
    difference; None where neither half's do."""
    half = len(head[0]) // 2
    for part in (slice(0, half), slice(half, len(head[0]))) if half else ():
        alone = adapter.outputs(tuple(column[part] for column in head), losses=losses)
        gap = None if alone is None or alone.shape != values[part].shape else loss_gap(values[part], alone)
        if gap is not None:
            return part, gap
    return None


def refuse_broadcast_in_loss(adapter: FunctionalModel, head: tuple) -> None:
    """A one-line ``ValueError`` where the module's outputs on the first rows ``head`` and a tensor
    the loss may compare them with (the targets, where named, else each tensor of the batch that
    is not an input) differ in shape and broadcast to more entries than either holds, as outputs
    [b, 1] and targets [b] give [b, b]: a loss that subtracts one from the other compares every
    row's output with every row's target, the cause to name when a row's loss depends on the
    other rows or is no single number, where given that tensor in the outputs' shape the loss is
    one number per row, the same alone and among the others. Quiet where the module's own outputs
    for the first half of the rows differ alone and among the others (the module couples the rows
    itself), and where the loss couples the rows whatever that tensor's shape (it compares rows on
    purpose, as an in-batch softmax does)."""
    outputs = adapter.outputs(head)
    if not isinstance(outputs, Tensor) or _rows_coupled(adapter, head, outputs, losses=False) is not None:
        return
    for name, index, column in _compared(adapter, head):
        try:
            shape = torch.broadcast_shapes(outputs.shape, column.shape)
        except RuntimeError:
            continue
        if (column.shape != outputs.shape and math.prod(shape) > max(outputs.numel(), column.numel())
                and _per_row_once_shaped(adapter, head, index, outputs.shape)):
            raise ValueError(f"the module's outputs of shape {row_shape(outputs.shape)} and {name} of shape "
                             f"{row_shape(column.shape)} (b rows) broadcast to {list(shape)} on the first "
                             f"{len(outputs)} rows: a loss that compares them compares every row's output with every "
                             "row's target, so a row's loss depends on the other rows and λ̂ would be wrong; give them "
                             "one shape in the loss (targets[:, None] for outputs [b, 1], or outputs.squeeze(1))")


def _per_row_once_shaped(adapter: FunctionalModel, head: tuple, index: int, shape: torch.Size) -> bool:
    """Whether, with ``head``'s tensor ``index`` reshaped to ``shape``, the loss is one row's worth per row
    (one number, or a few left unreduced) and the same for the first half of the rows alone as among
    the others."""
    column = head[index]
    if column.numel() != math.prod(shape):
        return False
    shaped = tuple(column.reshape(shape) if position == index else part for position, part in enumerate(head))
    losses = adapter.outputs(shaped, losses=True)
    if losses is None or losses.dim() == 0 or losses.shape[0] != len(head[0]):
        return False
    return _rows_coupled(adapter, shaped, losses, losses=True) is None


def _compared(adapter: FunctionalModel, head: tuple) -> list[tuple[str, int, Tensor]]:
    """The tensors of ``head`` a loss may compare the outputs with, named, with their index: the
    targets where the adapter names them, else each tensor that is not one of the module's inputs."""
    names = adapter.fields or tuple(range(len(head)))
    given = adapter.inputs if isinstance(adapter.inputs, tuple) else (adapter.inputs,)
    inputs = {names.index(field) if isinstance(field, str) else field % len(head) for field in given}
    if adapter.targets is not None:
        index = names.index(adapter.targets) if isinstance(adapter.targets, str) else adapter.targets % len(head)
        return [("the targets", index, head[index])]
    return [(f"batch field {names[index]!r}" if adapter.fields else f"batch tensor {index}", index, column)
            for index, column in enumerate(head) if index not in inputs]


CUT_PROBES = 16   # unreached parameter tensors moved, at most: two forwards over the rows each


def refuse_cut_gradients(adapter: FunctionalModel, head: tuple, unreached: tuple[str, ...]) -> None:
    """The third check (module docstring) on the first ``CUT_PROBES`` of the ``unreached``
    parameters, each moved by a seeded 10⁻³ of its size (at least 10⁻³): the losses on the rows
    ``head`` must not change when the value sampled moves, nor when the module's own tensor moves
    under an unchanged value sampled (a forward that reads the tensor through a reference of its
    own, such as a list made in ``__init__``, never sees the values sampled). A one-line
    ``ValueError`` naming the parameter otherwise; the module's tensor is restored either way."""
    before = adapter.outputs(head, losses=True)
    if before is None:
        return
    generator = torch.Generator().manual_seed(0)
    current = dict(adapter.module.named_parameters())
    for name in unreached[:CUT_PROBES]:
        tensor = current[name]
        shift = _seeded_shift(tensor, generator, 1e-3)
        if _changed(before, adapter.outputs(head, losses=True, values={name: tensor.detach() + shift})):
            raise ValueError(f"the loss changes with {name} but carries no gradient in it: a .detach(), .data or "
                             "torch.no_grad() in the module's forward or the loss cuts autograd's graph, so the "
                             f"samplers would move {name} without its part of ∇L_n; use the parameter itself (or "
                             "leave it out with restrict_to=)")
        if _changed(before, _moved_in_place(adapter, head, name, tensor, shift)):
            raise ValueError(f"the module's forward reads {name} through a reference of its own (an attribute or a "
                             "list holding the tensor), not through the module, so the values sampled never reach "
                             "it and λ̂ would leave it out; read it as the module's attribute in the forward")


def refuse_unfaithful_gradients(adapter: FunctionalModel, head: tuple) -> None:
    """The fourth check (module docstring): at the module's weights moved by a seeded 10⁻² of each
    tensor's size (at least 10⁻²), the losses on the rows ``head`` and their gradients as the
    samplers compute them must equal those of the module itself with those weights written into
    it. A one-line ``ValueError`` naming the first parameter whose gradient differs otherwise."""
    generator = torch.Generator().manual_seed(1)
    current = dict(adapter.module.named_parameters())
    values = {name: current[name].detach() + _seeded_shift(current[name], generator, 1e-2) for name in adapter.names}
    sampled, own = adapter.gradients_at(head, values), adapter.gradients_at(head, values, own=True)
    if sampled is None or own is None or sampled[0].shape != own[0].shape or _changed(own[0], sampled[0]):
        return   # the module fails there, or its losses differ: the earlier checks and the estimate say why
    for name, through_sampler, through_module in zip(adapter.names, sampled[1], own[1]):
        if through_sampler is None or through_module is None or not bool(torch.isfinite(through_module).all()):
            continue   # no gradient (the third check), or none finite (the estimate's own checks say why)
        scale = float(through_module.abs().max()) if through_module.numel() else 0.0
        if not torch.allclose(through_sampler, through_module, rtol=1e-4, atol=1e-5 * max(scale, 1e-12)):
            gap = float((through_sampler - through_module).abs().max())
            raise ValueError(f"the gradient in {name} away from the module's own weights differs from the module's "
                             f"own backward there (by up to {gap:.3g} of {scale:.3g}): its backward reads the "
                             "module's own parameters, not the values sampled, as activation checkpointing "
                             "(torch.utils.checkpoint) does when it runs the forward again, so the samplers would "
                             "move by the gradient at other weights; sample the module without it")


def _seeded_shift(tensor: Tensor, generator: torch.Generator, relative: float) -> Tensor:
    """A seeded Gaussian move of ``relative`` times the tensor's largest entry (at least ``relative``)."""
    size = max(float(tensor.detach().abs().max()) if tensor.numel() else 0.0, 1.0)
    return (relative * size * torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)).to(tensor.device)


def _moved_in_place(adapter: FunctionalModel, head: tuple, name: str, tensor: Tensor, shift: Tensor) -> Tensor | None:
    """The losses on ``head`` with the module's own ``tensor`` moved by ``shift`` in place and the
    value sampled left as it was; the tensor restored after. None where it cannot be moved in place
    (an inference tensor)."""
    kept = tensor.detach().clone()
    with torch.no_grad():
        try:
            tensor.add_(shift)
        except RuntimeError:
            return None
        try:
            return adapter.outputs(head, losses=True, values={name: kept})
        finally:
            tensor.copy_(kept)


def _changed(before: Tensor, after: Tensor | None) -> bool:
    return after is not None and after.shape == before.shape and loss_gap(before, after) is not None
