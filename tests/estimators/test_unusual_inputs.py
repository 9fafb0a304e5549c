"""What researchers' own modules and data bring that the registry's never do, each read right or
refused in one line: a module that keeps an activation, is pruned or holds a lock (it is copied
before sampling); rows of different shapes; an IterableDataset that never ends; a Dataset whose
loader would draw from torch's global random state; dict-like rows that are no dict; a truth
value given as a field; the default fallback where γ = 0; floating-point indices for an
embedding; boolean regression targets; and warnings of several restrictions, each naming its own."""

import collections
import threading
import warnings

import numpy as np
import pytest
import torch
import torch.nn.utils.prune
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

import sltlab.estimators.data_rows as data_rows
from sltlab.estimators import estimate_llc, estimate_llc_along
from sltlab.estimators.data_rows import read_rows
from sltlab.estimators.functional import copied_module
from sltlab.estimators.notices import EstimateWarning

from tests.estimators.test_module_bad_input import SHORT
from tests.estimators.test_streamed_rows import DictRows


@pytest.fixture(scope="module")
def rows():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=generator)
    return x, x @ torch.randn(4, 2, generator=generator)


def one_line(error: pytest.ExceptionInfo) -> str:
    assert "\n" not in str(error.value)
    return str(error.value)


class KeepsActivation(nn.Module):
    """Keeps its hidden activation, with its graph, as a plain attribute."""

    def __init__(self):
        super().__init__()
        self.hidden, self.out, self.last = nn.Linear(4, 3), nn.Linear(3, 2), None

    def forward(self, x):
        self.last = torch.tanh(self.hidden(x))
        return self.out(self.last)


def quiet_estimate(*args, **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimateWarning)
        return estimate_llc(*args, **settings)


def quiet_estimate_along(*args, **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimateWarning)
        return estimate_llc_along(*args, **settings)


def test_a_module_keeping_an_activation_is_sampled_and_left_as_it_was(rows):
    x, y = rows
    torch.manual_seed(0)
    module = KeepsActivation()
    module(x).square().sum().backward()
    kept, weight = module.last, module.hidden.weight.detach().clone()
    result = quiet_estimate(module, (x, y), **SHORT)
    assert result.mean is not None and module.last is kept and torch.equal(module.hidden.weight, weight)
    copy, detached = copied_module(module)
    assert copy.last.grad_fn is None and torch.equal(copy.last, kept.detach())
    assert [(path, name) for path, name, _ in detached] == [("", "last")]


def test_a_pruned_layer_is_sampled_through_its_mask(rows):
    x, y = rows
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    torch.nn.utils.prune.l1_unstructured(module[0], "weight", amount=0.5)
    module(x)
    result = quiet_estimate(module, (x, y), **SHORT)
    assert "0.weight_orig" in result.parameters and result.mean is not None
    copy, detached = copied_module(module)
    copy[0].weight_orig.data.fill_(1.0)
    copy(x)   # the pruning hook recomputes the copy's weight from its own parameters and mask
    assert torch.equal(copy[0].weight, module[0].weight_mask)


class TiedInInit(nn.Module):
    """Decodes with its encoder's weight as taken once, in __init__: a view of it, a product, or its
    memory (``.data``)."""

    def __init__(self, how: str):
        super().__init__()
        self.encoder = nn.Linear(4, 2, bias=False)
        weight = self.encoder.weight
        self.decoder_weight = {"view": weight[:], "product": weight * 1.0, "memory": weight.data}[how]

    def forward(self, x):
        return torch.tanh(self.encoder(x)) @ self.decoder_weight


