"""Deep linear networks drawn at random from the published grid's band, the error taken apart:
``sltlab bench --only grid --count N --seed S``.

The band of Lau, Furman, Wang, Murfet & Wei 2023 (§5, their deep linear network study on CPU):
depth 2–5 weight matrices, every width uniform on 5–50, the teacher's rank uniform on 0 … the
narrowest width. On every drawn network these numbers meet λ:

- sltlab's default estimate, as ``sltlab estimate dln`` gives it: ``DLN_DEFAULTS`` at n = 10⁶
  (the sufficient statistics drawn exactly), and the same at n = 10⁴ beside it;
- the exact finite-temperature value λ(nβ, γ) at each estimate's centre, nβ and γ, from the
  blocked Gibbs reference (:mod:`sltlab.verification.reference.dln_gibbs`), which splits each
  error into **sampler error** (estimate / reference − 1) and **estimand bias** (the reference
  outside the multiplicity band [λ − (m − 1)/log nβ, λ]); the two truths extrapolated to
  nβ → ∞ in 1/log nβ (:func:`sltlab.estimators.extrapolate_llc`) are reported against λ;
- the authors' recipe as published: n = 10⁵ rows, nβ = n/log n, γ = 1, SGLD on minibatches of
  500 at step 5·10⁻⁷ for 10⁴ steps from the true parameter (no localising optimiser, no
  burn-in), four chains.

Errors are relative and counted outside the band, as the suites count them; a diverged or
missing estimate counts as an error of 100 %.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from dataclasses import replace

import numpy as np

from sltlab.estimators import LLCConfig
from sltlab.estimators.extrapolate import extrapolate_llc
from sltlab.verification.defaults import DLN_ESTIMATE_DEFAULTS
from sltlab.verification.suite import DLN_DEFAULTS, dln_problem, run_estimate
from sltlab.verification.suite.gates import outside_band
from sltlab.verification.scale_out import run_each
from sltlab.verification.threads import use_threads

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


def grid_rows(draws: list[tuple[list[int], int]], *, dask: str | None = None, threads: int | None = None,
              progress: bool = False) -> list[dict]:
    """:func:`grid_row` of every drawn network, on Dask when ``dask`` names a cluster
    (:mod:`sltlab.verification.scale_out`), in the draw's order."""
    rows = list(run_each(grid_row, draws, dask, threads=threads, progress=progress))
    order = {json.dumps(list(draw)): index for index, draw in enumerate(draws)}
    return sorted(rows, key=lambda row: order[json.dumps([row["widths"], row["rank"]])])


def grid_row(draw: tuple[list[int], int], *, threads: int | None = None, progress: bool = False) -> dict:
    """One drawn network (widths, rank): the default at n = 10⁶ and at n = 10⁴, each beside its
    Gibbs truth, the truths extrapolated in 1/log nβ, and the authors' recipe; ``threads`` sets
    torch's thread count first (a Dask worker's own)."""
    widths, rank = draw
    if threads is not None:
        use_threads(threads, at_most_cores=False)
    clock = time.perf_counter()
    default = run_estimate(dln_problem(widths, rank, n=DLN_ESTIMATE_DEFAULTS.n, seed=0), DLN_DEFAULTS.config,
                           reference=True, progress=progress)
    seconds = time.perf_counter() - clock
    small = run_estimate(dln_problem(widths, rank, n=DLN_DEFAULTS.n, seed=0), DLN_DEFAULTS.config, reference=True,
                         progress=progress)
    lam, multiplicity = default["lambda_exact_float"], default["multiplicity_exact"]
    authors_problem = dln_problem(widths, rank, n=AUTHORS_N, seed=0, per_sample=True)
    authors = run_estimate(authors_problem, replace(AUTHORS_RECIPE, seed=0), progress=progress)

    def error(estimate, nbeta):
        return 1.0 if estimate is None else outside_band(estimate, lam, multiplicity, nbeta)

    def judged(line):
        nbeta, estimate, truth = line["config"]["nbeta"], line["llc_mean"], line["finite_n_truth"]
        return {"n": line["n"], "estimate": estimate, "se": line["llc_se"], "rhat": line["rhat"],
                "diverged": len(line["diverged_chains"]), "truth": truth, "error": error(estimate, nbeta),
                "estimand_bias": error(truth, nbeta),
                "sampler_error": None if estimate is None else estimate / truth - 1}

    truths = extrapolate_llc([line["config"]["nbeta"] for line in (small, default)],
                             [line["finite_n_truth"] for line in (small, default)],
                             [line["finite_n_truth_se"] for line in (small, default)])
    return {"widths": widths, "rank": rank, "dim": default["dim"], "lambda": lam, "multiplicity": multiplicity,
            "default": {**judged(default), "seconds": seconds}, "at_one_size": judged(small),
            "extrapolated_truth": {"estimate": truths.lam, "error": abs(truths.lam - lam) / lam},
            "authors": {"estimate": authors["llc_mean"], "se": authors["llc_se"], "rhat": authors["rhat"],
                        "diverged": len(authors["diverged_chains"]), "seconds": authors["sampling_seconds"],
                        "error": error(authors["llc_mean"], authors["config"]["nbeta"])}}


