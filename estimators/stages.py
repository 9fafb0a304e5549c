"""Developmental stages from an LLC curve: boundaries where λ̂ moves from one critical point
of λ̂(log t) (a plateau, or a peak or trough) to the next.

Hoogland, Wang, Farrugia-Roberts, Carroll, Wei & Murfet (2024), "The developmental landscape
of in-context learning" (arXiv:2402.02364, §3 and App. B), divide training into stages at the
critical points of λ̂ against log training time: points where dλ̂/d log t vanishes separate
stretches where λ̂ rises or falls. Here:

1. *Smoothing.* A weighted local linear regression of λ̂ in u = log(1 + step), with weights 1/SE²,
   gives at every checkpoint a smoothed value and slope dλ̂/du with their exact standard errors, at
   the bandwidth h of least unbiased risk (:mod:`sltlab.estimators.curve_smoothing`).
2. *Critical points.* Candidates are the ends of the curve and the local minima of |slope|.
   A candidate between two neighbouring candidates is kept when it separates two moves: either
   its slope is consistent with zero (|z| ≤ ``threshold``) while the steepest slope on each side
   is not — a plateau or an extremum, where the derivative vanishes or changes sign — or the
   steepest slope on each side exceeds its own by more than ``threshold`` SEs (a short plateau
   the smoothing cannot bring to zero). The least clear candidate is dropped first, until
   every remaining one is clear.
3. *Boundaries.* Between consecutive critical points, the checkpoint of steepest slope is a
   boundary when that slope is significant (|z| > ``threshold``) and the smoothed levels at the
   two critical points differ by more than ``threshold`` SEs (so a chance slope on a flat
   curve, which moves no level, is not a boundary). Its window runs outwards from it while the
   slope stays significant, to the first checkpoint on each side where it does not (bounded by
   the critical points): the steps over which the SEs cannot place the boundary more precisely.
   A window is split where, read between two of its checkpoints, the slope is consistent with zero
   between two steeper moves the same way, and its remainder read again (:func:`_split_at_plateau`).
4. *Coarser scales.* A move spread over several checkpoints may nowhere reach ``threshold`` at
   the h step 1 chose for the curve's sharpest rises, though its level change is clear. Steps 1–3
   are therefore read again at every larger bandwidth tried, and a boundary found there is kept
   when its window overlaps none kept at a finer scale: a move the finer scale already found,
   seen again broadened, adds nothing; one it missed adds a boundary, with the critical points
   that bracket it at its scale (a scale-space reading of the curve, as in Chaudhuri & Marron
   1999, "SiZer for exploration of structures in curves", JASA 94). No critical point is kept
   inside a boundary's window.
5. *Edges.* A move whose steepest slope falls on the curve's first or last checkpoint is not a
   located boundary: it may have begun before the first checkpoint (from step 0: be steepest
   before the second) or go on after the last, so the curve does not show where it is steepest
   (the boundary is censored at that edge). Found and weighed as any other, it keeps critical
   points out of its window and coarser boundaries off it as steps 3–4 say, but it is reported
   apart, as an :class:`EdgeMove` whose window is open at that edge; more checkpoints at that edge
   would place it.

On a plateau–rise–plateau staircase each rise is one boundary; a peak gives a rise and a fall boundary
with the critical point between them. On seeded staircases of sharp rises of 12–15 SE, a stage with three
checkpoints of its own kept both boundaries in 40 seeds of 40; one with two in 891 of 1,000 with the split,
two such in a row in 847, none without it (no other verdict of ``sltlab bench --only stages --count 1000`` moved).
With the coarser scales every change of a staircase with a gradual rise of 6 SE between sharp
ones of 12 SE is found, none spurious, in 28 seeds of 40, against 6 at the chosen scale alone;
they add no boundary to a flat curve of 60 checkpoints (none in 1,000 seeds, either way;
``sltlab bench --only stages --count 1000``). They do add a spurious one now and then beside
sharp, precisely measured rises, where the chosen scale alone was nearly faultless: in 1,000
seeds, 9 failures against 2 with a stage of three checkpoints between sharp rises (7 of them a
coarse boundary), 8 against 6 on rises of 50 SE (3).
"""

