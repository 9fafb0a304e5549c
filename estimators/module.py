"""The LLC of your own network in one call: an ``nn.Module``, its data (a DataLoader, a Dataset
or tensors) and a loss, centred at the module's current parameters.

Built on :func:`sltlab.estimators.estimate.estimate_llc_from_loss`: the module becomes a
batched per-sample loss through :class:`~sltlab.estimators.functional.FunctionalModel`, and the
result is that function's :class:`~sltlab.estimators.estimate.LLCResult` (with its diagnostics,
warnings and resolved settings), plus the names of the parameters sampled and notes on how the
data and the loss were read.
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields, replace
from typing import Any, Callable, NamedTuple, Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from sltlab.estimators.config import HMC_TRAJECTORIES, LLCConfig
from sltlab.estimators.estimate import LLCResult, estimate_llc_from_loss
from sltlab.estimators.functional import FunctionalModel, check_class_probabilities, cross_entropy, gaussian_nll
from sltlab.estimators.batched import sampled_together
from sltlab.estimators.posterior import FULL_PASS_ROWS
from sltlab.estimators.restrictions import estimate_llc_restricted, restriction_label, why_restrictions_not_batched
from sltlab.estimators.streamed import SLICE_BYTES, StreamedRows, batch_columns, first_rows, stream_refusal

LOSSES = {"mse": gaussian_nll, "gaussian_nll": gaussian_nll, "cross_entropy": cross_entropy}
INPUT_KEYS = ("x", "input", "inputs")
TARGET_KEYS = ("y", "target", "targets", "label", "labels")
GATHER_BATCH = 1024   # rows per batch when a Dataset is read through a DataLoader
# The one call's settings when it is given no config, no sampler and no batch size: MALA on the full
# data (exact at any step, Roberts & Tweedie 1996), 8 chains × 4,000 draws, four cooled from nβ/10 in
# the warm-up and four from w*, so R-hat sees chains that came from both sides. Measured through this
# call on deep linear networks as nn.Sequential (random_dln_cases, n = 10⁴, γ = 1) against
# blocked-Gibbs finite-n truths at each estimate's centre: LLCConfig()'s SGLD failed the gate on all 12
# networks of two draws and read λ̂ = 0 on three; MALA passed on 6, within 1.0 %. With every chain
# cooled from nβ/100 a held-out draw (seed 12) found a silent miss: rank 0 of [13,23,2,10,20,17,11]
# +10.3 % at R-hat 1.036, every chain above its truth. The two-sided start was chosen over three others
# on fresh draws (seeds 13, 14: gate passed on 6 of 8, within 3.0 %, no miss) and confirmed on seeds 15
# and 16 (4 of 6 within 1.4 %, 2 flagged, no miss). Chains that fail the gate on R-hat or ESS go on
# from where they ended, every draw kept, up to twice (to 16,000 draws) while that could bring them
# through: chosen on six networks of earlier draws whose chains had failed it (seeds 6, 9, 10, 17, 19,
# 20), of which going on once passed 2 and twice 4 (−1.4 to +4.8 %; the other two −2.1 and −2.9 %,
# flagged), and confirmed on seeds 21 and 22 (6 of 6 within 1.3 %, one after going on twice). When they
# still fail, HMC estimates anew from w* (300 trajectories after 50) while its warm-up and draws would
# take at most 4·350/300 times the gradient evaluations of MALA's run before it went on: on two trained
# MLPs MALA failed the gate (R-hat 1.14, 1.46) and HMC passed it at 2.8 and 3.2 times the time (sltlab
# bench --only fallback); narrow deep linear networks would take HMC 5–15 times, and are left flagged.
# On small regression MLPs (bench --only fallback --count 4, seeds 7–10) the defaults pass on 9 of 16.
# A known silent miss (held out, seed 24): [7,10,3,4,3,4,3] rank 0 reads 6–8 % low on four seeds, on
# three passing the gate, every chain low together: the run is shorter than γ's directions take to relax.
MODULE_DEFAULTS = LLCConfig(sampler="mala", draws=4000, anneal=10.0, cooled_share=0.5, extend_unmixed=2,
                            fallback="hmc", fallback_budget=4.0 * sum(map(HMC_TRAJECTORIES.get, ("burnin", "draws")))
                            / HMC_TRAJECTORIES["draws"])


class Prepared(NamedTuple):
    """What every estimate on one data set shares: the settings, the rows and how to read them."""

    config: LLCConfig
    rows: "Rows"
    sample_loss: Callable
    inputs: int | str
    targets: int | str | None
    notes: tuple[str, ...]

    def adapter(self, model: nn.Module, restriction=None) -> FunctionalModel:
        """The module as a batched loss; its notes say when its parameters' dtype is not the
        one sampled in."""
        adapter = FunctionalModel(model, self.sample_loss, restrict_to=restriction, inputs=self.inputs,
                                  targets=self.targets, fields=self.rows.fields)
        kinds = sorted({str(parameter.dtype).split(".")[-1] for name, parameter in adapter.module.named_parameters()
                        if name in adapter.names})
        if kinds != [self.config.dtype]:
            adapter.notes += (f"the module's parameters are {', '.join(kinds)}: sampled in {self.config.dtype} "
                              "(dtype=)",)
        return adapter

    def estimate(self, adapter: FunctionalModel, restriction=None, config: LLCConfig | None = None,
                 progress: bool = False) -> LLCResult:
        """λ̂ of the module behind ``adapter`` at its current parameters, with the result's notes,
        sampled parameter names and restriction filled in."""
        result = estimate_llc_from_loss(adapter, adapter.flatten(), self.rows.tensors, config or self.config,
                                        progress=progress)
        return replace(result, notes=result.notes + self.notes, parameters=adapter.names,
                       restricted_to=restriction_label(restriction))


def prepare(data: Any, loss: str | Callable, config: LLCConfig | None, settings: dict[str, Any],
            inputs: int | str | None, targets: int | str | None, stream: bool | None = None, *,
            defaults: LLCConfig = LLCConfig()) -> Prepared:
    """Check the settings, read the data and resolve the loss, once (one-line ``ValueError``s);
    without a ``config`` the ``settings`` override ``defaults``."""
    config = _config(config, settings, defaults)
    rows = read_rows(data, stream)
    sample_loss, inputs, targets, loss_notes = _resolve_loss(loss, rows, inputs, targets)
    return Prepared(config, rows, sample_loss, inputs, targets, rows.notes + loss_notes)


class Rows(NamedTuple):
    """The data as tensors of n rows each, or streamed rows; ``fields`` names them when batches
    were dicts."""

    tensors: tuple[Tensor, ...] | StreamedRows
    fields: tuple[str, ...] | None
    notes: tuple[str, ...]

    @property
    def columns(self) -> int:
        return self.tensors.columns if isinstance(self.tensors, StreamedRows) else len(self.tensors)


def estimate_llc(model: nn.Module, data: Any, *, loss: str | Callable = "mse", config: LLCConfig | None = None,
                 restrict_to: str | Sequence[str] | list | None = None, inputs: int | str | None = None,
                 targets: int | str | None = None, stream: bool | None = None, progress: bool = False,
                 batched: bool = True, **settings) -> LLCResult | list[LLCResult]:
    """λ̂ of ``model`` at its current parameters (localised as ``config.localize_at`` says), with
    n the number of rows of ``data`` and nβ = n/log n unless set.

    ``data`` is a DataLoader, a Dataset, or a tuple of tensors with equal row counts; batches may
    be tuples or dicts. A DataLoader or Dataset is read once into tensors, or, with ``stream=True``
    or when its rows would take more than ``GATHER_LIMIT_BYTES``, left where it is and read by
    index, slice by slice in every full-data pass (a map-style Dataset; ``stream=False`` gathers
    it whatever its size); ``result.notes`` says which. The module receives ``inputs`` (default:
    the first tensor, or the dict's ``x``/``input``/``inputs``). ``loss`` is ``"mse"`` (an alias
    of ``"gaussian_nll"``, ½‖y − f(x)‖² + const per sample), ``"cross_entropy"``, or a callable
    ``(outputs, batch) -> per-sample losses [b]`` receiving the batch as it came (tuple or dict),
    or its ``targets`` field when given. A named loss compares with ``targets`` (default: the last
    tensor, or ``y``/``target``/``label``...).

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
    prepared = prepare(data, loss, config, settings, inputs, targets, stream,
                       defaults=module_defaults(config, settings))
    restrictions = restrict_to if isinstance(restrict_to, list) else [restrict_to]
    if not restrictions:
        raise ValueError("restrict_to is an empty list: give at least one restriction, or None for all parameters")
    adapters = [prepared.adapter(model, restriction) for restriction in restrictions]   # every pattern checked first
    reason = why_restrictions_not_batched(prepared.config, restrictions) if batched else "batched=False"
    if reason is None:
        full = prepared.adapter(model)
        results = estimate_llc_restricted(full, adapters, prepared.rows.tensors, prepared.config, restrictions,
                                          progress=progress)
        chains = prepared.config.chains
        together = sampled_together(len(adapters), "restrictions", chains, full.dim,
                                    f"each restriction's {chains} moving only its parameters, the others frozen at w*")
        return [replace(result, notes=result.notes + prepared.notes + (together,)) for result in results]
    results = [prepared.estimate(adapter, restriction, progress=progress)
               for restriction, adapter in zip(restrictions, adapters)]
    if len(restrictions) > 1:
        results = [replace(result, notes=result.notes + (f"the restrictions sampled one after the other: {reason}",))
                   for result in results]
    return results if isinstance(restrict_to, list) else results[0]


