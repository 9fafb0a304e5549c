"""LLC estimates beside the exact λ: wires models, estimators and theory together.

A :class:`Problem` is a model's batched loss, its true parameter, its data and the exact
learning coefficient; :func:`run_estimate` turns one into a JSON-ready result that says
everything needed to judge the number (error against the band multiplicity explains,
diagnostics, the resolved settings, where it localised and how L_n(w*) was obtained).
"""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from typing import Any, NamedTuple, Sequence

import torch

import theory
from estimators.estimate import LLCConfig, LLCResult, estimate_llc
from estimators.multiplicity import fit_multiplicity, temperature_ladder
from estimators.thermodynamics import two_temperature_lambda, wbic_lambda
from models.deep_linear import (DeepLinearNetwork, FullDataLoss, balanced_factorization, regression_data,
                                teacher_matrix)
from models.potential import Potential
from theory import LearningCoefficient


class ModelDefaults(NamedTuple):
    """Default settings for a family of models: the same for every case, never tuned per case."""

    config: LLCConfig
    n: int


# Deep linear networks: see the closing note of the estimators issue for the study behind these.
DLN_DEFAULTS = ModelDefaults(LLCConfig(sampler="sgld", chains=8, draws=16_000, burnin=40_000, thin=5,
                                       localization=3.0), n=10_000)
# Potentials have no data: full-batch MALA is exact, its step tuned to acceptance 0.8.
# n only sets nβ = n/log n.
POTENTIAL_DEFAULTS = ModelDefaults(LLCConfig(sampler="mala", chains=64, draws=5000, localization=1.0,
                                             dtype="float64"), n=10_000)


class Problem(NamedTuple):
    name: str
    loss: Any
    true_parameter: torch.Tensor
    data: tuple[torch.Tensor, ...]
    n: int
    exact: LearningCoefficient | None
    exact_unavailable: str | None     # why there is no exact value (a Newton refusal)
    expression: str | None = None     # the potential, for the finite-n truth


def dln_problem(widths: Sequence[int], rank: int, *, n: int, seed: int,
                singular_values: Sequence[float] | None = None, per_sample: bool = False) -> Problem:
    """Teacher of the given rank, Gaussian data, and a balanced (deepest) true parameter.

    By default the loss is L_n from the data's sufficient statistics (exact full-batch
    gradients at a cost independent of n); ``per_sample`` keeps the n rows instead, for
    minibatches or the singular fluctuation, which needs every sample's likelihood.
    """
    exact = theory.deep_linear(list(widths), rank)   # validates widths and rank first
    generator = torch.Generator().manual_seed(seed)
    network = DeepLinearNetwork(widths)
    target = teacher_matrix(widths[0], widths[-1], rank, singular_values, generator=generator)
    true_parameter = balanced_factorization(network, target, rank, generator=generator)
    x, y = regression_data(target, n, generator=generator)
    name = f"deep linear {list(widths)}, rank {rank}"
    if per_sample:
        return Problem(name, network, true_parameter, (x, y), n, exact, None)
    return Problem(name, FullDataLoss(network, x, y), true_parameter, (), n, exact, None)


def potential_problem(expression: str, *, n: int, variables: Sequence[str] | None = None) -> Problem:
    """K(w) as a population loss at w* = 0; exact λ from the Newton polyhedron when valid."""
    potential = Potential(expression, variables)
    try:
        exact, refusal = theory.newton(expression, variables=[v.name for v in potential.variables]), None
    except theory.DegenerateError as error:
        exact, refusal = None, " ".join(str(error).split())
    zero = torch.zeros(potential.dim, dtype=torch.float64)
    return Problem(f"potential K = {expression}", potential, zero, (), n, exact, refusal, expression)


def multiplicity_shortfall(multiplicity: int, nbeta: float) -> float:
    """(m − 1)/log nβ: how far below λ the finite-n LLC sits because of multiplicity (THEORY.md §4)."""
    return (multiplicity - 1) / math.log(nbeta)


