"""The saddle study's stages set beside its rank changes (verification.dynamics.saddle_stages): a
move steepest at the curve's first checkpoint places no rank change."""

import numpy as np

from sltlab.verification.dynamics.saddle_stages import stages_beside_rank_changes

STEPS = np.unique(np.round(np.logspace(np.log10(75), 4, 40)).astype(int))   # 75, 85, 96, ..., 10000


def _curve(first_change: int) -> dict[str, list]:
    """Noiseless λ̂ ± 0.3: a rise of 5 centred on ``first_change`` (width 0.2 in log(1 + step)), a sharp one at 1,000."""
    u = np.log1p(STEPS)
    llc = 12.5 + 5 / (1 + np.exp(-(u - np.log1p(first_change)) / 0.2)) + 5 / (1 + np.exp(-(u - np.log1p(1000)) / 0.04))
    return {"steps": STEPS.tolist(), "llc_mean": llc.tolist(), "llc_se": [0.3] * STEPS.size}


def test_a_move_at_the_first_checkpoint_leaves_the_rank_changes_not_all_matched():
    """Centred at step 90 the first rise is a boundary at step 85 and both changes are matched; centred at
    60, before the first checkpoint, it is steepest there: an edge move, not matched, and the verdict fails
    (it had been a boundary at step 75, whose window 75–140 held no change: spurious)."""
    inside = stages_beside_rank_changes(_curve(90), [90, 1000])
    assert inside["all_matched"] and inside["edge_moves"] == []
    assert [row["boundary_step"] for row in inside["matched"]] == [85, 1045]
    edge = stages_beside_rank_changes(_curve(60), [1000])
    assert [row["boundary_step"] for row in edge["matched"]] == [1045] and edge["spurious"] == []
    assert [(m["edge"], m["window_start"], m["window_end"]) for m in edge["edge_moves"]] == [("first", 75, 140)]
    assert not edge["all_matched"]
