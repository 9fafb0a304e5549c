"""Saddle-to-saddle dynamics of deep linear networks, with the LLC at every plateau set beside
the exact staircase λ_k = deep_linear(widths, k).

Full-batch gradient descent from a small balanced initialisation learns the teacher's modes
one at a time, resting on plateaus near saddles where the end-to-end matrix has rank k (Saxe,
McClelland & Ganguli 2014 and 2019; Jacot et al. 2021, arXiv:2106.15933). A saddle is not a
minimum of the training loss, so the LLC (Lau, Furman, Wang, Murfet & Wei 2023, Def. 3.1) is
estimated against the relabelled problem whose targets are the checkpoint's own outputs on the
same inputs: there the checkpoint is an exact minimum with a rank-k end-to-end matrix, whose
learning coefficient is Aoyagi's λ_k (Aoyagi 2024, Neural Networks 172, Thm 1). The finite-n
truth at the same centre, nβ and γ stands beside it, and the same estimate against the real data
as a negative control (:mod:`sltlab.verification.dynamics.saddle_plateaus`).

A run passes only when every rank from 0 to the teacher's was a plateau, in order, with λ̂
within target at each, and every rank change was found as a stage boundary on the LLC curve
(:mod:`sltlab.verification.dynamics.saddle_stages`): a run that never leaves the origin fails,
with the reason stated.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import torch

from sltlab import theory
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.llc import default_nbeta
from sltlab.models.deep_linear import DeepLinearNetwork, regression_data, teacher_matrix
from sltlab.models.deep_linear_losses import FullDataLoss
from sltlab.models.training import (TrainingRun, balanced_initialization, least_squares_fit, numerical_rank,
                                   train_deep_linear)
from sltlab.verification.dynamics.cache import cached_json, cached_tensors
from sltlab.verification.dynamics.saddle_exchange import EXCHANGE_FROM_LAYERS, EXCHANGE_LADDER
from sltlab.verification.dynamics.saddle_schedule import (aligned_by_architecture, escape_steps, mode_story, next_mode,
                                                          saddle_schedule)
from sltlab.verification.mode_resolution import ABSENT_SDS, LEARNED_SDS
from sltlab.verification.suite.problems import check_dln_size, check_resolvable
from sltlab.verification.dynamics.saddle_plateaus import (PLATEAU_EXTENSIONS, SADDLE_ANNEAL,
                                                          TARGET_RELATIVE_ERROR, detect_plateaus,
                                                          exchange_unmixed, exchanged_plateaus, fails_mixing_gate,
                                                          negative_controls, plateau_row, rank_margin,
                                                          rises_one_per_stage, sampled_plateaus)
from sltlab.verification.dynamics.saddle_stages import (CURVE_SAMPLER, curve_indices, llc_curve,
                                                        stages_beside_rank_changes)


PLATEAU_SAMPLERS = ("mala", "exchange")
UNMIXED_PLATEAUS = ("exchange", "report")   # what answers a plateau whose MALA chains still fail the gate
# The teacher when none is given: four well separated modes, cut to as many as the narrowest layer carries.
DEFAULT_TEACHER = (10.0, 5.0, 2.5, 1.25)


@dataclass(frozen=True)
class SaddleSetup:
    """One training run: architecture, teacher, data and gradient descent.

    The teacher is n_out × n_in with the given singular values (well separated, so the modes
    are learned one at a time; left at None, ``DEFAULT_TEACHER`` cut to the narrowest layer's
    width) and random singular vectors; inputs are N(0, I), noise N(0, 1).
    ``rank_tolerance`` is the absolute threshold above which a singular value of the end-to-end
    matrix counts towards its numerical rank. Initial scale, step budget, learning rate and
    checkpoint spacing left at None are chosen from the architecture
    (:func:`sltlab.verification.dynamics.saddle_schedule.saddle_schedule`), and so is
    ``plateau_sampler``: ``"exchange"`` (replica exchange,
    :mod:`sltlab.verification.dynamics.saddle_exchange`) from ``EXCHANGE_FROM_LAYERS`` weight
    layers on, the study's MALA below. With ``stop_at_teacher_rank`` training stops a third of
    the run after the teacher's rank is reached. With ``aligned_start`` the balanced start's
    outer frames are the data's least-squares fit's singular vectors
    (:func:`sltlab.models.training.balanced_initialization`): no mode starts against its teacher.
    Left at None it is chosen from the architecture too: aligned where the narrowest layer is
    exactly as wide as the teacher's rank (:func:`aligned_by_architecture`), random elsewhere.
    MALA's plateaus whose chains fail the mixing gate go on up to ``plateau_extensions`` times,
    and those still failing are then estimated again by replica exchange (``unmixed_plateaus``
    "exchange", :func:`sltlab.verification.dynamics.saddle_plateaus.exchange_unmixed`), or left
    as they are and reported ("report").
    """

    widths: tuple[int, ...]
    init_scale: float | None = None
    steps: int | None = None
    learning_rate: float | None = None
    checkpoint_every: int | None = None
    n: int = 2000
    singular_values: tuple[float, ...] | None = None
    rank_tolerance: float = 0.1
    seed: int = 0
    stop_at_teacher_rank: bool = True
    plateau_sampler: str | None = None
    aligned_start: bool | None = None
    plateau_extensions: int = PLATEAU_EXTENSIONS
    unmixed_plateaus: str = "exchange"

    def validate(self) -> None:
        theory.deep_linear(list(self.widths), 0)   # raises ValueError on bad widths
        check_dln_size(self.widths)
        if len(self.teacher_values) > min(self.widths):
            raise ValueError(f"a teacher of rank {len(self.teacher_values)} cannot be learned through widths "
                             f"{list(self.widths)}: give at most {min(self.widths)} singular values")
        if not all(0 < s < math.inf for s in self.teacher_values) or not self.teacher_values:
            raise ValueError(f"the teacher needs positive, finite singular values, got {list(self.teacher_values)}")
        for name, value in (("init scale", self.init_scale), ("learning rate", self.learning_rate),
                            ("rank tolerance", self.rank_tolerance)):
            if not (value is None or 0 < value < math.inf):
                raise ValueError(f"the {name} must be positive and finite, got {value}")
        if not self.rank_tolerance < min(self.teacher_values):
            raise ValueError(f"the rank tolerance {self.rank_tolerance:g} must lie below the teacher's smallest "
                             f"singular value, {min(self.teacher_values):g}, or its last mode never counts towards "
                             "the rank")
        if self.plateau_sampler not in (None, *PLATEAU_SAMPLERS):
            raise ValueError(f"the plateau sampler is one of {', '.join(PLATEAU_SAMPLERS)}, "
                             f"got {self.plateau_sampler!r}")
        for name, value, least in (("steps (--steps)", self.steps, 1), ("checkpoint_every", self.checkpoint_every, 1),
                                   ("n (--n)", self.n, 2)):
            if value is not None and value < least:
                raise ValueError(f"{name} must be at least {least}, got {value}")
        check_resolvable(self.teacher_values, self.n)
        if self.unmixed_plateaus not in UNMIXED_PLATEAUS:
            raise ValueError(f"unmixed plateaus are answered by one of {', '.join(UNMIXED_PLATEAUS)}, "
                             f"got {self.unmixed_plateaus!r}")
        if self.plateau_extensions < 0:
            raise ValueError(f"plateau extensions must be 0 or more, got {self.plateau_extensions}")

    @property
    def teacher_values(self) -> tuple[float, ...]:
        """The teacher's singular values: those given, or ``DEFAULT_TEACHER`` cut to the narrowest width."""
        return DEFAULT_TEACHER[:min(self.widths)] if self.singular_values is None else tuple(self.singular_values)

    @property
    def teacher_rank(self) -> int:
        return len(self.teacher_values)

    def resolved(self) -> SaddleSetup:
        """This setup with every setting left at None taken from the architecture's schedule."""
        self.validate()
        schedule = saddle_schedule(self.widths, self.teacher_values)
        chosen = {"singular_values": self.teacher_values, "init_scale": schedule.init_scale,
                  "steps": schedule.step_budget, "learning_rate": schedule.learning_rate,
                  "checkpoint_every": schedule.checkpoint_every,
                  "plateau_sampler": "exchange" if len(self.widths) - 1 >= EXCHANGE_FROM_LAYERS else "mala",
                  "aligned_start": aligned_by_architecture(self.widths, self.teacher_rank)}
        return replace(self, **{name: value for name, value in chosen.items() if getattr(self, name) is None})

    def chosen_by_schedule(self) -> list[str]:
        return [name for name in ("singular_values", "init_scale", "steps", "learning_rate", "checkpoint_every",
                                  "plateau_sampler", "aligned_start") if getattr(self, name) is None]


