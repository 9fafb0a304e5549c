"""L_b(w*) read from a table of every row's loss at the centres equals L_b(w*) evaluated on each
recorded minibatch, up to rounding (float64, 1e-12), for a shared centre and for per-chain
centres; the table is built only where it is cheaper and fits."""

import numpy as np
import torch

import sltlab.estimators.row_losses as row_losses
from sltlab.estimators.posterior import LocalPosterior
from sltlab.estimators.row_losses import center_row_losses
from sltlab.estimators.sampling import Batches, run_chains
from sltlab.estimators.sgld import sgld
from sltlab.models.deep_linear import DeepLinearNetwork


def _problem(rows=40, batch_size=6, seed=3):
    g = torch.Generator().manual_seed(seed)
    network = DeepLinearNetwork([3, 4, 2])
    x = torch.randn(rows, 3, generator=g, dtype=torch.float64)
    y = torch.randn(rows, 2, generator=g, dtype=torch.float64)
    center = torch.randn(network.dim, generator=g, dtype=torch.float64) / 2
    return network, Batches((x, y), batch_size), center


def _run(network, batches, center, chains=4, draws=30):
    posterior = LocalPosterior(network, 20.0, 5.0, center)
    return run_chains(sgld(posterior, step_size=1e-3), posterior, batches, chains=chains, draws=draws, burnin=5,
                      generator=torch.Generator().manual_seed(11))


def _with_and_without_table(monkeypatch, center_of):
    network, batches, center = _problem()
    centers = center_of(center)
    assert center_row_losses(network, centers if centers.dim() == 2 else centers.unsqueeze(0), batches,
                             chains=4, draws=30) is not None
    read = _run(network, batches, centers)
    monkeypatch.setattr(row_losses, "CENTER_TABLE_NUMBERS", 0)
    evaluated = _run(network, batches, centers)
    np.testing.assert_array_equal(read.fields["loss"], evaluated.fields["loss"])   # same chains, same rows
    np.testing.assert_allclose(read.fields["center_loss"], evaluated.fields["center_loss"], rtol=1e-12)
    return read


def test_a_shared_centre_reads_the_same_center_loss_from_the_table(monkeypatch):
    trace = _with_and_without_table(monkeypatch, lambda center: center)
    assert len(np.unique(trace.fields["center_loss"][:, 0])) == 4   # each chain on its own minibatch


def test_per_chain_centres_each_read_their_own_row_of_the_table(monkeypatch):
    def two_centres(center):
        return torch.stack([center, center, center + 0.3, center + 0.3])
    _with_and_without_table(monkeypatch, two_centres)


def test_the_table_has_one_row_per_distinct_centre_and_maps_each_chain_to_its_own():
    network, batches, center = _problem()
    centers = torch.stack([center + 0.3, center, center + 0.3])
    table = center_row_losses(network, centers, batches, chains=3, draws=30)
    assert table.table.shape == (2, 40)
    expected = network(centers, batches.full())
    torch.testing.assert_close(table.table[table.owner], expected, rtol=1e-12, atol=0)


def test_no_table_on_the_full_data_when_it_costs_more_or_does_not_fit(monkeypatch):
    network, batches, center = _problem()
    one = center.unsqueeze(0)
    assert center_row_losses(network, one, Batches(batches.data, 40), chains=4, draws=30) is None   # full data
    assert center_row_losses(network, one, batches, chains=1, draws=6) is None   # 40 rows > 6 draws · 6 rows
    assert center_row_losses(network, one, batches, chains=1, draws=7) is not None
    monkeypatch.setattr(row_losses, "CENTER_TABLE_NUMBERS", 39)
    assert center_row_losses(network, one, batches, chains=4, draws=30) is None


def test_streamed_rows_are_evaluated_per_draw_not_tabled():
    """A data set may transform its rows at random: L_b(w*) must see the rows L_b(w) saw."""
    from torch.utils.data import TensorDataset, default_collate
    from sltlab.estimators.streamed import StreamedRows

    network, batches, center = _problem()
    streamed = Batches(StreamedRows(TensorDataset(*batches.data), default_collate, ("x", "y"), 0), 6)
    assert streamed.streamed and center_row_losses(network, center.unsqueeze(0), streamed, chains=4,
                                                   draws=30) is None