from __future__ import annotations

from numbers import Real
from typing import NamedTuple, Sequence

import numpy as np

from sltlab.estimators.curve_smoothing import bandwidths_to_read, local_linear_maps, weighting_errors

MIN_CHECKPOINTS = 5   # the fewest a curve is read from
# Below these, rounding is read as structure: a flat curve of λ̂ = 1,000 with SEs of 1e-13 (float64's
# spacing there is 1.1e-13) read 8 boundaries, and steps 10¹⁵ … 10¹⁵ + 29, whose log(1 + step) differ
# by less than float64's spacing there, placed a jump at step 10¹⁵ + 15 at 10¹⁵ + 9. Slopes and levels
# are sums over up to all the checkpoints, so their rounding is about √K·2⁻⁵²·max|λ̂| for K of them.
MIN_RELATIVE_SE = 1e-9   # of max |λ̂|
MIN_LOG_GAP = 1e-10      # between neighbouring checkpoints in log(1 + step)


class StageBoundary(NamedTuple):
    """One passage from a critical stretch of λ̂ to the next, steepest at a checkpoint inside the curve."""

    step: int | float    # checkpoint of steepest smoothed slope (steps as given: whole numbers as int)
    window_start: int | float   # last checkpoint before it where the slope is consistent with zero
    window_end: int | float     # first checkpoint after it where the slope is consistent with zero
    direction: str       # "rise" or "fall"
    level_before: float  # smoothed λ̂ at the critical point before it
    level_after: float   # smoothed λ̂ at the critical point after it
    bandwidth: float     # h of the scale it was found at, in units of log(1 + step)


class EdgeMove(NamedTuple):
    """A significant move of λ̂ steepest at the curve's first or last checkpoint: not located, since the
    curve does not show where it is steepest (step 5 of the module)."""

    edge: str                   # "first" or "last": the checkpoint at which its smoothed slope is steepest
    window_start: int | float   # edge "first": the first checkpoint, open (the move may begin before it)
    window_end: int | float     # edge "last": the last checkpoint, open (the move may go on after it)
    direction: str              # "rise" or "fall"
    level_before: float         # smoothed λ̂ at the critical point before it (edge "first": at the first checkpoint)
    level_after: float          # smoothed λ̂ at the critical point after it (edge "last": at the last checkpoint)
    bandwidth: float            # h of the scale it was found at, in units of log(1 + step)


class StageDetection(NamedTuple):
    """The boundaries with everything they were read from, checkpoint by checkpoint."""

    boundaries: tuple[StageBoundary, ...]
    edge_moves: tuple[EdgeMove, ...]     # at most one at each edge, the first edge's first
    critical: tuple[int | float, ...]    # steps of the critical points kept (the ends included; a split's: a midpoint)
    smoothed: np.ndarray         # local-linear value of λ̂ at each checkpoint, at the finest scale
    smoothed_se: np.ndarray      # its standard error
    slope: np.ndarray            # dλ̂/d log(1 + step), at the finest scale
    slope_z: np.ndarray          # slope / SE(slope)
    bandwidth: float             # h of the finest scale read, in units of log(1 + step)
    threshold: float


