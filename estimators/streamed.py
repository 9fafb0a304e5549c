"""A data set read in slices, never held whole: for a Dataset too large to gather into tensors.

:class:`StreamedRows` stands wherever the estimators take data tensors of n rows. A full-data
pass (L_n(w*), localisation, the curvature of the step-size rule, MALA's energies, the
functional variance) reads the rows in order, ``rows`` at a time, through a DataLoader over the
Dataset; a minibatch reads the rows drawn for it by index (the Dataset's ``__getitems__`` where
it has one, otherwise one ``__getitem__`` per row), so draws follow the run's seeded generator
exactly as they do on tensors. Samples may be tuples, dicts or single tensors; they become a
tuple of columns, named by ``fields`` when they were dicts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset


def batch_columns(batch: Any) -> tuple[tuple[str, ...] | None, tuple[Tensor, ...]]:
    """A collated batch (dict, tuple, list or one tensor) as (field names or None, columns)."""
    if isinstance(batch, dict):
        names, values = tuple(str(key) for key in batch), tuple(batch.values())
    elif isinstance(batch, (tuple, list)):
        names, values = None, tuple(batch)
    else:
        names, values = None, (batch,)
    for index, value in enumerate(values):
        if not isinstance(value, Tensor) or value.dim() == 0:
            where = names[index] if names else index
            raise ValueError(f"batch field {where!r} is {type(value).__name__}, not a tensor with a row per sample")
    return names, values


@dataclass(frozen=True)
class StreamedRows:
    """The n rows of a map-style ``dataset`` as columns, read on demand on ``device``, floating
    columns in ``dtype`` (as stored when None). ``collate`` joins samples into a batch (the
    DataLoader's ``collate_fn``); ``workers`` read the slices of a full-data pass."""

    dataset: Dataset
    collate: Callable
    fields: tuple[str, ...] | None
    columns: int
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype | None = None
    workers: int = 0

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
        samples = many(chosen) if many is not None else [self.dataset[index] for index in chosen]
        return self.to_columns(self.collate(samples), where)

    def slices(self, rows: int) -> "Slices":
        """All rows in order, ``rows`` at a time, each slice with a leading 1 as a full batch has."""
        return Slices(self, rows)

    def to_columns(self, batch: Any, where: str) -> tuple[Tensor, ...]:
        """A collated batch as this source's columns on its device and dtype; a batch of other
        fields, or with values that are not finite, is a one-line ``ValueError``."""
        names, values = batch_columns(batch)
        if names != self.fields or len(values) != self.columns:
            raise ValueError(f"the Dataset's {where} have fields {names or len(values)}, its first row had "
                             f"{self.fields or self.columns}")
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
        loader = DataLoader(self.source.dataset, batch_size=self.rows, shuffle=False,
                            collate_fn=self.source.collate, num_workers=self.source.workers)
        for number, batch in enumerate(loader):
            start = number * self.rows
            where = f"rows {start}–{min(len(self.source), start + self.rows) - 1}"
            yield tuple(t.unsqueeze(0) for t in self.source.to_columns(batch, where))


def on_device(data: tuple[Tensor, ...] | StreamedRows, device: torch.device,
              dtype: torch.dtype) -> tuple[Tensor, ...] | StreamedRows:
    """``data`` on ``device`` with floating columns in ``dtype``: tensors converted, streamed
    rows to be read so."""
    if isinstance(data, StreamedRows):
        return data.cast(device, dtype)
    return tuple(t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype) for t in data)


def row_count(data: tuple[Tensor, ...] | StreamedRows) -> int:
    """n: the rows of the data (0 for none)."""
    if isinstance(data, StreamedRows):
        return len(data)
    return len(data[0]) if data else 0
