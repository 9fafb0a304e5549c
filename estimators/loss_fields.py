"""Which of the data's tensors the module receives and which a named loss compares with, and the
checks of those targets made once, before any sampling: what :func:`sltlab.estimators.estimate_llc`
and :func:`sltlab.estimators.estimate_llc_along` read their ``inputs``, ``targets`` and ``loss`` with."""

from __future__ import annotations

import inspect
from typing import Callable, Sequence

from torch import nn

from sltlab.estimators.data_rows import Rows
from sltlab.estimators.failure_place import keyword_names
from sltlab.estimators.sample_losses import (LOSSES, check_binary_targets, check_class_indices,
                                             check_class_probabilities, class_targets_note)
from sltlab.estimators.streamed import first_rows
from sltlab.estimators.torch_losses import SummedPerRow

INPUT_KEYS = ("x", "input", "inputs")
TARGET_KEYS = ("y", "target", "targets", "label", "labels")
COLUMNS_NOTE = "the data hold "   # how the note opens that says which of more than two tensors were read


def resolve_loss(loss: str | Callable, rows: Rows, inputs, targets, forward: Sequence[inspect.Parameter] = ()):
    """(per-sample loss, input field or tuple of fields, target field or None, notes): the loss a
    name stands for (or the callable itself), the fields checked to exist, and one-line
    ``ValueError``s for targets that are also an input and for targets a named loss cannot take.
    Without ``inputs``, dict batches give the module their ``x``/``input``/``inputs``, or else
    every field its forward's parameters (``forward``) name, less targets, as ``model(**batch)``
    would, where they hold every parameter without a default; a note says which."""
    if isinstance(loss, type) and issubclass(loss, nn.Module):   # callable, but it makes a module, not losses
        name = f"nn.{loss.__qualname__}" if loss.__module__.startswith("torch.nn") else loss.__qualname__
        example = f", such as {name}(reduction='none')" if name.startswith("nn.") else ""
        raise ValueError(f"loss={name} is a class: give an instance of it{example}")
    fields = rows.fields
    notes: tuple[str, ...] = ()
    if inputs is None and fields is not None and not any(key in fields for key in INPUT_KEYS):
        by_name = keyword_names(tuple(forward))
        named = tuple(name for name in by_name if name in fields and name != targets and name not in TARGET_KEYS)
        required = {parameter.name for parameter in forward if parameter.default is parameter.empty} & set(by_name)
        if named and required <= set(named):
            inputs = named if len(named) > 1 else named[0]
            notes += (f"the module received the batch's field{'s' * (len(named) > 1)} {', '.join(named)} by name, "
                      "those its forward names (inputs= chooses others)",)
    if inputs is None:
        inputs = 0 if fields is None else _first_present(INPUT_KEYS, fields, "inputs", "the module's input")
    if isinstance(inputs, list):
        inputs = tuple(inputs)
    if inputs == ():
        raise ValueError("inputs=() names no field: give the module's input, or a tuple of its inputs in order")
    given = inputs if isinstance(inputs, tuple) else (inputs,)
    for field in given:
        _check_field(field, rows, "inputs")
    if _torch_loss_module(loss):
        _check_reduction(loss)
        sample_loss = SummedPerRow(loss)
        if targets is None:
            targets = _default_targets(f"nn.{type(loss).__name__}", rows)
        if isinstance(loss, nn.MSELoss):
            notes += ("nn.MSELoss(reduction='none') summed over a row is ‖y − f(x)‖², twice loss 'mse' (the "
                      "unit-variance Gaussian's ½‖y − f(x)‖²): the posterior is that of noise variance ½",)
        notes += _reweighted(loss)
    elif callable(loss):
        sample_loss = loss
    elif isinstance(loss, str) and loss in LOSSES:
        sample_loss = LOSSES[loss]
        if targets is None:
            targets = _default_targets(repr(loss), rows)
            if fields is None and rows.columns > 2:
                notes += (f"{COLUMNS_NOTE}{rows.columns} tensors per row: the module received {_tensors(inputs)} "
                          f"and loss {loss!r} compared its outputs with tensor {rows.columns - 1}, the last (inputs=, "
                          "targets= choose others)",)
        if loss == "mse":
            notes += ("loss 'mse' is the unit-variance Gaussian negative log-likelihood ½‖y − f(x)‖² + const per "
                     "sample (a mean over outputs, as torch's MSELoss takes, would rescale nβ)",)
    else:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)} or a callable (outputs, batch) -> per-sample "
                         f"losses, got {loss!r}")
    if targets is not None:
        _check_field(targets, rows, "targets")
        if not callable(loss) and _position(targets, rows) in {_position(field, rows) for field in given}:
            raise ValueError(f"the targets (tensor {targets!r}) are also one of the module's inputs ({inputs!r}): give "
                             "the targets as a tensor of their own (inputs=, targets=)")
    unused = [key for key in fields or () if key not in given and key != targets]
    if unused and (isinstance(loss, str) or _torch_loss_module(loss)):   # a callable loss may read them
        notes += (f"the data's field{'s' * (len(unused) > 1)} {', '.join(map(repr, unused))} "
                  f"reach{'es' * (len(unused) == 1)} neither the module nor the loss, which compares its outputs "
                  f"with {targets!r} only: a sample weight there is not applied (a callable loss of (outputs, batch) "
                  "can read it)",)
    named = loss if isinstance(loss, str) else _named_like(loss)
    if named is not None:   # every row's targets when they are in memory, the first slice's when streamed
        targets_read = first_rows(rows.tensors, targets if rows.fields is None else rows.fields.index(targets))
        if named == "cross_entropy":
            check_class_probabilities(targets_read)
            notes += (check_class_indices(targets_read) if isinstance(loss, str) else
                      check_class_indices(targets_read, loss.ignore_index, f"loss=nn.{type(loss).__name__}"))
        elif named == "binary_cross_entropy":
            check_binary_targets(targets_read)
        else:
            notes += class_targets_note(targets_read, named)
    return sample_loss, inputs, targets, notes