# The default architectures: the two of the theory's staircase, every setting from the schedule.
SADDLE_SETUPS = (SaddleSetup((10, 5, 5, 10)), SaddleSetup((10, 5, 10)))
# MALA on the exact full-data gradients (sufficient statistics), its step tuned to acceptance 0.8
# in a warm-up as long as the burn-in; nβ = n/log n. Measured on [10,4,4,4,10]'s five plateaus:
# within 3 % of λ_k, R-hat ≤ 1.04, about 20 s per estimate on one shared core, where SGLD at the
# curvature rule's step (ten times smaller than MALA's) left rank 1 at −7.6 % with R-hat 1.10.
# The warm-up's first half cools from nβ/SADDLE_ANNEAL (why: where that is defined). γ = 0.1, not 1:
# at γ = 1 the rank-0 plateaus of deep networks sat 9–10 % below λ_0 in their finite-n truths alone,
# and d log λ/d log γ there read −0.09 (blocked Gibbs, [10,5,5,5,5,5,10] at w* = 0): γ's share of
# the gap, which a tenth of it removes (−0.01). The curve's sampler keeps γ = 1.
SADDLE_SAMPLER = LLCConfig(sampler="mala", chains=16, draws=5000, burnin=5000, localization=0.1,
                           localize_at="true_parameter", anneal=SADDLE_ANNEAL)


