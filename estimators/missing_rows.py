"""A map-style Dataset whose ``__len__`` states more rows than its ``__getitem__`` can read.

n is the Dataset's stated length, and every row below it is read, when the rows are gathered and
again at every full-data pass when they are streamed; a row that raises ``IndexError`` there
means the length is wrong. Such a read is a one-line ``ValueError`` naming the stated length and
the first row that could not be read (the last row stated, where a loader's own batch sampler
hides which rows a batch read), in place of the Dataset's own ``IndexError`` from inside a
DataLoader (or, from a loader's worker, a traceback of it). A Dataset that states fewer rows than
it holds cannot be told from a smaller one: its rows are read to its length.
"""

from __future__ import annotations

from itertools import count, islice
from typing import Any, Callable, Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, SequentialSampler

from sltlab.estimators.failure_place import first_line_of


def read_row(dataset: Dataset, index: int) -> Any:
    """``dataset[index]``; an ``IndexError`` there is :func:`unread_row`'s ``ValueError``."""
    try:
        return dataset[index]
    except IndexError as error:
        raise unread_row(dataset, index, error) from None


def unread_row(dataset: Dataset, index: int, error: IndexError) -> ValueError:
    """The error for row ``index`` of ``dataset``, which raised ``error`` (an ``IndexError``)."""
    return ValueError(f"the Dataset's __len__ says it has {len(dataset)} rows, but reading row {index} raised "
                      f"IndexError ({first_line_of(error)}): __getitem__ must read every row below __len__, so "
                      "either __len__ overstates the rows (give a torch.utils.data.Subset of those it reads) or "
                      "__getitem__ fails on that row")


def first_unread(dataset: Dataset, indices: Iterable[int] | None) -> ValueError | None:
    """After a read of several rows of ``dataset`` raised ``IndexError`` (in a DataLoader, perhaps
    in a worker, or through ``__getitems__``), the error for the first of ``indices`` (the rows
    read, where known, else the last row the length states) that raises it read alone; None
    where each reads alone, or the Dataset has no length, and the ``IndexError`` is not the
    length's."""
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        return None
    for index in range(len(dataset) - 1, len(dataset)) if indices is None else indices:
        try:
            dataset[index]
        except IndexError as error:
            return unread_row(dataset, index, error)
    return None


def loader_batches(loader: DataLoader) -> Iterator[Any]:
    """The batches of ``loader``, an ``IndexError`` in reading one :func:`first_unread`'s error for
    the rows of that batch (where it stands for one), and rows of different shapes, which the
    collation cannot stack, a one-line ``ValueError``. Torch's global random state is put back as
    it was once the batches end: a DataLoader's iterator draws its workers' base seed from it (and
    a shuffling sampler its order), which would change the caller's later random numbers. Between
    batches it runs on, so that rows a Dataset draws as it is read (synthetic rows, a random
    transform) differ from batch to batch, as they would without the call."""
    kept = torch.random.get_rng_state()
    try:
        batches = iter(loader)
        for number in count():
            try:
                batch = next(batches)
            except StopIteration:
                return
            except IndexError as error:
                raise (first_unread(loader.dataset, _rows_of_batch(loader, number)) or error) from None
            except RuntimeError as error:
                raise unstacked(error, f"the rows of batch {number}") from None
            yield batch
    finally:
        torch.random.set_rng_state(kept)


def collated(collate: Callable[[list], Any], samples: list, what: str) -> Any:
    """``collate(samples)``, rows of different shapes a one-line ``ValueError`` (:func:`unstacked`)."""
    try:
        return collate(samples)
    except RuntimeError as error:
        raise unstacked(error, what) from None


def unstacked(error: RuntimeError, what: str) -> Exception:
    """The one-line ``ValueError`` for ``what`` (rows) that a collation could not stack, having
    different shapes; ``error`` itself when it says something else."""
    if not any(words in str(error) for words in ("stack expects each tensor to be equal size",
                                                 "Sizes of tensors must match")):   # torch's words
        return error
    return ValueError(f"{what} have different shapes and cannot be collated ({first_line_of(error)}): every row of a "
                      "field must have one shape; pad them to a common length (e.g. torch.nn.utils.rnn.pad_sequence "
                      "over the whole data set)")


def _rows_of_batch(loader: DataLoader, number: int) -> list[int] | None:
    """The indices batch ``number`` of ``loader`` read, where its sampler reads in index order (a
    ``SequentialSampler`` or a list of indices) and it has no batch sampler of its own; else None."""
    if loader.batch_size is None and loader.batch_sampler is not None:
        return None
    if not isinstance(loader.sampler, (SequentialSampler, list)):
        return None
    size = loader.batch_size or 1
    return list(islice(loader.sampler, number * size, (number + 1) * size))
