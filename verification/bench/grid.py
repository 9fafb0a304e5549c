"""Deep linear networks drawn at random from the published grid's band, the error taken apart:
``sltlab bench --only grid --count N --seed S``.

The band of Lau, Furman, Wang, Murfet & Wei 2023 (§5, their deep linear network study on CPU):
depth 2–5 weight matrices, every width uniform on 5–50, the teacher's rank uniform on 0 … the
narrowest width. On every drawn network three numbers meet λ:

- sltlab's default estimate (``DLN_DEFAULTS``, the ``sltlab estimate dln`` path);
- the exact finite-temperature value λ(nβ, γ) at the same centre, nβ and γ, from the blocked
  Gibbs reference (:mod:`sltlab.verification.reference.dln_gibbs`), which splits the default's
  error into **sampler error** (estimate / reference − 1) and **estimand bias** (the reference
  outside the multiplicity band [λ − (m − 1)/log nβ, λ]);
- the authors' recipe as published: n = 10⁵ rows, nβ = n/log n, γ = 1, SGLD on minibatches of
  500 at step 5·10⁻⁷ for 10⁴ steps from the true parameter (no localising optimiser, no
  burn-in), four chains.

Errors are relative and counted outside the band, as the suites count them; a diverged or
missing estimate counts as an error of 100 %.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import replace

import numpy as np

from sltlab.estimators import LLCConfig, estimate_llc_from_loss
from sltlab.verification.suite import DLN_DEFAULTS, dln_problem, run_estimate, summarize
from sltlab.verification.suite.gates import outside_band

TARGETS = {"median": 0.03, "p90": 0.08, "worst": 0.12, "sampler_median": 0.02}
AUTHORS_N = 100_000
AUTHORS_RECIPE = LLCConfig(sampler="sgld", chains=4, draws=10_000, burnin=0, thin=1, step_size=5e-7,
                           localization=1.0, batch_size=500, localize_at="true_parameter")


def draw_grid(count: int, seed: int) -> list[tuple[list[int], int]]:
    """``count`` (widths, rank) from the band above, reproducible from ``seed``."""
    if count < 1:
        raise ValueError(f"--count must be at least 1, got {count}")
    generator = random.Random(seed)
    draws = []
    for _ in range(count):
        widths = [generator.randint(5, 50) for _ in range(generator.choice((2, 3, 4, 5)) + 1)]
        draws.append((widths, generator.randint(0, min(widths))))
    return draws


def grid_row(widths: list[int], rank: int, *, progress: bool = False) -> dict:
    """One drawn network: the default, its reference and the authors' recipe."""
    problem = dln_problem(widths, rank, n=DLN_DEFAULTS.n, seed=0)
    exact = problem.exact
    result = estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data, DLN_DEFAULTS.config,
                                    n=problem.n, progress=progress)
    clock = time.perf_counter()
    default = summarize(problem, result, reference=True)
    reference_seconds = time.perf_counter() - clock
    reference = default["finite_n_truth"]
    authors_problem = dln_problem(widths, rank, n=AUTHORS_N, seed=0, per_sample=True)
    authors = run_estimate(authors_problem, replace(AUTHORS_RECIPE, seed=0), progress=progress)

    def error(estimate, nbeta):
        return 1.0 if estimate is None else outside_band(estimate, exact.lam_float, exact.multiplicity, nbeta)

    nbeta = default["config"]["nbeta"]
    return {"widths": widths, "rank": rank, "dim": default["dim"], "lambda": exact.lam_float,
            "multiplicity": exact.multiplicity,
            "default": {"estimate": default["llc_mean"], "se": default["llc_se"], "rhat": default["rhat"],
                        "diverged": len(default["diverged_chains"]), "seconds": default["sampling_seconds"],
                        "error": error(default["llc_mean"], nbeta)},
            "reference": {"estimate": reference, "se": default["finite_n_truth_se"], "seconds": reference_seconds,
                          "estimand_bias": error(reference, nbeta)},
            "sampler_error": None if default["llc_mean"] is None else default["llc_mean"] / reference - 1,
            "authors": {"estimate": authors["llc_mean"], "se": authors["llc_se"], "rhat": authors["rhat"],
                        "diverged": len(authors["diverged_chains"]), "seconds": authors["sampling_seconds"],
                        "error": error(authors["llc_mean"], authors["config"]["nbeta"])}}


def grid_summary(rows: list[dict]) -> dict:
    """Median, 90th percentile and worst error of each recipe, the sampler/estimand split and
    the diverged rate, beside the targets."""
    def spread(values):
        return {"median": statistics.median(values), "p90": float(np.percentile(values, 90)), "worst": max(values)}

    default = spread([row["default"]["error"] for row in rows])
    sampler = spread([abs(row["sampler_error"]) if row["sampler_error"] is not None else 1.0 for row in rows])
    summary = {"count": len(rows), "default": default, "sampler_error": sampler,
               "estimand_bias": spread([row["reference"]["estimand_bias"] for row in rows]),
               "authors": spread([row["authors"]["error"] for row in rows]),
               "default_diverged_rate": sum(row["default"]["diverged"] > 0 for row in rows) / len(rows),
               "authors_diverged_rate": sum(row["authors"]["diverged"] > 0 for row in rows) / len(rows),
               "seconds_per_estimate": statistics.median(row["default"]["seconds"] for row in rows),
               "targets": TARGETS}
    summary["meets_targets"] = (default["median"] <= TARGETS["median"] and default["p90"] <= TARGETS["p90"]
                                and default["worst"] <= TARGETS["worst"] and summary["default_diverged_rate"] == 0
                                and sampler["median"] <= TARGETS["sampler_median"])
    return summary


def format_grid(rows: list[dict], summary: dict) -> str:
    lines = [f"{'widths':<28} {'r':>3} {'d':>5} {'λ':>7} {'default':>9} {'reference':>9} {'authors':>9} "
             f"{'sampler':>8} {'estimand':>8} {'s':>5}"]
    for row in rows:
        authors = row["authors"]["estimate"]
        lines.append(f"{str(row['widths']):<28} {row['rank']:>3} {row['dim']:>5} {row['lambda']:>7.2f} "
                     f"{_number(row['default']['estimate']):>9} {_number(row['reference']['estimate']):>9} "
                     f"{_number(authors):>9} {_percent(row['sampler_error']):>8} "
                     f"{_percent(row['reference']['estimand_bias']):>8} {row['default']['seconds']:>5.0f}")
    for name, label in (("default", "sltlab default"), ("authors", "authors' recipe"),
                        ("sampler_error", "|sampler error|"), ("estimand_bias", "estimand bias")):
        spread = summary[name]
        lines.append(f"{label:<16} median {spread['median']:.1%}, p90 {spread['p90']:.1%}, worst {spread['worst']:.1%}")
    lines.append(f"diverged: default {summary['default_diverged_rate']:.0%}, authors "
                 f"{summary['authors_diverged_rate']:.0%}; targets (default outside the band) median ≤ 3 %, "
                 f"p90 ≤ 8 %, worst ≤ 12 %, sampler error median ≤ 2 %: "
                 + ("met" if summary["meets_targets"] else "MISSED"))
    lines.append("columns: λ̂ of sltlab's default, the exact λ(nβ, γ) by blocked Gibbs at its centre, the authors' "
                 "recipe; sampler = default/reference − 1; estimand = reference outside the band; s = seconds "
                 "sampling the default")
    return "\n".join(lines)


def _number(value):
    return "—" if value is None else f"{value:.2f}"


def _percent(value):
    return "—" if value is None else f"{value:+.1%}"
