"""What an exact sampler would report, by sample size: the finite-n LLC of deep linear networks
drawn from the published band (:func:`sltlab.verification.bench.grid.draw_grid`), by blocked
Gibbs at n = 10⁴ and n = 10⁶, against λ: ``sltlab bench --only estimand --count N --seed S``.

No SG-MCMC runs here, so a network costs seconds to minutes: this is how the default sample
size of ``sltlab estimate dln`` was chosen. For each network it reports the truth outside the
band [λ − (m − 1)/log nβ, λ] at each size, and the two truths extrapolated to nβ → ∞ in
1/log nβ (:func:`sltlab.estimators.extrapolate_llc`) against λ.
"""

from __future__ import annotations

from sltlab.estimators.extrapolate import extrapolate_llc
from sltlab.estimators.llc import default_nbeta
from sltlab.estimators.localize import empirical_minimum
from sltlab.verification.bench.grid import error_spread
from sltlab.verification.defaults import DLN_DEFAULTS, DLN_ESTIMATE_DEFAULTS
from sltlab.verification.reference.dln_gibbs import reference_llc
from sltlab.verification.scale_out import run_each
from sltlab.verification.suite import dln_problem, outside_band
from sltlab.verification.suite.summary import REFERENCE_CHAINS, REFERENCE_SWEEPS
from sltlab.verification.threads import use_threads

SIZES = (DLN_DEFAULTS.n, DLN_ESTIMATE_DEFAULTS.n)


def estimand_row(draw: tuple[list[int], int], *, threads: int | None = None) -> dict:
    """The Gibbs truth at each size of ``SIZES`` at the empirical minimum (γ of the defaults)."""
    widths, rank = draw
    if threads is not None:
        use_threads(threads, at_most_cores=False)
    truths = []
    for n in SIZES:
        problem = dln_problem(widths, rank, n=n, seed=0)
        centre = empirical_minimum(problem.loss, problem.true_parameter, None).center
        truth = reference_llc(problem.loss, centre, default_nbeta(n), DLN_DEFAULTS.config.localization,
                              chains=REFERENCE_CHAINS, sweeps=REFERENCE_SWEEPS, burnin=REFERENCE_SWEEPS // 4)
        truths.append((default_nbeta(n), truth.mean, truth.standard_error))
    lam, multiplicity = problem.exact.lam_float, problem.exact.multiplicity
    fit = extrapolate_llc(*zip(*truths))
    return {"widths": widths, "rank": rank, "dim": problem.exact.dim, "lambda": lam, "multiplicity": multiplicity,
            "sizes": [{"n": n, "nbeta": nbeta, "truth": mean, "se": se,
                       "outside_band": outside_band(mean, lam, multiplicity, nbeta)}
                      for n, (nbeta, mean, se) in zip(SIZES, truths)],
            "extrapolated": {"truth": fit.lam, "se": fit.standard_error, "relative": (fit.lam - lam) / lam}}


def estimand_rows(draws, *, dask: str | None = None, threads: int | None = None) -> list[dict]:
    return list(run_each(estimand_row, draws, dask, threads=threads))


def estimand_summary(rows: list[dict]) -> dict:
    """Median, 90th percentile and worst of each column over the networks."""
    summary = {f"n={size}": error_spread([row["sizes"][index]["outside_band"] for row in rows])
               for index, size in enumerate(SIZES)}
    summary["extrapolated"] = error_spread([abs(row["extrapolated"]["relative"]) for row in rows])
    return {"count": len(rows), **summary}


def format_estimand(rows: list[dict], summary: dict) -> str:
    lines = [f"{'widths':<28} {'r':>3} {'d':>5} {'m':>2} {'λ':>8} " + " ".join(f"{'n = ' + format(n, ','):>14}"
                                                                           for n in SIZES) + f" {'extrapolated':>12}"]
    for row in rows:
        lines.append(f"{str(row['widths']):<28} {row['rank']:>3} {row['dim']:>5} {row['multiplicity']:>2} "
                     f"{row['lambda']:>8.2f} " + " ".join(f"{size['outside_band']:>14.1%}" for size in row["sizes"])
                     + f" {row['extrapolated']['relative']:>+12.1%}")
    for name, spread in summary.items():
        if name != "count":
            lines.append(f"{name:<14} median {spread['median']:.1%}, p90 {spread['p90']:.1%}, "
                         f"worst {spread['worst']:.1%}")
    lines.append("columns: the blocked-Gibbs truth nβ·E[ΔL] at each n (nβ = n/log n, the empirical minimum) "
                 "outside the "
                 "band [λ − (m − 1)/log nβ, λ], and the two truths extrapolated in 1/log nβ against λ (signed)")
    return "\n".join(lines)