def train_setup(setup: SaddleSetup, *, cache: Path | None = None, progress: bool = False
                ) -> tuple[TrainingRun, DeepLinearNetwork, torch.Tensor, torch.Tensor]:
    """Teacher, data and the gradient-descent run of ``setup`` (from ``cache`` when there).

    Returns the run, the network and the inputs and targets it was trained on.
    """
    setup = setup.resolved()
    generator = torch.Generator().manual_seed(setup.seed)
    network = DeepLinearNetwork(setup.widths)
    teacher = teacher_matrix(setup.widths[0], setup.widths[-1], setup.teacher_rank, setup.singular_values,
                             generator=generator)
    x, y = regression_data(teacher, setup.n, generator=generator)
    fit = least_squares_fit(x, y) if setup.aligned_start else None
    start = balanced_initialization(network, setup.init_scale, generator=generator, aligned_to=fit)
    until = (setup.teacher_rank, setup.rank_tolerance) if setup.stop_at_teacher_rank else None

    def train() -> dict[str, torch.Tensor]:
        return train_deep_linear(network, x, y, start, learning_rate=setup.learning_rate, steps=setup.steps,
                                 checkpoint_every=setup.checkpoint_every, until_rank=until, progress=progress)._asdict()

    if cache is None:
        return TrainingRun(**train()), network, x, y
    training = {name: value for name, value in asdict(setup).items()
                if name not in ("plateau_sampler", "unmixed_plateaus")}
    tensors, _ = cached_tensors(cache, "saddle-run", training, train)
    return TrainingRun(**tensors), network, x, y


def saddle_study(setup: SaddleSetup, sampler: LLCConfig = SADDLE_SAMPLER, *, curve_sampler: LLCConfig = CURVE_SAMPLER,
                 cache: Path | None = None, progress: bool = False) -> dict[str, Any]:
    """Train, find the plateaus, estimate the LLC at each and along the run; a JSON-ready result.

    With ``cache`` the checkpoints are stored under it keyed by ``setup``, and the measurements
    by ``setup``, both samplers and the exchange ladder together; ``from_cache`` says whether
    they were loaded from there. The verdict (:func:`judged`) is formed afresh on every call.
    """
    sampler.validate()
    curve_sampler.validate()
    resolved = setup.resolved()
    key = {"setup": asdict(resolved), "sampler": asdict(sampler), "curve_sampler": asdict(curve_sampler),
           "ladder": EXCHANGE_LADDER,
           "resting_resolved": [LEARNED_SDS, ABSENT_SDS]}
    chosen = {"chosen_from_architecture": setup.chosen_by_schedule()}   # of the setup asked for, not the cached one
    if cache is None:
        return {**judged(_study(resolved, sampler, curve_sampler, None, progress)), **chosen, "from_cache": False}
    measured, loaded = cached_json(cache, "saddle-study", key,
                                   lambda: _study(resolved, sampler, curve_sampler, cache, progress))
    return {**judged(measured), **chosen, "from_cache": loaded}


def saddle_verdict(plateau_ranks: Sequence[int], within_target: Sequence[bool], teacher_rank: int,
                   stages_matched: bool, next_mode: dict[str, Any] | None = None) -> list[str]:
    """Why a run misses its targets (empty when it meets them): every rank from 0 to the
    teacher's visited as a plateau, in order, each plateau's λ̂ within target, and every rank
    change found as a stage boundary. A run that never leaves rank 0 fails here; ``next_mode``
    (:func:`next_mode`) says what the first mode not learned was doing."""
    reasons = []
    if not plateau_ranks or max(plateau_ranks) < teacher_rank:
        reasons.append(f"the teacher's rank {teacher_rank} was never reached (highest plateau rank "
                       f"{max(plateau_ranks, default=0)})" + (f": {mode_story(next_mode)}" if next_mode else ""))
    if list(plateau_ranks) != list(range(len(plateau_ranks))):
        reasons.append(f"the plateau ranks {list(plateau_ranks)} do not rise one per stage from 0")
    missed = [rank for rank, ok in zip(plateau_ranks, within_target) if not ok]
    if missed:
        reasons.append(f"λ̂ misses its target at the plateaus of rank {missed}")
    if not stages_matched:
        reasons.append("the stage boundaries found on the LLC curve do not match the rank changes one to one, or a "
                       "move of λ̂ is steepest at the curve's first or last checkpoint, where it cannot be placed")
    return reasons


