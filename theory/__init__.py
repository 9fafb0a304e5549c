"""Exact learning coefficients (λ, m), derived symbolically. Never imports torch."""

from sltlab.theory.coefficient import DegenerateError, Derivation, LearningCoefficient
from sltlab.theory.deep_linear import deep_linear, dln_staircase
from sltlab.theory.free_energy import Phase, Transition, critical_n, dln_phases, predicted_occupancy, transitions
from sltlab.theory.newton import newton
from sltlab.theory.parsing import natural_order, parse_expression
from sltlab.theory.reduced_rank import reduced_rank
from sltlab.theory.restricted import restricted_deep_linear, restricted_deep_linear_at, restricted_deep_linear_balanced
from sltlab.theory.tms import KGon, kgon, tms_phases
from sltlab.theory.toy import normal_crossing, regular, tanh_network

__all__ = [
    "DegenerateError",
    "Derivation",
    "KGon",
    "LearningCoefficient",
    "Phase",
    "Transition",
    "critical_n",
    "deep_linear",
    "dln_phases",
    "dln_staircase",
    "kgon",
    "natural_order",
    "newton",
    "normal_crossing",
    "parse_expression",
    "predicted_occupancy",
    "reduced_rank",
    "regular",
    "restricted_deep_linear",
    "restricted_deep_linear_at",
    "restricted_deep_linear_balanced",
    "tanh_network",
    "tms_phases",
    "transitions",
]
