"""Where a user's module or loss failed on the data, and what to do about it: the one-line
errors of :class:`sltlab.estimators.functional.FunctionalModel`; and the parameters of a
forward, which those remedies and the passing of dict fields by name read."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

# What evaluating a user's module and loss raises on input they cannot take (torch's shape and
# index errors, a loss that returns no tensor or calls a method its argument lacks).
EVALUATION_ERRORS = (RuntimeError, IndexError, TypeError, AttributeError, KeyError)


def locate_failure(module: nn.Module, call: Callable[[], Any]) -> tuple[str, str] | None:
    """Run ``call`` with hooks on every layer of ``module`` (modules without children) and on the
    module itself; None when it runs, else where it failed (in a layer, in the forward between
    layers, or in the loss after the forward returned) and the first line of its error."""
    events: list[tuple[str, str]] = []
    hooks = []
    for name, part in module.named_modules():
        if not list(part.children()):
            described = f"{f'layer {name}' if name else 'the module'} ({type(part).__name__})"
            hooks.append(part.register_forward_pre_hook(lambda *_, d=described: events.append(("in", d))))
            hooks.append(part.register_forward_hook(lambda *_, d=described: events.append(("after", d))))
    hooks.append(module.register_forward_hook(lambda *_: events.append(("returned", ""))))
    try:
        call()
        return None
    except EVALUATION_ERRORS as error:
        failure = error
    finally:
        for hook in hooks:
            hook.remove()
    kind, described = events[-1] if events else ("before", "")
    where = {"in": f"at {described}", "after": f"in the module's forward after {described}",
             "returned": "in the loss, after the module's forward", "before": "in the module's forward, before "
             "its first layer"}[kind]
    return where, first_line_of(failure)


def remedy(where: str, first_line: str, *, own_loss: bool, whole_batch: bool,
           forward_parameters: tuple[inspect.Parameter, ...], scalar_rows: bool, integer_inputs: bool = False) -> str:
    """A remedy for a failure of one chain on the data, where one is known, to follow its first
    line: ``own_loss`` for a callable loss (receiving the whole batch with ``whole_batch``), the
    forward's parameters, ``scalar_rows`` when an input holds one number per row and
    ``integer_inputs`` when an input is not floating point."""
    in_forward, in_loss = where.startswith("in the module's forward"), where.startswith("in the loss")
    keyword_only = [parameter.name for parameter in forward_parameters
                    if parameter.kind == parameter.KEYWORD_ONLY and parameter.default is parameter.empty]
    if in_loss and "out of bounds" in first_line:
        return ("; the targets hold a class index at or above the number of classes the outputs give (their "
                "dimension 1)")
    if own_loss and in_loss:
        given = "the batch as it came" if whole_batch else "its targets"
        return f"; a callable loss receives the module's outputs and {given}, and returns one loss per row"
    if in_forward and keyword_only:
        return (f"; the module's forward takes {', '.join(keyword_only)} by keyword only: a dict batch's fields of "
                "those names are given by name (inputs=), a tuple batch's only by position, so wrap the module "
                "in one whose forward takes them by position")
    if in_forward and "positional argument" in first_line:
        return "; inputs= takes a tuple of fields, given to the module in turn"
    if scalar_rows and not in_loss and any(word in first_line for word in ("shape", "size", "dimension")):
        return ("; the module's input holds one number per row (data of shape [n]), where a layer taking "
                "features wants [n, 1]: give x[:, None]")
    if "inplace" in first_line or "in-place" in first_line:
        return ("; the forward changes a parameter in place (a clamp_ or copy_ under no_grad), which cannot change "
                "the values each chain samples: change it out of place (w.clamp(...)), or outside the forward")
    if "'indices'" in first_line and not in_loss:   # torch's words for a lookup given floating-point indices
        return ("; a layer that looks its input up (nn.Embedding) takes integer indices, and the data's are floating "
                "point (evaluated here in the parameters' dtype): give them as integers (tokens.long())")
    if ("dtype" in first_line or "scalar type" in first_line) and integer_inputs and not in_loss:
        return ("; the module's inputs are integers, which a layer with floating-point weights cannot take: give "
                "floating-point inputs (x.float()), unless the layer looks them up, as nn.Embedding does")
    if "dtype" in first_line or "scalar type" in first_line:
        return ("; a tensor the forward keeps or makes in a dtype of its own (a plain attribute, or dtype= given) "
                "meets parameters the call evaluates in float64 (localising) and in dtype=: register it as a "
                "buffer, or make it in its input's dtype")
    return ""


def parameters_of(forward: Callable) -> tuple[inspect.Parameter, ...]:
    """A forward's parameters (none for a forward without a signature)."""
    try:
        return tuple(inspect.signature(forward).parameters.values())
    except (TypeError, ValueError):
        return ()


def keyword_names(parameters: tuple[inspect.Parameter, ...]) -> tuple[str, ...]:
    """The names among a forward's ``parameters`` that an argument can be given by."""
    return tuple(parameter.name for parameter in parameters
                 if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY))


def first_line_of(error: Exception) -> str:
    """An error's first line without its closing full stop, or its type's name when it says nothing."""
    text = str(error).strip()
    return text.splitlines()[0].rstrip(".") if text else type(error).__name__
