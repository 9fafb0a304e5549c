"""The value every theory function returns: an exact learning coefficient.

The learning coefficient of a model at a true parameter is the real log canonical threshold
λ of its average log-loss K(w), and m is its multiplicity: −λ is the largest pole of the zeta
function ζ(z) = ∫ K(w)^z φ(w) dw and m its order (Watanabe, *Algebraic Geometry and Statistical
Learning Theory*, 2009, ch. 2 and 6).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import sympy


class DegenerateError(ValueError):
    """A Newton-polyhedron computation whose validity cannot be shown.

    Raised when a compact face polynomial of the Newton polyhedron vanishes somewhere on the
    real torus (R∖0)^d, or when that cannot be ruled out; the message names the face.
    """


@dataclass(frozen=True)
class Derivation:
    """Where a value comes from: the formula, the case of it that applied, and the source."""

    formula: str
    case: str
    source: str

    def __str__(self) -> str:
        return f"{self.formula}; {self.case} [{self.source}]"


@dataclass(frozen=True)
class LearningCoefficient:
    """An exact learning coefficient λ (a sympy Rational) with multiplicity m.

    Attributes
    ----------
    lam : sympy.Rational
        The real log canonical threshold, exact.
    multiplicity : int
        The order m of the pole at −λ.
    dim : int
        Number of parameters d of the model (λ ≤ d/2).
    model : str
        Model family identifier, e.g. ``"deep_linear"``.
    parameters : Mapping[str, Any]
        The arguments that identify the instance (read-only).
    derivation : Derivation
        The formula, the case taken and its source.
    """

    lam: sympy.Rational
    multiplicity: int
    dim: int
    model: str
    parameters: Mapping[str, Any]
    derivation: Derivation

    def __post_init__(self) -> None:
        if isinstance(self.lam, float) and not math.isfinite(self.lam):   # sympy.Rational(nan) is 0
            raise ValueError(f"λ must be a finite number, got {self.lam}")
        lam = repr(self.lam) if isinstance(self.lam, float) else self.lam   # 0.1 is 1/10, as elsewhere
        object.__setattr__(self, "lam", sympy.Rational(lam))
        frozen = {k: tuple(v) if isinstance(v, list) else v for k, v in self.parameters.items()}
        object.__setattr__(self, "parameters", MappingProxyType(frozen))

    def __hash__(self) -> int:
        return hash((self.model, self.lam, self.multiplicity, self.dim, tuple(sorted(self.parameters.items()))))

    @property
    def lam_float(self) -> float:
        """λ as a float, for plots and comparisons with estimates."""
        return float(self.lam)

    @property
    def regular_ratio(self) -> float:
        """λ/(d/2): 1 for a regular model, smaller the more singular the model."""
        return float(2 * self.lam / self.dim)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values: λ both as the exact string ``"79/2"`` and as a float."""
        return {
            "model": self.model,
            "parameters": {k: _jsonable(v) for k, v in self.parameters.items()},
            "lambda": str(self.lam),
            "lambda_float": self.lam_float,
            "multiplicity": self.multiplicity,
            "dim": self.dim,
            "regular_ratio": self.regular_ratio,
            "derivation": asdict(self.derivation),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


MAX_EXPONENT = sympy.Integer(10) ** 100   # exponents, priors and singular values beyond this overflow a float


def require_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as an int of at most 10¹⁰⁰ (λ is also given in floating point), or raise
    ValueError saying why it is not acceptable."""
    try:
        index = None if isinstance(value, bool) else value.__index__()
    except (AttributeError, TypeError):   # no integer, or an array of more than one
        index = None
    if index is None:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if index < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {index}")
    if index > MAX_EXPONENT:
        raise ValueError(f"{name} must be at most 1e100 (λ is also given in floating point), got a number of "
                         f"{len(str(index))} digits")
    return index


def require_exponents(name: str, values: Sequence, allow_fraction: bool,
                      positive_because: str | None = None) -> tuple[sympy.Rational, ...]:
    """Return ``values`` as non-negative exact numbers (integers unless ``allow_fraction``), or, with
    ``positive_because`` (said in the message), positive ones."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name} must be a list of numbers, got {values!r}")
    if isinstance(values, (set, frozenset)):   # no order, and equal entries merged: a list says which is which
        raise ValueError(f"{name} must be a list of numbers in order, got a set {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool):   # a flag, not a number: Rational(True) would read 1
            raise ValueError(f"every entry of {name} must be a number, got {v!r}")
        # sympy.Rational(inf) is 0; an integer is finite at any size (math.isfinite overflows on a huge one)
        if isinstance(v, numbers.Real) and not isinstance(v, numbers.Integral) and not math.isfinite(v):
            raise ValueError(f"every entry of {name} must be finite, got {v!r}")
        if allow_fraction and isinstance(v, float):   # 0.1 means 1/10, as on the command line, not its binary value
            v = repr(float(v))
        try:
            q = sympy.Rational(v) if allow_fraction else sympy.Integer(require_int(name, v, 0))
        except (TypeError, ValueError, ZeroDivisionError, sympy.SympifyError):
            whole = isinstance(v, numbers.Integral) and not isinstance(v, bool)
            if whole and int(v) > MAX_EXPONENT:   # a whole number too large: said as such, not as no number
                raise ValueError(f"every entry of {name} must be at most 1e100 (λ is also given in floating point), "
                                 f"got a number of {len(str(int(v)))} digits") from None
            raise ValueError(f"every entry of {name} must be a non-negative "
                             f"{'rational' if allow_fraction else 'integer'}, got {v!r}") from None
        if positive_because is not None and q <= 0:
            raise ValueError(f"every entry of {name} must be positive ({positive_because}), got {v!r}")
        if q < 0:
            raise ValueError(f"every entry of {name} must be non-negative, got {v!r}")
        if q > MAX_EXPONENT:
            raise ValueError(f"every entry of {name} must be at most 1e100 (λ is also given in floating point), "
                             f"got about 1e{round(math.log10(q.p) - math.log10(q.q))}")
        out.append(q)
    return tuple(out)
