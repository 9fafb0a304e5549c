"""The smoother of an LLC curve that stage detection reads (estimators.curve_smoothing)."""

import numpy as np

from sltlab.estimators.curve_smoothing import local_linear_maps, unbiased_risk
from sltlab.verification.bench.stages import staircase


def test_the_bandwidth_criterion_is_an_unbiased_estimate_of_the_smoothers_risk():
    """Averaged over 4,000 noise draws, Mallows' C_L equals the exact risk Σ((ŷ_i − μ_i)/σ_i)² =
    ‖Σ^{-1/2}(S − I)μ‖² + tr(Σ^{-1/2}SΣSᵀΣ^{-1/2}) within 4 of its standard errors, at three bandwidths."""
    steps, curve, errors = staircase(0, checkpoints=30, jumps=(5, 3, 8, 4), standard_error=0.3)
    truth = curve   # a fixed mean μ (one seeded staircase; C_L is unbiased for any μ)
    log_steps, weight_errors = np.log1p(steps), np.maximum(errors, 0.5 * np.median(errors))
    noise = errors * np.random.default_rng(1).standard_normal((4000, steps.size))
    for bandwidth in (0.1, 0.2, 0.4):
        smoother, _ = local_linear_maps(log_steps, weight_errors, bandwidth)
        whitened = smoother * errors[None, :] / errors[:, None]
        exact = float(np.sum(((smoother - np.eye(steps.size)) @ truth / errors) ** 2) + np.sum(whitened ** 2))
        estimates = np.array([unbiased_risk(log_steps, truth + draw, errors, weight_errors, bandwidth)
                              for draw in noise])
        assert abs(estimates.mean() - exact) < 4 * estimates.std() / np.sqrt(noise.shape[0]), bandwidth
