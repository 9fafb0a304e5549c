"""Exact learning coefficients (λ, m), derived symbolically. Never imports torch."""

from sltlab.theory.coefficient import DegenerateError, Derivation, LearningCoefficient
from sltlab.theory.deep_linear import deep_linear, dln_staircase
from sltlab.theory.newton import newton
from sltlab.theory.parsing import natural_order, parse_expression
from sltlab.theory.reduced_rank import reduced_rank
from sltlab.theory.toy import normal_crossing, regular, tanh_network

__all__ = [
    "DegenerateError",
    "Derivation",
    "LearningCoefficient",
    "deep_linear",
    "dln_staircase",
    "natural_order",
    "newton",
    "normal_crossing",
    "parse_expression",
    "reduced_rank",
    "regular",
    "tanh_network",
]
