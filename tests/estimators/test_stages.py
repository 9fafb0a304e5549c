"""Stage boundaries from an LLC curve (estimators.stages) on synthetic curves whose
boundaries are known: seeded staircases with stated SEs, flat curves, a peak, and bad input."""

import warnings

import numpy as np
import pytest

from sltlab.estimators.stages import detect_stages
from sltlab.verification.bench.stages import CHANGES, SHORT_STAGE, SHORT_STAGES, staircase
from sltlab.verification.dynamics.stage_matching import match_boundaries


@pytest.mark.parametrize("checkpoints, jumps, standard_error, seeds_missed", [
    (40, (5, 5, 5, 5), 0.5, 0),      # jumps of 10 SE, 5–6 checkpoints per stage
    (100, (5, 5, 5, 5), 0.5, 0),     # the same, 14 checkpoints per stage
    (30, (5, 5, 5, 5), 0.5, 0),      # 3–4 checkpoints per stage (the former fixed bandwidth, 0.17, missed 28 of 40)
    (60, (5, 5, 5, 5), 0.1, 0),      # precise estimates: the smoothed slope never quite reaches 0 between rises
    # Unequal rises, the smallest 10 SE: the bandwidth chosen for the sharp rise of 27 SE leaves
    # the rise of 3, spread over three checkpoints, at a slope of about 3.3 SE in one of these 20
    # seeds; the coarser scales find it.
    (60, (5, 3, 8, 4), 0.3, 0),
    (60, (-5, 5, -5, 5), 0.5, 0),    # falls and rises
])
def test_every_true_boundary_is_matched_within_its_window_and_none_is_spurious(checkpoints, jumps, standard_error,
                                                                                 seeds_missed):
    failed = []
    for seed in range(20):
        steps, llc, errors = staircase(seed, checkpoints=checkpoints, jumps=jumps, standard_error=standard_error)
        detection = detect_stages(steps, llc, errors)
        match = match_boundaries(CHANGES, detection.boundaries)
        if match.missed or match.spurious:
            failed.append((seed, detection.boundaries))
            continue
        assert [b.direction for _, b in match.matched] == ["rise" if j > 0 else "fall" for j in jumps]
        for change, boundary in match.matched:
            assert boundary.window_start <= boundary.step <= boundary.window_end
            # the window stays inside the stages on either side of the change
            assert boundary.window_start > max([c for c in (0,) + CHANGES if c < change]) * 1.1
            assert boundary.window_end < min([c for c in CHANGES + (10_000,) if c > change]) / 1.1
    assert len(failed) == seeds_missed, failed


def test_a_short_stage_between_two_sharp_rises_keeps_its_own_boundaries():
    """Rank changes 0.26 apart in log time, three checkpoints of 60 between them, as two of a deep
    linear network's on its LLC curve: each is its own boundary (a bandwidth of 0.1 merged them
    in every one of 40 seeds)."""
    for seed in range(20):
        steps, llc, errors = staircase(seed, checkpoints=60, jumps=(6, 6, 6, 6), standard_error=0.4, width=0.005,
                                       changes=SHORT_STAGE)
        assert ((steps > 600) & (steps < 780)).sum() == 3
        detection = detect_stages(steps, llc, errors)
        match = match_boundaries(SHORT_STAGE, detection.boundaries)
        assert not match.missed and not match.spurious, (seed, detection.boundaries)
        assert detection.bandwidth < 0.1


def test_a_stage_of_two_checkpoints_between_sharp_rises_is_split_at_its_midpoint():
    """The same rises with 40 checkpoints, two of them between the two close rises: read at the
    checkpoints alone the four around them show one slope and the two rises were one boundary in
    every seed; read between the two inner checkpoints the slope dips to zero, and each rise is
    its own boundary in 18 seeds of 20, with the critical point between the inner checkpoints
    and outside both windows."""
    failed = []
    for seed in range(20):
        steps, llc, errors = staircase(seed, checkpoints=40, jumps=(6, 6, 6, 6), standard_error=0.4, width=0.005,
                                       changes=SHORT_STAGE)
        inner = steps[(steps > 600) & (steps < 780)]
        assert inner.size == 2
        detection = detect_stages(steps, llc, errors)
        match = match_boundaries(SHORT_STAGE, detection.boundaries)
        if match.missed or match.spurious:
            failed.append(seed)
            continue
        plateau = [c for c in detection.critical if inner[0] < c < inner[1]]
        assert len(plateau) == 1 and not any(b.window_start < plateau[0] < b.window_end
                                             for b in detection.boundaries)
    assert failed == [5, 10]