def _validated(steps, llc, standard_errors) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrays = [_real_numbers(values, name) for values, name in ((steps, "steps"), (llc, "llc"),
                                                               (standard_errors, "standard_errors"))]
    if any(a.ndim != 1 for a in arrays) or len({a.size for a in arrays}) != 1:
        raise ValueError(f"steps, llc and standard_errors must be 1-d of one length, got lengths "
                         f"{[a.size for a in arrays]}")
    steps, llc, errors = arrays
    if steps.size < MIN_CHECKPOINTS:
        raise ValueError(f"need at least {MIN_CHECKPOINTS} checkpoints to find stages, got {steps.size}")
    if not all((np.abs(a) < 1e100).all() for a in arrays):   # so that their squares stay finite
        raise ValueError("steps, llc and standard_errors must be finite (no NaN or inf) and below 1e100 in size")
    if steps[0] < 0 or not (np.diff(steps) > 0).all():
        raise ValueError("steps must be non-negative and strictly increasing")
    if not (errors > 1e-100).all():
        raise ValueError("every standard error must be positive (above 1e-100)")
    if (small := errors.min()) < MIN_RELATIVE_SE * np.abs(llc).max():
        raise ValueError(f"a standard error of {small:.3g} is below {MIN_RELATIVE_SE:g} of the largest |λ̂|, "
                         f"{np.abs(llc).max():.6g}: the smoothing's rounding would be read as moves")
    if (gap := np.diff(np.log1p(steps))).min() < MIN_LOG_GAP:
        at = int(np.argmin(gap))
        raise ValueError(f"steps {steps[at]:.17g} and {steps[at + 1]:.17g} lie too close to tell apart in "
                         f"log(1 + step), which stages are read against (a gap below {MIN_LOG_GAP:g})")
    return steps, llc, errors


def _real_numbers(values, name: str) -> np.ndarray:
    """``values`` as float64, refused in one line unless every one is a real number (not a string, a
    complex number or a bool)."""
    array = np.asarray(values)
    if array.dtype.kind not in "iuf" and not (array.dtype.kind == "O" and all(
            isinstance(value, Real) and not isinstance(value, bool) for value in array.ravel())):
        raise ValueError(f"{name} must hold real numbers, got {array.dtype} values")
    return array.astype(float)


def detect_stages(steps: Sequence[float], llc: Sequence[float], standard_errors: Sequence[float], *,
                  bandwidth: float | None = None, threshold: float = 3.5) -> StageDetection:
    """Stage boundaries of an LLC curve λ̂(step) ± SE (Hoogland et al. 2024, see the module).

    Parameters
    ----------
    steps : sequence of float
        Training steps of the checkpoints, non-negative and strictly increasing; at least 5.
    llc, standard_errors : sequence of float
        λ̂ and its standard error at each checkpoint (finite, SEs positive).
    bandwidth : float, optional
        h of the Gaussian kernel in units of log(1 + step), read at that one scale. Default: the
        one of least unbiased risk, then every larger one tried
        (:func:`~sltlab.estimators.curve_smoothing.bandwidths_to_read`; step 4 of the module).
    threshold : float
        z-score above which a slope counts as nonzero and a difference as real (default 3.5).

    Returns
    -------
    StageDetection
        The boundaries located inside the curve, and apart from them the moves steepest at its first
        or last checkpoint (:class:`EdgeMove`), which the curve cannot place.
    """
    steps, llc, errors = _validated(steps, llc, standard_errors)
    for name, value in (("bandwidth", bandwidth), ("threshold", threshold)):
        if not (value is None and name == "bandwidth") and (isinstance(value, bool) or not isinstance(value, Real)):
            raise ValueError(f"{name} must be a number, got {value!r}")
    weight_errors = weighting_errors(errors)
    scales = bandwidths_to_read(steps, llc, errors, weight_errors) if bandwidth is None else [bandwidth]
    if not (all(np.isfinite(h) and h > 0 for h in scales) and np.isfinite(threshold) and threshold > 0):
        raise ValueError(f"bandwidth and threshold must be positive, got {bandwidth} and {threshold}")
    if (span := float(np.log1p(steps[-1]) - np.log1p(steps[0]))) < scales[0]:
        raise ValueError(f"bandwidth {bandwidth:g} is wider than the whole curve, {span:.4g} in log(1 + step): the "
                         "fit is then one line through every checkpoint, which places no boundary")
    finest = _detect_at_scale(steps, llc, errors, weight_errors, float(scales[0]), threshold)
    boundaries, brackets = list(finest.boundaries), set(finest.critical)
    for h in scales[1:]:
        coarse = _detect_at_scale(steps, llc, errors, weight_errors, float(h), threshold)
        for boundary in coarse.boundaries:
            if not any(boundary.window_start <= kept.window_end and kept.window_start <= boundary.window_end
                       for kept in boundaries):
                boundaries.append(boundary)
                brackets.update((max(c for c in coarse.critical if c <= boundary.window_start),
                                 min(c for c in coarse.critical if c >= boundary.window_end)))
    # A critical point separates stages, so none is kept inside a boundary's window: a finer
    # scale's flat point within a move that a coarser one found, or a coarse bracket within a
    # finer boundary's window.
    critical = [c for c in sorted(brackets) if not any(b.window_start < c < b.window_end for b in boundaries)]
    ends, found = (_step(steps[0]), _step(steps[-1])), sorted(boundaries, key=lambda b: b.step)
    edge_moves = tuple(EdgeMove("first" if b.step == ends[0] else "last", *b[1:]) for b in found if b.step in ends)
    return finest._replace(boundaries=tuple(b for b in found if b.step not in ends), edge_moves=edge_moves,
                           critical=tuple(critical))


