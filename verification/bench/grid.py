"""Deep linear networks drawn at random from the published grid's band, the error taken apart:
``sltlab bench --only grid --count N --seed S``.

The band of Lau, Furman, Wang, Murfet & Wei 2023 (§5, their deep linear network study on CPU):
depth 2–5 weight matrices, every width uniform on 5–50, the teacher's rank uniform on 0 … the
narrowest width. On every drawn network three numbers meet λ:

- sltlab's default estimate, as ``sltlab estimate dln`` gives it: ``DLN_DEFAULTS`` at n = 10⁴ and
  10⁶, extrapolated to nβ → ∞ (:mod:`sltlab.verification.suite.extrapolation`);
- the exact finite-temperature values λ(nβ, γ) at the same centres, nβ and γ, from the blocked
  Gibbs reference (:mod:`sltlab.verification.reference.dln_gibbs`), extrapolated the same way,
  which split the default's error into **sampler error** (estimate / reference − 1) and
  **estimand bias** (the extrapolated reference against λ); the same split at n = 10⁴ alone,
  outside the multiplicity band [λ − (m − 1)/log nβ, λ], is reported beside;
- the authors' recipe as published: n = 10⁵ rows, nβ = n/log n, γ = 1, SGLD on minibatches of
  500 at step 5·10⁻⁷ for 10⁴ steps from the true parameter (no localising optimiser, no
  burn-in), four chains.

Errors are relative to λ (for the authors' recipe and at one size, outside the band, as the
suites count them; the band closes on λ as nβ → ∞); a diverged or missing estimate counts as an
error of 100 %.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import time
from dataclasses import replace

import numpy as np

from sltlab.estimators import LLCConfig
from sltlab.verification.defaults import DLN_EXTRAPOLATION
from sltlab.verification.suite import DLN_DEFAULTS, dln_problem, run_estimate
from sltlab.verification.suite.extrapolation import extrapolated_dln
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
    """One drawn network (widths, rank): the default (extrapolated over n), its reference and the
    authors' recipe; ``threads`` sets torch's thread count first (a Dask worker's own)."""
    widths, rank = draw
    if threads is not None:
        use_threads(threads)
    clock = time.perf_counter()
    sizes = (DLN_DEFAULTS.n, DLN_EXTRAPOLATION * DLN_DEFAULTS.n)
    default = extrapolated_dln(widths, rank, DLN_DEFAULTS.config, sizes=sizes, reference=True, progress=progress)
    seconds = time.perf_counter() - clock
    lam, multiplicity = default["lambda_exact_float"], default["multiplicity_exact"]
    authors_problem = dln_problem(widths, rank, n=AUTHORS_N, seed=0, per_sample=True)
    authors = run_estimate(authors_problem, replace(AUTHORS_RECIPE, seed=0), progress=progress)

    def error(estimate, nbeta):
        return 1.0 if estimate is None else outside_band(estimate, lam, multiplicity, nbeta)

    first = default["estimates"][0]
    reference = default.get("finite_n_truth")
    return {"widths": widths, "rank": rank, "dim": default["dim"], "lambda": lam, "multiplicity": multiplicity,
            "default": {"estimate": default["llc_mean"], "se": default["llc_se"], "rhat": default["rhat"],
                        "diverged": len(default["diverged_chains"]), "seconds": seconds,
                        "error": error(default["llc_mean"], math.inf)},
            "reference": {"estimate": reference, "se": default.get("finite_n_truth_se"),
                          "estimand_bias": error(reference, math.inf)},
            "sampler_error": None if default["llc_mean"] is None else default["llc_mean"] / reference - 1,
            "at_one_size": {"n": first["n"], "estimate": first["llc_mean"], "truth": first["finite_n_truth"],
                            "error": error(first["llc_mean"], first["config"]["nbeta"]),
                            "estimand_bias": error(first["finite_n_truth"], first["config"]["nbeta"])},
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
               "at_one_size": spread([row["at_one_size"]["error"] for row in rows]),
               "at_one_size_estimand_bias": spread([row["at_one_size"]["estimand_bias"] for row in rows]),
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
                        ("sampler_error", "|sampler error|"), ("estimand_bias", "estimand bias"),
                        ("at_one_size", "n = 10⁴ alone"), ("at_one_size_estimand_bias", "  its estimand")):
        spread = summary[name]
        lines.append(f"{label:<16} median {spread['median']:.1%}, p90 {spread['p90']:.1%}, worst {spread['worst']:.1%}")
    lines.append(f"diverged: default {summary['default_diverged_rate']:.0%}, authors "
                 f"{summary['authors_diverged_rate']:.0%}; targets (default against λ) median ≤ 3 %, "
                 f"p90 ≤ 8 %, worst ≤ 12 %, sampler error median ≤ 2 %: "
                 + ("met" if summary["meets_targets"] else "MISSED"))
    lines.append("columns: λ̂ of sltlab's default (n = 10⁴ and 10⁶ extrapolated to nβ → ∞), the exact λ(nβ, γ) by "
                 "blocked Gibbs at its centres extrapolated the same way, the authors' recipe; sampler = "
                 "default/reference − 1; estimand = reference against λ; s = seconds of the default, end to end; "
                 "n = 10⁴ alone: the LLC at one size and its Gibbs truth, outside the band")
    return "\n".join(lines)


def _number(value):
    return "—" if value is None else f"{value:.2f}"


def _percent(value):
    return "—" if value is None else f"{value:+.1%}"
