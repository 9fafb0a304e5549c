"""What ``sltlab estimate module`` reads from files: the model from a Python file, the data and
the checkpoints from ``torch.save`` files, each loaded with ``weights_only=True`` (tensors and
plain containers, no code). Every problem is a one-line ``ValueError``."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path

from torch import Tensor, nn

from sltlab.estimators.checkpoints import Checkpoint, saved_value, state_of


def load_model(spec: str) -> nn.Module:
    """``FILE.py:NAME``: the module ``NAME`` of the Python file, or what ``NAME()`` returns when
    it is a function or class. The file's folder is on ``sys.path`` while it loads, so it may
    import its neighbours."""
    path_text, _, name = spec.rpartition(":")
    if not path_text or not name:
        raise ValueError(f"--model takes FILE.py:NAME (a module, or a function returning one), got {spec!r}")
    path = Path(path_text)
    if not path.is_file():
        raise ValueError(f"--model: {path} is a folder, not a file" if path.is_dir() else f"--model: no file {path}")
    loader_spec = importlib.util.spec_from_file_location(f"sltlab_user_model_{abs(hash(path.resolve()))}", path)
    if loader_spec is None or loader_spec.loader is None:
        raise ValueError(f"--model: {path} is not a Python file")
    source = importlib.util.module_from_spec(loader_spec)
    sys.path.insert(0, str(path.resolve().parent))
    try:
        loader_spec.loader.exec_module(source)
    except (Exception, SystemExit) as error:   # sys.exit() in the file: its code is no answer of sltlab's
        raise ValueError(f"--model: {_raised(error, path)} while {path} was run") from error
    finally:
        sys.path.remove(str(path.resolve().parent))
    if not hasattr(source, name):
        raise ValueError(f"--model: {path} defines no {name!r}")
    model = getattr(source, name)
    if callable(model) and not isinstance(model, nn.Module):
        try:
            model = model()
        except (Exception, SystemExit) as error:
            raise ValueError(f"--model: {_raised(error, path)} in {name}()") from error
    if not isinstance(model, nn.Module):
        kind = type(model).__name__
        article = "an" if kind[0] in "aeiouAEIOU" else "a"
        raise ValueError(f"--model: {spec} gives {article} {kind}, not a torch.nn.Module")
    return model


def _raised(error: Exception, path: Path) -> str:
    """What the user's file raised, with the line of that file it last passed through."""
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__)
             if Path(frame.filename).resolve() == path.resolve()]
    where = f" (line {lines[-1]} of {path.name})" if lines else ""
    return f"{type(error).__name__}: {error}{where}"


def load_data(path: str) -> tuple[Tensor, ...] | dict[str, Tensor]:
    """A ``torch.save`` file of a tuple or list of tensors (inputs first, targets last), or of
    a dict of named tensors, each with a row per sample."""
    value = saved_value(path, "--data")
    if isinstance(value, (tuple, list)) and value and all(isinstance(item, Tensor) for item in value):
        return tuple(value)
    if isinstance(value, Mapping) and value and all(isinstance(key, str) and isinstance(item, Tensor)
                                                    for key, item in value.items()):
        return dict(value)   # the estimate reads it as named columns, and refuses columns of unequal rows
    holds = f"a {type(value).__name__}"
    if isinstance(value, Mapping) and value:   # a dict that is no data set's: say which entries are not tensors
        others = [f"{key!r} ({type(item).__name__})" for key, item in value.items() if not isinstance(item, Tensor)]
        holds += f" whose entries {', '.join(others[:4])} are no tensors" if others else " with keys other than text"
    raise ValueError(f"--data {path} holds {holds}: save a tuple of tensors (inputs, targets) or a dict of named "
                     "tensors, each with a row per sample")


def load_checkpoint(path: str) -> Checkpoint:
    """A state dict, or a training checkpoint holding one (and perhaps its step):
    :func:`~sltlab.estimators.checkpoints.state_of`."""
    return state_of(saved_value(path, "--checkpoint"), f"--checkpoint {path}")
