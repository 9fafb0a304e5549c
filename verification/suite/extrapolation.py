"""λ of a deep linear network from LLC estimates at several sample sizes (``sltlab estimate dln
--sizes``).

The finite-n LLC of a deep linear network sits below λ by more than the multiplicity band
allows at n = 10⁴, and an exact sampler cannot remove that: it is the estimand. Sufficient
statistics make any n cost the same, so the network is estimated at each of several sizes (the
same teacher and true parameter, each size its own data) and the estimates are extrapolated to
nβ → ∞ in 1/log nβ (:func:`sltlab.estimators.extrapolate_llc`). Where the shortfall falls like
1/log nβ (measured on networks with m > 1) that lands within about 1 % of λ; where it falls
faster (rank 0 in depth, hidden layers much wider than the ends) it overshoots, by up to 20 %
measured, so this is an option beside the default's single large n. With ``reference`` the
blocked-Gibbs truths at each size are extrapolated the same way, splitting what is left into
sampler error and the error of the extrapolation itself.
"""

from __future__ import annotations

from typing import Any, Sequence

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.extrapolate import Extrapolation, extrapolate_llc
from sltlab.verification.suite.problems import checked_dln_inputs, dln_problem
from sltlab.verification.suite.summary import run_estimate

DEFAULT_SIZES = (10_000, 1_000_000)


def extrapolated_dln(widths: Sequence[int], rank: int, config: LLCConfig, *, sizes: Sequence[int] = DEFAULT_SIZES,
                     singular_values: Sequence[float] | None = None, reference: bool = False,
                     progress: bool = False) -> dict[str, Any]:
    """One estimate per sample size in ``sizes`` and their extrapolation, as one JSON-ready summary
    (:func:`extrapolated_summary`); ``ValueError`` for fewer than two distinct sizes."""
    sizes = sorted({int(n) for n in sizes})
    if len(sizes) < 2 or sizes[0] < 2:
        raise ValueError(f"extrapolating needs at least two different sample sizes of 2 or more, got {sizes}")
    for n in sizes:   # every size's problem checked before the first is sampled
        checked_dln_inputs(widths, rank, n, singular_values)
    estimates = [run_estimate(dln_problem(widths, rank, n=n, seed=config.seed, singular_values=singular_values),
                              config, progress=progress, reference=reference) for n in sizes]
    return extrapolated_summary(estimates)


def extrapolated_summary(estimates: list[dict[str, Any]]) -> dict[str, Any]:
    """The summaries of one network's estimates at several n (smallest first) as one summary of
    the same form, led by λ̂ extrapolated to nβ → ∞: its SE, each chain's extrapolated value, the
    worst R-hat and ESS, the error against λ itself (the band shrinks to λ as nβ grows), and,
    where every size has a blocked-Gibbs truth, the truths extrapolated the same way as the
    finite-n truth. ``llc_mean`` is None when some size has no estimate (every chain diverged). Where
    some size does not resolve every mode of the teacher, the notes say so for each such size and the
    extrapolation, which assumes one λ at every size, is reported but not judged (no band)."""
    last = estimates[-1]
    lam = last["lambda_exact_float"]
    sizes = [line["n"] for line in estimates]
    unresolved = [f"at n = {line['n']}: {line['unresolved_modes']}" for line in estimates
                  if line.get("unresolved_modes")]
    summary = {**last, "problem": last["problem"].split(" (statistics")[0], "n": sizes,
               "estimates": estimates, "band": None if lam is None else [lam, lam],
               "rhat": _worst(max, [line["rhat"] for line in estimates]),
               "ess": _worst(min, [line["ess"] for line in estimates]),
               "warnings": [f"at n = {line['n']}: {text}" for line in estimates for text in line["warnings"]],
               "notes": [f"the acceptance, drift, γ-elasticity, step and sampler settings shown are the largest size's "
                         f"(n = {sizes[-1]}); --json gives each size's own under 'estimates'"] + unresolved
                        + [note for note in last["notes"] if note != last.get("unresolved_modes")],
               "diverged_chains": sorted({c for line in estimates for c in line["diverged_chains"]}),
               "sampling_seconds": sum(line["sampling_seconds"] for line in estimates),
               "steps": sum(line["steps"] for line in estimates)}
    summary.pop("unresolved_modes", None)   # the largest size's alone: every size's instead, where any
    if unresolved:
        summary["unresolved_modes"] = "; ".join(unresolved)
    if any(line["llc_mean"] is None for line in estimates):
        return {**summary, "llc_mean": None, "llc_se": None, "rel_error": None, "rel_error_outside_band": None}
    nbetas = [line["config"]["nbeta"] for line in estimates]
    fit = extrapolate_llc(nbetas, [line["llc_mean"] for line in estimates], [line["llc_se"] for line in estimates])
    chains = zip(*(line["llc_per_chain"] for line in estimates))
    summary.update(llc_mean=fit.lam, llc_se=fit.standard_error,
                   llc_per_chain=[None if None in values else fit.combine(values) for values in chains],
                   extrapolation=_fit(fit))
    if lam is not None:
        summary.update(rel_error=(fit.lam - lam) / lam, rel_error_outside_band=abs(fit.lam - lam) / lam)
    if unresolved:   # a fit through sizes that see fewer modes than λ counts estimates nothing: not judged
        summary.update(band=None, rel_error_outside_band=None)
    if all(line.get("finite_n_truth") is not None for line in estimates):
        truths = extrapolate_llc(nbetas, [line["finite_n_truth"] for line in estimates],
                                 [line["finite_n_truth_se"] for line in estimates])
        summary.update(finite_n_truth=truths.lam, finite_n_truth_se=truths.standard_error,
                       finite_n_truth_method=f"{last['finite_n_truth_method']} at each n, extrapolated the same way",
                       truth_extrapolation=_fit(truths))
    return summary


def _worst(pick, values):
    known = [value for value in values if value is not None]
    return pick(known) if known else None


def _fit(fit: Extrapolation) -> dict[str, Any]:
    return {"nbetas": list(fit.nbetas), "estimates": list(fit.estimates), "standard_errors": list(fit.standard_errors),
            "lambda": fit.lam, "se": fit.standard_error, "shortfall": fit.shortfall, "chi2": fit.chi2,
            "weights": list(fit.weights)}
