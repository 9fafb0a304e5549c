"""The temperature ladder as one batched run against its rungs one after the other:
``sltlab bench --only ladder``.

The network is a dln-suite case, [10,10,10,10] at rank 2 (d = 300) with n = 10⁴ rows, sampled
with 8 chains × 2,000 draws after 1,000 burn-in steps at five values of nβ over two decades
around n/log n, as ``sltlab estimate --temperatures 5`` spans them, twice: by SGLD at a given
step (1.5·10⁻⁵ at nβ = n/log n, scaled as 1/nβ, about the rule's there, so that both ways sample
the same five posteriors; the rule's random probe would otherwise give each way its own steps),
and by MALA, the deep linear default, whose warm-up tunes every rung's step (all rungs in one
batched warm-up, or each rung its own); MALA is exact, so both ways target the same posteriors.
Each repeat times the whole ladder both ways — every rung's chains in one run
(:func:`~sltlab.estimators.ladder.estimate_llc_at_temperatures`) and
:func:`~sltlab.estimators.estimate.estimate_llc_from_loss` per rung, each with its own seed —
and the speed-up is the ratio of the medians; the rungs' estimates are compared in SE as in
:mod:`sltlab.verification.bench.along`. Runs this short leave the chains below λ = 79/2 (they
are still climbing); the row asks for time and agreement, not accuracy.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from dataclasses import replace

from sltlab.estimators.ladder import estimate_llc_at_temperatures
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.multiplicity import temperature_ladder
from sltlab.estimators.notices import EstimateWarning
from sltlab.verification.bench.along import agreement_in_se, agreement_text, independent_seed
from sltlab.verification.suite.problems import dln_problem

WIDTHS, RANK, ROWS, RUNGS = (10, 10, 10, 10), 2, 10_000, 5
CONFIG = LLCConfig(sampler="sgld", chains=8, draws=2000, burnin=1000, nbeta=ROWS / math.log(ROWS), step_size=1.5e-5)


def ladder_rows(repeats: int) -> dict:
    """:func:`ladder_row` for SGLD at its given step and for MALA with its warm-up."""
    return {"sgld": ladder_row(repeats, CONFIG), "mala": ladder_row(repeats, replace(CONFIG, sampler="mala",
                                                                                      step_size=None))}


def ladder_row(repeats: int, config: LLCConfig) -> dict:
    """Medians over ``repeats`` of the whole ladder's wall time both ways, and how far the two
    ways' estimates are apart in SE (the last repeat's). A step given in ``config`` is scaled
    as 1/nβ; without one, each rung's step comes from the sampler's own rule or warm-up."""
    problem = dln_problem(WIDTHS, RANK, n=ROWS, seed=0)
    nbetas = temperature_ladder(CONFIG.nbeta, RUNGS)
    timings: dict[str, list[float]] = {"batched": [], "sequential": []}
    with warnings.catch_warnings():   # the row compares the two ways in SE; the gate is not its question
        warnings.simplefilter("ignore", EstimateWarning)
        for repeat in range(repeats):
            clock = time.perf_counter()
            together = estimate_llc_at_temperatures(problem.loss, problem.true_parameter, problem.data,
                                                    replace(config, seed=independent_seed(repeat, 0)), nbetas,
                                                    n=problem.n)
            timings["batched"].append(time.perf_counter() - clock)
            clock = time.perf_counter()
            apart = [estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data,
                                            replace(config, nbeta=nbeta, seed=independent_seed(repeat, 1 + index),
                                                    step_size=None if config.step_size is None
                                                    else config.step_size * config.nbeta / nbeta), n=problem.n)
                     for index, nbeta in enumerate(nbetas)]
            timings["sequential"].append(time.perf_counter() - clock)
    medians = {way: statistics.median(seconds) for way, seconds in timings.items()}
    return {"name": f"temperature ladder of {RUNGS} rungs, dln {list(WIDTHS)} rank {RANK} (d = "
                    f"{problem.true_parameter.numel()}), n = {ROWS:,}, {config.sampler} "
                    f"({'its warm-up per rung' if config.step_size is None else 'a given step'}), {config.chains} "
                    f"chains × {config.draws} draws after {config.burnin} burn-in",
            "repeats": repeats, "nbetas": nbetas,
            "batched_seconds": medians["batched"], "sequential_seconds": medians["sequential"],
            "speed_up": medians["sequential"] / medians["batched"],
            "estimates": [[a.mean, a.standard_error, b.mean, b.standard_error] for a, b in zip(together, apart)],
            **agreement_in_se(together, apart)}


def format_ladders(rows: dict) -> str:
    return "\n".join(format_ladder(row) for row in rows.values())


def format_ladder(row: dict) -> str:
    rungs = "; ".join(f"nβ {nbeta:,.0f}: {a:.2f} ± {sa:.2f} / {b:.2f} ± {sb:.2f}"
                      for nbeta, (a, sa, b, sb) in zip(row["nbetas"], row["estimates"]))
    return "\n".join([
        row["name"],
        f"  one rung after the other {row['sequential_seconds']:8.2f} s",
        f"  one batched run          {row['batched_seconds']:8.2f} s",
        f"  speed-up {row['speed_up']:.2f}× (medians of {row['repeats']}; no target)",
        f"  λ̂ batched / one after the other: {rungs}",
        "  " + agreement_text(row, "rungs")])