class CachesATranspose(nn.Module):
    """Sets a view of its weight as an attribute at every forward, and uses it."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(4, 2, bias=False)

    def forward(self, x):
        self.decoder_weight = self.encoder.weight[:]
        return torch.tanh(self.encoder(x)) @ self.decoder_weight


def test_a_view_the_forward_sets_anew_is_sampled(rows):
    module = CachesATranspose()
    module(rows[0])   # the attribute now holds a view of the weight, with its graph
    assert quiet_estimate(module, (rows[0], rows[0]), **SHORT).mean is not None


@pytest.mark.parametrize("how", ["view", "product", "memory"])
def test_a_tensor_made_from_the_parameters_outside_the_forward_is_refused(rows, how):
    with pytest.raises(ValueError) as error:   # it would not follow the sampled weight (the memory: even uncopied)
        estimate_llc(TiedInInit(how), (rows[0], rows[0]), **SHORT)
    assert "the module holds decoder_weight as a plain tensor attribute" in one_line(error)


def test_a_step_that_is_no_finite_number_is_refused(rows):
    module = nn.Linear(4, 2)
    checkpoints = [{"state_dict": module.state_dict(), "step": step} for step in (5, float("nan"), 1)]
    with pytest.raises(ValueError, match="records step = nan: a training step must be a finite number"):
        estimate_llc_along(checkpoints, rows, model=nn.Linear(4, 2), **SHORT)   # NaN had hidden the order


def test_a_numpy_index_is_taken_as_the_checkpoint_to_calibrate_at(rows):
    torch.manual_seed(0)
    checkpoints = [nn.Linear(4, 2), nn.Linear(4, 2)]
    along = quiet_estimate_along(checkpoints, rows, calibrate_at=np.argmax([0.2, 0.9]), **SHORT)   # had been refused
    assert len(along.results) == 2 and all(result.mean is not None for result in along.results)


@pytest.mark.parametrize("how", ["view", "product"])
def test_a_tie_made_in_init_is_refused_along_training_too(rows, how):
    template = TiedInInit(how)   # the product had been sampled with the template's values, unwarned
    states = [{name: value + step for name, value in template.state_dict().items()} for step in (0.0, 0.1)]
    with pytest.raises(ValueError, match="the module holds decoder_weight as a plain tensor attribute"):
        estimate_llc_along(states, (rows[0], rows[0]), model=template, **SHORT)


def test_a_view_the_forward_sets_anew_is_sampled_along_training(rows):
    template = CachesATranspose()
    template(rows[0])   # had been refused at the template's copy
    states = [{name: value + step for name, value in template.state_dict().items()} for step in (0.0, 0.1)]
    along = quiet_estimate_along(states, (rows[0], rows[0]), model=template, **SHORT)
    assert all(result.mean is not None for result in along.results)


def test_a_module_that_cannot_be_copied_is_one_line(rows):
    module = KeepsActivation()
    module.lock = threading.Lock()
    with pytest.raises(ValueError) as error:
        estimate_llc(module, rows, **SHORT)
    assert "cannot be copied" in one_line(error) and "_thread.lock" in str(error.value)


class Ragged(Dataset):
    def __len__(self):
        return 40

    def __getitem__(self, index):
        return torch.ones(3 + index % 3), torch.ones(1)


def padded(batch):
    longest = max(len(row) for row, _ in batch)
    return (torch.stack([torch.cat([row, row.new_zeros(longest - len(row))]) for row, _ in batch]),
            torch.stack([target for _, target in batch]))


@pytest.mark.parametrize("data, words", [
    (Ragged(), "the rows of batch 0 have different shapes"),
    (DataLoader(Ragged(), batch_size=2, collate_fn=padded), "field 0 has rows of shape [5] in batch 1 and [4]")])
def test_rows_of_different_shapes_are_one_line(data, words):
    with pytest.raises(ValueError) as error:
        estimate_llc(nn.Linear(5, 1), data, **SHORT)
    assert words in one_line(error)


def test_streamed_rows_of_different_shapes_are_one_line():
    with pytest.raises(ValueError) as error:
        estimate_llc(nn.Linear(5, 1), Ragged(), stream=True, **SHORT)
    assert "the first 8 rows have different shapes" in one_line(error)


class Unending(IterableDataset):
    def __iter__(self):
        while True:
            yield torch.ones(4), torch.ones(1)


def test_an_unending_iterable_is_refused_at_the_gathering_limit(monkeypatch):
    monkeypatch.setattr(data_rows, "GATHER_LIMIT_BYTES", 2 ** 12)
    with pytest.raises(ValueError) as error:
        estimate_llc(nn.Linear(4, 1), DataLoader(Unending(), batch_size=16), **SHORT)
    assert "has no __len__: it may never end" in one_line(error)


@pytest.mark.parametrize("shape", ["dataset", "shuffled loader"])
def test_reading_a_dataset_leaves_the_global_random_state_as_it_was(rows, shape):
    dataset = TensorDataset(*rows)
    data = dataset if shape == "dataset" else DataLoader(dataset, batch_size=10, shuffle=True)
    module = nn.Linear(4, 2)
    torch.manual_seed(123)
    quiet_estimate(module, data, **SHORT)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3))


class Drawn(IterableDataset):
    """40 rows drawn from torch's global random state as they are read."""

    def __iter__(self):
        for _ in range(40):
            yield torch.randn(3), torch.randn(1)


