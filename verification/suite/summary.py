"""An LLC estimate of a :class:`~sltlab.verification.suite.problems.Problem` beside its exact λ,
as a JSON-ready summary that says everything needed to judge the number: the error against
the band multiplicity explains, diagnostics, the resolved settings, where it localised and
how L_n(w*) was obtained."""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from typing import Any

from sltlab import theory
from sltlab.estimators.calibrate import CALIBRATED
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.result import LLCResult
from sltlab.estimators.ladder import estimate_over_temperatures
from sltlab.models.deep_linear_losses import FullDataLoss
from sltlab.models.restricted import LayerRestrictedLoss
from sltlab.models.tanh_network import TanhNetwork
from sltlab.verification.reference.dln_gibbs import reference_llc_and_elasticity
from sltlab.verification.suite.gates import band_floor, outside_band
from sltlab.verification.mode_resolution import ABSENT_SDS, LEARNED_SDS
from sltlab.verification.suite.problems import Problem

REFERENCE_CHAINS, REFERENCE_SWEEPS = 8, 2000   # the Gibbs truth's SE is then a small part of the gate's


def run_estimate(problem: Problem, config: LLCConfig, *, temperatures: int | None = None,
                 progress: bool = False, reference: bool = False, calibrated: bool = False) -> dict[str, Any]:
    """One estimate (or a ladder of them with the multiplicity fit) as a JSON-ready dict;
    ``reference`` adds the blocked-Gibbs truth for linear networks (:func:`summarize`);
    ``calibrated``: ``config``'s step is a sweep's, not one the user gave."""
    result = estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data, config,
                                    n=problem.n, progress=progress, step_rule=CALIBRATED if calibrated else "given")
    summary = summarize(problem, result, reference=reference)
    if temperatures:
        fit = summary["multiplicity_fit"] = _multiplicity(problem, replace(config, nbeta=result.config.nbeta),
                                                          temperatures, progress)
        summary["warnings"] += [f"rung nβ = {rung['nbeta']:.4g}: {warning}" for rung in fit["rungs"]
                                for warning in rung["warnings"]]
        summary["warnings"] += [fit_concern] if (fit_concern := _fit_against_exact(fit, problem)) else []
    return summary


def _fit_against_exact(fit: dict[str, Any], problem: Problem) -> str | None:
    """Where λ and m are exact, a fit more than two of its SEs from either, in words."""
    if problem.exact is None or fit.get("fit", True) is None:
        return None
    pairs = (("λ", fit["lambda"], fit["lambda_se"], problem.exact.lam_float),
             ("m", fit["multiplicity"], fit["multiplicity_se"], problem.exact.multiplicity))
    far = [f"{name} = {fitted:.3g} ± {se:.2g} is {abs(fitted - exact) / se:.1f} SE from the exact {exact:g}"
           for name, fitted, se, exact in pairs if se > 0 and abs(fitted - exact) > 2 * se]
    return None if not far else (f"the ladder's fit misses the exact values: {'; '.join(far)} (its rungs do not yet "
                                 "follow λ − (m − 1)/log nβ: more draws per rung, or more rungs)")


