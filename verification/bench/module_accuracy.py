"""Does the one call for any model return the right number on networks nobody tuned it on?
``sltlab bench --only module``.

Two independent random draws of deep linear networks
(:func:`sltlab.verification.suite.random_dln_cases`: plain, wide hidden layers and bottlenecks),
each written as an ``nn.Sequential`` of bias-free ``Linear`` layers at its balanced true parameter
and estimated through :func:`sltlab.estimators.estimate_llc` — with its defaults
(:data:`~sltlab.estimators.module.MODULE_DEFAULTS`) and, beside them, ``LLCConfig()``'s SGLD. The
truth for each estimate is the finite-n LLC at that estimate's own centre (the empirical minimum
L-BFGS reached), nβ and γ, from the blocked-Gibbs sampler
(:func:`~sltlab.verification.reference.dln_gibbs.reference_llc`), whose sampling shares no code
with the estimators' (only the mean and SE of its gaps are taken the same way). An estimate
misses when |λ̂ − t| > 3·√(SE² + SE_t²) + ``BIAS_BUDGET``·t; a miss that passes the mixing gate
and raises no estimate warning (divergence, localisation, step size) is silent, and the target is
that the defaults have none while passing the gate on at least half of each draw's estimates
(failing it everywhere would otherwise meet it). Each row also gives z = (λ̂ − t)/√(SE² + SE_t²), and each draw how many
estimates that pass the gate lie within two combined SE of their truths, with the root mean square
of their z: a standard error that accounts for the estimate's whole error puts about 95 % within two
and reads a root mean square near 1, so these show how far the gate's λ̂ ± SE can be taken at its word.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict
from functools import partial
from typing import Callable

import torch

from sltlab.estimators import LLCConfig, estimate_llc
from sltlab.estimators.gate import mixing_concern
from sltlab.estimators.module import MODULE_DEFAULTS
from sltlab.estimators.notices import EstimateWarning
from sltlab.models.deep_linear_losses import FullDataLoss
from sltlab.models.progress import progress_bar
from sltlab.verification.reference.dln_gibbs import reference_llc
from sltlab.verification.suite import random_dln_cases
from sltlab.verification.suite.problems import dln_problem

ROWS = 10_000
BIAS_BUDGET = 0.02   # of the truth: chains started at w* that have not quite spread out
# The settings compared, by name: the one call's defaults, and the bare LLCConfig() it replaced.
CONFIGS = {"defaults (mala)": {}, "LLCConfig() (sgld)": {"config": LLCConfig()}}


def module_accuracy_rows(count: int = 3, seeds: tuple[int, ...] = (0, 1), *, rows_of_data: int = ROWS,
                         shorter: dict | None = None, gibbs: dict | None = None, progress: bool = False) -> dict:
    """For each random draw (``seeds``) of ``count`` networks, every setting of :data:`CONFIGS`
    through ``estimate_llc`` against the Gibbs truth at its centre; and per draw and setting,
    how many passed the gate, missed, and missed silently. ``shorter`` overrides settings of
    every estimate and ``gibbs`` the truth's options (a quick check of the bench itself)."""
    def judge(problem, network: str, settings: dict) -> list[tuple[str, dict]]:
        module = problem.loss.as_module(problem.true_parameter, torch.float32)
        return [(network, _judged(problem, module, {**settings, **(shorter or {})}, gibbs or {}))]

    draws = judged_draws(count, seeds, CONFIGS, judge, rows_of_data=rows_of_data, unit="estimate", progress=progress)
    return {"rows_of_data": rows_of_data, "bias_budget": BIAS_BUDGET, "defaults": asdict(MODULE_DEFAULTS),
            "shorter": shorter or {}, "draws": draws, "meets_target": defaults_meet_target(draws, CONFIGS)}


def judged_draws(count: int, seeds: tuple[int, ...], configs: dict, judge: Callable, *, rows_of_data: int, unit: str,
                 progress: bool) -> list[dict]:
    """:func:`judged_networks` over random draws (``seeds``) of ``count`` deep linear networks
    (:func:`~sltlab.verification.suite.random_dln_cases`) on ``rows_of_data`` rows, each given to
    ``judge`` as its problem."""
    def networks(seed: int) -> list[tuple[str, Callable]]:
        return [(case.id, partial(dln_problem, **dict(case.arguments), n=rows_of_data, seed=case.seed,
                                  per_sample=True))
                for case in random_dln_cases(count, seed)]

    return judged_networks(seeds, configs, judge, networks, unit=unit, progress=progress)


