"""An LLC estimate of a :class:`~sltlab.verification.suite.problems.Problem` beside its exact λ,
as a JSON-ready summary that says everything needed to judge the number: the error against
the band multiplicity explains, diagnostics, the resolved settings, where it localised and
how L_n(w*) was obtained."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.estimate import LLCResult, estimate_llc
from sltlab.estimators.ladder import estimate_over_temperatures
from sltlab.verification.suite.gates import multiplicity_shortfall, outside_band
from sltlab.verification.suite.problems import Problem


def run_estimate(problem: Problem, config: LLCConfig, *, temperatures: int | None = None,
                 progress: bool = False) -> dict[str, Any]:
    """One estimate (or a ladder of them with the multiplicity fit) as a JSON-ready dict."""
    result = estimate_llc(problem.loss, problem.true_parameter, problem.data, config,
                          n=problem.n, progress=progress)
    summary = summarize(problem, result)
    if temperatures:
        summary["multiplicity_fit"] = _multiplicity(problem, replace(config, nbeta=result.config.nbeta),
                                                    temperatures, progress)
    return summary


def summarize(problem: Problem, result: LLCResult) -> dict[str, Any]:
    estimate, config = result.estimate, result.config
    exact = problem.exact
    lam = None if exact is None else exact.lam_float
    summary = {
        "problem": problem.name,
        "llc_mean": estimate.mean,
        "llc_se": estimate.standard_error,
        "llc_per_chain": estimate.per_chain,
        "lambda_exact": None if exact is None else str(exact.lam),
        "lambda_exact_float": lam,
        "multiplicity_exact": None if exact is None else exact.multiplicity,
        "exact_unavailable": problem.exact_unavailable,
        "rel_error": None if lam is None or estimate.mean is None else (estimate.mean - lam) / lam,
        "rel_error_outside_band": None if lam is None or estimate.mean is None else outside_band(
            estimate.mean, lam, exact.multiplicity, config.nbeta),
        "band": None if lam is None else [lam - multiplicity_shortfall(exact.multiplicity, config.nbeta), lam],
        "rhat": estimate.rhat,
        "ess": estimate.ess,
        "diverged_chains": estimate.diverged_chains,
        "divergence": {str(chain): why for chain, why in estimate.divergence.items()},
        "warnings": list(result.warnings),
        "notes": list(result.notes),
        "acceptance": result.acceptance,
        "sampling_seconds": result.trace.seconds,
        "steps": result.trace.steps,
        "n": problem.n,
        "dim": int(problem.true_parameter.numel()),
        "config": asdict(config),
        "step_size_rule": result.step_size_rule,
        "loss_reference": result.loss_reference,
        "localization": {"at": result.localization.kind, "iterations": result.localization.iterations,
                         "converged": result.localization.converged, "distance": result.localization.distance,
                         "gradient_norm": result.localization.gradient_norm,
                         "loss_drop": result.localization.loss_drop,
                         "center_loss": result.localization.center_loss},
    }
    if result.fluctuation is not None:
        summary["singular_fluctuation"] = {"mean": result.fluctuation.mean,
                                           "se": result.fluctuation.standard_error,
                                           "per_chain": result.fluctuation.per_chain}
    if problem.expression is not None and problem.true_parameter.numel() <= 2 and config.localization > 0:
        from sltlab.verification.reference.finite_truth import tempered_expectation

        summary["finite_n_truth"] = tempered_expectation(
            problem.expression, config.nbeta, config.localization, variables=problem.loss.variables)
    return summary


def _multiplicity(problem: Problem, config: LLCConfig, count: int, progress: bool) -> dict[str, Any]:
    """The temperature ladder's estimates and fit, JSON-ready."""
    ladder = estimate_over_temperatures(problem.loss, problem.true_parameter, problem.data, config, count=count,
                                        n=problem.n, progress=progress)
    rungs = [list(rung) for rung in ladder.rungs]
    if ladder.fit is None:
        return {"ladder": rungs, "fit": None, "reason": ladder.reason}
    fit = ladder.fit
    return {"ladder": rungs, "lambda": fit.lam, "lambda_se": fit.lam_standard_error,
            "multiplicity": fit.multiplicity, "multiplicity_se": fit.multiplicity_standard_error,
            "multiplicity_rounded": fit.multiplicity_rounded}
