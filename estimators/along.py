"""λ̂ along training: the LLC at each of K checkpoints of one network on one data set, with the
step size calibrated once on a chosen checkpoint and every checkpoint's own diagnostics.

The checkpoints are estimated one after the other (each estimate batches its chains; the
checkpoints are not batched together). With one step for all of them, a change of λ̂ between
checkpoints is not a change of sampler settings; a checkpoint whose chains fail the mixing gate
warns (:class:`~sltlab.estimators.notices.MixingWarning`) and says so in its result.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple, Sequence

from torch import nn

from sltlab.estimators.calibrate import Calibration, calibrate_step_size, calibrated_config
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.estimate import LLCResult
from sltlab.estimators.llc import ESS_MIN, RHAT_MAX
from sltlab.estimators.module import prepare


class LLCAlongTraining(NamedTuple):
    """One :class:`LLCResult` per checkpoint, in order, and the calibration they share."""

    results: tuple[LLCResult, ...]
    calibration: Calibration | None   # the sweep on the chosen checkpoint; None: each used its sampler's rule
    calibrated_at: int | None         # index of that checkpoint

    @property
    def means(self) -> list[float | None]:
        return [result.mean for result in self.results]

    @property
    def standard_errors(self) -> list[float | None]:
        return [result.standard_error for result in self.results]

    @property
    def rhats(self) -> list[float | None]:
        return [result.rhat for result in self.results]

    @property
    def esses(self) -> list[float | None]:
        return [result.ess for result in self.results]

    @property
    def mixed(self) -> list[bool]:
        """Whether each checkpoint's chains pass the mixing gate (R-hat ≤ 1.05, bulk ESS ≥ 200)."""
        return [result.rhat is not None and result.ess is not None and result.rhat <= RHAT_MAX
                and result.ess >= ESS_MIN for result in self.results]


def estimate_llc_along(checkpoints: Sequence[nn.Module | Mapping[str, Any]], data: Any, *,
                       model: nn.Module | None = None, loss: str | Callable = "mse", config: LLCConfig | None = None,
                       calibrate_at: int | None = -1, restrict_to: str | Sequence[str] | None = None,
                       inputs: int | str | None = None, targets: int | str | None = None, progress: bool = False,
                       **settings) -> LLCAlongTraining:
    """λ̂ ± SE at each checkpoint: modules, or state dicts loaded into a copy of ``model``.

    ``data``, ``loss``, ``inputs``, ``targets``, ``config``/``settings`` and ``restrict_to`` (one
    restriction) are as in :func:`sltlab.estimators.module.estimate_llc`. The step size is
    calibrated once (:func:`sltlab.estimators.calibrate.calibrate_step_size`) at checkpoint
    ``calibrate_at`` (default the last) and used at every checkpoint, with the run lengthened as
    the calibration asks; ``calibrate_at=None`` lets each checkpoint take its sampler's own rule.
    """
    if not checkpoints:
        raise ValueError("checkpoints is empty: give a list of modules or state dicts")
    if isinstance(restrict_to, list):
        raise ValueError("estimate_llc_along takes one restriction (a name, a glob or a tuple of them), not a list")
    modules = [_checkpoint_module(checkpoint, model, index) for index, checkpoint in enumerate(checkpoints)]
    prepared = prepare(data, loss, config, settings, inputs, targets)
    adapters = [prepared.adapter(module, restrict_to) for module in modules]
    calibration, shared = None, prepared.config
    if calibrate_at is not None:
        if not -len(adapters) <= calibrate_at < len(adapters):
            raise ValueError(f"calibrate_at={calibrate_at} is not the index of one of the {len(adapters)} checkpoints")
        chosen = adapters[calibrate_at]
        calibration = calibrate_step_size(chosen, chosen.flatten(), prepared.rows.tensors, shared, progress=progress)
        shared = calibrated_config(shared, calibration)
        calibrate_at %= len(adapters)
    results = tuple(prepared.estimate(adapter, restrict_to, shared, progress) for adapter in adapters)
    return LLCAlongTraining(results, calibration, calibrate_at)


def _checkpoint_module(checkpoint: nn.Module | Mapping[str, Any], model: nn.Module | None, index: int) -> nn.Module:
    if isinstance(checkpoint, nn.Module):
        return checkpoint
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"checkpoint {index} is {type(checkpoint).__name__}: give modules or state dicts")
    if not isinstance(model, nn.Module):
        raise ValueError("checkpoints given as state dicts need model=, an nn.Module of the same architecture")
    module = copy.deepcopy(model)
    try:
        module.load_state_dict(checkpoint)
    except RuntimeError as error:
        raise ValueError(f"checkpoint {index} does not fit the model: {' '.join(str(error).split())}") from None
    return module
