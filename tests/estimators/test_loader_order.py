"""A loader read once into tensors is read without its drop_last and shuffled order where those
would change n or tie it to torch's global random state, and as it is elsewhere: an iterable
dataset (its sampler is endless: listing it had hung), or a loader whose batches change nothing."""

import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset, Sampler, TensorDataset

from sltlab.estimators.data_rows import read_rows

ROWS = TensorDataset(torch.arange(10.0).unsqueeze(1), torch.arange(10.0).unsqueeze(1))


class Stream(IterableDataset):
    def __iter__(self):
        for index in range(10):
            yield torch.tensor([float(index)]), torch.tensor([float(index)])


class Backwards(Sampler):
    def __len__(self):
        return 10

    def __iter__(self):
        return iter(range(9, -1, -1))


def test_an_iterable_dataset_is_read_as_its_loader_gives_it():
    rows = read_rows(DataLoader(Stream(), batch_size=4, drop_last=True))
    assert len(rows.tensors[0]) == 8 and not any("not used" in note for note in rows.notes)


def test_drop_last_that_drops_nothing_in_order_leaves_the_loader_as_it_is():
    rows = read_rows(DataLoader(ROWS, batch_size=5, drop_last=True))
    assert rows.tensors[0].flatten().tolist() == list(range(10)) and not any("not used" in n for n in rows.notes)


def test_drop_last_that_drops_rows_is_read_whole_and_a_sampler_of_its_own_as_it_is():
    rows = read_rows(DataLoader(ROWS, batch_size=4, drop_last=True))
    assert rows.tensors[0].flatten().tolist() == list(range(10))   # drop_last had kept 8
    assert any(note.startswith("the loader's drop_last (which drops 2 of them) and order are not used")
               for note in rows.notes)
    # a sampler of its own may draw its rows at random: they are read as it gives them, and counted
    rows = read_rows(DataLoader(ROWS, batch_size=4, sampler=Backwards(), drop_last=True))
    assert rows.tensors[0].flatten().tolist() == list(range(9, 1, -1))
    assert any("the loader gave n = 8 rows of a dataset of 10 items" in note for note in rows.notes)


def test_a_shuffled_loader_without_automatic_batching_is_read_in_index_order():
    rows = read_rows(DataLoader(ROWS, batch_size=None, shuffle=True))   # its order had followed the global seed
    assert rows.tensors[0].flatten().tolist() == list(range(10))
    assert any(note.startswith("the loader's order is not used") for note in rows.notes)


def test_the_notes_say_minibatches_are_not_the_loaders():
    rows = read_rows(DataLoader(ROWS, batch_size=4))
    assert any("minibatches (batch_size=, not the loader's 4) are drawn from these rows" in note for note in rows.notes)


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")   # on a machine of one core
def test_an_iterable_dataset_every_worker_reads_whole_is_said_to_repeat_its_rows():
    rows = read_rows(DataLoader(Stream(), batch_size=4, num_workers=2))   # Stream does not shard by worker
    assert len(rows.tensors[0]) == 20
    assert any(note.startswith("10 of the n = 20 rows repeat an earlier one exactly, and the IterableDataset was read "
                               "by 2 workers") for note in rows.notes)