def test_two_stages_of_two_checkpoints_in_a_row_are_split_in_turn():
    """Four sharp rises, the last three 0.26 apart in log time with two checkpoints between each:
    the window holding the last three is split at its first plateau and its remainder again, so
    every rise is its own boundary in 18 seeds of 20 (without reading the remainder again, in
    none), with one critical point between each pair of inner checkpoints."""
    failed = []
    for seed in range(20):
        steps, llc, errors = staircase(seed, checkpoints=40, jumps=(6, 6, 6, 6), standard_error=0.4, width=0.005,
                                       changes=SHORT_STAGES)
        detection = detect_stages(steps, llc, errors)
        match = match_boundaries(SHORT_STAGES, detection.boundaries)
        if match.missed or match.spurious:
            failed.append(seed)
            continue
        for before, after in zip(SHORT_STAGES[1:], SHORT_STAGES[2:]):
            inner = steps[(steps > before) & (steps < after)]
            assert inner.size == 2 and sum(inner[0] < c < inner[1] for c in detection.critical) == 1
    assert failed == [10, 18]


def test_a_gradual_small_rise_between_sharp_ones_is_found_at_a_coarser_scale():
    """A rise of 6 SE spread over 0.1 in log time between rises of 12 SE, as the curve of a wide
    shallow deep linear network shows: at the bandwidth the sharp rises ask for, its slope stays
    under the threshold in 18 of 20 seeds; read again at the coarser bandwidths it is missed in 6,
    and each boundary found there carries its own, larger, bandwidth and a window that overlaps
    no other; no critical point lies inside a window, and the chosen bandwidth's stay elsewhere."""
    failed = {"default": [], "chosen alone": []}
    for seed in range(20):
        steps, llc, errors = staircase(seed, checkpoints=60, jumps=(5, 5, 2.5, 5), standard_error=0.4,
                                       width=(0.04, 0.04, 0.1, 0.04))
        detection = detect_stages(steps, llc, errors)
        alone = detect_stages(steps, llc, errors, bandwidth=detection.bandwidth)
        for rule, found in (("default", detection), ("chosen alone", alone)):
            match = match_boundaries(CHANGES, found.boundaries)
            if match.missed or match.spurious:
                failed[rule].append(seed)
        windows = sorted((b.window_start, b.window_end) for b in detection.boundaries)
        assert all(end < start for (_, end), (start, _) in zip(windows, windows[1:]))
        assert set(alone.boundaries) <= set(detection.boundaries)
        assert all(b.bandwidth > detection.bandwidth for b in set(detection.boundaries) - set(alone.boundaries))
        assert not any(b.window_start < c < b.window_end for c in detection.critical for b in detection.boundaries)
        assert {c for c in alone.critical if not any(b.window_start < c < b.window_end
                                                     for b in detection.boundaries)} <= set(detection.critical)
    assert (len(failed["default"]), len(failed["chosen alone"])) == (6, 18), failed


def test_a_flat_noisy_curve_has_no_boundary():
    steps = np.unique(np.round(np.logspace(1, 4.3, 60)).astype(int))
    errors = np.full(steps.size, 0.5)
    for seed in range(50):
        noise = np.random.default_rng(seed).standard_normal(steps.size)
        detection = detect_stages(steps, 20 + errors * noise, errors)
        assert detection.boundaries == () and detection.edge_moves == (), seed


