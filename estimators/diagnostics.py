"""Convergence diagnostics of a (chain, draw) array: rank-normalised split R-hat, the bulk
effective sample size and the Monte Carlo standard error of the mean, as defined by Vehtari,
Gelman, Simpson, Carpenter & Bürkner (2021, Bayesian Analysis 16(2)), in numpy alone.

Each chain is split into halves (§4.1), so a trend within a chain shows as disagreement
between chains. Rank normalisation (§4.2) replaces every draw by Φ⁻¹((r − 3/8)/(S + 1/4)),
r its average rank among all S draws (Blom 1958), so heavy tails cannot hide a chain that has
not mixed; R-hat is the larger of the bulk value and that of the draws folded about their
median (eq. 4–5). The ESS is S/τ̂ with τ̂ = −1 + 2·Σ ρ̂_t over Geyer's (1992) initial positive
and monotone sequence of paired autocorrelations ρ̂_t, which combine the within-chain
autocovariances with the variance between chains (eq. 10–11, Appendix A of the paper);
τ̂ is floored at 1/log₁₀ S. The numbers equal arviz-stats' (a test compares them).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri


def split_chains(values: np.ndarray) -> np.ndarray:
    """[C, S] → [2C, ⌊S/2⌋]: the first and last half of every chain (a middle draw of an odd S dropped)."""
    half = values.shape[1] // 2
    return np.concatenate([values[:, :half], values[:, values.shape[1] - half:]])


def rank_normalise(values: np.ndarray) -> np.ndarray:
    """Φ⁻¹ of the Blom-offset average ranks, (r − 3/8)/(S − 3/4 + 1), of every draw among all S."""
    _, group, counts = np.unique(values.reshape(-1), return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    average_rank = (last - (counts - 1) / 2.0)[group]
    return ndtri((average_rank - 0.375) / (values.size + 0.25)).reshape(values.shape)


def _potential_scale_reduction(values: np.ndarray) -> float:
    """√(((S − 1)/S·W + B/S)/W) for [chains, S]: W the mean within-chain variance, B/S the
    variance of the chain means (Gelman & Rubin 1992; Vehtari et al. 2021, eq. 3)."""
    draws = values.shape[1]
    within = values.var(axis=1, ddof=1).mean()
    between = draws * values.mean(axis=1).var(ddof=1)
    return float(np.sqrt((between / within + draws - 1) / draws))


def rhat(values: np.ndarray) -> float:
    """Rank-normalised split R-hat: the larger of the bulk and the folded value (eq. 4–5); NaN
    with fewer than two chains or four draws."""
    if values.shape[0] < 2 or values.shape[1] < 4 or np.isnan(values).any():
        return float("nan")
    split = split_chains(values)
    folded = np.abs(split - np.median(split))
    return max(_potential_scale_reduction(rank_normalise(split)), _potential_scale_reduction(rank_normalise(folded)))


def _autocovariances(values: np.ndarray) -> np.ndarray:
    """Every chain's autocovariance at lags 0 … S − 1 (divided by S), by FFT with zero padding
    past 2S so that no lag wraps around."""
    draws = values.shape[1]
    centred = values - values.mean(axis=1, keepdims=True)
    length = 1 << (2 * draws - 1).bit_length()
    spectrum = np.fft.rfft(centred, n=length, axis=1)
    return np.fft.irfft(spectrum * np.conjugate(spectrum), n=length, axis=1)[:, :draws] / draws


def effective_sample_size(values: np.ndarray) -> float:
    """The ESS of the mean of [chains, S] (Vehtari et al. 2021, eq. 10–11 with Geyer's initial
    positive and monotone sequences); all draws when they are all equal."""
    chains, draws = values.shape
    if values.max() - values.min() < np.finfo(float).resolution:
        return float(values.size)
    autocovariance = _autocovariances(values)
    within = autocovariance[:, 0].mean() * draws / (draws - 1.0)
    pooled = within * (draws - 1.0) / draws + (values.mean(axis=1).var(ddof=1) if chains > 1 else 0.0)
    rho = np.zeros(draws)
    rho[0] = even = 1.0
    rho[1] = odd = 1.0 - (within - autocovariance[:, 1].mean()) / pooled
    lag = 1
    while lag < draws - 3 and even + odd > 0.0:           # the initial positive sequence
        even = 1.0 - (within - autocovariance[:, lag + 1].mean()) / pooled
        odd = 1.0 - (within - autocovariance[:, lag + 2].mean()) / pooled
        if even + odd >= 0:
            rho[lag + 1], rho[lag + 2] = even, odd
        lag += 2
    last = lag - 2
    if even > 0:
        rho[last + 1] = even
    lag = 1
    while lag <= last - 2:                                 # made monotone
        if rho[lag + 1] + rho[lag + 2] > rho[lag - 1] + rho[lag]:
            rho[lag + 1] = rho[lag + 2] = (rho[lag - 1] + rho[lag]) / 2.0
        lag += 2
    tau = -1.0 + 2.0 * rho[:last + 1].sum() + rho[last + 1:last + 2].sum()
    tau = max(tau, 1.0 / np.log10(values.size))
    return float("nan") if np.isnan(rho).any() else values.size / tau


def bulk_ess(values: np.ndarray) -> float:
    """The ESS of the rank-normalised split chains (§4.3); NaN with fewer than four draws."""
    if values.shape[1] < 4 or np.isnan(values).any():
        return float("nan")
    return effective_sample_size(rank_normalise(split_chains(values)))


def block_means(values: np.ndarray, size: int) -> np.ndarray:
    """[C, S] → [C, ⌊S/size⌋]: the means of consecutive blocks of ``size`` draws of every chain
    (the last S mod size draws dropped)."""
    blocks = values.shape[1] // size
    return values[:, :blocks * size].reshape(values.shape[0], blocks, size).mean(-1)


def mcse_mean(values: np.ndarray) -> float:
    """The Monte Carlo standard error of the mean: the draws' standard deviation over the square
    root of the split chains' ESS; NaN with fewer than four draws."""
    if values.shape[1] < 4 or np.isnan(values).any():
        return float("nan")
    return float(values.std(ddof=1) / np.sqrt(effective_sample_size(split_chains(values))))
