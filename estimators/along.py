"""λ̂ along training: the LLC at each of K checkpoints of one network on one data set, with the
step size calibrated once on a chosen checkpoint and every checkpoint's own diagnostics.

With one step for all of them, a change of λ̂ between checkpoints is not a change of sampler
settings; a checkpoint whose chains fail the mixing gate warns
(:class:`~sltlab.estimators.notices.MixingWarning`) and says so in its result. Checkpoints of
one architecture with equal buffers are sampled together, as one run of K·C chains with one
centre per group of C (:func:`sltlab.estimators.batched.estimate_llc_at_centers`) — under a
restriction, with SGLD, each chain confined to the restriction's parameters and the others
frozen at its own checkpoint's values (:mod:`sltlab.estimators.restrictions`); otherwise, or
when asked, one after the other, and ``LLCAlongTraining.note`` says which and why.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Callable, NamedTuple, Sequence

import torch
from torch import nn

from sltlab.estimators.batched import WARMED_UP, estimate_llc_at_centers, sampled_together
from sltlab.estimators.checkpoints import checkpoint_module, opened, refuse_shared_weights
from sltlab.estimators.calibrate import Calibration, CalibrationError, calibrate_step_size, calibrated_config
from sltlab.estimators.config import LLCConfig, require_flags
from sltlab.estimators.result import LLCResult
from sltlab.estimators.gate import readings_pass
from sltlab.estimators.functional import FunctionalModel
from sltlab.estimators.parameter_names import named_restriction, selected_parameters
from sltlab.estimators.module import along_defaults, prepare
from sltlab.estimators.notices import named_warnings
from sltlab.estimators.result_text import shown
from sltlab.estimators.restrictions import check_distinct, estimate_llc_restricted, why_not_confined

CHECKPOINT = "checkpoint {}".format   # what leads a checkpoint's warnings (notices.named_warnings)


class LLCAlongTraining(NamedTuple):
    """One :class:`LLCResult` per checkpoint, in order, the calibration they share, and whether
    they were sampled as one batch (``note`` says how, or why not)."""

    results: tuple[LLCResult, ...]
    calibration: Calibration | None   # the sweep on the chosen checkpoint; None: each used its sampler's rule
    calibrated_at: int | None         # index of that checkpoint
    batched: bool = False             # every checkpoint's chains in one run (or in groups of whole checkpoints)
    note: str = ""

    @property
    def means(self) -> list[float | None]:
        return [result.mean for result in self.results]

    def __repr__(self) -> str:
        """A line per checkpoint (λ̂ ± SE, R-hat, ESS, warnings), after how they were sampled, and
        the notes every checkpoint shares."""
        count = len(self.results)
        lines = [f"LLCAlongTraining: {count} checkpoint{'' if count == 1 else 's'}; {self.note}"]
        lines += [f"  checkpoint {index}: λ̂ = {shown(result.mean)} ± {shown(result.standard_error)}   R-hat "
                  f"{shown(result.rhat)}   ESS {'—' if result.ess is None else f'{result.ess:.0f}'}"
                  + (f"   ({len(result.warnings)} warning(s))" if result.warnings else "")
                  for index, result in enumerate(self.results)]
        lines += [f"  note, at every checkpoint: {note}" for note in self.shared_notes]
        return "\n".join(lines + ["  (.results holds each checkpoint's full result)"])

    @property
    def shared_notes(self) -> list[str]:
        """The notes every checkpoint's result carries (how the model and data were read), in order."""
        return [note for note in self.results[0].notes if all(note in result.notes for result in self.results)]

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
        """Whether each checkpoint's chains pass the mixing gate: R-hat ≤ 1.05, ESS ≥ 200, the drift
        and, where only some chains cooled, the two sides of the start within 4 standard errors
        (:func:`~sltlab.estimators.gate.readings_pass`); its test of λ̂ against zero and dropped chains
        are in each result's warnings."""
        return [readings_pass(result.rhat, result.ess, [], result.estimate.drift, result.estimate.sides)
                for result in self.results]