def summarize(problem: Problem, result: LLCResult, *, reference: bool = False) -> dict[str, Any]:
    """``result`` as a JSON-ready dict. The finite-n truth is added where it is exact: by
    quadrature for potentials in one or two variables (always, it is cheap), and, when
    ``reference``, by the blocked-Gibbs sampler for linear networks on sufficient statistics
    (at the estimate's own centre, nβ and γ; seconds to minutes)."""
    estimate, config = result.estimate, result.config
    exact = problem.exact
    lam = None if exact is None else exact.lam_float
    unresolved = unresolved_modes(problem, config.nbeta)
    banded = lam is not None and unresolved is None   # no band where the teacher has a mode nβ does not resolve
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
        "rel_error_outside_band": None if not banded or estimate.mean is None else outside_band(
            estimate.mean, lam, exact.multiplicity, config.nbeta),
        "band": [band_floor(lam, exact.multiplicity, config.nbeta), lam] if banded else None,
        "rhat": estimate.rhat,
        "ess": estimate.ess,
        "drift_z": estimate.drift,
        "sides_z": estimate.sides,
        "diverged_chains": estimate.diverged_chains,
        "divergence": {str(chain): why for chain, why in estimate.divergence.items()},
        "warnings": list(result.warnings),
        "gamma_elasticity": None if result.elasticity is None else result.elasticity._asdict(),
        "notes": list(result.notes) + ([unresolved] if unresolved else []),
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
    if unresolved is not None:
        summary["unresolved_modes"] = unresolved
    from sltlab.verification.reference.finite_truth import one_unit_tanh_expectation, resolves, tempered_expectation

    if (problem.expression is not None and problem.true_parameter.numel() <= 2 and config.localization > 0
            and resolves(config.nbeta, problem.expression, problem.loss.variables)):
        summary["finite_n_truth"] = tempered_expectation(
            problem.expression, config.nbeta, config.localization, variables=problem.loss.variables)
        summary["finite_n_truth_method"] = "quadrature"
    elif (isinstance(problem.loss, TanhNetwork) and problem.loss.hidden == 1 and config.localization > 0
          and resolves(config.nbeta) and not bool(result.localization.center.any())):
        x, y = (t.cpu().double().numpy() for t in problem.data)
        summary["finite_n_truth"] = one_unit_tanh_expectation(x, y, config.nbeta, config.localization)
        summary["finite_n_truth_method"] = "quadrature over b, the Gaussian integral over a in closed form"
    elif isinstance(problem.loss, LayerRestrictedLoss) and result.localization.kind == "empirical_minimum":
        curvature = config.nbeta * problem.loss.hessian_eigenvalues()
        summary["finite_n_truth"] = float((0.5 * curvature / (curvature + config.localization)).sum())
        summary["finite_n_truth_se"] = 0.0
        summary["finite_n_truth_method"] = "closed form ½·Σ nβh/(nβh + γ) over the Hessian's eigenvalues h"
    elif reference and isinstance(problem.loss, FullDataLoss) and config.localization > 0:
        truth, elasticity = reference_llc_and_elasticity(
            problem.loss, result.localization.center, config.nbeta, config.localization, chains=REFERENCE_CHAINS,
            sweeps=REFERENCE_SWEEPS, burnin=REFERENCE_SWEEPS // 4)
        summary.update(finite_n_truth=truth.mean, finite_n_truth_se=truth.standard_error,
                       finite_n_truth_gamma_elasticity=None if elasticity is None else elasticity._asdict(),
                       finite_n_truth_method=f"blocked Gibbs, {REFERENCE_CHAINS} chains × {REFERENCE_SWEEPS} sweeps",
                       finite_n_truth_mixing={"rhat": truth.rhat, "ess": truth.ess,
                                              "dropped_chains": len(truth.diverged_chains)})
    return summary


def unresolved_modes(problem: Problem, nbeta: float) -> str | None:
    """Why the band [λ − (m − 1)/log nβ, λ] is not applied, where a deep linear teacher has a mode of
    singular value s fewer than ``LEARNED_SDS`` posterior standard deviations from zero (s·√nβ;
    :mod:`sltlab.verification.mode_resolution`): Aoyagi's λ is the limit nβ → ∞ at a fixed teacher
    (Aoyagi 2024, Thm 1), and the band its approach at finite nβ with every mode learned (Watanabe
    2009, Thm. 6.1). The data do not see a mode within ``ABSENT_SDS``, so λ̂ reads towards the λ of
    the teacher truncated to the modes above it; modes in between are partly seen, and λ̂ is expected
    between the λ of the truncations without and with them (at nβ of a few units the finite-n LLC
    reads below both: n = 2 on [3,2,3] read 1.0 against 5/2 and 7/2). None where every mode is
    learned."""
    values = problem.teacher_singular_values or ()
    root = math.sqrt(nbeta)
    short = [s for s in values if s * root < LEARNED_SDS]
    if not short:
        return None
    rank, widths = len(values), problem.exact.parameters.get("widths")
    learned = rank - len(short)
    seen = learned + sum(s * root > ABSENT_SDS for s in short)

    def truncation(k: int) -> str:
        return f"the rank-{k} truncation's λ" + ("" if widths is None else f" = {theory.deep_linear(widths, k).lam}")
    reads = (f"is expected to read towards {truncation(learned)}" if seen == learned   # an expectation: at
             else f"is expected between {truncation(learned)} and {truncation(seen)}")   # tiny n it reads below
    several = len(short) > 1
    listed = ", ".join(f"{s:.3g} ({s * root:.3g})" for s in short)
    return (f"the teacher's singular value{'s' if several else ''} {listed} stand{'' if several else 's'} fewer than "
            f"{LEARNED_SDS:g} posterior SDs from zero (s·√nβ in brackets; a mode counts as learned from "
            f"{LEARNED_SDS:g} and unseen up to {ABSENT_SDS:g}): at this nβ λ̂ {reads}, and the band of rank {rank}, "
            "which assumes every mode learned, is not applied")


def _multiplicity(problem: Problem, config: LLCConfig, count: int, progress: bool) -> dict[str, Any]:
    """The temperature ladder's estimates and fit, JSON-ready."""
    ladder = estimate_over_temperatures(problem.loss, problem.true_parameter, problem.data, config, count=count,
                                        n=problem.n, progress=progress)
    rungs = [list(rung) for rung in ladder.rungs]
    described = {"ladder": rungs, "sampled": ladder.how, "rungs": list(ladder.diagnostics)}
    if ladder.fit is None:
        return {**described, "fit": None, "reason": ladder.reason}
    fit = ladder.fit
    return {**described, "lambda": fit.lam, "lambda_se": fit.lam_standard_error,
            "multiplicity": fit.multiplicity, "multiplicity_se": fit.multiplicity_standard_error,
            "multiplicity_rounded": fit.multiplicity_rounded, "multiplicity_unresolved": fit.unresolved}
