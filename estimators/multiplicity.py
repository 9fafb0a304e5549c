"""λ and the multiplicity m together, from LLC estimates at several nβ.

At a singularity of multiplicity m the finite-temperature estimate sits below λ by about
(m − 1)/log t (for K = w1²w2², t·E_t[K] = 1/2 − 1/log t + O(1/log² t), which
follows from the pole of order m of the zeta function, Watanabe 2009, Thm. 6.1). Fitting
λ̂(t) = λ − (m − 1)·(1/log t) by weighted least squares in x = 1/log t gives λ (intercept) and
m − 1 (minus the slope), each with a standard error.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np


class MultiplicityFit(NamedTuple):
    lam: float
    lam_standard_error: float
    multiplicity: float            # fitted 1 − slope, a real number
    multiplicity_standard_error: float
    multiplicity_rounded: int | None   # the nearest integer ≥ 1; None where the fit cannot tell (below)
    nbetas: list[float]
    estimates: list[float]

    @property
    def unresolved(self) -> str | None:
        """Why no integer m is read from the fit, or None: an SE of ½ or more cannot tell
        neighbouring integers apart, and a fitted m more than 2 SE below 1 is no multiplicity
        at all (the estimates do not follow λ − (m − 1)/log t; e.g. chains still climbing)."""
        if not self.multiplicity_standard_error < 0.5:
            return f"its SE {self.multiplicity_standard_error:.2g} ≥ ½ cannot tell neighbouring integers apart"
        if self.multiplicity < 1 - 2 * self.multiplicity_standard_error:
            return "it lies more than 2 SE below 1: the estimates do not follow λ − (m − 1)/log nβ"
        return None


MAX_RUNGS = 64   # each rung is a whole estimate; a fit of two numbers gains little beyond (100,000 had run on)


def check_rung_count(count: int) -> None:
    """Refuse a ladder of fewer than 2 or more than ``MAX_RUNGS`` temperatures, before nβ is known."""
    if not 2 <= count <= MAX_RUNGS:
        raise ValueError(f"a multiplicity fit takes 2 to {MAX_RUNGS} temperatures, got {count}")


def temperature_ladder(nbeta: float, count: int, decades: float = 2.0) -> list[float]:
    """``count`` values of nβ, log-uniform over ``decades`` decades centred on ``nbeta``; every
    one must exceed 1 (at or below 1 the posterior is the prior)."""
    check_rung_count(count)
    lowest = nbeta * 10.0 ** (-decades / 2)
    if not lowest > 1:
        raise ValueError(f"the temperature ladder spans {decades:g} decades around nβ = {nbeta:g}, down to "
                         f"{lowest:.3g}, and every rung needs nβ > 1: centre it above {10 ** (decades / 2):g}")
    exponents = np.linspace(-decades / 2, decades / 2, count)
    return [float(nbeta * 10.0 ** e) for e in exponents]


def fit_multiplicity(nbetas: Sequence[float], estimates: Sequence[float],
                     standard_errors: Sequence[float]) -> MultiplicityFit:
    """Weighted least squares of λ̂(t) on 1/log t (weights 1/SE²)."""
    t = np.asarray(nbetas, dtype=float)
    y = np.asarray(estimates, dtype=float)
    se = np.asarray(standard_errors, dtype=float)
    if len(t) < 2 or len(t) != len(y) or len(y) != len(se):
        raise ValueError("need at least two (nβ, λ̂, SE) triples of equal length")
    if not (np.all(t > 1) and np.all(np.isfinite(t)) and np.all(se > 0) and np.all(np.isfinite(se))
            and np.all(np.isfinite(y))):
        raise ValueError("every nβ must be finite and exceed 1, every SE be finite and positive and every estimate "
                         "finite")
    if len(np.unique(t)) < 2:
        raise ValueError(f"the fit needs at least two different nβ, got {t.tolist()}")
    design = np.column_stack([np.ones_like(t), 1.0 / np.log(t)])
    weights = 1.0 / se**2
    normal = design.T @ (design * weights[:, None])
    coefficients = np.linalg.solve(normal, design.T @ (weights * y))
    covariance = np.linalg.inv(normal)
    if len(t) > 2:  # scale by the reduced chi-square when the residuals are larger than the SEs
        residuals = y - design @ coefficients
        covariance = covariance * max(1.0, float(np.sum(weights * residuals**2)) / (len(t) - 2))
    lam, slope = coefficients
    multiplicity = 1.0 - slope
    fit = MultiplicityFit(float(lam), math.sqrt(covariance[0, 0]), float(multiplicity), math.sqrt(covariance[1, 1]),
                          max(1, int(round(multiplicity))), [float(v) for v in t], [float(v) for v in y])
    return fit if fit.unresolved is None else fit._replace(multiplicity_rounded=None)
