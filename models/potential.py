"""Population potentials K(w) given as sympy expressions, evaluated on batched chains.

Used as the loss of a tempered posterior exp(−nβ·K(w))·prior: there are no
data, so calling the potential ignores the batch and returns K at every chain as [C, 1].
"""

from __future__ import annotations

from typing import Sequence

import sympy
import torch
from torch import Tensor

from sltlab.models.counts import shown

# Functions a potential may use, mapped to their batched torch versions.
_TORCH_FUNCTIONS = {"tanh": torch.tanh, "exp": torch.exp, "log": torch.log, "sin": torch.sin,
                    "cos": torch.cos, "sqrt": torch.sqrt, "Abs": torch.abs}


class Potential:
    """K(w) in the coordinates ``variables``, in that order: a sympy expression and its
    symbols as :func:`sltlab.theory.parse_expression` returns them (names stand for K's symbols
    of those names)."""

    def __init__(self, expression: sympy.Expr, variables: Sequence[sympy.Symbol | str]):
        if not isinstance(expression, sympy.Expr):
            raise ValueError(f"the potential must be a sympy expression, got {shown(expression)}: read text "
                             f"with sltlab.theory.parse_expression")
        if isinstance(variables, (str, bytes, set, frozenset)) or not hasattr(variables, "__iter__"):
            raise ValueError(f"variables must be a sequence of names in order, e.g. ['w1', 'w2'], "
                             f"got {shown(variables)}")
        named = {str(symbol): symbol for symbol in expression.free_symbols}
        self.expression = expression
        self.variables = tuple(named.get(v, sympy.Symbol(v)) if isinstance(v, str) else v for v in variables)
        if not all(isinstance(v, sympy.Symbol) for v in self.variables) or len(set(self.variables)) != self.dim:
            raise ValueError(f"variables must be distinct names or sympy symbols, got {shown(list(self.variables))}")
        missing = expression.free_symbols - set(self.variables)
        if missing:
            raise ValueError(f"the potential uses {sorted(s.name for s in missing)}, "
                             f"which are not among the variables {[v.name for v in self.variables]}")
        if not self.variables:
            raise ValueError(f"the potential {expression} has no variables")
        unknown = {f.func.__name__ for f in expression.atoms(sympy.Function)} - set(_TORCH_FUNCTIONS)
        if unknown:
            raise ValueError(f"the potential uses functions sltlab cannot batch: {sorted(unknown)}")
        # A function of numbers alone (sqrt(2), log(2)) becomes its float: torch's functions take tensors;
        # so does an integer beyond int64, which torch cannot take as a scalar (10²⁰·w² had raised OverflowError).
        numeric = {part: sympy.Float(part.evalf(17), 17) for part in expression.atoms(sympy.Function, sympy.Pow)
                   if part.is_number}
        numeric.update({whole: sympy.Float(whole, 17) for whole in expression.atoms(sympy.Integer)
                        if abs(whole) >= 2 ** 63})
        self._function = sympy.lambdify(self.variables, expression.xreplace(numeric), modules=[_TORCH_FUNCTIONS])

    @property
    def dim(self) -> int:
        return len(self.variables)

    def __call__(self, position: Tensor, batch=None) -> Tensor:
        """K at every chain, [C, 1] (one 'sample': the population loss)."""
        if position.shape[-1] != self.dim:
            raise ValueError(f"position has {position.shape[-1]} coordinates, K has {self.dim} variables")
        value = self._function(*position.unbind(-1))
        return torch.as_tensor(value, dtype=position.dtype, device=position.device).expand(
            position.shape[:-1]).unsqueeze(-1)

    def __repr__(self) -> str:
        return f"Potential({str(self.expression)!r})"