def _detect_at_scale(steps: np.ndarray, llc: np.ndarray, errors: np.ndarray, weight_errors: np.ndarray,
                     bandwidth: float, threshold: float) -> StageDetection:
    """Steps 1–3 of the module at the one bandwidth ``bandwidth``: every move among the boundaries,
    those steepest at an edge too (:func:`detect_stages` sets them apart, step 5)."""
    log_steps = np.log1p(steps)
    to_value, to_slope = local_linear_maps(log_steps, weight_errors, bandwidth)
    midpoints = 0.5 * (log_steps[:-1] + log_steps[1:])   # where step 3's splits are read, mapped once per scale
    between = (midpoints, *local_linear_maps(log_steps, weight_errors, bandwidth, at=midpoints))
    variance = errors ** 2
    value, slope = to_value @ llc, to_slope @ llc
    value_se = np.sqrt((to_value ** 2 * variance).sum(1))
    slope_z = slope / np.sqrt((to_slope ** 2 * variance).sum(1))

    def z_of(maps: np.ndarray, signs: tuple[float, float], i: int, j: int) -> float:
        """z-score of signs[0]·(maps y)_i − signs[1]·(maps y)_j (:func:`_z_score`)."""
        return _z_score(signs[0] * maps[i] - signs[1] * maps[j], llc, variance)

    steepness = np.abs(slope)
    direction = np.sign(slope)

    def dip_significance(left: int, dip: int, right: int) -> float:
        """How clearly ``dip`` separates two moves: the smaller, over the steepest points on either
        side, of how many SEs each rises above the dip; infinite when the dip's slope is consistent
        with zero (a critical point: a plateau or an extremum) and both steepest slopes are not."""
        peaks = [k + int(np.argmax(steepness[k:m + 1])) for k, m in ((left, dip), (dip, right))]
        if abs(slope_z[dip]) <= threshold and all(abs(slope_z[p]) > threshold for p in peaks):
            return np.inf
        return min(z_of(to_slope, (direction[p], direction[dip]), p, dip) for p in peaks)

    critical = [0] + [i for i in range(1, len(steps) - 1)
                      if steepness[i] <= steepness[i - 1] and steepness[i] <= steepness[i + 1]] + [len(steps) - 1]
    while len(critical) > 2:   # drop the dips that noise alone could have made, least clear first
        significance = [dip_significance(*critical[k - 1:k + 2]) for k in range(1, len(critical) - 1)]
        weakest = int(np.argmin(significance))
        if significance[weakest] > threshold:
            break
        critical.pop(weakest + 1)
    boundaries, plateaus = [], []
    for left, right in zip(critical, critical[1:]):
        steepest = left + int(np.argmax(steepness[left:right + 1]))
        if abs(slope_z[steepest]) <= threshold or abs(z_of(to_value, (1, 1), right, left)) <= threshold:
            continue
        start, end = steepest, steepest
        while start > left and abs(slope_z[start]) > threshold:
            start -= 1
        while end < right and abs(slope_z[end]) > threshold:
            end += 1
        found, split = _split_at_plateau(steps, llc, variance, threshold, to_slope, between,
                                         StageBoundary(_step(steps[steepest]), _step(steps[start]),
                                                       _step(steps[end]), "rise" if slope[steepest] > 0 else "fall",
                                                       float(value[left]), float(value[right]), bandwidth))
        boundaries, plateaus = boundaries + found, plateaus + split
    return StageDetection(tuple(boundaries), (), tuple(sorted([_step(steps[i]) for i in critical] + plateaus)),
                          value, value_se, slope, slope_z, bandwidth, float(threshold))