def test_a_peak_is_a_rise_then_a_fall_with_the_critical_point_between():
    steps = np.unique(np.round(np.logspace(1, 4, 50)).astype(int))
    log_steps = np.log1p(steps)
    peak = np.log1p(1000)
    curve = 10 + 20 * np.exp(-0.5 * ((log_steps - peak) / 0.8) ** 2)
    errors = np.full(steps.size, 0.3)
    noisy = curve + errors * np.random.default_rng(3).standard_normal(steps.size)
    detection = detect_stages(steps, noisy, errors)
    assert [b.direction for b in detection.boundaries] == ["rise", "fall"]
    rise, fall = detection.boundaries
    assert rise.window_end <= min(detection.critical[1:-1], key=lambda s: abs(s - 1000)) <= fall.window_start
    assert any(abs(np.log1p(s) - peak) < 0.3 for s in detection.critical[1:-1])


def test_a_noiseless_plateau_peak_is_read_and_fractional_steps_stay_fractions():
    """A peak without noise once divided by a zero SE (the steepest point on one side was the dip);
    steps of 0.5 came back truncated to whole numbers."""
    peak = detect_stages(list(range(0, 300, 10)), [1.0] * 12 + [9.0] * 6 + [1.0] * 12, [0.1] * 30)
    assert [(b.direction, b.step) for b in peak.boundaries] == [("rise", 110), ("fall", 170)]
    half = detect_stages([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5], [1, 1, 1, 1, 5, 5, 5, 5], [0.1] * 8)
    (boundary,) = half.boundaries
    assert (boundary.window_start, boundary.step, boundary.window_end) == (1, 1.5, 2.5)
    assert half.critical == (0, 3.5) and isinstance(half.critical[0], int)


EDGE_STEPS = np.unique(np.round(np.logspace(np.log10(75), 4, 40)).astype(int))   # 75, 85, 96, ..., 8821, 10000


def _two_rises(first_change: float) -> np.ndarray:
    """Noiseless λ̂ at ``EDGE_STEPS``: a rise of 5 centred on ``first_change`` (width 0.2 in log(1 + step)),
    then a sharp one of 5 at step 1,000."""
    u = np.log1p(EDGE_STEPS)
    return (12.5 + 5 / (1 + np.exp(-(u - np.log1p(first_change)) / 0.2))
            + 5 / (1 + np.exp(-(u - np.log1p(1000)) / 0.04)))


@pytest.mark.parametrize("change, edge, window", [(60, "first", (75, 140)), (12000, "last", (6054, 10000))])
def test_a_move_steepest_at_the_first_or_last_checkpoint_is_an_edge_move_not_a_boundary(change, edge, window):
    """A rise centred before the first checkpoint (step 60) or after the last (12,000) is steepest at
    that checkpoint: it had been a boundary there (step 75, window 75–140; step 10,000, window
    6,054–10,000). The curve cannot place it, so it is an edge move with that window, open at the
    edge, and the sharp rise at 1,000 inside the curve is the one boundary, as before."""
    detection = detect_stages(EDGE_STEPS, _two_rises(change), [0.3] * EDGE_STEPS.size)
    (move,) = detection.edge_moves
    assert (move.edge, (move.window_start, move.window_end), move.direction) == (edge, window, "rise")
    assert move.level_after > move.level_before
    assert [(b.step, b.window_start, b.window_end, b.direction) for b in detection.boundaries] == [
        (1045, 717, 1343, "rise")]


def test_a_move_steepest_just_inside_the_curve_stays_a_located_boundary():
    """Centred at step 90, the rise is steepest at the second checkpoint (85): a boundary there, its
    window opening at the first checkpoint, and no edge move."""
    detection = detect_stages(EDGE_STEPS, _two_rises(90), [0.3] * EDGE_STEPS.size)
    assert [(b.step, b.window_start, b.window_end) for b in detection.boundaries] == [(85, 75, 140), (1045, 717, 1343)]
    assert detection.edge_moves == ()


