"""The Lanczos estimate of the Hessian's top |eigenvalue| that SGLD's end-of-run check uses:
against the explicit Hessian's eigenvalues, exact once the Krylov space is exhausted, never
above the truth, and per point in a batch; and the Gauss quadrature the same recurrence gives,
exact on polynomials of degree below twice its steps."""

import pytest
import torch

from sltlab.estimators.lanczos import gauss_quadrature
from sltlab.estimators.step_size import top_hessian_eigenvalues_lanczos
from sltlab.models.deep_linear import DeepLinearNetwork, regression_data, teacher_matrix


def _problem(widths, seed=0):
    g = torch.Generator().manual_seed(seed)
    network = DeepLinearNetwork(widths)
    target = teacher_matrix(widths[0], widths[-1], 1, generator=g)
    x, y = regression_data(target, 300, generator=g)
    points = 0.5 * torch.randn(3, network.dim, generator=g, dtype=torch.float64)
    hessians = [torch.autograd.functional.hessian(lambda w: network(w.unsqueeze(0), (x, y)).mean(), p)
                for p in points]
    truth = torch.stack([torch.linalg.eigvalsh(h).abs().max() for h in hessians])
    return network, (x.unsqueeze(0), y.unsqueeze(0)), points, truth


def test_as_many_steps_as_parameters_give_the_top_eigenvalue_to_rounding():
    network, data, points, truth = _problem([3, 2, 3])            # d = 12
    top = top_hessian_eigenvalues_lanczos(network, points, data, steps=12, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(top, truth, rtol=1e-8, atol=0)


@pytest.mark.parametrize("widths", [[4, 3, 5, 2], [2, 6, 1, 4, 3], [6, 6, 6]])
def test_fifteen_steps_come_close_from_below_and_each_point_gets_its_own(widths):
    network, data, points, truth = _problem(widths, seed=2)
    top = top_hessian_eigenvalues_lanczos(network, points, data, steps=15, generator=torch.Generator().manual_seed(3))
    assert bool((top <= truth * (1 + 1e-10)).all())              # Ritz values lie inside the spectrum
    assert bool((top >= 0.99 * truth).all())
    alone = top_hessian_eigenvalues_lanczos(network, points[1:2], data, steps=15,
                                            generator=torch.Generator().manual_seed(3))
    assert abs(float(alone[0]) - float(truth[1])) <= 0.01 * float(truth[1])


def test_a_vanishing_hessian_gives_zero_and_no_steps_are_refused():
    network = DeepLinearNetwork([2, 2, 2, 2])
    x = torch.randn(10, 2, dtype=torch.float64)
    data = (x.unsqueeze(0), torch.zeros(1, 10, 2, dtype=torch.float64))
    # at the origin of a three-layer network the loss is flat to second order: H = 0
    top = top_hessian_eigenvalues_lanczos(network, torch.zeros(2, network.dim, dtype=torch.float64), data, steps=5,
                                          generator=torch.Generator().manual_seed(0))
    assert torch.equal(top, torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least one Lanczos step"):
        top_hessian_eigenvalues_lanczos(network, torch.zeros(1, network.dim), data, steps=0,
                                        generator=torch.Generator())


@pytest.mark.parametrize("widths", [[4, 3, 5, 2], [2, 6, 1, 4, 3], [6, 6, 6]])
def test_with_a_tolerance_lanczos_stops_once_every_point_has_settled_and_stays_close_from_below(widths, monkeypatch):
    import sltlab.estimators.step_size as step_size

    network, data, points, truth = _problem(widths, seed=2)
    products = []
    every_product = step_size.hessian_vector_products

    def counted(*args):
        product_with = every_product(*args)
        return lambda vector: products.append(1) or product_with(vector)
    monkeypatch.setattr(step_size, "hessian_vector_products", counted)
    top = top_hessian_eigenvalues_lanczos(network, points, data, steps=40, tolerance=0.01,
                                          generator=torch.Generator().manual_seed(3))
    assert bool((top <= truth * (1 + 1e-10)).all()) and bool((top >= 0.99 * truth).all())
    assert 3 <= len(products) < 40
    settled_at = len(products)
    fixed = top_hessian_eigenvalues_lanczos(network, points, data, steps=settled_at,
                                            generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(top, fixed, rtol=1e-12, atol=0)   # the same recurrence, stopped there


def test_the_gauss_rule_of_m_steps_integrates_every_power_below_2m_exactly_in_each_start_and_subspace():
    g = torch.Generator().manual_seed(4)
    basis, _ = torch.linalg.qr(torch.randn(40, 40, generator=g, dtype=torch.float64))
    hessian = (basis * torch.logspace(0, -3, 40, dtype=torch.float64)) @ basis.T
    starts = torch.randn(3, 40, generator=g, dtype=torch.float64)
    mask = torch.ones(3, 40, dtype=torch.float64)
    mask[2, 25:] = 0.0   # the third start in a subspace of 25 coordinates: the Hessian restricted to it
    starts = starts * mask / (starts * mask).norm(dim=-1, keepdim=True)
    nodes, weights = gauss_quadrature(lambda v: v @ hessian, starts, steps=6, mask=mask)
    for start, node, weight, kept in zip(starts, nodes, weights, mask):
        restricted = hessian * kept * kept.unsqueeze(-1)
        for power in range(12):
            exact = start @ torch.linalg.matrix_power(restricted, power) @ start
            assert float((weight * node ** power).sum()) == pytest.approx(float(exact), rel=1e-9, abs=1e-15)
    with pytest.raises(ValueError, match="at least one Lanczos step"):
        gauss_quadrature(lambda v: v @ hessian, starts, steps=0)


def test_more_steps_than_dimensions_exhaust_the_krylov_space_and_the_rule_stays_exact():
    hessian = torch.diag(torch.tensor([3.0, 1.0, 0.5, 0.0, 2.0], dtype=torch.float64))   # rank 4 of 5
    start = torch.tensor([[1.0, 2.0, 0.0, 1.0, -1.0]], dtype=torch.float64)
    start = start / start.norm()
    nodes, weights = gauss_quadrature(lambda v: v @ hessian, start, steps=8)
    assert bool(torch.isfinite(nodes).all()) and float(weights.sum()) == pytest.approx(1.0, rel=1e-12)
    for function in (torch.exp, lambda x: 1 / (x + 1), lambda x: x ** 9):
        exact = start[0] @ torch.diag(function(torch.diagonal(hessian))) @ start[0]
        assert float((weights * function(nodes)).sum()) == pytest.approx(float(exact), rel=1e-9)
