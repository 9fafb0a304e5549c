"""A user's data as n rows: a tuple of tensors as it is, a Dataset or a DataLoader read once into
tensors, or, when asked or too large to hold, left where it is and streamed slice by slice
(:class:`~sltlab.estimators.streamed.StreamedRows`). What :func:`sltlab.estimators.estimate_llc`
and :func:`sltlab.estimators.estimate_llc_along` read their ``data`` with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import (BatchSampler, DataLoader, Dataset, IterableDataset, RandomSampler, SequentialSampler,
                              SubsetRandomSampler, default_collate)

from sltlab.estimators.missing_rows import collated, loader_batches, read_row
from sltlab.estimators.posterior import FULL_PASS_ROWS
from sltlab.estimators.streamed import SLICE_BYTES, StreamedRows, batch_columns, refuse_unstrided, stream_refusal

GATHER_BATCH = 1024   # rows per batch when a Dataset is read through a DataLoader
REREAD_ROWS = 8   # rows read twice before streaming, to tell a Dataset with a random transform from a fixed one


class Rows(NamedTuple):
    """The data as tensors of n rows each, or streamed rows; ``fields`` names them when batches
    were dicts, and ``left_out`` the dict fields that held no tensor with a row per sample."""

    tensors: tuple[Tensor, ...] | StreamedRows
    fields: tuple[str, ...] | None
    notes: tuple[str, ...]
    left_out: tuple[str, ...] = ()

    @property
    def columns(self) -> int:
        return self.tensors.columns if isinstance(self.tensors, StreamedRows) else len(self.tensors)


GATHER_LIMIT_BYTES = 2**30   # a map-style Dataset whose rows take more than this is streamed, not gathered


SOURCE = {True: "the DataLoader's", False: "the Dataset's"}   # the rows' source in notes: a loader given or not


def read_rows(data: Any, stream: bool | None = None) -> Rows:
    """``data`` as n rows: a tuple of tensors as it is (NumPy arrays read as tensors), a dict of
    them as named fields (what is no tensor with a row per sample left out, as from a loader's
    dict batches); a Dataset or a DataLoader read once, batch by batch, and concatenated (tuple,
    list, dict or single-tensor batches), or, when ``stream`` is True or its rows would take more
    than ``GATHER_LIMIT_BYTES`` (``stream`` None), left where it is and read slice by slice
    (:class:`StreamedRows`)."""
    if not (stream is None or isinstance(stream, bool)):   # 1 and 0.0 equal True and False, and are neither
        raise ValueError(f"stream must be True, False or None (stream above {GATHER_LIMIT_BYTES >> 30} GiB of rows), "
                         f"got {stream!r}")
    if isinstance(data, (tuple, list)) and not isinstance(data, Dataset):
        if stream:
            raise ValueError("stream=True reads a Dataset or DataLoader slice by slice; tensors are in memory already")
        data = [torch.from_numpy(t) if isinstance(t, np.ndarray) and t.dtype != object else t for t in data]
        if not data or not all(isinstance(t, Tensor) for t in data):
            raise ValueError("data given as a tuple must hold tensors (or NumPy arrays) with one row per sample, e.g. "
                             "(x, y); put a list of rows in a DataLoader")
        if any(t.dim() == 0 for t in data):
            raise ValueError("data tensors need a leading dimension of samples; got a 0-dimensional tensor")
        for index, tensor in enumerate(data):
            refuse_unstrided(tensor, f"data tensor {index}")
        return Rows(tuple(data), None, ())
    if isinstance(data, Mapping):   # named columns, read as a loader's dict batches are
        if stream:
            raise ValueError("stream=True reads a Dataset or DataLoader slice by slice; tensors are in memory already")
        fields, tensors = batch_columns({key: torch.from_numpy(value) if isinstance(value, np.ndarray) and
                                         value.dtype != object else value for key, value in data.items()})
        if len({len(tensor) for tensor in tensors}) > 1:
            raise ValueError("the tensors have different numbers of rows "
                             f"({', '.join(f'{key} {len(tensor)}' for key, tensor in zip(fields, tensors))})")
        left_out = _left_out(data, fields)
        return Rows(tensors, fields, tuple(_left_out_note(left_out)), left_out)
    given_loader = isinstance(data, DataLoader)
    if given_loader:
        loader = data
    elif isinstance(data, Dataset) and hasattr(data, "__len__"):
        loader = DataLoader(data, batch_size=GATHER_BATCH, shuffle=False)
    else:
        raise ValueError(f"data must be a DataLoader, a Dataset with a length, a tuple of tensors or a dict of named "
                         f"tensors, got {type(data).__name__}")
    refusal = stream_refusal(loader) if stream is not False else "stream=False"
    if stream and refusal:
        raise ValueError(f"stream=True cannot read these rows by index: {refusal} (leave stream unset to read "
                         "them once into tensors)")
    if refusal:
        return _gathered_rows(loader, given_loader)
    dataset = loader.dataset
    fields, first = batch_columns(loader.collate_fn([read_row(dataset, 0)]))
    if stream is None and len(dataset) * sum(t.element_size() * t.numel() for t in first) <= GATHER_LIMIT_BYTES:
        return _gathered_rows(loader, given_loader)
    if _reads_differ(dataset, loader.collate_fn):
        raise ValueError(f"reading the first {min(len(dataset), REREAD_ROWS)} rows of the {len(dataset)} to be "
                         "streamed twice gave different values (a random transform in __getitem__?): every full-data "
                         "pass would see other data and λ̂ would be wrong; give stream=False to read them once into "
                         "tensors (the transform then fixed at that one pass), or make the transform deterministic")
    rows = StreamedRows(dataset, loader.collate_fn, fields, len(first), workers=loader.num_workers,
                        row_bytes=sum(t.numel() * (8 if t.is_floating_point() else t.element_size()) for t in first))
    unused = "; the loader's own batch size, order and drop_last are not used" if given_loader else ""
    left_out = _left_out(dataset[0], fields)
    return Rows(rows, fields, (f"{SOURCE[given_loader]} {len(rows)} rows are streamed, never held whole: every "
                               f"full-data pass reads them in slices of at most {FULL_PASS_ROWS} rows and "
                               f"{SLICE_BYTES >> 20} MiB, every minibatch by index (its first rows, read twice, were "
                               f"the same){unused}",
                               *_left_out_note(left_out)), left_out)


def _left_out(item: Any, fields: tuple[str, ...] | None) -> tuple[str, ...]:
    """The fields of a dict batch or row that were left out, holding no tensor with a row per
    sample (:func:`~sltlab.estimators.streamed.batch_columns`)."""
    return tuple(str(key) for key in (item if isinstance(item, Mapping) else ()) if str(key) not in (fields or ()))


def _left_out_note(left_out: tuple[str, ...]) -> list[str]:
    return [f"dict fields that hold no tensor with a row per sample were left out: {', '.join(left_out)}"] if (
        left_out) else []


def _reads_differ(dataset: Dataset, collate) -> bool:
    """Whether the first ``REREAD_ROWS`` items, read twice, differ: a random transform or draw
    in ``__getitem__``, which streamed rows would meet anew at every read (on linear regression
    with inputs jittered by N(0, 0.05²) at each read, MALA read λ̂ = 2.37 against the 2.00 of the
    same rows read once)."""
    rows = range(min(len(dataset), REREAD_ROWS))
    what = f"the first {len(rows)} rows"
    _, once = batch_columns(collated(collate, [read_row(dataset, index) for index in rows], what))
    _, again = batch_columns(collated(collate, [read_row(dataset, index) for index in rows], what))
    return any(not torch.equal(first.nan_to_num(), second.nan_to_num()) if first.is_floating_point()
               else not torch.equal(first, second) for first, second in zip(once, again))   # NaN: refused later


def _every_row_in_order(loader: DataLoader) -> tuple[DataLoader, tuple[str, ...]]:
    """``loader`` reading every row its sampler holds once, in index order, where its ``drop_last``
    would leave rows out or a shuffle (a ``RandomSampler`` over every row, or a
    ``SubsetRandomSampler``) would make the rows' order depend on torch's global random state; with
    a note (also without automatic batching, ``batch_size=None``). Elsewhere it is as it is: an
    iterable dataset, a loader with a batch sampler of its own, and any other sampler, whose rows
    may be a random draw themselves (the rows read are then noted against the dataset's). The new
    loader keeps the loader's workers and their set-up."""
    sampler, batch_sampler = loader.sampler, loader.batch_sampler
    batched = isinstance(batch_sampler, BatchSampler) and batch_sampler.sampler is sampler
    if isinstance(loader.dataset, IterableDataset) or not (batched or batch_sampler is None):
        return loader, ()
    if isinstance(sampler, RandomSampler) and not sampler.replacement and sampler.num_samples == len(
            sampler.data_source):
        indices, shuffled = list(range(len(sampler.data_source))), True   # every row: no permutation drawn
    elif isinstance(sampler, SubsetRandomSampler):
        indices, shuffled = sorted(sampler.indices), True
    elif isinstance(sampler, SequentialSampler):
        indices, shuffled = list(range(len(sampler))), False
    else:
        return loader, ()
    dropped = len(indices) % loader.batch_size if batched and loader.drop_last else 0
    if not (shuffled or dropped):
        return loader, ()
    unused = f"drop_last (which drops {dropped} of them) and order are" if dropped else "order is"
    workers = {"num_workers": loader.num_workers, "worker_init_fn": loader.worker_init_fn,
               "multiprocessing_context": loader.multiprocessing_context, "pin_memory": loader.pin_memory,
               "timeout": loader.timeout, "persistent_workers": loader.persistent_workers,
               "generator": loader.generator, **({"in_order": loader.in_order} if hasattr(loader, "in_order") else {}),
               **({"prefetch_factor": loader.prefetch_factor} if loader.num_workers else {})}
    return (DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=indices, collate_fn=loader.collate_fn,
                       **workers),
            (f"the loader's {unused} not used: its sampler's {len(indices)} rows are read once, in index order, so "
             "that n and the run do not depend on torch's global random state",))


