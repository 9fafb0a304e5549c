"""A Dataset whose ``__len__`` states 100 rows where ``__getitem__`` reads 80 is a one-line
ValueError naming the stated length and row 80, gathered (from the Dataset, or from a loader
sequential, shuffled, in a worker, or without batching), streamed (at its first full-data pass,
before sampling) and drawn by index into a minibatch; a loader with a batch sampler of its own
names the last row stated. A Dataset that states fewer rows than it holds is read to its length."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from sltlab.estimators import estimate_llc
from sltlab.estimators.data_rows import read_rows

X = torch.arange(160, dtype=torch.float32).reshape(80, 2) / 80
Y = X.sum(1, keepdim=True)
SHORT = dict(chains=2, draws=20, burnin=10, step_size=1e-4, localize_at="true_parameter", extend_unmixed=0,
             fallback=None)
STATED = ("^the Dataset's __len__ says it has 100 rows, but reading row {} raised IndexError "
          "\\(list index out of range\\)")


class Overstated(Dataset):
    """80 rows, 100 stated."""

    def __len__(self):
        return 100

    def __getitem__(self, index):
        if index >= 80:
            raise IndexError("list index out of range")
        return X[index], Y[index]


class ManyAtOnce(Overstated):
    """Reads a minibatch's rows through ``__getitems__``, which raises on the first row past 80."""

    def __getitems__(self, indices):
        if max(indices) >= 80:
            raise IndexError("list index out of range")
        return [self[index] for index in indices]


class TwoBatches:
    """A batch sampler of its own: rows 0–49, then 50–99."""

    def __iter__(self):
        return iter([list(range(50)), list(range(50, 100))])

    def __len__(self):
        return 2


@pytest.mark.parametrize("data", [Overstated(), DataLoader(Overstated(), batch_size=16),
                                  DataLoader(Overstated(), batch_size=16, shuffle=True),
                                  DataLoader(Overstated(), batch_size=16, num_workers=1),
                                  DataLoader(Overstated(), batch_size=None)],
                         ids=["dataset", "loader", "shuffled", "worker", "unbatched"])
def test_gathering_names_the_stated_length_and_the_first_row_that_could_not_be_read(data):
    with pytest.raises(ValueError, match=STATED.format(80) + ": __getitem__ must read every row below __len__"):
        read_rows(data)


def test_a_loader_with_a_batch_sampler_of_its_own_names_the_last_row_stated():
    with pytest.raises(ValueError, match=STATED.format(99)):
        read_rows(DataLoader(Overstated(), batch_sampler=TwoBatches()))


def test_streamed_rows_are_refused_at_the_first_full_pass():
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=STATED.format(80)):
        estimate_llc(nn.Linear(2, 1), Overstated(), stream=True, **SHORT)


@pytest.mark.parametrize("dataset", [Overstated(), ManyAtOnce()], ids=["getitem", "getitems"])
def test_a_minibatch_drawn_past_the_rows_names_the_row(dataset):
    rows = read_rows(dataset, stream=True).tensors
    with pytest.raises(ValueError, match=STATED.format(85)):
        rows.read(torch.tensor([3, 85, 90]))


def test_an_index_error_of_a_batch_whose_rows_each_read_alone_is_the_datasets_own():
    class CollatedBadly(Overstated):
        def __getitems__(self, indices):
            raise IndexError("a bug of the Dataset's own")

    with pytest.raises(IndexError, match="^a bug of the Dataset's own$"):
        read_rows(CollatedBadly(), stream=True).tensors.read(torch.tensor([1, 2]))


def test_a_dataset_that_states_fewer_rows_than_it_holds_is_read_to_its_length():
    class Understated(Overstated):
        def __len__(self):
            return 60

    x, y = read_rows(Understated()).tensors
    assert x.shape == (60, 2) and torch.equal(y, Y[:60])


def test_a_batch_larger_than_the_data_is_all_of_it_and_says_so():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # a short run: the mixing gate is not what is tested
        result = estimate_llc(nn.Linear(2, 1), (X, Y), sampler="sgld", batch_size=1000, **SHORT)
    assert result.config.batch_size == 80
    assert "batch_size = 1,000 is more rows than the data hold: every batch is all 80" in result.notes


def test_checkpoints_sampled_together_say_too_that_a_batch_larger_than_the_data_is_all_of_it():
    import warnings

    from sltlab.estimators import estimate_llc_along

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        along = estimate_llc_along([nn.Linear(2, 1), nn.Linear(2, 1)], (X, Y), sampler="sgld", batch_size=1000,
                                   calibrate_at=None, **SHORT)
    assert all("batch_size = 1,000 is more rows than the data hold: every batch is all 80" in result.notes
               for result in along.results)
