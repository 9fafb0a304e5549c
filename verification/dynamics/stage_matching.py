"""Detected stage boundaries set beside known change points: how the stage detector
(:mod:`sltlab.estimators.stages`) is judged where the truth is known."""

from __future__ import annotations

from typing import NamedTuple, Sequence

from sltlab.estimators.stages import StageBoundary


class BoundaryMatch(NamedTuple):
    """Detected boundaries set beside known change points."""

    matched: tuple[tuple[int, StageBoundary], ...]   # (true step, the boundary whose window holds it)
    missed: tuple[int, ...]                          # true steps no window holds
    spurious: tuple[StageBoundary, ...]              # boundaries holding no true step


def match_boundaries(true_steps: Sequence[int], boundaries: Sequence[StageBoundary]) -> BoundaryMatch:
    """Pair each known change step with the detected boundary whose window contains it.

    One boundary matches at most one true step (the first in time); a boundary whose window
    holds two true steps therefore leaves the second missed.
    """
    free = list(boundaries)
    matched, missed = [], []
    for step in sorted(int(s) for s in true_steps):
        holder = next((b for b in free if b.window_start <= step <= b.window_end), None)
        if holder is None:
            missed.append(step)
        else:
            matched.append((step, holder))
            free.remove(holder)
    return BoundaryMatch(tuple(matched), tuple(missed), tuple(free))
