"""Do the error bars cover? ``sltlab bench --only coverage``.

On every registered potential whose finite-n truth t·E_t[K] is computed by quadrature (one or
two variables), the suite's default estimator is run for many independent seeds, and the
share of intervals λ̂ ± 2 SE that contain the truth is counted. A correct Monte Carlo SE gives
about 95 %; the target is 90–98 %. The seeds are groups of chains of one batched run: every
group has its own noise and its own estimate, SE, R-hat and ESS, and the groups share only
the sampler's tuning (its initial bracket or step, which leaves an exact sampler exact) and
the centre w* = 0.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np

from sltlab.estimators.batched import chains_of
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.llc import llc_from_trace
from sltlab.estimators.notices import EstimateWarning
from sltlab.verification.reference import tempered_expectation
from sltlab.verification.suite import POTENTIAL_DEFAULTS, suite

COVERAGE_TARGET = (0.90, 0.98)
COVERAGE_K = 2.0


def coverage_rows(seeds_per_potential: int = 25, progress: bool = False) -> dict:
    """Coverage of λ̂ ± 2 SE per potential and over all, with a 95 % Wilson interval."""
    rows = []
    for case in suite("toy"):
        problem = case.problem()
        if problem.expression is None or problem.true_parameter.numel() > 2:
            continue
        config = replace(POTENTIAL_DEFAULTS.config, chains=POTENTIAL_DEFAULTS.config.chains * seeds_per_potential,
                         seed=case.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EstimateWarning)
            result = estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data, config, n=problem.n,
                                            progress=progress)
        truth = tempered_expectation(problem.expression, result.config.nbeta, result.config.localization,
                                     variables=problem.loss.variables)
        estimates = [group_estimate(result.trace, result.config.nbeta, group, POTENTIAL_DEFAULTS.config.chains)
                     for group in range(seeds_per_potential)]
        rows.append(coverage_row(case.id, truth, estimates))
    covered, seeds = sum(row["covered"] for row in rows), sum(row["seeds"] for row in rows)
    low, high = _wilson(covered, seeds)
    total = covered / seeds
    return {"coverage": total, "interval_95": [low, high], "seeds": seeds, "k": COVERAGE_K,
            "target": list(COVERAGE_TARGET), "meets_target": COVERAGE_TARGET[0] <= total <= COVERAGE_TARGET[1],
            "potentials": rows}


def coverage_row(case: str, truth: float, estimates: list) -> dict:
    """How many of ``estimates`` cover ``truth`` within ``COVERAGE_K`` standard errors; a group with
    no estimate or no error bar (every chain dropped) covers nothing, and stays in the count."""
    judged = [e for e in estimates if e.mean is not None and e.standard_error]
    covered = [abs(e.mean - truth) <= COVERAGE_K * e.standard_error for e in judged]
    return {"case": case, "finite_n_truth": truth, "seeds": len(estimates), "covered": int(sum(covered)),
            "without_estimate": len(estimates) - len(judged), "coverage": sum(covered) / len(estimates),
            "median_z": float(np.median([(e.mean - truth) / e.standard_error for e in judged])) if judged else None}


def group_estimate(trace, nbeta: float, group: int, size: int):
    """The estimate of chains [group·size, (group + 1)·size) of ``trace`` alone."""
    return llc_from_trace(chains_of(trace, slice(group * size, (group + 1) * size), 1), nbeta)


def _wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's score interval for a binomial proportion (Wilson 1927)."""
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return centre - half, centre + half


def format_coverage(result: dict) -> str:
    lines = [f"{'coverage of λ̂ ± 2 SE on exact finite-n truths':<52} {'seeds':>6} {'covered':>8} {'median z':>9}"]
    for row in result["potentials"]:
        median = "—" if row["median_z"] is None else f"{row['median_z']:+.2f}"
        lost = f"  ({row['without_estimate']} without an estimate, not covered)" if row["without_estimate"] else ""
        lines.append(f"  {row['case']:<50} {row['seeds']:>6} {row['coverage']:>8.1%} {median:>9}{lost}")
    low, high = result["interval_95"]
    verdict = "met" if result["meets_target"] else "MISSED"
    lines.append(f"  all: {result['coverage']:.1%} of {result['seeds']} (95 % interval {low:.1%}–{high:.1%}); "
                 f"target {result['target'][0]:.0%}–{result['target'][1]:.0%}: {verdict}")
    return "\n".join(lines)
