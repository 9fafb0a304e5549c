"""Which of the data's tensors the module receives and which a named loss compares with, and the
checks of those targets made once, before any sampling: what :func:`sltlab.estimators.estimate_llc`
and :func:`sltlab.estimators.estimate_llc_along` read their ``inputs``, ``targets`` and ``loss`` with."""

from __future__ import annotations

from typing import Callable, Sequence

from sltlab.estimators.data_rows import Rows
from sltlab.estimators.sample_losses import (LOSSES, check_binary_targets, check_class_indices,
                                             check_class_probabilities, class_targets_note)
from sltlab.estimators.streamed import first_rows

INPUT_KEYS = ("x", "input", "inputs")
TARGET_KEYS = ("y", "target", "targets", "label", "labels")


def resolve_loss(loss: str | Callable, rows: Rows, inputs, targets):
    """(per-sample loss, input field or tuple of fields, target field or None, notes): the loss a
    name stands for (or the callable itself), the fields checked to exist, and one-line
    ``ValueError``s for targets that are also an input and for targets a named loss cannot take."""
    fields = rows.fields
    if inputs is None:
        inputs = 0 if fields is None else _first_present(INPUT_KEYS, fields, "inputs", "the module's input")
    if isinstance(inputs, list):
        inputs = tuple(inputs)
    if inputs == ():
        raise ValueError("inputs=() names no field: give the module's input, or a tuple of its inputs in order")
    given = inputs if isinstance(inputs, tuple) else (inputs,)
    for field in given:
        _check_field(field, rows, "inputs")
    notes: tuple[str, ...] = ()
    if callable(loss):
        sample_loss = loss
    elif isinstance(loss, str) and loss in LOSSES:
        sample_loss = LOSSES[loss]
        if targets is None:
            if fields is None and rows.columns < 2:
                raise ValueError(f"loss {loss!r} compares the outputs with targets: give data as (inputs, targets)")
            targets = -1 if fields is None else _first_present(TARGET_KEYS, fields, "targets", "the targets")
            if fields is None and rows.columns > 2:
                notes += (f"the data hold {rows.columns} tensors per row: the module received {_tensors(inputs)} "
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
    if not callable(loss):   # every row's targets when they are in memory, the first slice's when streamed
        targets_read = first_rows(rows.tensors, targets if rows.fields is None else rows.fields.index(targets))
        if loss == "cross_entropy":
            check_class_probabilities(targets_read)
            notes += check_class_indices(targets_read)
        elif loss == "binary_cross_entropy":
            check_binary_targets(targets_read)
        else:
            notes += class_targets_note(targets_read, loss)
    return sample_loss, inputs, targets, notes


def _position(field: int | str, rows: Rows) -> int | str:
    """A field as one name for it: a tensor's index counted from the front, or a dict key."""
    return field % rows.columns if isinstance(field, int) else field


def _tensors(inputs: int | str | tuple) -> str:
    return f"tensors {', '.join(map(str, inputs))}" if isinstance(inputs, tuple) else f"tensor {inputs}"


def _first_present(candidates: Sequence[str], fields: Sequence[str], option: str, what: str) -> str:
    for key in candidates:
        if key in fields:
            return key
    raise ValueError(f"dict batches with keys {list(fields)}: name {what} with {option}=KEY")


def _check_field(field: int | str, rows: Rows, option: str) -> None:
    if rows.fields is not None:
        if field in rows.left_out:
            raise ValueError(f"{option}={field!r} holds no tensor with a row per sample (a nested dict, a list or "
                             f"strings), so it was left out of the batches ({', '.join(rows.fields)}): give the "
                             "module's input and the targets as tensor fields of the batch (flatten a nested dict)")
        if field not in rows.fields:
            raise ValueError(f"{option}={field!r} is not a key of the batches ({', '.join(rows.fields)})")
    elif not (isinstance(field, int) and -rows.columns <= field < rows.columns):
        raise ValueError(f"{option}={field!r} must index the {rows.columns} data tensors")
