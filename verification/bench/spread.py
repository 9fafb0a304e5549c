"""Is the standard error the right size on networks nobody tuned it on? ``sltlab bench --only spread``.

Two independent random draws of deep linear networks
(:func:`sltlab.verification.suite.random_dln_cases`: plain, wide hidden layers and bottlenecks),
with minibatch SGLD at the step-size rule's step, the sampler whose traces carry a slow signal
under white noise that a per-draw SE misses. Every network is one batched run of ``groups``
groups of ``chains`` chains at the same centre; each group has its own chains and minibatches,
so its λ̂ and SE are an independent estimate. If the SE is right, the scores
z = (λ̂_g − mean over groups)/SE_g spread with standard deviation 1 (after the factor
√(G/(G − 1)) for the mean taken out). The row gives the root mean square of z for the SE in use
and for the block lengths it was chosen against (:data:`BLOCK_RULES`), per network and pooled
over each draw, over every group and over the groups that pass the mixing gate; the target
applies to the SE in use, over every group. The exact λ stands beside each network's λ̂ as a
reminder, not a check: this is a test of the error bar's size, and at this run length the
chains of many of these networks are still far from the finite-n truth (the README says how
far on one of them).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from sltlab.estimators import LLCConfig
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators import diagnostics
from sltlab.estimators.llc import block_length
from sltlab.estimators.gate import mixing_concern
from sltlab.estimators.notices import EstimateWarning
from sltlab.models.progress import progress_bar
from sltlab.verification.bench.coverage import group_estimate
from sltlab.verification.suite import random_dln_cases
from sltlab.verification.suite.problems import dln_problem

ROWS, BATCH = 10_000, 100
SPREAD_TARGET = (0.8, 1.25)   # the pooled spread of z over every group; its own error over ~100 scores is about 7 %
# Draws per block of each standard error compared: the one in use (:func:`~sltlab.estimators.llc.block_length`),
# per draw, the earlier S/100 up to 10, and longer blocks.
BLOCK_RULES = {"S/50 (in use)": block_length, "per draw": lambda draws: 1,
               "S/100 up to 10": lambda draws: max(1, min(10, draws // 100)), "S/20": lambda draws: max(1, draws // 20)}
IN_USE = next(iter(BLOCK_RULES))


def spread_rows(count: int = 9, seeds: tuple[int, ...] = (0, 1), groups: int = 12, chains: int = 8,
                draws: int = 1000, progress: bool = False) -> dict:
    """For each random draw (``seeds``) of ``count`` networks: every network's z by the SE of
    each of :data:`BLOCK_RULES`, and their spread pooled over the draw with a 95 % interval.
    Groups with a dropped chain, or without an estimate and an SE, are left out."""
    config = LLCConfig(sampler="sgld", chains=groups * chains, draws=draws, batch_size=BATCH)
    draws_out = []
    for seed in seeds:
        cases = random_dln_cases(count, seed)
        rows = []
        bar = progress_bar(len(cases), f"random draw {seed}", enabled=progress, unit="network")
        for case in cases:
            widths, rank = dict(case.arguments)["widths"], dict(case.arguments)["rank"]
            problem = dln_problem(widths, rank, n=ROWS, seed=case.seed, per_sample=True)
            with warnings.catch_warnings():   # the groups are judged here, one by one
                warnings.simplefilter("ignore", EstimateWarning)
                result = estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data, config)
            rows.append(_network_row(case.id, problem.exact.lam_float, result, groups, chains))
            if bar is not None:
                bar.update()
        if bar is not None:
            bar.close()
        draws_out.append({"seed": seed, "networks": rows, **_pooled(rows)})
    return {"groups": groups, "chains": chains, "draws": draws, "rows": ROWS, "batch_size": BATCH,
            "target": list(SPREAD_TARGET), "draws_of_networks": draws_out,
            "meets_target": all(draw["by_rule"][IN_USE]["all"]["spread"] is not None
                                and SPREAD_TARGET[0] <= draw["by_rule"][IN_USE]["all"]["spread"] <= SPREAD_TARGET[1]
                                for draw in draws_out)}


def _network_row(name: str, lam: float, result, groups: int, chains: int) -> dict:
    """The z scores of one network's groups by the SE of every block rule, and which groups pass
    the mixing gate."""
    nbeta = result.config.nbeta
    gaps = nbeta * (result.trace.fields["loss"] - result.trace.fields["center_loss"])
    estimates = [group_estimate(result.trace, nbeta, group, chains) for group in range(groups)]
    kept = [g for g, e in enumerate(estimates) if e.mean is not None and e.standard_error and not e.diverged_chains]
    means = np.array([estimates[g].mean for g in kept])
    centre = float(means.mean()) if len(kept) else None
    correction = math.sqrt(len(kept) / (len(kept) - 1)) if len(kept) > 1 else float("nan")
    scores = {}
    for rule, length in BLOCK_RULES.items():
        errors = [diagnostics.mcse_mean(diagnostics.block_means(gaps[g * chains:(g + 1) * chains],
                                                                length(gaps.shape[1]))) for g in kept]
        scores[rule] = [float(correction * (m - centre) / e) for m, e in zip(means, errors)]
    return {"network": name, "llc": centre, "lambda": lam, "groups": len(kept), "z": scores,
            "passes_gate": [mixing_concern(estimates[g]) is None for g in kept]}


def _pooled(rows: list[dict]) -> dict:
    """The root mean square of every network's z, by each rule's SE, with a 95 % interval from
    the χ² of that many scores."""
    rows = [row for row in rows if row["groups"] > 1]
    passing = np.array([passes for row in rows for passes in row["passes_gate"]], dtype=bool)
    out = {}
    for rule in BLOCK_RULES:
        scores = np.array([z for row in rows for z in row["z"][rule]], dtype=float)
        out[rule] = {"all": _rms_with_interval(scores), "passing_gate": _rms_with_interval(scores[passing])}
    return {"by_rule": out, "passing_gate": int(passing.sum()), "groups": len(passing)}


def _rms_with_interval(scores: np.ndarray) -> dict:
    """√mean(z²) with a 95 % interval from the χ² of that many scores (normal approximation);
    None without scores."""
    if len(scores) == 0:
        return {"spread": None, "interval_95": None, "scores": 0}
    spread = float(np.sqrt(np.mean(np.square(scores))))
    half = 1.96 / math.sqrt(2 * len(scores))
    return {"spread": spread, "interval_95": [spread / (1 + half), spread / (1 - half)], "scores": len(scores)}


def format_spread(result: dict) -> str:
    rules = list(BLOCK_RULES)
    lines = [f"spread of z = (λ̂ − mean)/SE over {result['groups']} groups of {result['chains']} chains × "
             f"{result['draws']:,} draws per network (sgld, rule step, n = {result['rows']:,}, batches of "
             f"{result['batch_size']}); target {result['target'][0]}–{result['target'][1]}",
             "  root mean square of z by the SE of each block length; gate: groups passing the mixing gate",
             f"    {'network':<46} {'λ':>6} {'λ̂':>8} " + " ".join(f"{rule:>14}" for rule in rules)
             + "   gate"]
    for draw in result["draws_of_networks"]:
        lines.append(f"  draw {draw['seed']}:")
        for row in draw["networks"]:
            if row["groups"] < 2:
                lines.append(f"    {row['network']:<46} {row['lambda']:6.1f} no two groups with an estimate and an SE")
                continue
            spreads = " ".join(f"{math.sqrt(np.mean(np.square(row['z'][rule]))):14.2f}" for rule in rules)
            lines.append(f"    {row['network']:<46} {row['lambda']:6.1f} {row['llc']:8.2f} {spreads}   "
                         f"{sum(row['passes_gate'])}/{row['groups']}")
        for subset, label in (("all", "all groups"), ("passing_gate", "groups passing the gate")):
            pooled = " ".join(_spread_text(draw["by_rule"][rule][subset]["spread"]) for rule in rules)
            lines.append(f"    {label:<46} {'':15} {pooled}   {draw['by_rule'][rules[0]][subset]['scores']}")
    return "\n".join(lines)


def _spread_text(spread: float | None) -> str:
    return f"{'—':>14}" if spread is None else f"{spread:14.2f}"
