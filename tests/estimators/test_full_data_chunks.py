"""Passes over all n rows run in chunks of rows, with the numbers of one pass: to 1e-12
relative in float64, not bit for bit (a matrix product over fewer rows may be blocked
differently by the linear-algebra library)."""

import numpy as np
import torch

import sltlab.estimators.sampling as sampling
from sltlab.estimators.posterior import LocalPosterior
from sltlab.estimators.row_losses import full_data_losses
from sltlab.estimators.sampling import Batches, run_chains
from sltlab.estimators.sgld import sgld
from sltlab.models.deep_linear import DeepLinearNetwork


def _data(rows=53, seed=0):
    g = torch.Generator().manual_seed(seed)
    network = DeepLinearNetwork([3, 5, 2])
    x = torch.randn(rows, 3, generator=g, dtype=torch.float64)
    y = torch.randn(rows, 2, generator=g, dtype=torch.float64)
    center = torch.randn(network.dim, generator=g, dtype=torch.float64) / 2
    return network, Batches((x, y), 8), center, g


def test_chunked_losses_equal_one_pass_for_any_chunk_size():
    network, batches, center, g = _data()
    position = center + 0.1 * torch.randn(4, network.dim, generator=g, dtype=torch.float64)
    whole = network(position, batches.full())
    for rows in (1, 7, 52, 53, 1000):
        assert sum(1 for _ in batches.chunks(rows)) == -(-53 // rows)
        torch.testing.assert_close(full_data_losses(network, position, batches, rows), whole, rtol=1e-12, atol=0)


def test_a_population_potential_has_one_pass_and_no_rows():
    def potential(position, batch):
        assert batch is None
        return position.square().sum(-1, keepdim=True)

    position = torch.ones(3, 2, dtype=torch.float64)
    assert torch.equal(full_data_losses(potential, position, Batches((), 1)), 2 * torch.ones(3, 1))


def test_functional_variance_is_the_same_in_chunks(monkeypatch):
    def run():
        network, batches, center, _ = _data()
        posterior = LocalPosterior(network, 30.0, 2.0, center)
        return run_chains(sgld(posterior, step_size=1e-3), posterior, batches, chains=3, draws=20, generator=
                          torch.Generator().manual_seed(5), full_data_every=2)

    whole = run()
    monkeypatch.setattr(sampling, "FULL_PASS_ROWS", 6)
    chunked = run()
    np.testing.assert_allclose(chunked.functional_variance, whole.functional_variance, rtol=1e-12)
    np.testing.assert_array_equal(chunked.fields["loss"], whole.fields["loss"])   # the chains did not change
    assert np.all(whole.functional_variance > 0)


def test_the_full_data_loss_and_gradient_of_every_step_run_in_slices_of_rows(monkeypatch):
    import sltlab.estimators.posterior as posterior_module
    from sltlab.estimators.localize import empirical_minimum
    from sltlab.estimators.posterior import mean_loss, potential, row_chunks

    network, batches, center, g = _data()
    position = center + 0.1 * torch.randn(4, network.dim, generator=g, dtype=torch.float64)
    posterior = LocalPosterior(network, 30.0, 2.0, center)
    whole = potential(posterior, position, batches.full(), energy=True)
    whole_centre = empirical_minimum(network, center, batches.full()).center
    monkeypatch.setattr(posterior_module, "FULL_PASS_ROWS", 7)
    assert len(row_chunks(batches.full())) == 8 and len(row_chunks(batches.draw(4, g))) == 2
    assert len(row_chunks(None)) == 1
    sliced = potential(posterior, position, batches.full(), energy=True)
    for name in ("mean_loss", "energy", "gradient"):
        torch.testing.assert_close(getattr(sliced, name), getattr(whole, name), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(mean_loss(network, position, batches.full()), whole.mean_loss, rtol=1e-12, atol=0)
    torch.testing.assert_close(empirical_minimum(network, center, batches.full()).center, whole_centre,
                               rtol=1e-9, atol=1e-10)


def test_a_loss_without_a_closed_form_gradient_is_differentiated_by_autograd_in_the_same_slices(monkeypatch):
    """The network's own gradient is written out; the same loss behind a plain function goes
    through autograd, one slice of rows at a time, and agrees with both."""
    import sltlab.estimators.posterior as posterior_module
    from sltlab.estimators.posterior import mean_loss_and_gradient

    network, batches, center, g = _data()
    position = center + 0.1 * torch.randn(4, network.dim, generator=g, dtype=torch.float64)

    def plain(where, batch):
        return network(where, batch)
    closed_value, closed_gradient = mean_loss_and_gradient(network, position, batches.full())
    whole_value, whole_gradient = mean_loss_and_gradient(plain, position, batches.full())
    monkeypatch.setattr(posterior_module, "FULL_PASS_ROWS", 7)
    sliced_value, sliced_gradient = mean_loss_and_gradient(plain, position, batches.full())
    for value, gradient in ((whole_value, whole_gradient), (sliced_value, sliced_gradient)):
        torch.testing.assert_close(value, closed_value, rtol=1e-12, atol=0)
        torch.testing.assert_close(gradient, closed_gradient, rtol=1e-12, atol=1e-13)


def test_hessian_vector_products_in_slices_of_rows_equal_the_hessian(monkeypatch):
    import sltlab.estimators.posterior as posterior_module
    from sltlab.estimators.step_size import hessian_vector_products, top_hessian_eigenvalue

    network, batches, center, g = _data()
    points = center + 0.1 * torch.randn(2, network.dim, generator=g, dtype=torch.float64)
    vectors = torch.randn(2, network.dim, generator=g, dtype=torch.float64)
    hessians = [torch.autograd.functional.hessian(lambda w: network(w.unsqueeze(0), batches.full()).mean(), p)
                for p in points]
    exact = torch.stack([h @ v for h, v in zip(hessians, vectors)])
    top = top_hessian_eigenvalue(network, points, batches.full(), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(hessian_vector_products(network, points, batches.full())(vectors), exact,
                               rtol=1e-12, atol=1e-13)
    monkeypatch.setattr(posterior_module, "FULL_PASS_ROWS", 7)
    torch.testing.assert_close(hessian_vector_products(network, points, batches.full())(vectors), exact,
                               rtol=1e-12, atol=1e-13)
    sliced_top = top_hessian_eigenvalue(network, points, batches.full(), generator=torch.Generator().manual_seed(1))
    assert abs(sliced_top - top) <= 1e-10 * top
    largest = max(float(torch.linalg.eigvalsh(h).abs().max()) for h in hessians)
    assert abs(top - largest) <= 1e-6 * largest   # 50 power iterations on a 16-parameter Hessian


def test_a_subsample_is_distinct_rows_of_the_data_and_the_whole_data_when_it_is_small():
    network, batches, center, g = _data()
    x, y = batches.subsample(20, g)
    assert x.shape == (1, 20, 3) and y.shape == (1, 20, 2)
    rows = [int((batches.data[0] == row).all(-1).nonzero()) for row in x[0]]   # each row is one row of the data
    assert len(set(rows)) == 20 and all(torch.equal(batches.data[1][r], y[0, k]) for k, r in enumerate(rows))
    state = g.get_state()
    whole = batches.subsample(53, g)
    assert all(torch.equal(a, b) for a, b in zip(whole, batches.full())) and torch.equal(g.get_state(), state)