def _gathered_rows(loader: DataLoader, given_loader: bool) -> Rows:
    """Every batch of ``loader`` once, concatenated row-wise (``given_loader``: the caller's own,
    else one made for a Dataset; the notes name which, and say a given loader's batch size is not
    used). A loader without automatic batching (``batch_size=None``) gives the Dataset's items as
    they are: batches, when the Dataset serves them (every field a tensor with a common number of
    rows), or else single rows, which are collated one by one (:func:`_is_batch`). Rows of one field
    must share a shape, and an ``IterableDataset`` without a length that yields more than
    ``GATHER_LIMIT_BYTES`` of rows is refused rather than read on (it may never end)."""
    loader, reread = _every_row_in_order(loader)
    fields, columns, batches, single_rows, held = None, None, 0, None, 0
    unending = isinstance(loader.dataset, IterableDataset) and not hasattr(loader.dataset, "__len__")
    for batch in loader_batches(loader):
        if single_rows is None:
            single_rows = loader.batch_sampler is None and not _is_batch(batch)
        names, tensors = batch_columns(default_collate([batch]) if single_rows else batch)
        if columns is None:
            fields, columns = names, [[] for _ in tensors]
        elif names != fields or len(tensors) != len(columns):
            raise ValueError(f"batch {batches} has fields {names or len(tensors)}, the first had "
                             f"{fields or len(columns)}")
        for index, (column, tensor) in enumerate(zip(columns, tensors)):
            if column and tensor.shape[1:] != column[0].shape[1:]:
                raise ValueError(f"field {fields[index] if fields else index} has rows of shape "
                                 f"{list(tensor.shape[1:])} in batch {batches} and {list(column[0].shape[1:])} in the "
                                 "first: every row of a field must have one shape; pad them to a common length")
            column.append(tensor)
        batches, held = batches + 1, held + sum(tensor.element_size() * tensor.numel() for tensor in tensors)
        if unending and held > GATHER_LIMIT_BYTES:
            raise ValueError(f"the IterableDataset has yielded {held >> 20} MiB of rows ({batches} batches) and not "
                             "ended, and it has no __len__: it may never end; give a finite one (e.g. through "
                             "itertools.islice), or a map-style Dataset, which is streamed when this large")
    if columns is None:
        raise ValueError("the data yielded no batches")
    tensors = tuple(torch.cat(column) for column in columns)
    n = len(tensors[0])
    source = SOURCE[given_loader]
    read = (f"{source} {batches} items, single rows (batch_size=None), were" if single_rows
            else f"{source} {batches} batch{'es were' if batches != 1 else ' was'}")
    own = ("" if single_rows or not loader.batch_size or not given_loader
           else f" (batch_size=, not the loader's {loader.batch_size})")
    notes = [f"{read} read once into tensors of n = {n} rows; minibatches{own} are drawn from these rows, so a random "
             "transform or sampler is fixed at that one pass", *reread]
    left_out = _left_out(batch, fields)
    notes += _left_out_note(left_out)
    sampler = loader.sampler if loader.batch_sampler is not None else None
    if getattr(sampler, "replacement", False):
        notes.append(f"the loader's sampler ({type(sampler).__name__}) draws rows with replacement: the n = {n} rows "
                     "read repeat some of the Dataset's and miss others, so the posterior is that of a resample; "
                     "pass the Dataset itself to read each row once")
    dataset = getattr(loader, "dataset", None)
    if hasattr(dataset, "__len__") and len(dataset) != n:
        notes.append(f"the loader gave n = {n} rows of a dataset of {len(dataset)} items (drop_last, its sampler, "
                     "or batches the Dataset itself serves): n is the rows read")
    if isinstance(dataset, IterableDataset) and loader.num_workers > 1 and (
            repeats := _repeated_rows(tensors, loader.num_workers)):
        notes.append(f"{repeats} of the n = {n} rows repeat an earlier one exactly, and the IterableDataset was read "
                     f"by {loader.num_workers} workers: unless it splits its rows among them "
                     "(torch.utils.data.get_worker_info), each worker yields every row and n counts each once per "
                     "worker; read it with num_workers=0, or shard it")
    return Rows(tensors, fields, tuple(notes), left_out)


def _repeated_rows(tensors: tuple[Tensor, ...], workers: int) -> int:
    """How many rows repeat an earlier row bit for bit in every field, where every distinct row
    comes a multiple of ``workers`` times (as when each worker yields them all); else 0."""
    rows = torch.cat([tensor.reshape(len(tensor), -1).contiguous().view(torch.uint8) for tensor in tensors], dim=1)
    distinct, counts = torch.unique(rows, dim=0, return_counts=True)
    return len(rows) - len(distinct) if bool((counts % workers == 0).all()) else 0


def _is_batch(item: Any) -> bool:
    """Whether an item a loader gave uncollated is a batch: every field a tensor of at least one
    dimension, all with the same number of rows. A row of a TensorDataset ((x_i [k], y_i [1]) or
    a scalar target) is not, and is collated as one row."""
    try:
        _, tensors = batch_columns(item)
    except ValueError:
        return False
    return len({len(tensor) for tensor in tensors}) == 1
