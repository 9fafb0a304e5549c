"""Chains dropped from λ̂ with their reason: one whose gap is not finite, one that left the basin of
w*, and a Metropolis chain stuck at one point, outside the others' spread or, among chains that
moved as tuned, inside it."""

import numpy as np
import pytest

from sltlab.estimators.llc import MIN_ACCEPTANCE, MOVING_ACCEPTANCE, basin_outliers, llc_from_gaps


def test_a_chain_that_left_the_basin_is_dropped_with_its_reason():
    gaps = np.random.default_rng(0).gamma(2.0, 1.0, size=(6, 400))
    gaps[4] += 30.0   # another basin, 30 within-chain spreads up
    assert list(basin_outliers(gaps, np.ones(6, dtype=bool))) == [4]
    assert basin_outliers(gaps[[0, 1, 2, 3, 5]], np.ones(5, dtype=bool)) == {}


def test_a_metropolis_chain_that_held_one_point_is_dropped_as_stuck():
    gaps = np.random.default_rng(0).gamma(2.0, 1.0, size=(6, 400))
    gaps[2] = 19.0   # one point held for every draw, far from where the others are
    acceptance = np.full(6, 0.8)
    acceptance[2] = 0.0
    stuck = llc_from_gaps(gaps, 100.0, acceptance=acceptance)
    assert stuck.diverged_chains == [2] and stuck.divergence[2].startswith("stuck: it accepted 0.0% of its")
    acceptance[2] = MIN_ACCEPTANCE   # moving, if little: an outlier all the same, not called stuck
    assert llc_from_gaps(gaps, 100.0, acceptance=acceptance).divergence[2].startswith("left the basin:")
    assert llc_from_gaps(gaps, 100.0).divergence[2].startswith("left the basin:")   # no Metropolis step


def test_a_stuck_chain_inside_the_others_spread_is_dropped_only_among_moving_chains():
    gaps = np.random.default_rng(0).gamma(2.0, 1.0, size=(6, 400))
    gaps[2] = 1.2   # one point held for every draw, inside the others' spread
    acceptance = np.full(6, 0.8)
    acceptance[2] = 0.0
    stuck = llc_from_gaps(gaps, 100.0, acceptance=acceptance)
    assert stuck.diverged_chains == [2] and stuck.divergence[2].startswith("stuck: it accepted 0.0% of its")
    assert "within 5 within-chain spreads" in stuck.divergence[2]
    assert stuck.mean == pytest.approx(gaps[[0, 1, 3, 4, 5]].mean())
    acceptance[2] = MIN_ACCEPTANCE   # it moved, if little: kept
    assert llc_from_gaps(gaps, 100.0, acceptance=acceptance).diverged_chains == []
    acceptance[:] = [0.0, MOVING_ACCEPTANCE / 2, 0.0, 0.4, 0.3, 0.45]   # no chain moved as tuned: none singled out
    assert llc_from_gaps(gaps, 100.0, acceptance=acceptance).diverged_chains == []
    assert llc_from_gaps(gaps, 100.0).diverged_chains == []   # no Metropolis step: its level alone decides


def test_a_chain_with_a_gap_that_is_not_finite_is_dropped_as_diverged():
    gaps = np.random.default_rng(0).gamma(2.0, 1.0, size=(4, 100))
    gaps[1, 5], gaps[3, 70] = np.inf, np.nan
    estimate = llc_from_gaps(gaps, 100.0)
    assert estimate.diverged_chains == [1, 3] and estimate.divergence[3] == "diverged: its gap is not finite at draw 70"
    assert estimate.mean == pytest.approx(gaps[[0, 2]].mean()) and estimate.per_chain[1] is None
    gaps[[0, 2]] = np.inf
    assert llc_from_gaps(gaps, 100.0).mean is None