def judged_networks(seeds: tuple[int, ...], configs: dict, judge: Callable, networks: Callable, *, unit: str,
                    progress: bool) -> list[dict]:
    """Per seed of ``seeds``, the networks ``networks(seed)`` gives as (name, build), each built
    once; the rows ``judge(built, name, settings)`` gives as (label, verdict) for every setting of
    ``configs``, each labelled with its setting; and per setting the :func:`draw_summary`."""
    draws = []
    for seed in seeds:
        drawn = networks(seed)
        bar = progress_bar(len(drawn) * len(configs), f"random draw {seed}", enabled=progress, unit=unit)
        rows = []
        for name, build in drawn:
            built = build()
            for setting, settings in configs.items():
                rows += [{"network": label, "setting": setting, **verdict}
                         for label, verdict in judge(built, name, settings)]
                if bar is not None:
                    bar.update()
        if bar is not None:
            bar.close()
        summary = {setting: draw_summary([row for row in rows if row["setting"] == setting]) for setting in configs}
        draws.append({"seed": seed, "rows": rows, "summary": summary})
    return draws


MIN_PASSING_SHARE = 0.5   # so that failing the gate everywhere cannot meet the target by missing nothing silently


def defaults_meet_target(draws: list[dict], configs: dict) -> bool:
    """The target: the first setting of ``configs`` (the defaults) misses silently in no draw, and
    passes the gate on at least ``MIN_PASSING_SHARE`` of each draw's estimates."""
    defaults = next(iter(configs))
    return bool(draws) and all(draw["summary"][defaults]["silent_misses"] == 0 and draw["summary"][defaults][
        "passing_gate"] >= MIN_PASSING_SHARE * draw["summary"][defaults]["networks"] for draw in draws)


def _judged(problem, module, settings: dict, gibbs: dict) -> dict:
    """One estimate through the one call, its Gibbs truth and the verdict."""
    result, warned, seconds = warned_estimate(module, problem.data, settings)
    return judged_against_gibbs(problem, result, warned, seconds, gibbs)


def warned_estimate(module, data, settings: dict) -> tuple:
    """``estimate_llc(module, data, **settings)`` with the names of the estimate warnings it
    raised, recorded to be judged against the truth and the gate, and its seconds."""
    clock = time.perf_counter()
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always", EstimateWarning)
        result = estimate_llc(module, data, **settings)
    return result, sorted({notice.category.__name__ for notice in estimate_warnings(raised)}), \
        time.perf_counter() - clock


def estimate_warnings(raised: list) -> list:
    """The estimate warnings among warnings recorded with ``catch_warnings(record=True)``, to be
    counted; any other warning is raised again, to reach the caller."""
    for notice in raised:
        if not issubclass(notice.category, EstimateWarning):
            warnings.warn_explicit(notice.message, notice.category, notice.filename, notice.lineno)
    return [notice for notice in raised if issubclass(notice.category, EstimateWarning)]


def judged_against_gibbs(problem, result, warned: list[str], seconds: float, gibbs: dict) -> dict:
    """An estimate of ``problem``'s network beside the blocked-Gibbs truth at its own centre, nβ
    and γ, and the verdict: its error and z, whether it passes the gate and whether it misses."""
    truth = reference_llc(FullDataLoss(problem.loss, *problem.data), result.localization.center.double(),
                          result.nbeta, result.config.localization, **gibbs)
    return judged_against(result, truth.mean, truth.standard_error, float(problem.exact.lam), warned, seconds)


def judged_against(result, truth: float, truth_se: float, lam: float, warned: list[str], seconds: float) -> dict:
    """An estimate beside its finite-n ``truth`` (± ``truth_se``) and exact ``lam``, and the
    verdict: its error (relative, where the truth is not 0) and z, whether it passes the gate and
    whether it misses, |λ̂ − t| > 3·√(SE² + SE_t²) + ``BIAS_BUDGET``·|t|."""
    passes = result.mean is not None and mixing_concern(result.estimate) is None
    row = {"lambda": lam, "llc": result.mean, "se": result.standard_error, "rhat": result.rhat,
           "ess": result.ess, "drift": result.estimate.drift, "sides": result.estimate.sides,
           "draws": result.config.draws, "truth": truth, "truth_se": truth_se, "passes_gate": passes,
           "warned": warned, "seconds": seconds, "sampler": result.config.sampler}
    if result.mean is None or result.standard_error is None:
        return {**row, "error": None, "z": None, "misses": True}
    spread = math.hypot(result.standard_error, truth_se)
    error = result.mean - truth
    return {**row, "error": error / truth if truth else None, "z": error / spread if spread > 0 else None,
            "misses": abs(error) > 3 * spread + BIAS_BUDGET * abs(truth)}