def _default_targets(loss: str, rows: Rows) -> int | str:
    """The field a loss that compares outputs with targets reads when ``targets=`` is not given:
    the last tensor, or the dict's ``y``/``target``/``label``..."""
    if rows.fields is None and rows.columns < 2:
        raise ValueError(f"loss {loss} compares the outputs with targets: give data as (inputs, targets)")
    return -1 if rows.fields is None else _first_present(TARGET_KEYS, rows.fields, "targets", "the targets")


def _torch_loss_module(loss) -> bool:
    """Whether ``loss`` is one of torch's loss modules (nn.MSELoss(), nn.CrossEntropyLoss(), ...),
    which take (outputs, targets)."""
    return isinstance(loss, nn.Module) and type(loss).__module__ == "torch.nn.modules.loss"


# torch's loss modules whose per-row values are those of a named loss (the squared error twice
# 'mse''s), so that their targets get the same checks
NAMED_LIKE = {"MSELoss": "mse", "CrossEntropyLoss": "cross_entropy", "BCEWithLogitsLoss": "binary_cross_entropy"}


def _named_like(loss) -> str | None:
    """The named loss whose target checks a torch loss module takes: None for a callable of the
    caller's own."""
    return NAMED_LIKE.get(type(loss).__name__) if _torch_loss_module(loss) else None


def _check_reduction(loss: nn.Module) -> None:
    """A one-line ``ValueError`` for a torch loss module that reduces over the rows: the posterior
    exp(−nβ·L_n) needs each row's loss (reduction='none'), or the named loss of the same likelihood."""
    reduction = getattr(loss, "reduction", "none")
    if reduction == "none":
        return
    name = type(loss).__name__
    named = NAMED_LIKE.get(name)
    scale = (" (½‖y − f(x)‖², the unit-variance Gaussian; MSELoss's mean over outputs would rescale nβ)"
             if name == "MSELoss" else "")
    instead = f"loss={named!r}{scale}, or " if named else ""
    raise ValueError(f"loss=nn.{name}() takes the {reduction} over the rows, but the posterior needs each row's "
                     f"loss: give {instead}nn.{name}(reduction='none'), whose losses are summed over each row")


def _reweighted(loss: nn.Module) -> tuple[str, ...]:
    """A note for a loss module whose per-row values are no negative log-likelihood of the
    targets: class weights (``weight``, ``pos_weight``) or ``label_smoothing``."""
    changes = [f"{name}=" for name in ("weight", "pos_weight") if getattr(loss, name, None) is not None]
    changes += ["label_smoothing="] if getattr(loss, "label_smoothing", 0.0) else []
    if not changes:
        return ()
    return (f"nn.{type(loss).__name__} with {' and '.join(changes)}: each row's loss is not −log p(y | x), so the "
            "posterior exp(−nβ·L_n) is that loss's, not the model's likelihood's, and λ̂ is measured on it",)


def _position(field: int | str, rows: Rows) -> int | str:
    """A field as one name for it: a tensor's index counted from the front, or a dict key."""
    return field % rows.columns if isinstance(field, int) else field


def _tensors(inputs: int | str | tuple) -> str:
    return f"tensors {', '.join(map(str, inputs))}" if isinstance(inputs, tuple) else f"tensor {inputs}"


def _first_present(candidates: Sequence[str], fields: Sequence[str], option: str, what: str) -> str:
    for key in candidates:
        if key in fields:
            return key
    several = (f" (or a tuple of keys, {option}={tuple(fields[:2])!r}, given to the forward by name where it names "
               "them)") if option == "inputs" and len(fields) > 1 else ""
    raise ValueError(f"dict batches with keys {list(fields)}: name {what} with {option}=KEY{several} "
                     f"(--{option} KEY on the command line)")


def _check_field(field: int | str, rows: Rows, option: str) -> None:
    if isinstance(field, bool):   # an int to Python, which would index tensor 0 or 1
        raise ValueError(f"{option}={field!r} is a truth value, not a field: give a tensor's index or a dict key")
    if rows.fields is not None:
        if field in rows.left_out:
            raise ValueError(f"{option}={field!r} holds no tensor with a row per sample (a nested dict, a list or "
                             f"strings), so it was left out of the batches ({', '.join(rows.fields)}): give the "
                             "module's input and the targets as tensor fields of the batch (flatten a nested dict)")
        if field not in rows.fields:   # a key inside a nested dict is not one: the fields left out say where it may be
            left_out = "" if not rows.left_out else (
                f"; left out as holding no tensor with a row per sample (a nested dict, a list or strings): "
                f"{', '.join(rows.left_out)} (a key inside a nested dict is no field: flatten it)")
            raise ValueError(f"{option}={field!r} is not a key of the batches ({', '.join(rows.fields)}){left_out}")
    elif not (isinstance(field, int) and -rows.columns <= field < rows.columns):
        raise ValueError(f"{option}={field!r} must index the {rows.columns} data tensors")
