"""A Dataset streamed slice by slice gives the numbers of the same rows gathered into tensors:
the full-data passes to rounding, the minibatch draws and whole estimates exactly; when it
streams, and bad streamed input (rows a random transform changes at every read among it), are
said in one line."""

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, IterableDataset, SequentialSampler, SubsetRandomSampler

from sltlab.estimators import LLCConfig, estimate_llc, estimate_llc_along
from sltlab.estimators import data_rows as module_path
from sltlab.estimators import posterior as posterior_module
from sltlab.estimators.functional import FunctionalModel
from sltlab.estimators.sample_losses import gaussian_nll
from sltlab.estimators.posterior import mean_loss, mean_loss_and_gradient
from sltlab.estimators.sampling import Batches
from sltlab.estimators.step_size import hessian_vector_products
from sltlab.estimators import streamed as streamed_module
from sltlab.estimators.streamed import StreamedRows

SHORT = dict(chains=3, draws=30, burnin=10, step_size=1e-4, localize_at="true_parameter", seed=5)


class DictRows(Dataset):
    """Rows of (x, y) served one dict at a time, as a user's Dataset would."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return {"x": self.x[index], "y": self.y[index]}


class JitteredRows(DictRows):
    """DictRows whose inputs get fresh noise at every read, as a random transform gives."""

    def __getitem__(self, index):
        row = super().__getitem__(index)
        return {**row, "x": row["x"] + 0.05 * torch.randn_like(row["x"])}


class Stream(IterableDataset):
    def __iter__(self):
        yield from zip(torch.randn(20, 3), torch.randn(20, 2))


@pytest.fixture(scope="module")
def problem():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(203, 3, generator=generator, dtype=torch.float64)
    y = x @ torch.randn(3, 2, generator=generator, dtype=torch.float64) + 0.1 * torch.randn(
        203, 2, generator=generator, dtype=torch.float64)
    torch.manual_seed(0)   # the layers' initial weights: torch's own seed differs from one process to the next
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    return model, x, y


def _streamed(x, y):
    return StreamedRows(DictRows(x, y), torch.utils.data.default_collate, ("x", "y"), 2)


def test_full_data_passes_read_slice_by_slice_agree_with_tensors(problem, monkeypatch):
    model, x, y = problem
    monkeypatch.setattr(posterior_module, "FULL_PASS_ROWS", 50)   # 203 rows: five slices, the last of 3 rows
    loss = FunctionalModel(model, gaussian_nll, fields=("x", "y"), inputs="x", targets="y")
    position = loss.flatten().unsqueeze(0).repeat(2, 1) + 0.01 * torch.randn(2, loss.flatten().numel(),
                                                                            dtype=torch.float64)
    tensors, streamed = (x.unsqueeze(0), y.unsqueeze(0)), _streamed(x, y)
    assert len(posterior_module.row_chunks(streamed)) == 5
    torch.testing.assert_close(mean_loss(loss, position, streamed), mean_loss(loss, position, tensors),
                               rtol=1e-12, atol=1e-14)
    for got, want in zip(mean_loss_and_gradient(loss, position, streamed),
                         mean_loss_and_gradient(loss, position, tensors)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    vector = torch.randn_like(position)
    torch.testing.assert_close(hessian_vector_products(loss, position, streamed)(vector),
                               hessian_vector_products(loss, position, tensors)(vector), rtol=1e-10, atol=1e-12)


def test_minibatches_read_by_index_are_the_rows_drawn_from_tensors(problem):
    _, x, y = problem
    drawn = [Batches(data, 16).draw(3, torch.Generator().manual_seed(9)) for data in ((x, y), _streamed(x, y))]
    assert drawn[0][0].shape == (3, 16, 3)
    for from_tensors, from_stream in zip(*drawn):
        assert torch.equal(from_tensors, from_stream)


@pytest.mark.parametrize("sampler, batch_size", [("sgld", 32), ("mala", None)])
def test_a_streamed_estimate_equals_the_gathered_one(problem, sampler, batch_size):
    model, x, y = problem
    loader = DataLoader(DictRows(x, y), batch_size=40)   # in order: gathered, the rows keep the loader's order
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # short runs fail the mixing gate, alike both ways
        results = [estimate_llc(model, loader, stream=stream, sampler=sampler, batch_size=batch_size, **SHORT)
                   for stream in (False, True)]
        # rows served with requires_grad=True are read as plain numbers, slice by slice as gathered
        tracked = estimate_llc(model, DataLoader(DictRows(x.clone().requires_grad_(), y), batch_size=40), stream=True,
                               sampler=sampler, batch_size=batch_size, **SHORT)
    gathered, streamed = results
    assert streamed.per_chain == gathered.per_chain == tracked.per_chain and streamed.mean == gathered.mean
    assert streamed.n == gathered.n == 203
    assert any("streamed, never held whole" in note for note in streamed.notes)
    assert not any("streamed" in note for note in gathered.notes)


def test_checkpoints_along_training_stream_alike(problem):
    model, x, y = problem
    other = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = [estimate_llc_along([model, other], DictRows(x, y), calibrate_at=None, stream=stream, **SHORT)
                for stream in (False, True)]
    assert [r.mean for r in runs[0].results] == [r.mean for r in runs[1].results]


def test_a_dataset_larger_than_the_limit_is_streamed_unasked(problem, monkeypatch):
    _, x, y = problem
    monkeypatch.setattr(module_path, "GATHER_LIMIT_BYTES", 203 * 5 * 8 - 1)   # one byte under the rows' size
    assert isinstance(module_path.read_rows(DictRows(x, y)).tensors, StreamedRows)
    monkeypatch.setattr(module_path, "GATHER_LIMIT_BYTES", 203 * 5 * 8)
    assert isinstance(module_path.read_rows(DictRows(x, y)).tensors, tuple)
    assert isinstance(module_path.read_rows(DictRows(x, y), stream=False).tensors, tuple)


def test_bad_streamed_input_is_one_line(problem):
    model, x, y = problem
    with pytest.raises(ValueError, match="tensors are in memory already"):
        estimate_llc(model, (x, y), stream=True, **SHORT)
    with pytest.raises(ValueError, match="IterableDataset has no rows to read by index"):
        estimate_llc(model, DataLoader(Stream(), batch_size=5), stream=True, **SHORT)
    broken = x.clone()
    broken[150, 1] = float("nan")
    with pytest.raises(ValueError, match=r"not finite .* rows 0–202") as error:
        estimate_llc(model, DictRows(broken, y), stream=True, config=LLCConfig(**SHORT))
    assert "\n" not in str(error.value)
    for wrong in ("yes", 1, 0.0):   # 1 and 0.0 compare equal to True and False
        with pytest.raises(ValueError, match="stream must be True, False or None"):
            estimate_llc(model, DictRows(x, y), stream=wrong, **SHORT)


def test_rows_that_differ_when_read_again_are_not_streamed(problem, monkeypatch):
    model, x, y = problem
    refused = (r"^reading the first 8 rows of the 203 to be streamed twice gave different values \(a random "
               r"transform in __getitem__\?\): .* give stream=False to read them once into tensors")
    with pytest.raises(ValueError, match=refused):
        estimate_llc(model, JitteredRows(x, y), stream=True, **SHORT)
    monkeypatch.setattr(module_path, "GATHER_LIMIT_BYTES", 0)   # too large to gather unasked: refused too
    with pytest.raises(ValueError, match=refused):
        estimate_llc(model, JitteredRows(x, y), **SHORT)
    gathered = module_path.read_rows(JitteredRows(x, y), stream=False)
    assert isinstance(gathered.tensors, tuple) and "fixed at that one pass" in gathered.notes[0]
    assert "read twice, were the same" in module_path.read_rows(DictRows(x, y), stream=True).notes[0]


def test_only_a_loader_that_reads_every_row_once_is_streamed(problem, monkeypatch):
    _, x, y = problem
    monkeypatch.setattr(module_path, "GATHER_LIMIT_BYTES", 0)   # every Dataset would stream if it could
    rows = DictRows(x, y)
    assert isinstance(module_path.read_rows(DataLoader(rows, batch_size=7, shuffle=True)).tensors, StreamedRows)
    subset = DataLoader(rows, batch_size=7, sampler=SubsetRandomSampler(range(50), torch.Generator().manual_seed(1)))
    batches = DataLoader(rows, batch_sampler=BatchSampler(SequentialSampler(rows), 7, drop_last=False))
    prebatched = DataLoader(rows, batch_size=None)
    for loader, why in ((subset, "does not visit every row once"), (batches, "batch_size=None or a batch_sampler"),
                        (prebatched, "batch_size=None or a batch_sampler")):
        with pytest.raises(ValueError, match=why) as error:
            module_path.read_rows(loader, stream=True)
        assert "\n" not in str(error.value)
    gathered = module_path.read_rows(subset).tensors   # unasked, the sampler's rows are read once instead
    assert isinstance(gathered, tuple) and len(gathered[0]) == 50
    assert isinstance(module_path.read_rows(batches).tensors, tuple)


def test_a_collate_fn_that_drops_rows_is_one_line(problem):
    _, x, y = problem

    def skip_negative(samples):
        return torch.utils.data.default_collate([s for s in samples if s["x"][0] > 0])

    source = StreamedRows(DictRows(x, y), skip_negative, ("x", "y"), 2)
    with pytest.raises(ValueError, match="collate_fn that drops or adds rows"):
        source.read(torch.arange(40))
    with pytest.raises(ValueError, match="collate_fn that drops or adds rows"):
        list(source.slices(64))


def test_slices_are_bounded_in_bytes_and_read_alike(problem, monkeypatch):
    model, x, y = problem
    source = StreamedRows(DictRows(x, y), torch.utils.data.default_collate, ("x", "y"), 2, row_bytes=5 * 8)
    monkeypatch.setattr(streamed_module, "SLICE_BYTES", 30 * 5 * 8)   # 30 rows of five float64 values
    slices = source.slices(4096)
    assert slices.rows == 30 and len(slices) == 7 and [len(s[0][0]) for s in slices][-1] == 203 - 6 * 30
    assert source.loader(30) is source.loader(30)   # one loader per slice size, its workers kept
    loss = FunctionalModel(model, gaussian_nll, fields=("x", "y"), inputs="x", targets="y")
    position = loss.flatten().unsqueeze(0)
    torch.testing.assert_close(mean_loss(loss, position, source), mean_loss(loss, position, (x[None], y[None])),
                               rtol=1e-12, atol=1e-14)


def test_restrictions_sampled_together_stream_alike(problem):
    model, x, y = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = [estimate_llc(model, DictRows(x, y), restrict_to=["0.*", "2.*"], stream=stream, batch_size=32,
                             **SHORT) for stream in (False, True)]
    assert all(any("2 restrictions sampled together" in note for note in result.notes) for result in runs[1])
    # Rows in memory read each draw's L_b(w*) from a table of every row's loss at the centre, streamed rows
    # sum it anew: the same float32 sum in another order, about 1e-7 of a loss of a few units, times nβ.
    nbeta = runs[0][0].nbeta
    assert [r.mean for r in runs[1]] == pytest.approx([r.mean for r in runs[0]], rel=0, abs=nbeta * 1e-6)