def error_spread(values: list[float]) -> dict[str, float]:
    """Median, 90th percentile and worst of relative errors over the drawn networks."""
    return {"median": statistics.median(values), "p90": float(np.percentile(values, 90)), "worst": max(values)}


def grid_summary(rows: list[dict]) -> dict:
    """Median, 90th percentile and worst error of each recipe, the sampler/estimand split and
    the diverged rate, beside the targets."""
    default = error_spread([row["default"]["error"] for row in rows])
    sampler = error_spread([abs(row["default"]["sampler_error"]) if row["default"]["sampler_error"] is not None else 1.0
                      for row in rows])
    summary = {"count": len(rows), "default": default, "sampler_error": sampler,
               "estimand_bias": error_spread([row["default"]["estimand_bias"] for row in rows]),
               "extrapolated_truth": error_spread([row["extrapolated_truth"]["error"] for row in rows]),
               "authors": error_spread([row["authors"]["error"] for row in rows]),
               "at_one_size": error_spread([row["at_one_size"]["error"] for row in rows]),
               "at_one_size_estimand_bias": error_spread([row["at_one_size"]["estimand_bias"] for row in rows]),
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
                     f"{_number(row['default']['estimate']):>9} {_number(row['default']['truth']):>9} "
                     f"{_number(authors):>9} {_percent(row['default']['sampler_error']):>8} "
                     f"{_percent(row['default']['estimand_bias']):>8} {row['default']['seconds']:>5.0f}")
    for name, label in (("default", "sltlab default"), ("authors", "authors' recipe"),
                        ("sampler_error", "|sampler error|"), ("estimand_bias", "estimand bias"),
                        ("at_one_size", "n = 10⁴ alone"), ("at_one_size_estimand_bias", "  its estimand"),
                        ("extrapolated_truth", "truths in 1/log")):
        spread = summary[name]
        lines.append(f"{label:<16} median {spread['median']:.1%}, p90 {spread['p90']:.1%}, worst {spread['worst']:.1%}")
    lines.append(f"diverged: default {summary['default_diverged_rate']:.0%}, authors "
                 f"{summary['authors_diverged_rate']:.0%}; targets (default outside the band) median ≤ 3 %, "
                 f"p90 ≤ 8 %, worst ≤ 12 %, sampler error median ≤ 2 %: "
                 + ("met" if summary["meets_targets"] else "MISSED"))
    lines.append("columns: λ̂ of sltlab's default (n = 10⁶), the exact λ(nβ, γ) by blocked Gibbs at its centre, "
                 "the authors' recipe; sampler = default/reference − 1; estimand = reference outside the band; s = "
                 "seconds of the default; n = 10⁴ alone: the same at n = 10⁴; truths in 1/log: the two Gibbs truths "
                 "extrapolated to nβ → ∞ by λ − c/log nβ, against λ")
    return "\n".join(lines)


def _number(value):
    return "—" if value is None else f"{value:.2f}"


def _percent(value):
    return "—" if value is None else f"{value:+.1%}"