def _study(setup: SaddleSetup, sampler: LLCConfig, curve_sampler: LLCConfig, cache: Path | None,
           progress: bool) -> dict[str, Any]:
    """The measurements of the resolved ``setup`` (every setting given)."""
    run, network, x, y = train_setup(setup, cache=cache, progress=progress)
    ranks, nbeta = numerical_rank(run.singular_values, setup.rank_tolerance), sampler.nbeta or default_nbeta(setup.n)
    plateaus = detect_plateaus(ranks.tolist(), run.gradient_norms.tolist(),
                               margins=rank_margin(run.singular_values, ranks.tolist(), nbeta))
    reached = next((int(run.steps[i]) for i, rank in enumerate(ranks.tolist()) if rank >= setup.teacher_rank), None)
    exchange = setup.plateau_sampler == "exchange"
    if not plateaus:
        estimated = []
    elif exchange:
        estimated = exchanged_plateaus(plateaus, run, network, x, setup.n, sampler, progress)
    else:
        estimated = sampled_plateaus(plateaus, run, network, x, setup.n, sampler, progress,
                                     extensions=setup.plateau_extensions)
        if setup.unmixed_plateaus == "exchange":
            estimated = exchange_unmixed(plateaus, estimated, run, network, x, setup.n, sampler, progress)
    controls = negative_controls(plateaus, run, FullDataLoss(network, x, y), setup.n, sampler)
    rows = [plateau_row(plateau, run, network, x, control, setup.widths, setup.n, sampler, estimated=estimate)
            for plateau, control, estimate in zip(plateaus, controls, estimated)]
    first_escape = escape_steps(len(setup.widths) - 1, setup.init_scale, setup.learning_rate,
                                max(setup.singular_values))
    curve = llc_curve(run, network, x, curve_indices(run.steps.tolist(), first_escape / 4), curve_sampler, setup.n)
    return {
        "widths": list(setup.widths), "dim": network.dim, "setup": asdict(setup),
        "training": {"step_budget": setup.steps, "steps_taken": int(run.steps[-1]),
                     "teacher_rank": setup.teacher_rank, "teacher_rank_reached_at_step": reached,
                     "next_mode": None if reached is not None else next_mode(run, network, x, y, ranks.tolist()),
                     "stopped_because": ("the step budget was spent"
                                         if reached is None or not setup.stop_at_teacher_rank
                                         else "the teacher's rank was reached (trained on for half as long again)")},
        "sampler": {**asdict(sampler), "nbeta": nbeta,
                    "plateaus": setup.plateau_sampler, "step_size_note": "resolved per estimate, see each plateau",
                    "extensions": 0 if exchange else setup.plateau_extensions},
        "steps": run.steps.tolist(), "loss": run.losses.tolist(), "rank": ranks.tolist(),
        "gradient_norm": run.gradient_norms.tolist(),
        "singular_values": run.singular_values.tolist(),
        "staircase": [{"rank": lc.parameters["rank"], "lambda_exact": str(lc.lam), "lambda_exact_float": lc.lam_float}
                      for lc in theory.dln_staircase(list(setup.widths))],
        "plateaus": rows,
        "ranks_visited": [row["rank"] for row in rows],
        "ranks_rise_one_per_stage": rises_one_per_stage(plateaus),
        "all_within_target": bool(rows) and all(row["within_target"] for row in rows),
        "target_relative_error": TARGET_RELATIVE_ERROR,
        "llc_curve": {**curve, "sampler": asdict(curve_sampler)},
    }


def judged(measured: dict[str, Any]) -> dict[str, Any]:
    """A study's measurements with its verdict: the stages found on the LLC curve beside the
    observed rank changes, and why a target is missed. Formed from the measurements alone, so a
    cached study is judged by the current stage detector and gates, never by those it was
    measured under."""
    rows = measured["plateaus"]
    true_changes = [row["first_step"] for row in rows[1:]]
    stages = stages_beside_rank_changes(measured["llc_curve"], true_changes)
    reasons = saddle_verdict([row["rank"] for row in rows], [row["within_target"] for row in rows],
                             measured["training"]["teacher_rank"], stages["all_matched"],
                             measured["training"]["next_mode"])
    unmixed = [row["rank"] for row in rows if fails_mixing_gate(row)]
    return {**measured, "stages": {**stages, "true_rank_change_steps": true_changes},
            "targets_met": not reasons, "reasons": reasons, "unmixed_plateaus": unmixed}