def module_defaults(config: LLCConfig | None, settings: dict[str, Any]) -> LLCConfig:
    """What :func:`estimate_llc`'s ``settings`` override when no ``config`` is given:
    ``MODULE_DEFAULTS``, unless they name a sampler or a batch size (minibatches need a sampler
    that does not compare full-data energies), in which case ``LLCConfig()``."""
    if config is not None or "sampler" in settings or settings.get("batch_size") is not None:
        return LLCConfig()
    return MODULE_DEFAULTS


def _config(config: LLCConfig | None, settings: dict[str, Any], defaults: LLCConfig) -> LLCConfig:
    if config is not None and not isinstance(config, LLCConfig):
        raise ValueError(f"config must be an LLCConfig, got {type(config).__name__}")
    known = {field.name for field in dataclass_fields(LLCConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r}; the settings are those of LLCConfig: "
                         f"{', '.join(sorted(known))}")
    return replace(config or defaults, **settings)


GATHER_LIMIT_BYTES = 2**30   # a map-style Dataset whose rows take more than this is streamed, not gathered


def read_rows(data: Any, stream: bool | None = None) -> Rows:
    """``data`` as n rows: a tuple of tensors as it is; a Dataset or a DataLoader read once,
    batch by batch, and concatenated (tuple, list, dict or single-tensor batches), or, when
    ``stream`` is True or its rows would take more than ``GATHER_LIMIT_BYTES`` (``stream``
    None), left where it is and read slice by slice (:class:`StreamedRows`)."""
    if stream not in (None, True, False):
        raise ValueError(f"stream must be True, False or None (stream above {GATHER_LIMIT_BYTES >> 30} GiB of rows), "
                         f"got {stream!r}")
    if isinstance(data, (tuple, list)) and not isinstance(data, Dataset):
        if stream:
            raise ValueError("stream=True reads a Dataset or DataLoader slice by slice; tensors are in memory already")
        if not data or not all(isinstance(t, Tensor) for t in data):
            raise ValueError("data given as a tuple must hold tensors with one row per sample, e.g. (x, y); "
                             "put a list of rows in a DataLoader")
        if any(t.dim() == 0 for t in data):
            raise ValueError("data tensors need a leading dimension of samples; got a 0-dimensional tensor")
        return Rows(tuple(data), None, ())
    if isinstance(data, DataLoader):
        loader, source = data, "the DataLoader's"
    elif isinstance(data, Dataset) and hasattr(data, "__len__"):
        loader, source = DataLoader(data, batch_size=GATHER_BATCH, shuffle=False), "the Dataset's"
    else:
        raise ValueError(f"data must be a DataLoader, a Dataset with a length, or a tuple of tensors, "
                         f"got {type(data).__name__}")
    refusal = stream_refusal(loader) if stream is not False else "stream=False"
    if stream and refusal:
        raise ValueError(f"stream=True cannot read these rows by index: {refusal} (leave stream unset to read "
                         "them once into tensors)")
    if refusal:
        return _gathered_rows(loader, source)
    dataset = loader.dataset
    fields, first = batch_columns(loader.collate_fn([dataset[0]]))
    if stream is None and len(dataset) * sum(t.element_size() * t.numel() for t in first) <= GATHER_LIMIT_BYTES:
        return _gathered_rows(loader, source)
    rows = StreamedRows(dataset, loader.collate_fn, fields, len(first), workers=loader.num_workers,
                        row_bytes=sum(t.numel() * (8 if t.is_floating_point() else t.element_size()) for t in first))
    unused = "; the loader's own batch size, order and drop_last are not used" if isinstance(data, DataLoader) else ""
    return Rows(rows, fields, (f"{source} {len(rows)} rows are streamed, never held whole: every full-data pass "
                               f"reads them in slices of at most {FULL_PASS_ROWS} rows and {SLICE_BYTES >> 20} MiB, "
                               "every minibatch by index, so a random transform is drawn anew at each read"
                               f"{unused}",))


