"""Does the LLC along training return the right number at checkpoints nobody tuned it on?
``sltlab bench --only along-accuracy``.

The networks of the module bench's random draws (:mod:`sltlab.verification.bench.module_accuracy`),
each as two checkpoints of one architecture: the ``nn.Sequential`` at its balanced true
parameter, and the same network with its first layer scaled by 3/2 and its second by 2/3. Both
compute the same map and have the same loss, at different points of its minimum set: another
start and centre, though hardly another truth (the centres lie about 0.26 apart on [4,5,3] rank 1,
well inside the localised posterior's spread, and their Gibbs truths differ by less than their
SE). The two go through :func:`~sltlab.estimators.along.estimate_llc_along`
with its defaults (MALA, each checkpoint's step from its own warm-up, both checkpoints in one
batched run) and with ``LLCConfig()``'s SGLD (its step calibrated once, at the last checkpoint,
as the call calibrates by default). Each checkpoint's estimate is judged as the module bench
judges one estimate: against the blocked-Gibbs truth at its own centre, nβ and γ; a miss is
|λ̂ − t| > 3·√(SE² + SE_t²) + ``BIAS_BUDGET``·t; a miss that passes the mixing gate and raises no
estimate warning for its checkpoint is silent, and the target is that the defaults have none.
The rows are the module bench's, one per checkpoint and setting, each with half its call's seconds.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict

import torch

from sltlab.estimators import LLCConfig, estimate_llc_along
from sltlab.estimators.module import along_defaults
from sltlab.estimators.notices import EstimateWarning
from sltlab.verification.bench.module_accuracy import (BIAS_BUDGET, ROWS, estimate_warnings, format_judged,
                                                        judged_against_gibbs, judged_draws, defaults_meet_target)

RESCALE = 1.5   # the first layer's factor at the second checkpoint; the second layer's is its inverse
# The settings compared, by name: the along path's defaults, and LLCConfig(), calibrated at the last checkpoint.
CONFIGS = {"defaults (mala)": {}, "LLCConfig() (sgld)": {"config": LLCConfig()}}


def along_accuracy_rows(count: int = 3, seeds: tuple[int, ...] = (0, 1), *, rows_of_data: int = ROWS,
                        shorter: dict | None = None, gibbs: dict | None = None, progress: bool = False) -> dict:
    """For each random draw (``seeds``) of ``count`` networks, both checkpoints under every
    setting of :data:`CONFIGS` through ``estimate_llc_along`` against their Gibbs truths; per draw
    and setting, how many passed the gate, missed, and missed silently. ``shorter`` overrides
    settings of every call and ``gibbs`` the truth's options (a quick check of the bench itself)."""
    def judge(problem, network: str, settings: dict) -> list[tuple[str, dict]]:
        checkpoints = [rescaled(problem.loss.as_module(problem.true_parameter, torch.float32), scale)
                       for scale in (1.0, RESCALE)]
        judged = _judged_along(problem, checkpoints, {**settings, **(shorter or {})}, gibbs or {})
        return [(f"@{index} {network}", verdict) for index, verdict in enumerate(judged)]

    draws = judged_draws(count, seeds, CONFIGS, judge, rows_of_data=rows_of_data, unit="curve", progress=progress)
    return {"rows_of_data": rows_of_data, "bias_budget": BIAS_BUDGET, "rescale": RESCALE,
            "defaults": asdict(along_defaults(None, {})), "shorter": shorter or {}, "draws": draws,
            "meets_target": defaults_meet_target(draws, CONFIGS)}


def rescaled(network: torch.nn.Sequential, scale: float) -> torch.nn.Sequential:
    """``network`` with its first weight layer multiplied by ``scale`` and its second divided by
    it: the same map (for linear layers), another point of the loss's minimum set."""
    layers = [layer for layer in network if isinstance(layer, torch.nn.Linear)]
    if len(layers) > 1 and scale != 1.0:
        with torch.no_grad():
            layers[0].weight.mul_(scale)
            layers[1].weight.div_(scale)
    return network


def _judged_along(problem, checkpoints: list, settings: dict, gibbs: dict) -> list[dict]:
    """Both checkpoints through one ``estimate_llc_along`` call, each judged against its own truth;
    a warning names its checkpoint, and one that names none counts for both."""
    clock = time.perf_counter()
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always", EstimateWarning)
        along = estimate_llc_along(checkpoints, problem.data, **settings)
    seconds = (time.perf_counter() - clock) / len(checkpoints)
    notices = estimate_warnings(raised)
    rows = []
    for index, result in enumerate(along.results):
        mine = [notice for notice in notices if checkpoint_named(str(notice.message)) in (index, None)]
        warned = sorted({notice.category.__name__ for notice in mine})
        rows.append(judged_against_gibbs(problem, result, warned, seconds, gibbs))
    return rows


def checkpoint_named(message: str) -> int | None:
    """The checkpoint a warning of ``estimate_llc_along`` names at its start ("checkpoint K: …"), if any."""
    head, _, _ = message.partition(":")
    number = head.removeprefix("checkpoint ")
    return int(number) if head.startswith("checkpoint ") and number.isdigit() else None


def format_along_accuracy(result: dict) -> str:
    return format_judged(result, f"estimate_llc_along at two points of each random deep linear network's minimum "
                                 f"set (@0 balanced, @1 its first layer ×{result['rescale']:g} and second "
                                 f"÷{result['rescale']:g}; n = {result['rows_of_data']:,})")
