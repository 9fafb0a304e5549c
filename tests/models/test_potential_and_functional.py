import pytest
import torch
from torch import nn

from sltlab.models.deep_linear import DeepLinearNetwork
from sltlab.models.functional import FunctionalModel, cross_entropy
from sltlab.models.potential import Potential
from sltlab.theory import parse_expression


def test_potential_is_batched_over_chains():
    potential = Potential(*parse_expression("w1**2*w2**2 + tanh(w3)**2/2"))
    assert potential.dim == 3
    position = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w1, w2, w3 = position.unbind(-1)
    expected = w1**2 * w2**2 + torch.tanh(w3) ** 2 / 2
    torch.testing.assert_close(potential(position), expected.unsqueeze(-1))


def test_constant_potential_and_explicit_variables():
    potential = Potential(*parse_expression("w1**2", ["w1", "w2"]))
    assert potential.dim == 2
    assert torch.equal(potential(torch.tensor([[3.0, 9.0]])), torch.tensor([[9.0]]))


@pytest.mark.parametrize("expression, variables", [
    ("w1**2 +", None), ("besselj(1, w1)", None), ("w1*w2", ["w1"]), ("3", None),
])
def test_bad_potentials_are_refused(expression, variables):
    with pytest.raises(ValueError):
        Potential(*parse_expression(expression, variables))


def test_functional_model_equals_the_batched_deep_linear_network():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Linear(4, 2, bias=False)).double()
    model, network = FunctionalModel(module), DeepLinearNetwork([3, 4, 2])
    assert model.dim == network.dim
    position = torch.randn(5, model.dim, dtype=torch.float64)
    x, y = torch.randn(5, 7, 3, dtype=torch.float64), torch.randn(5, 7, 2, dtype=torch.float64)
    for pos, batch in [(position, (x, y)), (position, (x[:1], y[:1])), (position[:1], (x, y)),
                       (position[:1], (x[:1], y[:1]))]:
        torch.testing.assert_close(model(pos, batch), network(pos, batch))
    torch.testing.assert_close(model.flatten(), network.flatten([module[0].weight, module[1].weight]).detach())


def test_functional_model_with_cross_entropy():
    torch.manual_seed(0)
    module = nn.Linear(3, 4).double()
    model = FunctionalModel(module, cross_entropy)
    x, labels = torch.randn(1, 6, 3, dtype=torch.float64), torch.randint(4, (1, 6))
    position = model.flatten().unsqueeze(0).expand(2, -1)
    expected = nn.functional.cross_entropy(module(x[0]), labels[0], reduction="none")
    torch.testing.assert_close(model(position, (x, labels)), expected.expand(2, -1))
