"""Whole-number and real settings of the models (widths, hidden units, features, moduli, noise
levels), read strictly: 2.7 or "23" or True is refused, not cut to 2, split into (2, 3) or read
as 1; NaN or ±inf is refused where a finite number is meant."""

from __future__ import annotations

import math
import operator
from typing import Any

import torch


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


def finite(name: str, value: Any, *, positive: bool) -> float:
    """``value`` as a finite Python float, above 0 if ``positive`` and otherwise at least 0 (NumPy
    and one-number torch values included; text and True are not numbers), or a one-line ValueError."""
    try:
        number = None if isinstance(value, (bool, str, bytes)) else float(value)
    except (TypeError, ValueError, RuntimeError):
        number = None
    if number is None or not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise ValueError(f"{name} must be a {'positive' if positive else 'non-negative'} finite number, "
                         f"got {shown(value)}")
    return number


def finite_matrix(name: str, value: Any) -> torch.Tensor:
    """``value`` if it is a 2-D floating-point tensor of finite numbers, or a one-line ValueError."""
    if not (isinstance(value, torch.Tensor) and value.dim() == 2 and value.is_floating_point()):
        got = f"{value.dtype} of shape {list(value.shape)}" if isinstance(value, torch.Tensor) else shown(value)
        raise ValueError(f"{name} must be a 2-D floating-point tensor, got {got}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must hold finite numbers, got {int((~torch.isfinite(value)).sum())} NaN or ±inf "
                         f"among its {value.numel()}")
    return value


def shown(value: Any) -> str:
    """``value``'s repr for a one-line message, or its type where that repr is long or spans lines."""
    text = repr(value)
    return text if len(text) <= 80 and "\n" not in text else f"a {type(value).__name__}"
