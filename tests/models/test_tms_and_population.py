"""The toy model of superposition's batched population loss against the closed form derived in
theory (each written independently), and the deep linear network's population loss."""

import numpy as np
import pytest
import torch

from sltlab.models.deep_linear import DeepLinearNetwork, balanced_factorization, teacher_matrix
from sltlab.models.deep_linear_losses import PopulationLoss
from sltlab.models.tms import ToyModelOfSuperposition
from sltlab.theory.tms import kgon
from sltlab.theory.tms_loss import tms_gradient, tms_loss


def positions(features: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    random = torch.randn(40, 3 * features, generator=generator, dtype=torch.float64)
    random[:10, 2:6] = 0.0                                  # dead columns: a = 0 on many pairs
    points = [kgon(features, k, p).parameter for k, p in ((5, 0), (5, 1), (features, 0))]
    return torch.cat([random, torch.tensor(points, dtype=torch.float64)])


@pytest.mark.parametrize("features", [6, 8])
def test_the_batched_loss_and_gradient_match_the_closed_form(features):
    model = ToyModelOfSuperposition(features)
    position = positions(features).requires_grad_(True)
    loss = model(position)
    (gradient,) = torch.autograd.grad(loss.sum(), position)
    rows = position.detach().numpy()
    assert loss.shape == (len(rows), 1)
    np.testing.assert_allclose(loss.detach().numpy()[:, 0], [tms_loss(r, features) for r in rows], atol=1e-13)
    np.testing.assert_allclose(gradient.numpy(), [tms_gradient(r, features) for r in rows], atol=1e-12)
    assert torch.isfinite(gradient).all()


def test_split_and_join_are_inverse_and_the_layout_is_columns_then_biases():
    model = ToyModelOfSuperposition(3)
    position = torch.arange(9.0).unsqueeze(0)
    columns, bias = model.split(position)
    assert columns[0].tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]] and bias[0].tolist() == [6.0, 7.0, 8.0]
    assert torch.equal(model.join(columns, bias), position)
    with pytest.raises(ValueError):
        model(torch.zeros(1, 8))


@pytest.mark.parametrize("features", [1, True, 2.5])
def test_bad_feature_counts_are_refused(features):
    with pytest.raises(ValueError):
        ToyModelOfSuperposition(features)


def test_the_population_loss_is_half_the_squared_distance_of_the_product():
    network = DeepLinearNetwork((4, 3, 3, 5))
    generator = torch.Generator().manual_seed(0)
    teacher = teacher_matrix(4, 5, 2, [2.0, 0.5], generator=generator)
    loss = PopulationLoss(network, teacher)
    position = torch.randn(6, network.dim, generator=generator, dtype=torch.float64)
    expected = 0.5 * (network.product(position) - teacher).square().sum((-1, -2))
    torch.testing.assert_close(loss(position)[:, 0], expected)
    at_teacher = balanced_factorization(network, teacher, 2, generator=generator).unsqueeze(0)
    assert float(loss(at_teacher)) < 1e-20
    with pytest.raises(ValueError):
        PopulationLoss(network, teacher.T)
