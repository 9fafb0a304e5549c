"""Does the one call's weight-restricted LLC return the right number on networks nobody tuned
it on? ``sltlab bench --only restricted-accuracy``.

The networks of the module bench's random draws (:mod:`sltlab.verification.bench.module_accuracy`),
each as an ``nn.Sequential`` at its balanced true parameter, restricted to each weight layer in
turn (``restrict_to="{l}.weight"``) through :func:`sltlab.estimators.estimate_llc`, with its
defaults and with ``LLCConfig()``'s SGLD. With the other layers frozen the loss is quadratic in the
sampled layer, so the localised posterior is Gaussian and the finite-n LLC is ½·Σ nβh/(nβh + γ) over
the eigenvalues h of its constant Hessian
(:meth:`sltlab.models.restricted.LayerRestrictedLoss.hessian_eigenvalues`), exactly, at each
estimate's own nβ and γ: a truth without sampling error, next to λ_l = rank(A_l)·rank(B_l)/2
(:func:`sltlab.theory.restricted_deep_linear_balanced`; 0 where a frozen product vanishes, as at
every layer of a rank-0 network). Each estimate is judged as the module bench judges one: a miss
is |λ̂ − t| > 3·SE + ``BIAS_BUDGET``·t, silent when it passes the mixing gate and raises no
estimate warning, and the target is that the defaults have none.
"""

from __future__ import annotations

from dataclasses import asdict

import torch

from sltlab.estimators.module import MODULE_DEFAULTS
from sltlab.models.deep_linear_losses import FullDataLoss
from sltlab.models.restricted import LayerRestrictedLoss
from sltlab.theory.restricted import restricted_deep_linear_balanced
from sltlab.verification.bench.module_accuracy import (BIAS_BUDGET, CONFIGS, ROWS, format_judged, judged_against,
                                                        judged_draws, defaults_meet_target, warned_estimate)


def restricted_accuracy_rows(count: int = 3, seeds: tuple[int, ...] = (0, 1), *, rows_of_data: int = ROWS,
                             shorter: dict | None = None, progress: bool = False) -> dict:
    """For each random draw (``seeds``) of ``count`` networks, every layer restricted under every
    setting of the module bench's ``CONFIGS`` against its closed-form truth; per draw and setting,
    how many passed the gate, missed, and missed silently. ``shorter`` overrides settings of every
    estimate (a quick check of the bench itself)."""
    def judge(problem, network: str, settings: dict) -> list[tuple[str, dict]]:
        module = problem.loss.as_module(problem.true_parameter, torch.float32)
        return [(f"layer {layer} {network}", _judged(problem, module, layer, {**settings, **(shorter or {})}))
                for layer in range(1, len(problem.loss.widths))]

    draws = judged_draws(count, seeds, CONFIGS, judge, rows_of_data=rows_of_data, unit="network", progress=progress)
    return {"rows_of_data": rows_of_data, "bias_budget": BIAS_BUDGET, "defaults": asdict(MODULE_DEFAULTS),
            "shorter": shorter or {}, "draws": draws, "meets_target": defaults_meet_target(draws, CONFIGS)}


def closed_form_truth(problem, layer: int, nbeta: float, localization: float) -> float:
    """½·Σ nβh/(nβh + γ) over the Hessian's eigenvalues h of the loss in layer ``layer`` (1 = next
    to the input), the others frozen at the true parameter: nβ·E[L_n(w) − L_n(w*)] under the
    Gaussian posterior exp(−nβ·L_n − γ‖w − w*‖²/2), whatever its centre."""
    restricted = LayerRestrictedLoss(FullDataLoss(problem.loss, *problem.data), problem.true_parameter, layer)
    curvature = nbeta * restricted.hessian_eigenvalues()
    return float((0.5 * curvature / (curvature + localization)).sum())


def _judged(problem, module, layer: int, settings: dict) -> dict:
    """Layer ``layer``'s restricted estimate through the one call, its truth and the verdict."""
    result, warned, seconds = warned_estimate(module, problem.data, {"restrict_to": f"{layer - 1}.weight",
                                                                     **settings})
    parameters = problem.exact.parameters
    lam = restricted_deep_linear_balanced(list(parameters["widths"]), parameters["rank"], layer).lam_float
    truth = closed_form_truth(problem, layer, result.nbeta, result.config.localization)
    return judged_against(result, truth, 0.0, lam, warned, seconds)


def format_restricted_accuracy(result: dict) -> str:
    return format_judged(result, f"estimate_llc restricted to each layer of random deep linear networks as "
                                 f"nn.Sequential (n = {result['rows_of_data']:,})",
                         against="the closed-form truth ½·Σ nβh/(nβh + γ) of the Gaussian restricted posterior")
