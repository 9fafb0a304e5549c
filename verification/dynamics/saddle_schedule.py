"""Initial scale, learning rate and step budget of saddle-to-saddle training, chosen from the
architecture and the teacher.

From a balanced start in which every layer has singular value u₀, gradient flow on
½‖W_L ⋯ W_1 − T‖² (inputs N(0, I)) moves the strength u of each teacher mode s by
du/dt = u^{L−1}(s − u^L) (Saxe, McClelland & Ganguli 2014, eq. 9, for L = 2; Arora, Cohen &
Hazan 2018, Thm 1, for the end-to-end dynamics of any depth). Near the origin it escapes at

    t(s) = ln(s/u₀²)/(2s)                 for L = 2 (logistic growth),
    t(s) = 1/((L − 2)·s·u₀^{L−2})          for L ≥ 3 (finite-time blow-up of u^{−(L−2)}),

in units of 1/η steps. With u₀ fixed, escape from the origin slows as a power of u₀ that
grows with depth: at u₀ = 0.01 a four-layer network takes 50,000 steps at η = 0.01. So the
schedule fixes the end-to-end scale instead: every singular value of W_L ⋯ W_1 starts at
``END_TO_END_SCALE`` (u₀ = scale^{1/L}), whatever the depth. The learning rate is half the
stability limit of gradient descent at the balanced minimum of the strongest mode, whose
Hessian has top eigenvalue L·s^{2(L−1)/L} (capped at 0.01). The step budget is
``BUDGET_FACTOR`` times the predicted escape of the weakest mode: the prediction ignores how
little of each teacher mode the random start overlaps (measured up to three times later on
the tuned deep networks, then 12.4–13.7 times on three runs of a fresh random draw, which a
budget of 10 left short of the teacher's rank, and up to 13.3 times on a second, independent
draw, run after the budget was set), and training stops early once the teacher's rank is
reached (:func:`sltlab.models.training.train_deep_linear`, ``until_rank``). Where a run still
stops short of it, :func:`next_mode` and :func:`mode_story` say what the first mode it never
learned was doing: too weak to escape within the budget, or turned against its teacher.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import torch

from sltlab.models.deep_linear import DeepLinearNetwork
from sltlab.models.training import TrainingRun, least_squares_fit, mode_overlaps

END_TO_END_SCALE = 1e-4     # every singular value of the end-to-end map at the start
BUDGET_FACTOR = 30          # step budget / predicted escape of the weakest mode
MAX_LEARNING_RATE = 0.01
CHECKPOINTS_PER_FIRST_ESCAPE = 40


class Schedule(NamedTuple):
    """The settings chosen for one architecture and teacher, with the predictions behind them."""

    init_scale: float                            # u₀, every layer's singular value at the start
    learning_rate: float
    step_budget: int
    checkpoint_every: int
    predicted_escape_steps: tuple[float, ...]    # per teacher mode, strongest first


def escape_steps(depth: int, init_scale: float, learning_rate: float, singular_value: float) -> float:
    """Predicted step at which a mode of strength ``singular_value`` leaves the origin (module)."""
    if depth == 1:
        return 0.0   # a single layer has no saddle at the origin
    if depth == 2:
        return math.log(singular_value / init_scale ** 2) / (2 * singular_value * learning_rate)
    return 1.0 / ((depth - 2) * singular_value * init_scale ** (depth - 2) * learning_rate)


def saddle_schedule(widths: Sequence[int], singular_values: Sequence[float]) -> Schedule:
    """Initial scale, learning rate, step budget and checkpoint spacing for ``widths`` and a
    teacher with ``singular_values`` (see the module for the rule)."""
    depth = len(widths) - 1
    strongest, weakest = max(singular_values), min(singular_values)
    learning_rate = min(MAX_LEARNING_RATE, 1.0 / (depth * strongest ** (2 * (depth - 1) / depth)))
    init_scale = END_TO_END_SCALE ** (1.0 / depth)
    escapes = tuple(escape_steps(depth, init_scale, learning_rate, s)
                    for s in sorted(singular_values, reverse=True))
    budget = max(100, math.ceil(BUDGET_FACTOR * escape_steps(depth, init_scale, learning_rate, weakest)))
    checkpoint_every = max(1, round(escapes[0] / CHECKPOINTS_PER_FIRST_ESCAPE))
    return Schedule(init_scale, learning_rate, budget, checkpoint_every, escapes)


def aligned_by_architecture(widths: Sequence[int], teacher_rank: int) -> bool:
    """Whether the study starts aligned (Saxe, McClelland & Ganguli 2014's decoupled start) rather
    than at a random orientation: where the narrowest layer is exactly as wide as the teacher's
    rank. There no spare direction is left, so a mode that starts against its teacher direction
    shrinks instead of escaping until its singular vectors turn through zero overlap, which from
    a random start outlasted a budget of 30 predicted escapes on [8,6,5,5,5,4,8]; with a spare
    direction the random start reached the teacher's rank in every study run."""
    return min(widths) == teacher_rank


def next_mode(run: TrainingRun, network: DeepLinearNetwork, x: torch.Tensor, y: torch.Tensor,
              ranks: Sequence[int]) -> dict[str, Any]:
    """Strength and overlap (:func:`sltlab.models.training.mode_overlaps`) of the first mode the
    run never learned, when it first reached its final rank and at its end."""
    since = list(ranks).index(ranks[-1])
    fit = least_squares_fit(x, y)
    (then_strength, then_overlap), (end_strength, end_overlap) = (
        mode_overlaps(network, run.positions[i], fit) for i in (since, -1))
    mode = ranks[-1]
    return {"mode": mode + 1, "since_step": int(run.steps[since]),
            "strength": [float(then_strength[mode]), float(end_strength[mode])],
            "overlap": [float(then_overlap[mode]), float(end_overlap[mode])]}


def mode_story(mode: dict[str, Any]) -> str:
    """One clause on what the first mode not learned did (:func:`next_mode`)."""
    (strength_then, strength_end), (overlap_then, overlap_end) = mode["strength"], mode["overlap"]
    moved = (f"overlap with the teacher {overlap_then:+.2f} at step {mode['since_step']:,} and {overlap_end:+.2f} at "
             f"the end, strength {strength_then:.1e} then {strength_end:.1e}")
    if overlap_then < 0:
        return (f"mode {mode['mode']} pointed against its teacher direction ({moved}): such a mode shrinks until "
                f"its singular vectors turn through zero overlap, which the budget did not cover (an aligned start, "
                f"--aligned-start, starts every mode along the data's direction)")
    return f"mode {mode['mode']} overlapped its teacher direction but did not escape within the budget ({moved})"
