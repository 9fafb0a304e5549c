"""NumPy numbers in a ``torch.save`` file, read under ``weights_only=True`` without NumPy's own
unpickling.

A training script that records its step as a NumPy number (``np.int64(5)``, an index or a count
taken from NumPy) writes a pickle that calls ``numpy._core.multiarray.scalar`` (in NumPy 1,
``numpy.core.multiarray.scalar``) on a ``numpy.dtype``, which torch's safe loading refuses.
Allowing NumPy's own two would hand the file's arguments to NumPy's C code: a dtype built from
any description and its ``__setstate__``, a scalar from raw bytes (NumPy itself refuses object
and structured scalars there, but was not written as a guard against crafted files). Here the two
names stand for :class:`SavedDtype`, which only records the name and byte order the file gives,
and :func:`numeric_scalar`, which reads a bool, an integer or a float of that dtype from its bytes
as a Python number and refuses every other dtype: NumPy only parses a dtype's name and reads a
number from bytes of its size. NumPy arrays stay refused.
"""

from __future__ import annotations

import contextlib
import pickle
from typing import Any, ContextManager

import numpy as np
import torch

NUMBER_KINDS = "biuf"   # NumPy's bool, signed and unsigned integer, and floating kinds


class SavedDtype:
    """A NumPy dtype as a pickle names it (``numpy.dtype('i8', False, True)`` and then its state),
    held as the name and byte order it gives; nothing is built until :func:`numeric_scalar` reads
    a number of it."""

    def __init__(self, name: Any, align: Any = False, copy: Any = True):
        self.name, self.byteorder = name, "="

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.byteorder = state[1]


def numeric_scalar(dtype: Any, data: Any) -> bool | int | float:
    """The number the bytes ``data`` hold as ``dtype``, a :class:`SavedDtype` of a bool, integer
    or floating kind, as a Python number; an ``UnpicklingError`` for any other dtype or data."""
    kind = None
    if isinstance(dtype, SavedDtype) and isinstance(dtype.name, str):
        with contextlib.suppress(TypeError, ValueError):
            kind = np.dtype(dtype.name)
    if (kind is None or kind.kind not in NUMBER_KINDS or kind.fields is not None or kind.subdtype is not None
            or kind.itemsize > 8):   # a long double's .item() stays a NumPy number
        named = dtype.name if isinstance(dtype, SavedDtype) else type(dtype).__name__
        raise pickle.UnpicklingError(f"a NumPy scalar of dtype {named!r}: only bools, integers and floats of at most "
                                     "64 bits are read")
    if not isinstance(data, bytes) or len(data) != kind.itemsize:
        raise pickle.UnpicklingError(f"a NumPy {kind} scalar that does not hold {kind.itemsize} bytes")
    return np.frombuffer(data, dtype=kind.newbyteorder(dtype.byteorder))[0].item()


NUMPY_NUMBERS = [(SavedDtype, "numpy.dtype"), (numeric_scalar, "numpy._core.multiarray.scalar"),
                 (numeric_scalar, "numpy.core.multiarray.scalar")]


def numpy_numbers_allowed() -> ContextManager:
    """Where torch's safe loading takes such names (``torch.serialization.safe_globals``), a
    context in which it reads NumPy numbers as :func:`numeric_scalar` does; elsewhere, none."""
    allowing = getattr(torch.serialization, "safe_globals", None)
    return allowing(NUMPY_NUMBERS) if allowing is not None else contextlib.nullcontext()
