"""The drift check of the mixing gate: chains that rise together pass R-hat, not the drift."""

import numpy as np

from sltlab.estimators import diagnostics
from sltlab.estimators.llc import drift_z, llc_from_gaps
from sltlab.estimators.gate import DRIFT_MAX, mixing_concern, readings_pass


def stationary_chains(seed, chains=8, draws=4000, phi=0.9):
    """Stationary AR(1) chains of unit variance: what mixed chains look like."""
    rng = np.random.default_rng(seed)
    shocks = rng.standard_normal((chains, draws)) * np.sqrt(1 - phi**2)
    values = np.empty((chains, draws))
    values[:, 0] = rng.standard_normal(chains)
    for t in range(1, draws):
        values[:, t] = phi * values[:, t - 1] + shocks[:, t]
    return values


def test_chains_climbing_together_pass_r_hat_and_fail_the_drift_check():
    climbing = 10 + stationary_chains(0) + np.linspace(0, 0.75, 4000)   # every chain rises by 0.75 spreads
    estimate = llc_from_gaps(climbing, 1.0)
    # R-hat of the draws passes them (that of block means, also gated, reads 1.064 here)
    assert diagnostics.rhat(climbing) < 1.05 and estimate.ess > 200
    assert estimate.drift > DRIFT_MAX
    concern = mixing_concern(estimate)
    assert concern is not None and "still drifting" in concern and "R-hat" in concern and "likely low" in concern
    falling = mixing_concern(llc_from_gaps(10 + stationary_chains(0) - np.linspace(0, 0.75, 4000), 1.0))
    assert falling is not None and "likely high" in falling


def test_stationary_chains_read_a_drift_of_about_one_standard_error():
    drifts = np.array([drift_z(stationary_chains(seed)) for seed in range(40)])
    # z is standard normal for stationary chains: over 40 seeds its spread is near 1 and none
    # comes near the threshold (P(|z| > 4) = 6e-5 each).
    assert 0.6 < drifts.std() < 1.4 and np.abs(drifts).max() < DRIFT_MAX
    assert mixing_concern(llc_from_gaps(10 + stationary_chains(3), 1.0)) is None


def test_too_few_draws_give_no_drift():
    assert drift_z(np.ones((4, 15))) is None
    assert drift_z(np.ones((4, 40))) is None   # constant draws: no standard error


def test_a_reading_that_is_not_a_number_fails_the_gate_rather_than_passing_it():
    estimate = llc_from_gaps(10 + stationary_chains(3), 1.0)
    assert mixing_concern(estimate) is None
    for reading in ({"drift": float("nan")}, {"standard_error": float("nan")}, {"mean": float("nan")},
                    {"rhat": float("nan")}, {"ess": float("nan")}):
        assert mixing_concern(estimate._replace(**reading)) is not None, reading
    assert readings_pass(1.01, 900.0, [], 3.9) and not readings_pass(1.01, 900.0, [], 4.1)
    for rhat, ess, drift in ((float("nan"), 900.0, 0.0), (1.01, float("nan"), 0.0), (1.01, 900.0, float("nan")),
                             (None, 900.0, None)):
        assert not readings_pass(rhat, ess, [], drift)
