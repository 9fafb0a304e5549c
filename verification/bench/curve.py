"""The LLC along a saddle-to-saddle run, every checkpoint against its own relabelled targets, as
one batched run against one checkpoint after the other: ``sltlab bench --only curve``.

The run is the saddle study's own on [10,4,4,4,10] (d = 112, trained once, not timed), and the
checkpoints are the study's curve (evenly spaced in log step, ``--checkpoints`` of them), each
estimated with the study's curve sampler (MALA, 16 chains, 2,000 warm-up and burn-in steps,
2,000 draws). A network this small costs by the step, not by the chain. Each repeat times the
whole curve both ways — :func:`~sltlab.estimators.problems.estimate_llc_of_problems` over a
:class:`~sltlab.models.deep_linear_losses.StackedFullDataLoss`, and
:func:`~sltlab.estimators.estimate.estimate_llc_from_loss` per checkpoint, each with its own
seed — and the speed-up is the ratio of the medians. The batched curve runs on common random
numbers, as the study's does; MALA is exact, so both ways sample the same posteriors, and the
two curves are compared in SE as in :mod:`sltlab.verification.bench.along`.
"""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import replace

from sltlab.estimators.problems import estimate_llc_of_problems
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.notices import EstimateWarning
from sltlab.verification.bench.along import agreement_in_se, agreement_text, independent_seed
from sltlab.verification.dynamics.saddle import SaddleSetup, train_setup
from sltlab.verification.dynamics.saddle_plateaus import relabelled_loss
from sltlab.verification.dynamics.saddle_schedule import escape_steps
from sltlab.verification.dynamics.saddle_plateaus import stacked_relabelled
from sltlab.verification.dynamics.saddle_stages import CURVE_SAMPLER, curve_indices

WIDTHS = (10, 4, 4, 4, 10)


def curve_row(repeats: int, checkpoints: int = 60, *, widths: tuple[int, ...] = WIDTHS,
              sampler: LLCConfig = CURVE_SAMPLER) -> dict:
    """Medians over ``repeats`` of the curve's wall time both ways, and how far the two curves
    are apart in SE (the last repeat's)."""
    if checkpoints < 2:
        raise ValueError(f"need at least 2 checkpoints, got {checkpoints}")
    setup = SaddleSetup(widths).resolved()
    run, network, x, _ = train_setup(setup)
    first_escape = escape_steps(len(widths) - 1, setup.init_scale, setup.learning_rate, max(setup.singular_values))
    positions = [run.positions[index] for index in curve_indices(run.steps.tolist(), first_escape / 4, checkpoints)]
    losses = [relabelled_loss(network, x, position) for position in positions]
    timings: dict[str, list[float]] = {"batched": [], "sequential": []}
    with warnings.catch_warnings():   # the row compares the two ways in SE; the gate is not its question
        warnings.simplefilter("ignore", EstimateWarning)
        for repeat in range(repeats):
            seeded = [replace(sampler, seed=independent_seed(repeat, run)) for run in range(len(positions) + 1)]
            clock = time.perf_counter()
            together = estimate_llc_of_problems(losses, positions, (), seeded[0], stack=stacked_relabelled, n=setup.n,
                                                shared_noise=True)
            timings["batched"].append(time.perf_counter() - clock)
            clock = time.perf_counter()
            apart = [estimate_llc_from_loss(loss, position, (), config, n=setup.n, compare_with_minimum=False)
                     for loss, position, config in zip(losses, positions, seeded[1:])]
            timings["sequential"].append(time.perf_counter() - clock)
    medians = {way: statistics.median(seconds) for way, seconds in timings.items()}
    return {"name": f"LLC curve of a saddle-to-saddle run, dln {list(widths)} (d = {network.dim}), "
                    f"{len(positions)} checkpoints each with its own targets, mala, {sampler.chains} chains × "
                    f"{sampler.draws} draws after {sampler.burnin} warm-up and burn-in steps",
            "checkpoints": len(positions), "repeats": repeats,
            "batched_seconds": medians["batched"], "sequential_seconds": medians["sequential"],
            "speed_up": medians["sequential"] / medians["batched"], **agreement_in_se(together, apart)}


def format_curve(row: dict) -> str:
    return "\n".join([
        row["name"],
        f"  one checkpoint after the other {row['sequential_seconds']:8.2f} s",
        f"  one batched run                {row['batched_seconds']:8.2f} s",
        f"  speed-up {row['speed_up']:.2f}× (medians of {row['repeats']}; no target)",
        "  " + agreement_text(row, "checkpoints")])
