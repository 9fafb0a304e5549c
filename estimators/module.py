"""The LLC of your own network in one call: an ``nn.Module``, its data (a DataLoader, a Dataset
or tensors) and a loss, centred at the module's current parameters.

Built on :func:`sltlab.estimators.estimate.estimate_llc_from_loss`: the module becomes a
batched per-sample loss through :class:`~sltlab.estimators.functional.FunctionalModel`, and the
result is that function's :class:`~sltlab.estimators.result.LLCResult` (with its diagnostics,
warnings and resolved settings), plus the names of the parameters sampled and notes on how the
data and the loss were read.
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields, replace
from typing import Any, Callable, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from sltlab.estimators.config import HMC_TRAJECTORIES, LLCConfig, require_flags
from sltlab.estimators.checks import refuse_meta
from sltlab.estimators.cooled_share import without_idle_cooling
from sltlab.estimators.data_rows import Rows, read_rows
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.result import LLCResult
from sltlab.estimators.failure_place import parameters_of
from sltlab.estimators.functional import FunctionalModel
from sltlab.estimators.loss_fields import COLUMNS_NOTE, resolve_loss
from sltlab.estimators.loss_probes import (refuse_cut_gradients, refuse_unfaithful_gradients,
                                           refuse_unreproducible_losses)
from sltlab.estimators.posterior import no_gradient
from sltlab.estimators.parameter_names import named_restriction
from sltlab.estimators.sample_losses import (LOSSES, check_logits, class_axis_note, refuse_final_sigmoid,
                                             sigmoid_note)
from sltlab.estimators.restrictions import check_distinct, estimates_of_restrictions, restriction_label
from sltlab.estimators.streamed import leading_rows, row_count
from sltlab.estimators.torch_losses import SummedPerRow

# The one call's settings when it is given no config, no sampler and no batch size: MALA on the full
# data (exact at any step, Roberts & Tweedie 1996), 8 chains × 4,000 draws, four cooled from nβ/10 in
# the warm-up and four from w*, so R-hat sees chains that came from both sides. Measured through this
# call on deep linear networks as nn.Sequential (random_dln_cases, n = 10⁴, γ = 1) against
# blocked-Gibbs finite-n truths at each estimate's centre: LLCConfig()'s SGLD failed the gate on all 12
# networks of two draws and read λ̂ = 0 on three; MALA passed on 6, within 1.0 %. With every chain
# cooled from nβ/100 a held-out draw (seed 12) found a silent miss: rank 0 of [13,23,2,10,20,17,11]
# +10.3 % at R-hat 1.036, every chain above its truth. The two-sided start was chosen over three others
# on fresh draws (seeds 13, 14: gate passed on 6 of 8, within 3.0 %, no miss) and confirmed on seeds 15
# and 16 (4 of 6 within 1.4 %, 2 flagged, no miss). Chains that fail the gate on R-hat or ESS (or sides) go on
# from where they ended, every draw kept, up to twice (to 16,000 draws) while that could bring them
# through: chosen on six networks of earlier draws whose chains had failed it (seeds 6, 9, 10, 17, 19,
# 20), of which going on once passed 2 and twice 4 (−1.4 to +4.8 %; the other two −2.1 and −2.9 %,
# flagged), and confirmed on seeds 21 and 22 (6 of 6 within 1.3 %, one after going on twice). When they
# still fail, HMC estimates anew from w* (300 trajectories after 50) while its warm-up and draws would
# take at most 4·350/300 times the gradient evaluations of MALA's run before it went on: on two trained
# MLPs MALA failed the gate (R-hat 1.14, 1.46) and HMC passed it at 2.8 and 3.2 times the time (sltlab
# bench --only fallback); narrow deep linear networks would take HMC 5–15 times, and are left flagged.
# On small regression MLPs (bench --only fallback --count 4, seeds 7–10) the defaults pass on 9 of 16.
# The held-out network that was a silent miss (seed 24), [7,10,3,4,3,4,3] rank 0 (truth 2.770), read
# with these defaults at call seeds 0–3: −8.0 % (R-hat 1.177 at 16,000 draws), −6.4 % (1.117 at 8,000),
# −8.3 % (1.0509 at 16,000: flagged by a hair) and −4.4 ± 4.0 % (R-hat 1.041 at 4,000, passing, within
# its error bar). One or two chains of eight make rare excursions (per-chain λ̂ 3.6–3.8 against 2.2–2.7).
# The gate also compares the two sides of the start (sides_z, within 4 SE): [4,8,8,12,8,4] rank 0 (seed
# 7374), read −6.3 % at R-hat 1.034 unwarned with its sides 4.1 SE apart, now goes on and is flagged
# (−4.2 %, sides +4.7); on seeds 7375–7378 (12 networks) the sides read −1.98 to +2.18, no alarm.
# The burn-in is a quarter of the draws: on [8,12,9] rank 0 (draw 4711) it leaves λ̂ 1.3–2.1 % low on
# five call seeds, which burnin=4000 mends (−0.7 to +0.2 % on four), but with that burn-in the network
# above read −11.7 % at R-hat 1.042, a silent miss again, so the shorter one stays.
# MALA's metric is "auto" (sltlab.estimators.metric): the Hessian's (nβ + γ)·P⁻¹ where U departs from
# the Gaussian at w* by a spread of at most 1 over 64 of its draws and the metric should relax λ̂'s
# slowest direction faster than the identity, the identity elsewhere. On the last layers of trained
# networks (head-accuracy, draws 20–21; confirmed on 30–31) it took every error within 0.76 % where the
# identity had read encoder heads +5.8 and +3.0 %; always applied, it read deep linear networks as
# modules up to −23.6 % (module bench, draws 2612–2613), where the first check keeps the identity.
MODULE_DEFAULTS = LLCConfig(sampler="mala", draws=4000, anneal=10.0, cooled_share=0.5, extend_unmixed=2, metric="auto",
                            fallback="hmc", fallback_budget=4.0 * sum(map(HMC_TRAJECTORIES.get, ("burnin", "draws")))
                            / HMC_TRAJECTORIES["draws"])


class Prepared(NamedTuple):
    """What every estimate on one data set shares: the settings, the rows and how to read them."""

    config: LLCConfig
    rows: "Rows"
    sample_loss: Callable
    inputs: int | str | tuple
    targets: int | str | None
    notes: tuple[str, ...]

    def adapter(self, model: nn.Module, restriction=None, traced: bool = True,
                held: tuple[tuple[str, str], ...] = ()) -> FunctionalModel:
        """The module as a batched loss; its notes say when its parameters' dtype is not the
        one sampled in and, when ``traced``, which sampled parameters never reach the loss (the
        whole module that restricted runs share as their base is not traced: none of its notes
        reach their results; ``held``: :class:`FunctionalModel`'s). Traced, a loss that differs
        between two evaluations on the same rows, or on a row alone and among others, is a one-line
        ``ValueError``
        (:func:`~sltlab.estimators.loss_probes.refuse_unreproducible_losses`), as are a gradient
        that misses a parameter the loss depends on or that is not the module's own backward
        (:func:`~sltlab.estimators.loss_probes.refuse_cut_gradients`,
        :func:`~sltlab.estimators.loss_probes.refuse_unfaithful_gradients`), outputs and targets
        of different shapes given to a torch loss that compares them element by element
        (:meth:`~sltlab.estimators.torch_losses.SummedPerRow.refuse_mismatch`), and, with loss
        'cross_entropy', outputs that are probabilities already
        (:func:`~sltlab.estimators.sample_losses.check_logits`), and outputs whose classes could
        lie along either of two axes of one length get a note (``class_axis_note``); with
        'binary_cross_entropy' a module ending in nn.Sigmoid is refused and outputs that all lie in [0, 1]
        get a note (``sigmoid_note``)."""
        adapter = FunctionalModel(model, self.sample_loss, restrict_to=restriction, inputs=self.inputs,
                                  targets=self.targets, fields=self.rows.fields, held=held)
        kinds = sorted({str(parameter.dtype).split(".")[-1] for name, parameter in adapter.module.named_parameters()
                        if name in adapter.names})
        if kinds != [self.config.dtype]:
            adapter.notes += (f"the module's parameters are {', '.join(kinds)}: sampled in {self.config.dtype} "
                              "(dtype=)",)
        head = _probe_rows(self.rows) if traced else None
        if head is not None:
            outputs = adapter.outputs(head)   # the module's on the first rows, at its own values
            if outputs is not None:   # a forward has run: tensors it keeps are its own again
                adapter.refuse_stale()
            if isinstance(self.sample_loss, SummedPerRow):   # before the probes, which would blame the rows' coupling
                self.sample_loss.refuse_mismatch(outputs, head, self.targets, self.rows.fields)
            self._refuse_targets_saying_which(outputs, head)
            refuse_unreproducible_losses(adapter, head)
            adapter.notes += _reach_notes(adapter, head, self.rows, restriction)
            refuse_unfaithful_gradients(adapter, head)
            if self.sample_loss is LOSSES["cross_entropy"]:
                check_logits(outputs)
                adapter.notes += class_axis_note(outputs)
            if self.sample_loss is LOSSES["binary_cross_entropy"]:
                refuse_final_sigmoid(model)
                adapter.notes += sigmoid_note(outputs)
        return adapter

    def _refuse_targets_saying_which(self, outputs: Tensor | None, head: tuple) -> None:
        """A named loss's refusal of the targets on the first rows (``outputs``, the module's
        there), with the note that says which tensor it compared the outputs with, where the data
        hold more than two and it took the last by default: a Dataset giving (x, y, index) had the
        index refused as targets of the wrong shape, with y[:, None] as the remedy for a y that had
        the right one."""
        said = [note for note in self.notes if note.startswith(COLUMNS_NOTE)]
        if said and isinstance(outputs, Tensor):
            try:
                self.sample_loss(outputs, head[self.targets])
            except ValueError as error:
                raise ValueError(f"{error}; {said[0]}") from None

    def estimate(self, adapter: FunctionalModel, restriction=None, config: LLCConfig | None = None,
                 progress: bool = False, compare_with_minimum: bool = True) -> LLCResult:
        """λ̂ of the module behind ``adapter`` at its current parameters, with the result's notes,
        sampled parameter names and restriction filled in (``compare_with_minimum``: as in
        :func:`~sltlab.estimators.estimate.estimate_llc_from_loss`)."""
        result = estimate_llc_from_loss(adapter, adapter.flatten(), self.rows.tensors, config or self.config,
                                        progress=progress, compare_with_minimum=compare_with_minimum)
        return replace(result, notes=result.notes + self.notes, parameters=adapter.names,
                       restricted_to=restriction_label(restriction))


def prepare(data: Any, loss: str | Callable, config: LLCConfig | None, settings: dict[str, Any],
            inputs: int | str | tuple | None, targets: int | str | None, stream: bool | None = None, *,
            defaults: LLCConfig = LLCConfig(), model: nn.Module | None = None,
            checkpoints: Sequence[nn.Module] = ()) -> Prepared:
    """Check the settings, read the data and resolve the loss, once (one-line ``ValueError``s);
    without a ``config`` the ``settings`` override ``defaults``; ``model``'s forward names the
    fields of dict batches it takes when ``inputs`` does not; without a ``config`` or a ``dtype``
    setting, a ``model`` whose parameters are all float64 (and so every one of ``checkpoints``) is
    sampled in float64, its own precision."""
    modules = [part for part in (model, *checkpoints) if part is not None]
    own_precision = config is None and "dtype" not in settings and modules and all(map(_all_float64, modules))
    config = _config(config, settings, defaults)
    if own_precision:
        config = replace(config, dtype="float64")
    rows = read_rows(data, stream)
    refuse_meta(rows.tensors)   # before the loss's checks read the values (the rest is checked by the estimate)
    forward = parameters_of(model.forward) if model is not None else ()
    sample_loss, inputs, targets, loss_notes = resolve_loss(loss, rows, inputs, targets, forward)
    precision = ("the module's parameters are float64: sampled in float64, their own precision (dtype='float32' "
                 "halves the arithmetic, at float32's rounding of the loss)",) if own_precision else ()
    return Prepared(config, rows, sample_loss, inputs, targets, rows.notes + loss_notes + precision)


def _all_float64(model: nn.Module) -> bool:
    """Whether ``model`` has parameters and every one is float64."""
    return {parameter.dtype for parameter in model.parameters()} == {torch.float64}


def estimate_llc(model: nn.Module, data: Any, *, loss: str | Callable = "mse", config: LLCConfig | None = None,
                 restrict_to: str | Sequence[str] | list | None = None, inputs: int | str | tuple | None = None,
                 targets: int | str | None = None, stream: bool | None = None, progress: bool = False,
                 batched: bool = True, **settings) -> LLCResult | list[LLCResult]:
    """λ̂ of ``model`` at its current parameters (localised as ``config.localize_at`` says), with
    n the number of rows of ``data`` and nβ = n/log n unless set.

    ``data`` is a DataLoader, a Dataset, or a tuple of tensors with equal row counts; batches may
    be tuples or dicts. A DataLoader or Dataset is read once into tensors, or, with ``stream=True``
    or when its rows would take more than ``GATHER_LIMIT_BYTES``, left where it is and read by
    index, slice by slice in every full-data pass (a map-style Dataset; ``stream=False`` gathers
    it whatever its size); ``result.notes`` says which. The module receives ``inputs`` (default:
    the first tensor, or the dict's ``x``/``input``/``inputs``, or else the dict's fields its
    forward names, as ``model(**batch)`` less targets; a tuple of fields, e.g. ``(0, 1)`` or
    ``("tokens", "mask")``, gives it several arguments in turn, by name where the forward names
    them). ``loss`` is ``"mse"`` (an alias of ``"gaussian_nll"``, ½‖y − f(x)‖² + const per
    sample), ``"cross_entropy"`` (logits),
    ``"binary_cross_entropy"`` (one logit per output, targets in [0, 1]), or a callable
    ``(outputs, batch) -> per-sample losses [b]`` receiving the batch as it came (tuple or dict),
    or its ``targets`` field when given, or one of torch's loss modules with ``reduction='none'``
    (its values summed over each row). A named loss or a torch loss module compares with
    ``targets`` (default: the last tensor, or ``y``/``target``/``label``...).

    ``config`` is an :class:`LLCConfig` and ``settings`` override its fields (``draws=2000``).
    Without a config, they override ``MODULE_DEFAULTS`` (MALA on the full data, 4,000 draws after
    a warm-up that cools half the chains from nβ/10, going on up to twice, every draw kept, while
    they fail the mixing gate on R-hat or ESS; HMC anew when they still fail it and HMC's warm-up and
    draws fit ``fallback_budget`` times MALA's gradient evaluations before it went on), or
    ``LLCConfig()`` (SGLD) when they name a sampler or a batch size (:func:`module_defaults`).
    ``restrict_to`` samples only the parameters a name or glob pattern (or a tuple of them) selects,
    the others frozen at the centre; a list of restrictions gives a list of results, one each, sampled as
    one batched run when the sampler is SGLD (no reruns or fallback) and ``batched`` is left True
    (:mod:`sltlab.estimators.restrictions`; each result's notes say which). Bad input: a one-line ``ValueError``.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    require_flags(progress=progress, batched=batched)
    prepared = prepare(data, loss, config, settings, inputs, targets, stream,
                       defaults=module_defaults(config, settings), model=model)
    restrictions = [named_restriction(model, item) for item in (restrict_to if isinstance(restrict_to, list)
                                                                else [restrict_to])]
    if not restrictions:
        raise ValueError("restrict_to is an empty list: give at least one restriction, or None for all parameters")
    adapters = [prepared.adapter(model, restriction) for restriction in restrictions]   # every pattern checked first
    check_distinct(restrictions, [adapter.names for adapter in adapters])
    if len(restrictions) == 1:
        result = prepared.estimate(adapters[0], restrictions[0], progress=progress)
        return [result] if isinstance(restrict_to, list) else result
    return estimates_of_restrictions(prepared, model, restrictions, adapters, batched=batched, progress=progress)


PROBE_ROWS = 1024   # the rows on which the sampled parameters' paths to the loss are traced


def _probe_rows(rows: Rows) -> tuple | None:
    """The first ``PROBE_ROWS`` rows, or None where they cannot be read (the estimate's first
    full pass then says which)."""
    try:
        return leading_rows(rows.tensors, PROBE_ROWS)
    except ValueError:
        return None


def _reach_notes(adapter: FunctionalModel, head: tuple, rows: Rows, restriction) -> tuple[str, ...]:
    """A note naming the sampled parameters that never reach the loss on the first rows
    (``head``); a one-line ``ValueError`` when none does (a restriction to an unused layer, a
    forward that detaches its output), before any full-data pass."""
    unreached = adapter.unreached(head)
    if not unreached:
        return ()
    listed = f"{', '.join(unreached[:4])}{', …' if len(unreached) > 4 else ''}"
    refuse_cut_gradients(adapter, head, unreached)
    if len(unreached) == len(adapter.names):
        label = "" if restriction is None else f"restrict_to={restriction_label(restriction)!r}: "
        raise ValueError(label + no_gradient(f" ({listed})"))
    where = "the data" if row_count(rows.tensors) <= PROBE_ROWS else f"the first {PROBE_ROWS} rows"
    return (f"{len(unreached)} of the {len(adapter.names)} sampled parameter tensors never reach the loss on {where} "
            f"({listed}): the loss does not depend on them, so they add nothing to λ̂ (restrict_to= leaves them out)",)


def module_defaults(config: LLCConfig | None, settings: dict[str, Any]) -> LLCConfig:
    """What :func:`estimate_llc`'s ``settings`` override without a ``config``: ``LLCConfig()`` where they
    name a sampler or a batch size (minibatches need a sampler that compares no full-data energies), else
    ``MODULE_DEFAULTS``, with no share of the chains cooled where ``anneal`` ≤ 1 turns the cooling off."""
    if config is not None or "sampler" in settings or settings.get("batch_size") is not None:
        return LLCConfig()
    anneal = settings.get("anneal", MODULE_DEFAULTS.anneal)
    return without_idle_cooling(MODULE_DEFAULTS, MODULE_DEFAULTS.sampler, anneal)


def along_defaults(config: LLCConfig | None, settings: dict[str, Any]) -> LLCConfig:
    """:func:`module_defaults` less ``MODULE_DEFAULTS``' HMC fallback, which a batched run of checkpoints
    (:func:`~sltlab.estimators.along.estimate_llc_along`) does not apply (``LLCConfig()`` has none)."""
    return replace(module_defaults(config, settings), fallback=None)


def _config(config: LLCConfig | None, settings: dict[str, Any], defaults: LLCConfig) -> LLCConfig:
    if config is not None and not isinstance(config, LLCConfig):
        raise ValueError(f"config must be an LLCConfig, got {type(config).__name__}")
    known = {field.name for field in dataclass_fields(LLCConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r}; the settings are those of LLCConfig: "
                         f"{', '.join(sorted(known))}")
    return replace(config or defaults, **settings)