def _split_at_plateau(steps: np.ndarray, llc: np.ndarray, variance: np.ndarray, threshold: float,
                      to_slope: np.ndarray, between: tuple[np.ndarray, ...],
                      boundary: StageBoundary) -> tuple[list[StageBoundary], list[float]]:
    """``boundary`` split at a short plateau between two moves the same way. Read at checkpoints alone,
    two sharp moves with two checkpoints between them show one slope (at h = Δ/2 each of the four
    checkpoints around them sees one move at the same distance); midway between the inner two the fit
    sees their equal levels. So the window is split at its first midpoint whose slope is consistent with
    zero and more than ``threshold`` SEs below the steepest slope (checkpoint, ``to_slope``, or midpoint)
    on each side of it in the window, step 2's dip read between checkpoints, and the rest read again.
    ``between``: every midpoint in log(1 + step), with the maps to value and slope there (one per scale).
    Returns the boundaries and the midpoints' steps, critical points."""
    start, end = np.searchsorted(steps, [boundary.window_start, boundary.window_end])
    midpoints, to_mid_value, to_mid_slope = (part[start:end] for part in between)
    sign = 1 if boundary.direction == "rise" else -1
    # The window's slopes in order, checkpoints at even rows and midpoints at odd ones; the move's way positive.
    grid = np.empty((2 * (end - start) + 1, len(steps)))
    grid[0::2], grid[1::2] = to_slope[start:end + 1], to_mid_slope
    slopes = sign * (grid @ llc)
    for offset, row in enumerate(to_mid_slope):
        at = 2 * offset + 1
        steepest = (int(np.argmax(slopes[:at])), at + 1 + int(np.argmax(slopes[at + 1:])))
        if abs(_z_score(row, llc, variance)) <= threshold and all(
                _z_score(sign * (grid[k] - row), llc, variance) > threshold for k in steepest):
            level = float(to_mid_value[offset] @ llc)
            first = start + int(np.argmax(slopes[:at:2]))                    # each part's steepest checkpoint
            second = start + offset + 1 + int(np.argmax(slopes[at + 1::2]))
            later, splits = _split_at_plateau(steps, llc, variance, threshold, to_slope, between,
                                              boundary._replace(step=_step(steps[second]), level_before=level,
                                                                window_start=_step(steps[start + offset + 1])))
            return ([boundary._replace(step=_step(steps[first]), window_end=_step(steps[start + offset]),
                                       level_after=level), *later],
                    [round(float(np.expm1(midpoints[offset])), 1), *splits])
    return [boundary], []


def _z_score(row: np.ndarray, llc: np.ndarray, variance: np.ndarray) -> float:
    """z-score of the reading row·y, its SE from independent per-checkpoint variances (0 for a zero row)."""
    return float(row @ llc) / spread if (spread := float(np.sqrt((row ** 2 * variance).sum()))) > 0 else 0.0


def _step(value: float) -> int | float:
    """A checkpoint's step as given: a whole number as an int, a fraction as a float."""
    return int(value) if float(value).is_integer() else float(value)
