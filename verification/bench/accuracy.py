"""Accuracy targets for ``sltlab bench --only accuracy``, all with default settings and no
per-case tuning:

- deep linear networks of 10² to 10⁴ parameters at balanced true parameters: relative error of
  λ̂ outside the band [λ − (m − 1)/log nβ, λ] below 5 % in the median and 10 % at worst;
- toy potentials: λ̂ within 3 standard errors of t·E_t[K] integrated numerically;
- a regular Gaussian model (linear regression): λ̂ and ν̂ within 5 % of d/2.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

from sltlab.verification.suite import DLN_DEFAULTS, POTENTIAL_DEFAULTS, dln_problem, potential_problem, run_estimate

MEDIAN_TARGET, WORST_TARGET, REGULAR_TARGET = 0.05, 0.10, 0.05

# (widths, rank): depths 1–4, bottlenecks, equal widths, ranks from 0 to full; d from 10² to 10⁴.
DLN_CASES = (
    ([10, 10], 10), ([10, 10, 10, 10], 2), ([10, 10, 10, 10], 5), ([10, 5, 5, 10], 0), ([10, 5, 5, 10], 3),
    ([12, 6, 6, 12], 4), ([8, 8, 8, 8, 8, 8], 3), ([20, 20, 20], 5), ([30, 10, 30], 4),
    ([40, 20, 40, 40], 10), ([50, 50, 50], 10), ([50, 50, 50, 50, 50], 20),
)
POTENTIALS = ("w1**4", "w1**4 + w2**2", "w1**6 + w2**4", "(w1**2 + w2**2)**2", "w1**2 + w1**2*w2**2",
              "w1**2*w2**2", "w1**2*w2**4 + w1**4*w2**2")


def dln_rows(progress: bool = False) -> list[dict]:
    rows = []
    for widths, rank in DLN_CASES:
        problem = dln_problem(widths, rank, n=DLN_DEFAULTS.n, seed=0)
        result = run_estimate(problem, DLN_DEFAULTS.config, progress=progress)
        rows.append(_row(f"dln {widths} r={rank}", result))
    return rows


def potential_rows(progress: bool = False) -> list[dict]:
    rows = []
    for expression in POTENTIALS:
        result = run_estimate(potential_problem(expression, n=POTENTIAL_DEFAULTS.n), POTENTIAL_DEFAULTS.config,
                              progress=progress)
        row = _row(f"potential {expression}", result)
        row["finite_n_truth"] = result["finite_n_truth"]
        row["z_vs_truth"] = (result["llc_mean"] - result["finite_n_truth"]) / result["llc_se"]
        row["meets_target"] = abs(row["z_vs_truth"]) <= 3
        rows.append(row)
    return rows


def regular_row(progress: bool = False) -> dict:
    """Linear regression [10, 10] (d = 100): λ = ν = d/2. The singular fluctuation needs every
    sample's likelihood, so this runs on the n rows (full batch) and, being regular, mixes in
    far fewer steps than the default."""
    problem = dln_problem([10, 10], 10, n=DLN_DEFAULTS.n, seed=0, per_sample=True)
    config = replace(DLN_DEFAULTS.config, burnin=1000, draws=1000, thin=1, functional_variance=True)
    result = run_estimate(problem, config, progress=progress)
    row = _row("regular: linear regression [10, 10]", result)
    nu = result["singular_fluctuation"]["mean"]
    row["nu"], row["nu_rel_error"] = nu, nu / 50.0 - 1
    row["meets_target"] = abs(row["rel_error"]) <= REGULAR_TARGET and abs(row["nu_rel_error"]) <= REGULAR_TARGET
    return row


def _row(name: str, result: dict) -> dict:
    return {"name": name, "dim": result["dim"], "lambda": result["lambda_exact_float"],
            "multiplicity": result["multiplicity_exact"], "estimate": result["llc_mean"], "se": result["llc_se"],
            "rel_error": result["rel_error"], "outside_band": result["rel_error_outside_band"],
            "rhat": result["rhat"], "ess": result["ess"], "diverged": result["diverged_chains"],
            "seconds": result["sampling_seconds"]}


def dln_summary(rows: list[dict]) -> dict:
    errors = [1.0 if row["outside_band"] is None else row["outside_band"] for row in rows]
    median, worst = statistics.median(errors), max(errors)
    return {"median_outside_band": median, "worst_outside_band": worst,
            "meets_target": median < MEDIAN_TARGET and worst < WORST_TARGET}


def format_accuracy(dln: list[dict], summary: dict, potentials: list[dict], regular: dict) -> str:
    def number(value, spec):
        return "—" if value is None else format(value, spec)

    lines = [f"{'case':<44} {'d':>6} {'λ':>8} {'m':>2} {'λ̂ ± SE':>18} {'error':>7} {'outside':>8} "
             f"{'R-hat':>6} {'ESS':>6} {'s':>5}"]
    for row in dln + [regular]:
        lines.append(f"{row['name']:<44} {row['dim']:>6} {row['lambda']:>8.4g} {row['multiplicity']:>2} "
                     f"{number(row['estimate'], '.4g'):>9} ± {number(row['se'], '.2g'):<6} "
                     f"{number(row['rel_error'], '+.1%'):>7} {number(row['outside_band'], '.1%'):>8} "
                     f"{number(row['rhat'], '.3f'):>6} {number(row['ess'], '.0f'):>6} {row['seconds']:>5.1f}")
    lines.append(f"deep linear: median {summary['median_outside_band']:.1%} (target < {MEDIAN_TARGET:.0%}), "
                 f"worst {summary['worst_outside_band']:.1%} (target < {WORST_TARGET:.0%}) outside the band: "
                 + ("ok" if summary["meets_target"] else "MISSED"))
    lines.append(f"regular: λ̂ {regular['rel_error']:+.1%}, ν̂ = {regular['nu']:.4g} ({regular['nu_rel_error']:+.1%}) "
                 f"of d/2 = 50 (target within {REGULAR_TARGET:.0%}): "
                 + ("ok" if regular["meets_target"] else "MISSED"))
    lines.append(f"{'potential':<44} {'λ':>8} {'t·E[K]':>8} {'λ̂ ± SE':>18} {'z':>6}")
    for row in potentials:
        lines.append(f"{row['name']:<44} {row['lambda']:>8.4g} {row['finite_n_truth']:>8.4f} "
                     f"{row['estimate']:>9.4f} ± {row['se']:<6.2g} {row['z_vs_truth']:>+6.2f} "
                     + ("ok" if row["meets_target"] else "MISSED (|z| > 3)"))
    return "\n".join(lines)