def test_rows_drawn_as_they_are_read_differ_from_batch_to_batch_and_the_state_is_kept():
    torch.manual_seed(7)
    rows = read_rows(DataLoader(Drawn(), batch_size=10)).tensors[0]
    after = torch.rand(3)
    torch.manual_seed(7)
    assert len(torch.unique(rows, dim=0)) == 40 and torch.equal(after, torch.rand(3))   # batches had repeated


class UserDictRows(DictRows):
    def __getitem__(self, index):
        return collections.UserDict(inputs=self.x[index], labels=self.y[index])


def test_dict_like_rows_are_read_as_dicts(rows):
    torch.manual_seed(0)
    module = nn.Linear(4, 2)
    from_tensors = quiet_estimate(module, rows, **SHORT)
    from_rows = quiet_estimate(module, UserDictRows(*rows), inputs="inputs", targets="labels", **SHORT)
    assert from_rows.mean == pytest.approx(from_tensors.mean, rel=1e-6)


@pytest.mark.parametrize("option", ["inputs", "targets"])
def test_a_truth_value_is_no_field(rows, option):
    with pytest.raises(ValueError) as error:
        estimate_llc(nn.Linear(4, 2), rows, **{option: False}, **SHORT)
    assert f"{option}=False is a truth value" in one_line(error)


def test_the_default_fallback_without_localisation_says_how_to_leave_it_out(rows):
    with pytest.raises(ValueError) as error:
        estimate_llc(nn.Linear(4, 2), rows, localization=0.0)
    assert "the fallback sampler, hmc" in one_line(error) and "fallback=None" in str(error.value)


def test_floating_point_indices_for_an_embedding_are_named():
    tokens = torch.arange(30) % 10
    module = nn.Sequential(nn.Embedding(10, 3), nn.Linear(3, 2))
    with pytest.raises(ValueError) as error:
        estimate_llc(module, (tokens.float(), torch.zeros(30, 2)), **SHORT)
    assert "takes integer indices" in one_line(error) and "tokens.long()" in str(error.value)


def test_boolean_regression_targets_read_as_their_numbers(rows):
    x = rows[0]
    labels = x[:, :1] > 0
    torch.manual_seed(0)
    module = nn.Linear(4, 1)
    as_booleans = quiet_estimate(module, (x, labels), **SHORT)
    as_numbers = quiet_estimate(module, (x, labels.float()), **SHORT)
    assert as_booleans.mean == as_numbers.mean


@pytest.mark.parametrize("sampler", ["sgld", "mala"])   # sampled together, and one after the other
def test_each_restrictions_warnings_name_it(rows, sampler):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        results = estimate_llc(module, rows, restrict_to=["0.*", "2.*"], sampler=sampler, chains=2, draws=20,
                               burnin=10, step_size=1e-4, localize_at="true_parameter")
    ours = [str(notice.message) for notice in raised if issubclass(notice.category, EstimateWarning)]
    assert ours and all(message.startswith(("restriction '0.*': ", "restriction '2.*': ")) for message in ours)
    assert sum(len(result.warnings) for result in results) == len(ours)
