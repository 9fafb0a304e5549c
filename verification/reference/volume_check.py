"""Exact λ and m of toy potentials set beside the independent numerical check of
:mod:`sltlab.verification.reference.volume_scaling`: V(ε) = vol{K < ε} ~ c ε^λ (log 1/ε)^{m−1} on [−1, 1]^d.

For the degenerate potentials that :func:`sltlab.theory.newton` refuses, the comparison is with
their true values (known by a change of coordinates that makes them normal crossings:
(w1 + w2)² is u² with u = w1 + w2, λ = 1/2), which differ from the naive Newton numbers: the
volume check confirms that the refusal was needed.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
import sympy

from sltlab.verification.reference.volume_scaling import DEFAULT_EPSILONS, volume_scaling
from sltlab.theory import LearningCoefficient, newton, normal_crossing

LAMBDA_TOLERANCE = 0.02  # the fit's stated accuracy for these potentials (estimators.volume_scaling)


class VolumeCase(NamedTuple):
    """A potential and its exact (λ, m): computed by a theory function, or a stated true value; and
    the ε its volume is fitted at where the default ones do not settle the fit."""

    potential: str
    exact: Callable[[], LearningCoefficient] | tuple[str, int]
    source: str
    epsilons: tuple[float, ...] | None = None


VOLUME_CASES: tuple[VolumeCase, ...] = (
    VolumeCase("w1**2*w2**2", lambda: normal_crossing([1, 1]), "normal_crossing"),
    VolumeCase("(w1*w2*w3)**2", lambda: normal_crossing([1, 1, 1]), "normal_crossing"),
    *(VolumeCase(K, lambda K=K: newton(K), "newton") for K in (
        "w1**4 + w2**2", "w1**4 + w2**4", "(w1**2 + w2**2)**2",
        "w1**2 + w1**2*w2**2", "(w1*w2)**2 + (w1*w2**2)**2", "w1**6 + w2**4",
        "w1**2*w2**2 + w3**4", "w1**2 + w2**2 + w3**2")),
    # at 1e-6 … 1e-10 its halves read λ 1.4 % apart (its ε^{1/6} correction), and the fit is refused
    VolumeCase("w1**2*w2**4 + w1**4*w2**2", lambda: newton("w1**2*w2**4 + w1**4*w2**2"), "newton",
               tuple(np.logspace(-8, -16, 9).tolist())),
    VolumeCase("(w1 + w2)**2", ("1/2", 1), "true value: u² with u = w1 + w2 (newton refuses; naive 1)"),
    VolumeCase("(w1 - w2**2)**2", ("1/2", 1), "true value: u² with u = w1 − w2² (newton refuses; naive 3/4)"),
    VolumeCase("(w1**2 - w2**2)**2", ("1/2", 2),
               "true value: u²v² with u = w1 − w2, v = w1 + w2 (newton refuses; naive m = 1)"),
)


def volume_rows(cases: tuple[VolumeCase, ...] = VOLUME_CASES) -> list[dict[str, Any]]:
    """Fit every case and compare: agrees when |λ̂ − λ| ≤ LAMBDA_TOLERANCE and m̂ = m."""
    rows = []
    for case in cases:
        if callable(case.exact):
            exact = case.exact()
            lam, m = exact.lam, exact.multiplicity
        else:
            lam, m = sympy.Rational(case.exact[0]), case.exact[1]
        fit = volume_scaling(case.potential, epsilons=case.epsilons)
        error = abs(fit.lam - float(lam))
        rows.append({"potential": case.potential, "lambda": str(lam), "multiplicity": m, "epsilons": fit.epsilons,
                     "source": case.source, "lambda_fit": fit.lam, "multiplicity_fit": fit.multiplicity,
                     "abs_error": error,
                     "agrees": bool(error <= LAMBDA_TOLERANCE and fit.multiplicity == m)})
    return rows


def volume_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """The markdown section for `volume_rows`."""
    lines = ["## Numerical cross-check: volume scaling", "",
             f"λ̂ and m̂ fitted to V(ε) on [−1, 1]^d at ε = 1e-6 … 1e-10; agreement means "
             f"|λ̂ − λ| ≤ {LAMBDA_TOLERANCE} and m̂ = m.", "",
             "| K | exact λ | m | from | fitted λ̂ | m̂ | \\|λ̂ − λ\\| | agrees |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        at = "" if row["epsilons"][0] == DEFAULT_EPSILONS[0] else (
            f", at ε = {row['epsilons'][0]:.0e} … {row['epsilons'][-1]:.0e}")
        lines.append(f"| `{row['potential']}` | {row['lambda']} | {row['multiplicity']} | {row['source']}{at} "
                     f"| {row['lambda_fit']:.4f} | {row['multiplicity_fit']} | {row['abs_error']:.4f} "
                     f"| {'✓' if row['agrees'] else '✗'} |")
    return lines