def _gathered_rows(loader: DataLoader, source: str) -> Rows:
    fields, columns, batches = None, None, 0
    for batch in loader:
        names, tensors = batch_columns(batch)
        if columns is None:
            fields, columns = names, [[] for _ in tensors]
        elif names != fields or len(tensors) != len(columns):
            raise ValueError(f"batch {batches} has fields {names or len(tensors)}, the first had "
                             f"{fields or len(columns)}")
        for column, tensor in zip(columns, tensors):
            column.append(tensor)
        batches += 1
    if columns is None:
        raise ValueError("the data yielded no batches")
    tensors = tuple(torch.cat(column) for column in columns)
    n = len(tensors[0])
    notes = [f"{source} {batches} batches were read once into tensors of n = {n} rows; minibatches are drawn from "
             "these rows, so a random transform or sampler is fixed at that one pass"]
    dataset = getattr(loader, "dataset", None)
    if hasattr(dataset, "__len__") and len(dataset) != n:
        notes.append(f"the loader gave n = {n} rows of a dataset of {len(dataset)} items (drop_last, its sampler, "
                     "or batches the Dataset itself serves): n is the rows read")
    return Rows(tensors, fields, tuple(notes))


def _resolve_loss(loss: str | Callable, rows: Rows, inputs, targets):
    """(per-sample loss, input field, target field or None, notes)."""
    fields = rows.fields
    if inputs is None:
        inputs = 0 if fields is None else _first_present(INPUT_KEYS, fields, "inputs", "the module's input")
    _check_field(inputs, rows, "inputs")
    notes: tuple[str, ...] = ()
    if callable(loss):
        sample_loss = loss
    elif isinstance(loss, str) and loss in LOSSES:
        sample_loss = LOSSES[loss]
        if targets is None:
            if fields is None and rows.columns < 2:
                raise ValueError(f"loss {loss!r} compares the outputs with targets: give data as (inputs, targets)")
            targets = -1 if fields is None else _first_present(TARGET_KEYS, fields, "targets", "the targets")
        if loss == "mse":
            notes = ("loss 'mse' is the unit-variance Gaussian negative log-likelihood ½‖y − f(x)‖² + const per "
                     "sample (a mean over outputs, as torch's MSELoss takes, would rescale nβ)",)
    else:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)} or a callable (outputs, batch) -> per-sample "
                         f"losses, got {loss!r}")
    if targets is not None:
        _check_field(targets, rows, "targets")
    if loss == "cross_entropy":
        column = targets if rows.fields is None else rows.fields.index(targets)
        check_class_probabilities(first_rows(rows.tensors, column))
    return sample_loss, inputs, targets, notes


def _first_present(candidates: Sequence[str], fields: Sequence[str], option: str, what: str) -> str:
    for key in candidates:
        if key in fields:
            return key
    raise ValueError(f"dict batches with keys {list(fields)}: name {what} with {option}=KEY")


def _check_field(field: int | str, rows: Rows, option: str) -> None:
    if rows.fields is not None:
        if field not in rows.fields:
            raise ValueError(f"{option}={field!r} is not a key of the batches ({', '.join(rows.fields)})")
    elif not (isinstance(field, int) and -rows.columns <= field < rows.columns):
        raise ValueError(f"{option}={field!r} must index the {rows.columns} data tensors")
