"""Detected stage boundaries set beside known change points (verification.dynamics.stage_matching)."""

from sltlab.estimators.stages import StageBoundary
from sltlab.verification.dynamics.stage_matching import match_boundaries


def test_matching_pairs_each_true_step_with_one_window():
    first, second = StageBoundary(100, 80, 120, "rise", 1, 2, 0.1), StageBoundary(400, 300, 500, "rise", 2, 3, 0.1)
    match = match_boundaries([90, 110, 1000], [first, second])
    assert match.matched == ((90, first),) and match.missed == (110, 1000) and match.spurious == (second,)
