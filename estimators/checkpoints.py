"""Checkpoints as :func:`~sltlab.estimators.along.estimate_llc_along` and ``sltlab estimate
module`` take them: modules, state dicts, training checkpoints that hold a state dict (and
perhaps their step) under a key of their own, and files ``torch.save`` wrote of the last two,
read with ``weights_only=True`` (tensors, plain containers and NumPy numbers, no code:
:mod:`sltlab.estimators.numpy_numbers`). Every problem is a one-line ``ValueError``."""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from sltlab.estimators.functional import copied_module
from sltlab.estimators.numpy_numbers import numpy_numbers_allowed

# Keys under which training scripts commonly keep the model's state dict inside a checkpoint
STATE_KEYS = ("state_dict", "model_state_dict", "model")
STEP_KEYS = ("step", "global_step", "iteration", "epoch")


class Checkpoint(NamedTuple):
    state: dict[str, Any]
    step: float | None   # the training step the checkpoint records, if it does
    step_key: str | None = None   # the key it records it under (step, global_step, iteration, epoch)


def saved_value(path: str | os.PathLike, what: str) -> Any:
    """What ``torch.save`` wrote to ``path``: tensors and plain containers, and NumPy numbers read as
    Python numbers where torch's safe loading can be told to (:mod:`sltlab.estimators.numpy_numbers`)."""
    if not Path(path).is_file():
        raise ValueError(f"{what}: {path} is a folder, not a file" if Path(path).is_dir()
                         else f"{what}: no file {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:   # pickled code, a corrupt file: torch says which in many lines
        refused = error
    if "GLOBAL numpy" in str(refused):   # NumPy numbers (a step saved as np.int64) are read as Python numbers
        try:
            with numpy_numbers_allowed():
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:   # what else it holds (NumPy arrays, any other pickled object): torch names it
            refused = error if "GLOBAL" in str(error) else refused
    raise ValueError(f"{what} {path} cannot be read as tensors ({_unreadable(path, refused)}): save tensors, "
                     "dicts and lists with torch.save, a model as model.state_dict()")


def _unreadable(path: str | os.PathLike, error: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused ``path``, in a few words: a NumPy file, no
    file of torch.save's at all, an object it would have to run code to rebuild (a whole module,
    NumPy arrays), or torch's first line, its terminal colour codes left out."""
    with open(path, "rb") as file:
        head = file.read(6)
    if head == b"\x93NUMPY":
        return "a NumPy .npy file, not one of torch.save's"
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):   # a zip archive, or the legacy pickle
        return "not a file torch.save wrote"
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    pickled = re.search(r"GLOBAL ([\w.]+)", text)
    if pickled and pickled.group(1).endswith("multiarray.scalar"):   # where torch cannot be told to read them
        return ("it holds a NumPy scalar that safe loading cannot read: bools, integers and floats are read where "
                "torch can be told to, no other; save a step as a Python int (int(step)) or a tensor")
    if pickled and pickled.group(1).split(".")[0] == "numpy":
        return ("it holds NumPy arrays, which loading would run code to rebuild; torch.from_numpy(array) saves a "
                "tensor, int(step) a step")
    if pickled:
        return f"it holds a pickled {pickled.group(1)}, which loading would run code to rebuild"
    first = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {first}" if len(first) < 20 else first


