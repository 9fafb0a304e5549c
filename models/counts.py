"""Whole-number settings of the models (widths, hidden units, features, moduli), read strictly:
2.7 or "23" or True is refused, not cut to 2, split into (2, 3) or read as 1."""

from __future__ import annotations

import operator
from typing import Any


def whole(name: str, value: Any, least: int) -> int:
    """``value`` as a Python int of at least ``least`` (NumPy and torch integers included), or a
    one-line ValueError."""
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number < least:
        raise ValueError(f"{name} must be a whole number of at least {least}, got {value!r}")
    return int(number)
