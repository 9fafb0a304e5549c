"""λ from LLC estimates at several sample sizes: the finite-nβ LLC extrapolated to nβ → ∞.

At inverse temperature nβ the LLC is the derivative of the local free energy in log nβ; with
F(nβ) = λ·log nβ − (m − 1)·log log nβ + O(1) (Watanabe 2009, Thm. 6.1 and §6.3) that is
λ − (m − 1)/log nβ + o(1/log nβ), and the finite-n corrections of the data and the localising
prior add further terms of the same order. So estimates λ̂_k at nβ_k, each from its own data set
of n_k samples, are fitted by weighted least squares to

    λ̂(nβ) = λ − c / log nβ,

whose intercept is λ, with c free (it absorbs the multiplicity term and the others). Two sizes
determine the line; three or more also test it (χ² of the residuals). Where the shortfall falls
faster than 1/log nβ the line overshoots λ: a third size shows it as a large χ².
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Extrapolation:
    lam: float                   # the intercept: λ̂ at nβ → ∞
    standard_error: float        # of the intercept, propagated from the estimates' SEs
    shortfall: float             # c: how far below λ the estimates sit, times log nβ
    nbetas: tuple[float, ...]
    estimates: tuple[float, ...]
    standard_errors: tuple[float, ...]
    chi2: float | None           # Σ residual²/SE² with len − 2 degrees of freedom; None for two sizes
    weights: tuple[float, ...]   # λ̂ = Σ_k weights_k·λ̂_k: the same sum extrapolates each chain's estimates

    def combine(self, values) -> float:
        """The extrapolation applied to other values at the same nβ (e.g. one chain's estimates)."""
        return float(np.dot(self.weights, values))


def extrapolate_llc(nbetas, estimates, standard_errors) -> Extrapolation:
    """Fit λ̂(nβ) = λ − c/log nβ to estimates at two or more distinct nβ > 1 (module docstring)."""
    nbetas, estimates, standard_errors = (np.asarray(v, dtype=float) for v in (nbetas, estimates, standard_errors))
    if not (nbetas.ndim == 1 and nbetas.shape == estimates.shape == standard_errors.shape and len(nbetas) >= 2):
        raise ValueError("need one estimate and one standard error for each of at least two nβ")
    if not (np.all(nbetas > 1) and np.all(np.isfinite(estimates)) and np.all(standard_errors > 0)):
        raise ValueError("need nβ > 1, finite estimates and positive standard errors")
    if len(np.unique(nbetas)) < 2:
        raise ValueError("need at least two different nβ to extrapolate")
    design = np.stack([np.ones_like(nbetas), -1 / np.log(nbetas)], axis=1)
    weights = 1 / standard_errors ** 2
    covariance = np.linalg.inv(design.T @ (weights[:, None] * design))
    linear = covariance @ design.T * weights          # [2, k]: (λ, c) = linear @ estimates
    lam, shortfall = linear @ estimates
    residuals = estimates - design @ np.array([lam, shortfall])
    chi2 = float(np.sum(weights * residuals ** 2)) if len(nbetas) > 2 else None
    return Extrapolation(float(lam), math.sqrt(covariance[0, 0]), float(shortfall), tuple(nbetas.tolist()),
                         tuple(estimates.tolist()), tuple(standard_errors.tolist()), chi2, tuple(linear[0].tolist()))