@pytest.mark.parametrize("steps, llc, errors, words", [
    ([1, 2, 3, 4, 5], [1, 2, 3, 4], [1] * 5, "one length"),
    ([1, 2, 2, 4, 5], [1] * 5, [1] * 5, "strictly increasing"),
    ([5, 4, 3, 2, 1], [1] * 5, [1] * 5, "strictly increasing"),
    ([1, 2, 3, 4, 5], [1, float("nan"), 1, 1, 1], [1] * 5, "finite"),
    ([1, 2, 3, 4, 5], [1] * 5, [1, 1, 0, 1, 1], "positive"),
    ([1, 2, 3, 4, 5], [1] * 5, [1e-101] * 5, "above 1e-100"),
    ([1, 2, 3, 4, 5], [1, 1, 1e100, 1, 1], [1] * 5, "below 1e100"),
    ([1, 2, 3], [1] * 3, [1] * 3, "at least 5"),
    ([1, 2, 3, 4, 5], [1 + 1j] * 5, [1] * 5, "llc must hold real numbers, got complex128"),   # had been a TypeError
    ([1, 2, 3, 4, 5], ["1"] * 5, [1] * 5, "llc must hold real numbers, got <U1"),   # had been read as 1
    ([1, 2, 3, 4, 5], [1] * 5, [True] * 5, "standard_errors must hold real numbers, got bool"),
    (np.arange(5) * 100, [1000.0] * 5, [1e-13] * 5, "below 1e-09 of the largest |λ̂|"),   # 8 boundaries read
    (1e15 + np.arange(5.0), [1] * 5, [1] * 5, "too close to tell apart in log(1 + step)"),
])
def test_bad_input_is_one_line_value_error(steps, llc, errors, words):
    with pytest.raises(ValueError) as error:
        detect_stages(steps, llc, errors)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_the_boundaries_do_not_change_with_the_curves_scale():
    """λ̂ and its SEs in other units read the same stages: down to SEs of 1e-95 and up to values
    of 1e95, where weights 1/SE² would overflow unless the SEs' common scale is divided out."""
    steps, llc, errors = staircase(3, checkpoints=40, jumps=(6.0, 6.0, 6.0, 6.0), standard_error=0.5)
    unit = detect_stages(steps, llc, errors)
    assert len(unit.boundaries) == len(CHANGES)
    for scale in (1e-95, 1e95):
        scaled = detect_stages(steps, llc * scale, errors * scale)
        assert [b.step for b in scaled.boundaries] == [b.step for b in unit.boundaries]
        np.testing.assert_allclose(scaled.slope_z, unit.slope_z, rtol=1e-9)


def test_a_bandwidth_wider_than_the_whole_curve_is_refused():
    with pytest.raises(ValueError, match=r"^bandwidth 100 is wider than the whole curve, 1.609 in log\(1 \+ step\)"):
        detect_stages([1, 2, 3, 4, 9], [1, 1, 3, 3, 3], [0.1] * 5, bandwidth=100.0)   # had read one edge move


def test_a_bandwidth_or_threshold_that_is_not_positive_is_refused():
    for settings in ({"bandwidth": 0.0}, {"threshold": -1.0}, {"bandwidth": float("nan")}):
        with pytest.raises(ValueError, match="bandwidth and threshold must be positive"):
            detect_stages([1, 2, 3, 4, 5], [1] * 5, [1] * 5, **settings)
    for settings in ({"bandwidth": "0.5"}, {"threshold": None}, {"bandwidth": True}):   # had been NumPy's ufunc error
        with pytest.raises(ValueError, match=f"^{next(iter(settings))} must be a number, got"):
            detect_stages([1, 2, 3, 4, 5], [1] * 5, [1] * 5, **settings)


def test_a_first_checkpoint_far_from_the_rest_leaves_the_fit_defined_and_the_jump_found():
    """Steps 0, 10, …, 7,990: in log(1 + step) step 0 lies hundreds of the chosen bandwidths from
    step 10, so at the bandwidth no line passed there (0/0), and the NaN had hidden a jump of 20 SE."""
    steps = np.arange(800) * 10.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no NumPy warning of a division by zero either
        stages = detect_stages(steps, np.where(steps < 4000, 1.0, 3.0), np.full(800, 0.1))
    assert np.isfinite(stages.slope).all()
    (boundary,) = stages.boundaries
    assert boundary.window_start < 4000 <= boundary.window_end and boundary.direction == "rise"
