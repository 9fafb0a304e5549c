"""A data set read in slices, never held whole: for a Dataset too large to gather into tensors.

:class:`StreamedRows` stands wherever the estimators take data tensors of n rows. A full-data
pass (L_n(w*), localisation, the curvature of the step-size rule, MALA's energies, the
functional variance) reads the rows in order, ``rows`` at a time, through a DataLoader over the
Dataset; a minibatch reads the rows drawn for it by index (the Dataset's ``__getitems__`` where
it has one, otherwise one ``__getitem__`` per row), so draws follow the run's seeded generator
exactly as they do on tensors. Samples may be tuples, dicts or single tensors; they become a
tuple of columns, named by ``fields`` when they were dicts. A slice holds at most ``rows``
rows and at most ``SLICE_BYTES`` of them, so a full-data pass stays within a stated memory
budget however large each row is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, IterableDataset, RandomSampler, SequentialSampler

from sltlab.estimators.missing_rows import collated, first_unread, loader_batches, read_row

SLICE_BYTES = 2**28   # the most bytes of rows (floating columns counted as float64) one streamed slice holds


def batch_columns(batch: Any) -> tuple[tuple[str, ...] | None, tuple[Tensor, ...]]:
    """A collated batch (dict, tuple, list or one tensor) as (field names or None, columns),
    detached from any autograd graph. A dict's fields that hold no tensor with a row per sample
    (ids, strings) are left out; in a tuple, where they would shift the indices, they are refused."""
    if isinstance(batch, Mapping):
        kept = {str(key): value for key, value in batch.items() if isinstance(value, Tensor) and value.dim() > 0}
        if not kept:
            raise ValueError(f"no batch field ({', '.join(map(str, batch))}) is a tensor with a row per sample")
        names, values = tuple(kept), tuple(kept.values())
    elif isinstance(batch, (tuple, list)):
        names, values = None, tuple(batch)
    else:
        names, values = None, (batch,)
    for index, value in enumerate(values):
        where = names[index] if names else index
        if not isinstance(value, Tensor) or value.dim() == 0:
            carry = (": every field of a tuple batch must be one, since leaving one out would shift the others; a "
                     "Dataset that returns a dict carries other fields (names, ids), which are left out"
                     if names is None and len(values) > 1 else "")
            raise ValueError(f"batch field {where!r} is {type(value).__name__}, not a tensor with a row per "
                             f"sample{carry}")
        refuse_unstrided(value, f"batch field {where!r}")
    return names, tuple(value.detach() for value in values)   # data is never differentiated


def refuse_unstrided(tensor: Tensor, what: str) -> None:
    """A one-line ``ValueError`` for a sparse (or otherwise unstrided) tensor: rows are read by
    slicing and indexing, which sparse layouts do not offer."""
    if tensor.layout != torch.strided:
        raise ValueError(f"{what} is a {str(tensor.layout).removeprefix('torch.')} tensor: rows are sliced and "
                         "indexed at every step, which only dense tensors allow; give it as .to_dense()")


def stream_refusal(loader: DataLoader) -> str | None:
    """Why the rows of ``loader`` cannot be streamed, or None when they can. Streaming reads
    every row of the loader's Dataset once per pass, by index, collated by its ``collate_fn``:
    that is what the loader gives only when its batches are collated rows and its sampler
    visits every row once (in order or shuffled)."""
    dataset = loader.dataset
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        return "an IterableDataset has no rows to read by index"
    if len(dataset) == 0:
        return "the Dataset has no rows"
    if loader.batch_size is None:
        return ("the loader has batch_size=None or a batch_sampler of its own, so its batches are not rows "
                "collated by its collate_fn")
    sampler = loader.sampler
    if not (isinstance(sampler, SequentialSampler) or (isinstance(sampler, RandomSampler)
                                                       and not sampler.replacement
                                                       and sampler.num_samples == len(dataset))):
        return (f"the loader's sampler ({type(sampler).__name__}) does not visit every row once, and streaming "
                "reads every row of the Dataset; give a torch.utils.data.Subset of the rows you mean")
    return None


@dataclass(frozen=True)
class StreamedRows:
    """The n rows of a map-style ``dataset`` as columns, read on demand on ``device``, floating
    columns in ``dtype`` (as stored when None). ``collate`` joins samples into a batch (the
    DataLoader's ``collate_fn``); ``workers`` read the slices of a full-data pass, kept alive
    between passes; ``row_bytes`` is the size of one row, which bounds the rows of a slice."""

    dataset: Dataset
    collate: Callable
    fields: tuple[str, ...] | None
    columns: int
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype | None = None
    workers: int = 0
    row_bytes: int = 1
    loaders: dict = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.dataset)

    def cast(self, device: torch.device, dtype: torch.dtype | None) -> "StreamedRows":
        """The same rows, read onto ``device`` with floating columns in ``dtype``."""
        return replace(self, device=torch.device(device), dtype=dtype)

    def read(self, indices: Tensor, where: str = "rows drawn for a minibatch") -> tuple[Tensor, ...]:
        """The rows at ``indices`` (a 1-dimensional tensor), in that order, as columns [len, ...];
        ``where`` names them in an error."""
        chosen = indices.tolist()
        many = getattr(self.dataset, "__getitems__", None)
        try:
            samples = many(chosen) if many is not None else [read_row(self.dataset, index) for index in chosen]
        except IndexError as error:   # from __getitems__: which row, read alone, raises it
            raise (first_unread(self.dataset, chosen) or error) from None
        return self.to_columns(collated(self.collate, samples, f"the {where}"), len(chosen), where)

    def slices(self, rows: int) -> "Slices":
        """All rows in order, at most ``rows`` and ``SLICE_BYTES`` at a time, each slice with a
        leading 1 as a full batch has."""
        return Slices(self, max(1, min(rows, SLICE_BYTES // max(1, self.row_bytes))))

    def loader(self, rows: int) -> DataLoader:
        """The DataLoader that reads the rows in order, ``rows`` at a time (one per slice size,
        its workers kept between passes)."""
        if rows not in self.loaders:
            self.loaders[rows] = DataLoader(self.dataset, batch_size=rows, shuffle=False, collate_fn=self.collate,
                                            num_workers=self.workers, persistent_workers=self.workers > 0)
        return self.loaders[rows]

    def to_columns(self, batch: Any, rows: int, where: str) -> tuple[Tensor, ...]:
        """A collated batch of ``rows`` rows as this source's columns on its device and dtype; a
        batch of other fields or another number of rows, or with values that are not finite, is
        a one-line ``ValueError``."""
        names, values = batch_columns(batch)
        if names != self.fields or len(values) != self.columns:
            raise ValueError(f"the Dataset's {where} have fields {names or len(values)}, its first row had "
                             f"{self.fields or self.columns}")
        if any(len(value) != rows for value in values):
            raise ValueError(f"the Dataset's {where} collated into {[len(value) for value in values]} rows, not "
                             f"{rows}: a collate_fn that drops or adds rows cannot be streamed (stream=False "
                             "reads the rows it gives)")
        columns = []
        for index, value in enumerate(values):
            if value.is_floating_point():
                if not bool(torch.isfinite(value).all()):
                    raise ValueError(f"data column {names[index] if names else index} has values that are not "
                                     f"finite (NaN or inf) in the Dataset's {where}")
                value = value.to(device=self.device, dtype=self.dtype or value.dtype)
            else:
                value = value.to(device=self.device)
            columns.append(value)
        return tuple(columns)


@dataclass(frozen=True)
class Slices:
    """The consecutive slices of :meth:`StreamedRows.slices`: a sequence, read anew on each pass."""

    source: StreamedRows
    rows: int

    def __len__(self) -> int:
        return math.ceil(len(self.source) / self.rows)

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        start, end = index * self.rows, min(len(self.source), (index + 1) * self.rows)
        return tuple(t.unsqueeze(0) for t in self.source.read(torch.arange(start, end), f"rows {start}–{end - 1}"))

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        for number, batch in enumerate(loader_batches(self.source.loader(self.rows))):
            start = number * self.rows
            end = min(len(self.source), start + self.rows)
            yield tuple(t.unsqueeze(0) for t in self.source.to_columns(batch, end - start, f"rows {start}–{end - 1}"))


def on_device(data: tuple[Tensor, ...] | StreamedRows, device: torch.device,
              dtype: torch.dtype) -> tuple[Tensor, ...] | StreamedRows:
    """``data`` on ``device`` with floating columns in ``dtype``, detached from any autograd graph
    (data is never differentiated): tensors converted, streamed rows to be read so."""
    if isinstance(data, StreamedRows):
        return data.cast(device, dtype)
    return tuple(t.detach().to(device=device, dtype=dtype if t.is_floating_point() else t.dtype) for t in data)


def row_count(data: tuple[Tensor, ...] | StreamedRows) -> int:
    """n: the rows of the data (0 for none)."""
    if isinstance(data, StreamedRows):
        return len(data)
    return len(data[0]) if data else 0


def first_rows(tensors: tuple[Tensor, ...] | StreamedRows, column: int, rows: int = 4096) -> Tensor:
    """Column ``column`` of the data: all of it when the rows are tensors, the first ``rows``
    rows when they are streamed (what a check on the data can read without a full pass)."""
    return leading_rows(tensors, rows)[column] if isinstance(tensors, StreamedRows) else tensors[column]


def leading_rows(tensors: tuple[Tensor, ...] | StreamedRows, rows: int) -> tuple[Tensor, ...]:
    """Every column's first ``rows`` rows: sliced from tensors, read from streamed rows."""
    if isinstance(tensors, StreamedRows):
        count = min(rows, len(tensors))
        return tensors.read(torch.arange(count), f"rows 0–{count - 1}")
    return tuple(t[:rows] for t in tensors)