def draw_summary(rows: list[dict]) -> dict:
    """Per setting of one draw: gate passes, misses (silent ones apart), the largest errors, and
    among the passes with a z, how many lie within two combined SE and the root mean square z."""
    errors = [abs(row["error"]) for row in rows if row["error"] is not None]
    passing = [abs(row["error"]) for row in rows if row["passes_gate"] and row["error"] is not None]
    z_passing = [row["z"] for row in rows if row["passes_gate"] and row["z"] is not None]
    return {"networks": len(rows), "passing_gate": sum(row["passes_gate"] for row in rows),
            "misses": sum(row["misses"] for row in rows),
            "silent_misses": sum(row["misses"] and row["passes_gate"] and not row["warned"] for row in rows),
            "largest_error": max(errors, default=None), "largest_error_passing": max(passing, default=None),
            "passing_with_z": len(z_passing), "within_two_se_passing": sum(abs(z) <= 2 for z in z_passing),
            "rms_z_passing": math.sqrt(sum(z * z for z in z_passing) / len(z_passing)) if z_passing else None,
            "seconds": sum(row["seconds"] for row in rows)}


def format_module_accuracy(result: dict) -> str:
    return format_judged(result, f"estimate_llc on random deep linear networks as nn.Sequential (n = "
                                 f"{result['rows_of_data']:,})")


def format_judged(result: dict, what: str, against: str = "blocked-Gibbs truths at each estimate's centre") -> str:
    """The table of a result of judged draws (:func:`module_accuracy_rows` and alike) under ``what``."""
    width = max([60] + [len(row["network"]) for draw in result["draws"] for row in draw["rows"]])
    lines = [f"{what}, against {against}; a miss is |λ̂ − t| > "
             f"3·√(SE² + SE_t²) + {result['bias_budget']:.0%} of t; target: no silent miss (a miss that passes the "
             f"gate and warns of nothing) by the defaults, which pass the gate on at least {MIN_PASSING_SHARE:.0%} of "
             "each draw: " + ("ok" if result["meets_target"] else "MISSED"),
             f"    {'network':<{width}} {'setting':<20} {'λ':>6} {'truth':>7} {'λ̂ ± SE':>16} {'error':>7} "
             f"{'R-hat':>6} {'ESS':>6} {'gate':>5} {'z':>6} {'s':>5}"]
    for draw in result["draws"]:
        lines.append(f"  draw {draw['seed']}:")
        for row in draw["rows"]:
            llc = "—" if row["llc"] is None else f"{row['llc']:.3f} ± {row['se'] or 0:.3f}"
            error = "—" if row["error"] is None else f"{row['error']:+.1%}"
            lines.append(f"    {row['network']:<{width}} {row['setting']:<20} {row['lambda']:6.1f} {row['truth']:7.3f} "
                         f"{llc:>16} {error:>7} {row['rhat'] or math.nan:6.3f} {row['ess'] or 0:6.0f} "
                         f"{'pass' if row['passes_gate'] else 'FAIL':>5} {_signed(row['z']):>6} {row['seconds']:5.0f}"
                         + ("  MISS" if row["misses"] else "") + "".join(f"  {name}" for name in row["warned"]))
        for name, summary in draw["summary"].items():
            largest, passing = (_percent(summary[key]) for key in ("largest_error", "largest_error_passing"))
            lines.append(f"    {name}: gate passed {summary['passing_gate']}/{summary['networks']}, misses "
                         f"{summary['misses']} (silent {summary['silent_misses']}), largest error {largest}, among "
                         f"passes {passing}, within 2 SE {summary['within_two_se_passing']}/"
                         f"{summary['passing_with_z']} (rms z {_signed(summary['rms_z_passing'], '')}); "
                         f"{summary['seconds']:.0f} s")
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _signed(value: float | None, sign: str = "+") -> str:
    return "—" if value is None else f"{value:{sign}.1f}"