def estimate_llc_along(checkpoints: Sequence[nn.Module | Mapping[str, Any] | str | os.PathLike], data: Any, *,
                       model: nn.Module | None = None, loss: str | Callable = "mse", config: LLCConfig | None = None,
                       calibrate_at: int | None = -1, restrict_to: str | Sequence[str] | None = None,
                       inputs: int | str | None = None, targets: int | str | None = None,
                       stream: bool | None = None, progress: bool = False, batched: bool = True,
                       extend_unmixed: int | None = None, **settings) -> LLCAlongTraining | list[LLCAlongTraining]:
    """λ̂ ± SE at each checkpoint: modules, or state dicts loaded into a copy of ``model`` (as
    they are, held by a training checkpoint under a key of ``STATE_KEYS``, or saved to files by
    ``torch.save``: :mod:`sltlab.estimators.checkpoints`); two that share their weights in memory
    are refused (:func:`~sltlab.estimators.checkpoints.refuse_shared_weights`).

    ``data``, ``loss``, ``inputs``, ``targets``, ``stream``, ``config``/``settings`` and
    ``restrict_to`` are as in :func:`sltlab.estimators.module.estimate_llc` (a list of restrictions
    gives a list of curves, one per restriction, each calibrated and sampled on its own); without
    a config the settings override that call's defaults less its HMC fallback
    (:func:`~sltlab.estimators.module.along_defaults`: MALA on the full data, half the chains
    cooled from nβ/10, going on while they fail the mixing gate). MALA, exact at any step, is not
    calibrated: each checkpoint's own warm-up tunes its step, in the one batched run. An
    unadjusted sampler's (SGLD's) step is calibrated once
    (:func:`sltlab.estimators.calibrate.calibrate_step_size`) at checkpoint ``calibrate_at``
    (default the last) and used at every checkpoint, with the run lengthened as the calibration
    asks; ``calibrate_at=None`` lets each checkpoint take its sampler's own rule. A step size given
    (``step_size=`` or in ``config``) is used at every checkpoint as it is, with no calibration. A
    calibration that finds no stable step raises
    :class:`~sltlab.estimators.calibrate.CalibrationError`, which names the remedies.

    The checkpoints are sampled as one batch when they can be (module docstring) unless
    ``batched=False``; each is then localised on its own first, as one after the other. With
    ``extend_unmixed`` = k (None: the config's), the checkpoints whose chains fail the mixing gate
    go on from where they ended, up to k times, each time for as many draws as they hold, together
    in a batched run, and each on its own one after the other (then only while the rounds left could
    bring it through, :func:`~sltlab.estimators.going_on.extend_until_mixed`); each such result's
    notes say so.
    """
    if isinstance(checkpoints, (nn.Module, Mapping, str, os.PathLike)):
        raise ValueError(f"checkpoints is one {type(checkpoints).__name__}: give a list of modules, state dicts or "
                         "files of them (e.g. [model] for one)")
    if not checkpoints:
        raise ValueError("checkpoints is empty: give a list of modules, state dicts or files of them")
    require_flags(progress=progress, batched=batched)
    checkpoints = opened(checkpoints)   # every file read once, also when each restriction has a curve
    refuse_shared_weights(checkpoints)
    if calibrate_at is not None and (isinstance(calibrate_at, bool) or not isinstance(calibrate_at, numbers.Integral)):
        raise ValueError(f"calibrate_at must be the index of a checkpoint (an integer) or None, got {calibrate_at!r}")
    if isinstance(restrict_to, list):   # one curve per restriction, each calibrated and sampled on its own
        if not restrict_to:
            raise ValueError("restrict_to is an empty list: give at least one restriction, or None for all parameters")
        first = checkpoint_module(checkpoints[0], model, 0)[0]
        owners = [part for part in (model, first) if part is not None]
        check_distinct(restrict_to, [selected_parameters(first, _restriction_by_name(restriction, owners))
                                     for restriction in restrict_to])
        return [estimate_llc_along(checkpoints, data, model=model, loss=loss, config=config, calibrate_at=calibrate_at,
                                   restrict_to=restriction, inputs=inputs, targets=targets, stream=stream,
                                   progress=progress, batched=batched, extend_unmixed=extend_unmixed, **settings)
                for restriction in restrict_to]
    modules, held = zip(*[checkpoint_module(checkpoint, model, index) for index, checkpoint in enumerate(checkpoints)])
    restrict_to = _restriction_by_name(restrict_to, [part for part in (model, *modules) if part is not None])
    prepared = prepare(data, loss, config, settings, inputs, targets, stream, defaults=along_defaults(config, settings),
                       model=modules[0], checkpoints=modules)
    if extend_unmixed is not None:
        prepared = prepared._replace(config=replace(prepared.config, extend_unmixed=extend_unmixed))
        prepared.config.validate()
    adapters = [prepared.adapter(module, restrict_to, held=names) for module, names in zip(modules, held)]
    calibration, shared = None, prepared.config
    if calibrate_at is not None and not -len(adapters) <= calibrate_at < len(adapters):
        raise ValueError(f"calibrate_at={calibrate_at} is not the index of one of the {len(adapters)} checkpoints")
    uncalibrated = ""   # why no checkpoint is calibrated, where none is
    if shared.step_size is not None:
        uncalibrated = f"the step size given, {shared.step_size:.3g}, at every checkpoint; "
    elif shared.sampler in WARMED_UP:
        uncalibrated = (f"{shared.sampler} is exact at any step: no calibration, each checkpoint's step tuned by its "
                        "own warm-up; ")
    rule = "given"
    if uncalibrated:
        calibrate_at = None
    if calibrate_at is not None:
        chosen = adapters[calibrate_at]
        try:
            calibration = calibrate_step_size(chosen, chosen.flatten(), prepared.rows.tensors, shared,
                                              progress=progress)
        except CalibrationError as error:
            raise CalibrationError(f"{error}; at checkpoint {calibrate_at % len(adapters)}: give a step size (used at "
                                   "every checkpoint), lengthen the pilots (more draws), or sample exactly with MALA "
                                   "on the full data", error.sweep) from None
        except ValueError as error:   # the model, loss or data fail at that checkpoint: say which
            raise ValueError(f"checkpoint {calibrate_at % len(adapters)}: {error}") from None
        # Another exact sampler (HMC, slice) has no sweep: its pilot's step is pinned so that the
        # checkpoints share one step and one batched run, where a single estimate would tune its own.
        if not calibration.sweep:
            calibration = calibration._replace(reason=f"{shared.sampler} is exact at any step: no sweep; the pilot's "
                                               f"step {calibration.step_size:.3g} is shared by every checkpoint")
        shared = (calibrated_config(shared, calibration) if calibration.sweep
                  else replace(shared, step_size=calibration.step_size))
        calibrate_at %= len(adapters)
        rule = f"calibrated at checkpoint {calibrate_at}, shared by every checkpoint; calibration.reason says how"
    reason = "batched=False" if not batched else _why_not_batched(modules, adapters, restrict_to, shared)
    if reason is None and restrict_to is None:
        centers = [adapter.flatten() for adapter in adapters]
        estimates = named_warnings(CHECKPOINT, lambda: estimate_llc_at_centers(
            adapters[0], centers, prepared.rows.tensors, shared, progress=progress, rule=rule, what="checkpoint"))
        results = tuple(replace(result, notes=result.notes + prepared.notes, parameters=adapters[0].names)
                        for result in estimates)
        note = sampled_together(len(centers), "checkpoints", shared.chains, centers[0].numel(),
                                f"each checkpoint's {shared.chains} at its own centre")
        return LLCAlongTraining(results, calibration, calibrate_at, True, uncalibrated + note)
    if reason is None:
        fulls = [prepared.adapter(module, traced=False) for module in modules]
        estimates = named_warnings(CHECKPOINT, lambda: estimate_llc_restricted(
            fulls[0], adapters, prepared.rows.tensors, shared, restrict_to, bases=[full.flatten() for full in fulls],
            progress=progress, rule=rule))
        results = tuple(replace(result, notes=result.notes + prepared.notes) for result in estimates)
        note = sampled_together(len(fulls), "checkpoints", shared.chains, fulls[0].dim,
                                f"each checkpoint's {shared.chains} at its own centre, moving only the restriction's "
                                "parameters, the others frozen at that checkpoint's values")
        return LLCAlongTraining(results, calibration, calibrate_at, True, uncalibrated + note)
    results = named_warnings(CHECKPOINT, lambda: tuple(_checkpoint_estimate(prepared, adapter, restrict_to, shared,
                                                                           progress, index)
                                                      for index, adapter in enumerate(adapters)))
    if calibration is not None:   # each estimate was given the calibrated step, but a fallback's chains its own
        results = tuple(replace(result, step_size_rule=rule) if result.config.sampler == shared.sampler else result
                        for result in results)
    return LLCAlongTraining(results, calibration, calibrate_at, False,
                            f"{uncalibrated}the checkpoints sampled one after the other: {reason}")


