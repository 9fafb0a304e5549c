"""Exact learning coefficients (λ, m), derived symbolically. Never imports torch."""

from theory.coefficient import DegenerateError, Derivation, LearningCoefficient
from theory.deep_linear import deep_linear, dln_staircase
from theory.newton import newton
from theory.reduced_rank import reduced_rank
from theory.toy import normal_crossing, regular, tanh_network

__all__ = [
    "DegenerateError",
    "Derivation",
    "LearningCoefficient",
    "deep_linear",
    "dln_staircase",
    "newton",
    "normal_crossing",
    "reduced_rank",
    "regular",
    "tanh_network",
]
