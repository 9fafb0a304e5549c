"""Smoothing an LLC curve λ̂(step) ± SE for stage detection (step 1 of :mod:`sltlab.estimators.stages`).

A weighted local linear regression in u = log(1 + step) (Fan & Gijbels 1996, ch. 3) with a Gaussian
kernel of bandwidth h and weights 1/SE² gives at every checkpoint a smoothed value, a slope dλ̂/du,
and the standard errors of both (and of any difference of them) propagated exactly from the
per-checkpoint SEs, taken as independent. The weights floor each SE at half the median SE, so that
a checkpoint with a near-zero SE does not dominate neighbours several bandwidths away. h is chosen
per curve, among multiples of the mean checkpoint spacing Δ in u, as the one of least unbiased
risk (Mallows' C_L, see :func:`unbiased_risk`): a staircase of sharp rises, precisely measured, is
smoothed little, so that a short stage between two rises keeps its own plateau; a noisy curve is
smoothed more.
"""

from __future__ import annotations

import numpy as np

# Bandwidths tried, in units of the mean checkpoint spacing in log(1 + step). Below half the spacing the
# nearest neighbour weighs under e⁻² and the fit interpolates; above three a stage of a few is smoothed away.
BANDWIDTH_MULTIPLES = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def weighting_errors(standard_errors: np.ndarray) -> np.ndarray:
    """The SEs the smoother weights by: each floored at half their median, so that a few checkpoints
    with near-zero SE (a stuck sampler) cannot reach across the kernel. The SEs propagated through
    the smoother are the true ones, so its errors stay exact for this linear smoother."""
    return np.maximum(standard_errors, 0.5 * np.median(standard_errors))


def local_linear_maps(log_steps: np.ndarray, standard_errors: np.ndarray, bandwidth: float,
                      at: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The matrices taking the curve y to the value and to the slope of the weighted local
    linear fit at every point of ``at`` (default: the checkpoints themselves).

    At u_i the fit minimises Σ_j K((u_j − u_i)/h)·(y_j − a − b(u_j − u_i))²/SE_j², K the
    standard Gaussian; (a, b) = (XᵀWX)⁻¹XᵀWy and their covariance is the sandwich
    (XᵀWX)⁻¹XᵀW·diag(SE²)·WX(XᵀWX)⁻¹ (Fan & Gijbels 1996, eq. 3.5), exact for independent
    per-checkpoint errors. Row i of the first matrix maps y to a at u_i, of the second to b.
    At a point whose checkpoints but one lie so many bandwidths away that their weights underflow to
    zero (steps 0 and 10 at h = 0.005 are 480 bandwidths apart in log(1 + step)), no line passes at
    h, and the fit there takes the bandwidth that reaches its second-nearest checkpoint at two
    bandwidths; every other row is as at h.
    """
    offsets = log_steps[None, :] - (log_steps if at is None else at)[:, None]
    relative = standard_errors / standard_errors.max()   # the maps do not change with the SEs' common scale
    to_value, to_slope, determinant = _fits(offsets, relative, bandwidth)
    alone = ~(determinant > 0)
    if alone.any():
        reach = np.sort(np.abs(offsets[alone]), axis=1)[:, 1] / 2
        to_value[alone], to_slope[alone], _ = _fits(offsets[alone], relative, np.maximum(bandwidth, reach)[:, None])
    return to_value, to_slope


def _fits(offsets: np.ndarray, relative: np.ndarray, bandwidth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`local_linear_maps`' two matrices at ``bandwidth`` (a number, or one per row [rows, 1]),
    and each row's determinant of XᵀWX."""
    with np.errstate(divide="ignore", invalid="ignore"):   # rows without a line: found by their determinant
        weights = np.exp(-0.5 * (offsets / bandwidth) ** 2) / relative[None, :] ** 2
        s0, s1, s2 = (np.sum(weights * offsets ** p, axis=1) for p in range(3))
        determinant = s0 * s2 - s1 ** 2
        # Rows of (XᵀWX)⁻¹XᵀW: the linear maps from y to a and to b.
        to_value = weights * (s2[:, None] - s1[:, None] * offsets) / determinant[:, None]
        to_slope = weights * (s0[:, None] * offsets - s1[:, None]) / determinant[:, None]
    return to_value, to_slope, determinant


def mean_log_spacing(steps: np.ndarray) -> float:
    """The mean spacing of the checkpoints in log(1 + step), the unit of the bandwidths tried."""
    log_steps = np.log1p(steps)
    return float((log_steps[-1] - log_steps[0]) / (len(steps) - 1))


def unbiased_risk(log_steps: np.ndarray, llc: np.ndarray, standard_errors: np.ndarray,
                  weight_errors: np.ndarray, bandwidth: float) -> float:
    """Mallows' C_L of the local linear smoother at ``bandwidth``: for smoothed values ŷ = S·y of
    a curve y = μ + ε with independent errors of known SEs σ_i, Σ((y_i − ŷ_i)/σ_i)² − N + 2·tr S
    is an unbiased estimate of Σ((ŷ_i − μ_i)/σ_i)², the smoother's squared error in SE units
    (Mallows 1973, "Some comments on C_p", Technometrics 15; Stein 1981, Ann. Statist. 9, for
    the Gaussian case). It holds for any fixed S, so S may weight by the floored SEs
    ``weight_errors``."""
    to_value, _ = local_linear_maps(log_steps, weight_errors, bandwidth)
    residuals = (llc - to_value @ llc) / standard_errors
    return float(residuals @ residuals - llc.size + 2 * np.trace(to_value))


def bandwidths_to_read(steps: np.ndarray, llc: np.ndarray, standard_errors: np.ndarray,
                       weight_errors: np.ndarray) -> list[float]:
    """The bandwidths a curve is read at: of :data:`BANDWIDTH_MULTIPLES` of the mean spacing of its
    checkpoints in log(1 + step), the one of least :func:`unbiased_risk`, then every larger one."""
    log_steps = np.log1p(steps)
    tried = [multiple * mean_log_spacing(steps) for multiple in BANDWIDTH_MULTIPLES]
    chosen = min(tried, key=lambda h: unbiased_risk(log_steps, llc, standard_errors, weight_errors, h))
    return [h for h in tried if h >= chosen]