def _why_not_batched(modules: Sequence[nn.Module], adapters: Sequence[FunctionalModel], restrict_to,
                     config: LLCConfig) -> str | None:
    """Why the checkpoints cannot share one batched run, or None when they can: one loss must
    serve them all (one class, the same parameters, equal buffers and mode) at one step."""
    if restrict_to is not None and why_not_confined(config):
        return why_not_confined(config)
    if config.step_size is None and config.sampler not in WARMED_UP:
        return "calibrate_at=None and no step size: each checkpoint takes its sampler's own step-size rule"
    first, first_buffers = modules[0], dict(modules[0].named_buffers())
    for index, (module, adapter) in enumerate(zip(modules, adapters)):
        if type(module) is not type(first) or adapter.names != adapters[0].names or module.training != first.training:
            return f"checkpoint {index} differs from checkpoint 0 in its class, its parameters or its mode"
        if [p.shape for p in module.parameters()] != [p.shape for p in first.parameters()]:
            return f"checkpoint {index} has parameters of other shapes than checkpoint 0"
        buffers = dict(module.named_buffers())
        if buffers.keys() != first_buffers.keys() or not all(
                buffers[name].shape == first_buffers[name].shape and torch.equal(buffers[name], first_buffers[name])
                for name in buffers):
            return f"checkpoint {index}'s buffers differ from checkpoint 0's, and a batched run shares one module's"
    return None


def _restriction_by_name(restrict_to, owners: Sequence[nn.Module]):
    """``restrict_to`` with a submodule given as an object replaced by its name in the first of
    ``owners`` (the ``model=`` template, then the checkpoints) that holds it."""
    if restrict_to is None or isinstance(restrict_to, str):
        return restrict_to
    for owner in owners:
        try:
            return named_restriction(owner, restrict_to)
        except ValueError:
            continue
    return named_restriction(owners[0], restrict_to)   # none holds it: that owner's one-line error


def _checkpoint_estimate(prepared, adapter: FunctionalModel, restrict_to, config: LLCConfig, progress: bool,
                         index: int):
    try:
        return prepared.estimate(adapter, restrict_to, config, progress, compare_with_minimum=False)
    except ValueError as error:
        raise ValueError(f"checkpoint {index}: {error}") from None
