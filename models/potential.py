"""Population potentials K(w) given as sympy expressions, evaluated on batched chains.

Used as the loss of a tempered posterior exp(−nβ·K(w))·prior: there are no
data, so calling the potential ignores the batch and returns K at every chain as [C, 1].
"""

from __future__ import annotations

from typing import Sequence

import sympy
import torch
from torch import Tensor

# Functions a potential may use, mapped to their batched torch versions.
_TORCH_FUNCTIONS = {"tanh": torch.tanh, "exp": torch.exp, "log": torch.log, "sin": torch.sin,
                    "cos": torch.cos, "sqrt": torch.sqrt, "Abs": torch.abs}


class Potential:
    """K(w) in the coordinates ``variables``, in that order: a sympy expression and its
    symbols as :func:`sltlab.theory.parse_expression` returns them."""

    def __init__(self, expression: sympy.Expr, variables: Sequence[sympy.Symbol]):
        self.expression, self.variables = expression, tuple(variables)
        missing = expression.free_symbols - set(self.variables)
        if missing:
            raise ValueError(f"the potential uses {sorted(s.name for s in missing)}, "
                             f"which are not among the variables {[v.name for v in self.variables]}")
        if not self.variables:
            raise ValueError(f"the potential {expression} has no variables")
        unknown = {f.func.__name__ for f in expression.atoms(sympy.Function)} - set(_TORCH_FUNCTIONS)
        if unknown:
            raise ValueError(f"the potential uses functions sltlab cannot batch: {sorted(unknown)}")
        # A function of numbers alone (sqrt(2), log(2)) becomes its float: torch's functions take tensors.
        numeric = {part: sympy.Float(part.evalf(17), 17) for part in expression.atoms(sympy.Function, sympy.Pow)
                   if part.is_number}
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