def state_of(value: Any, what: str) -> Checkpoint:
    """A state dict as it is, or the one a training checkpoint holds under ``STATE_KEYS`` with
    the step it records under ``STEP_KEYS``."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} holds a {type(value).__name__}: save model.state_dict()")
    if value and all(isinstance(item, Tensor) or str(key).endswith("_extra_state") for key, item in value.items()):
        return Checkpoint(dict(value), None)
    for key in STATE_KEYS:
        state = value.get(key)
        if isinstance(state, Mapping) and state and all(isinstance(item, Tensor) for item in state.values()):
            name = next((name for name in STEP_KEYS if _number(value.get(name)) is not None), None)
            step = None if name is None else _number(value[name])
            if step is not None and not math.isfinite(step):   # NaN had compared as in order with every step
                raise ValueError(f"{what} records {name} = {step}: a training step must be a finite number")
            return Checkpoint(dict(state), step, name)
    raise ValueError(f"{what} is neither a state dict nor a checkpoint holding one under {', '.join(STATE_KEYS)}")


def _number(value: Any) -> float | None:
    """A recorded step as a number: a real number (NumPy's too), or a one-element tensor
    (``torch.tensor(step)``)."""
    if isinstance(value, Tensor) and value.numel() == 1 and not value.is_complex():
        return float(value.item())
    return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else None


def load_state(module: nn.Module, state: Mapping[str, Any], what: str) -> None:
    """``state`` loaded into ``module``; one that does not fit it is a one-line error naming ``what``.
    Keys that all begin with the same name and a dot are read without it, as often as that takes,
    where that gives exactly the module's own keys: the state of ``torch.compile(model)``
    (``_orig_mod.``), of a ``DistributedDataParallel`` model (``module.``) or of a training
    wrapper that holds the model as an attribute (a LightningModule's ``self.net``: ``net.``) is
    the model's."""
    unwrapped, expected = dict(state), set(module.state_dict())
    while set(unwrapped) != expected and (prefix := _common_prefix(unwrapped)):
        unwrapped = {key[len(prefix):]: value for key, value in unwrapped.items()}
    if set(unwrapped) == expected:
        state = unwrapped
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"{what} does not fit the model: {' '.join(str(error).split())}") from None


def _common_prefix(keys) -> str | None:
    """The first dotted name every key begins with ("module." of "module.0.weight"), or None."""
    heads = {str(key).split(".", 1)[0] + "." if "." in str(key) else None for key in keys}
    return heads.pop() if len(heads) == 1 and None not in heads else None


def opened(checkpoints: Sequence) -> list:
    """The checkpoints with every file read, once, and every training checkpoint unwrapped into
    the state dict it holds (:func:`state_of`); modules as they are. Checkpoints whose recorded
    steps do not increase in the order given are a one-line error: the curve would put each λ̂
    at another point of training (a list of files sorted as text puts step200 before step60); steps
    are compared where two checkpoints record them under the same key, and a step repeated is taken."""
    states, recorded = [], []
    for index, checkpoint in enumerate(checkpoints):
        what = f"checkpoint {index}"
        if isinstance(checkpoint, (str, os.PathLike)):
            what, checkpoint = f"{what} ({checkpoint})", saved_value(checkpoint, what)
        elif not isinstance(checkpoint, (nn.Module, Mapping)):
            raise ValueError(f"{what} is {type(checkpoint).__name__}: give modules, state dicts or files of them")
        opened_one = None if isinstance(checkpoint, nn.Module) else state_of(checkpoint, what)
        states.append(checkpoint if opened_one is None else opened_one.state)
        recorded += [(index, opened_one)] if opened_one is not None and opened_one.step is not None else []
    last: dict[str, tuple[int, Checkpoint]] = {}   # the latest checkpoint recording each key, so far
    for then, later in recorded:   # saves within one epoch may repeat it
        first, earlier = last.setdefault(later.step_key, (then, later))
        last[later.step_key] = (then, later)
        if later.step < earlier.step:
            raise ValueError(f"the checkpoints are not in training order: checkpoint {first} records "
                             f"{earlier.step_key} {earlier.step:g} and checkpoint {then} {later.step:g}; give them in "
                             "the order of their steps (a list of files sorted as text puts step200 before step60)")
    return states


def checkpoint_module(checkpoint: nn.Module | Mapping[str, Any], model: nn.Module | None, index: int
                      ) -> tuple[nn.Module, tuple[tuple[str, str], ...]]:
    """Opened checkpoint ``index`` (:func:`opened`) as a module: itself, or its state loaded into a
    copy of ``model``; and the (submodule, attribute) pairs of tensors that copy holds detached
    (:func:`~sltlab.estimators.functional.copied_module`), for the forward of the module sampled to
    show them set anew: a view or product of a weight taken in ``__init__`` is not."""
    if isinstance(checkpoint, nn.Module):
        if isinstance(model, nn.Module) and _shapes(checkpoint) != _shapes(model):
            raise ValueError(f"checkpoint {index} is a module whose parameters are not model='s "
                             f"({_difference(_shapes(checkpoint), _shapes(model))}): model= is the template "
                             "state dicts are loaded into; leave it out, or give one of the checkpoints' architecture")
        return checkpoint, ()
    if not isinstance(model, nn.Module):
        raise ValueError("checkpoints given as state dicts or files need model=, an nn.Module of the same architecture")
    module, detached = copied_module(model)
    load_state(module, checkpoint, f"checkpoint {index}")
    return module, tuple((path, name) for path, name, _ in detached)


def _shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(value.shape) for name, value in module.named_parameters()}


def _difference(given: dict[str, tuple[int, ...]], template: dict[str, tuple[int, ...]]) -> str:
    """The first parameter in which two modules' names and shapes differ, in words."""
    for name in [*given, *template]:
        if given.get(name) != template.get(name):
            return (f"{name} is {list(given[name]) if name in given else 'missing'} in it and "
                    f"{list(template[name]) if name in template else 'missing'} in model=")
    return ""


def refuse_shared_weights(checkpoints: Sequence) -> None:
    """A one-line ``ValueError`` when two opened checkpoints (:func:`opened`) hold the same weights
    in memory: one module object twice, a module and its own state dict, or state dicts sharing
    their tensors, as a list built by appending ``model`` or ``model.state_dict()`` while it trains
    holds them. Every such checkpoint is the model as it is now, so the curve would repeat its last
    λ̂ at every step."""
    seen: dict[tuple, int] = {}
    for index, checkpoint in enumerate(checkpoints):   # a module and its own state dict hold the same tensors
        state = checkpoint.state_dict() if isinstance(checkpoint, nn.Module) else checkpoint
        key = tuple(value.data_ptr() for value in state.values()   # meta and empty tensors hold no memory to share
                    if isinstance(value, Tensor) and not value.is_meta and value.numel())
        if key and seen.setdefault(key, index) != index:
            raise ValueError(f"checkpoints {seen[key]} and {index} share their weights in memory (the same module, "
                             "its state dict, or state dicts of its own tensors), so both are the model as it is "
                             "now: save copy.deepcopy(model) at each step, or state dicts of copies, "
                             "{name: t.clone() for name, t in model.state_dict().items()}")