def outside_band(estimate: float, lam: float, multiplicity: int, nbeta: float) -> float:
    """Distance from λ̂ to [λ − (m − 1)/log nβ, λ] relative to λ (0 inside the band)."""
    low = lam - multiplicity_shortfall(multiplicity, nbeta)
    return max(low - estimate, estimate - lam, 0.0) / lam


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
        "acceptance": result.acceptance,
        "sampling_seconds": result.trace.seconds,
        "steps": result.trace.steps,
        "n": problem.n,
        "dim": int(problem.true_parameter.numel()),
        "config": asdict(config),
        "step_size_rule": result.step_size_rule,
        "loss_reference": result.loss_reference,
        "localization": {"at": result.localization.kind, "iterations": result.localization.iterations,
                         "gradient_norm": result.localization.gradient_norm,
                         "loss_drop": result.localization.loss_drop,
                         "center_loss": result.localization.center_loss},
    }
    if estimate.mean is not None and problem.n > 1 and math.isclose(config.nbeta, problem.n / math.log(problem.n)):
        # At β* = 1/log n: WBIC = n·E[L_n] = n·L_n(w*) + n·λ̂/nβ (Watanabe 2013), here under the
        # localising prior N(w*, 1/γ), and the global λ̂ = (WBIC − n·L_n(ŵ))/log n equals λ̂.
        wbic, _ = wbic_lambda(problem.n, result.localization.center_loss + estimate.mean / config.nbeta,
                              result.localization.center_loss)
        summary["wbic"] = wbic
    if result.fluctuation is not None:
        summary["singular_fluctuation"] = {"mean": result.fluctuation.mean,
                                           "se": result.fluctuation.standard_error,
                                           "per_chain": result.fluctuation.per_chain}
    if problem.expression is not None and problem.true_parameter.numel() <= 2 and config.localization > 0:
        from verification.finite_truth import tempered_expectation

        summary["finite_n_truth"] = tempered_expectation(
            problem.expression, config.nbeta, config.localization,
            variables=[v.name for v in problem.loss.variables])
    return summary


def _multiplicity(problem: Problem, config: LLCConfig, count: int, progress: bool) -> dict[str, Any]:
    """Estimates over a ladder of nβ around the resolved one, fitted as λ − (m − 1)/log nβ."""
    ladder = temperature_ladder(config.nbeta, count)
    rows = []
    for nbeta in ladder:
        # A step the user gave is rescaled as 1/nβ; otherwise each temperature resolves its own.
        step_size = None if config.step_size is None else config.step_size * config.nbeta / nbeta
        one = estimate_llc(problem.loss, problem.true_parameter, problem.data,
                           replace(config, nbeta=nbeta, step_size=step_size), n=problem.n, progress=progress)
        rows.append((nbeta, one.estimate.mean, one.estimate.standard_error))
    if any(mean is None or not se for _, mean, se in rows):
        return {"ladder": [list(row) for row in rows], "fit": None,
                "reason": "an estimate on the ladder diverged or has no standard error"}
    fit = fit_multiplicity(*zip(*rows))
    # Two temperatures (Watanabe 2013, Cor. 3) from the ends of the ladder: E^β[n·L_n] − n·L_n(w*)
    # = n·λ̂(β)/(nβ) = λ̂(β)/β.
    (t_low, low, _), (t_high, high, _) = rows[0], rows[-1]
    beta_low, beta_high = t_low / problem.n, t_high / problem.n
    two_temperature = two_temperature_lambda(low / beta_low, beta_low, high / beta_high, beta_high)
    return {"ladder": [list(row) for row in rows], "lambda": fit.lam, "lambda_se": fit.lam_standard_error,
            "multiplicity": fit.multiplicity, "multiplicity_se": fit.multiplicity_standard_error,
            "multiplicity_rounded": fit.multiplicity_rounded, "two_temperature_lambda": two_temperature}
