"""Polynomial potentials as batched torch functions."""

import pytest
import torch

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


@pytest.mark.parametrize("text", ["sqrt(2)*w1**2", "log(2)*w1**2 + tanh(1)*w2**4", "2**(1/2)*w1**2 + w1**2*w2**2"])
def test_a_function_of_numbers_alone_is_evaluated_as_its_value(text):
    """torch's functions take tensors: sqrt(2) had raised a TypeError from torch.sqrt at every call."""
    potential = Potential(*parse_expression(text))
    position = torch.tensor([[0.5, -0.3], [1.5, 2.0]], dtype=torch.float64)[:, :potential.dim]
    exact = [float(potential.expression.subs(dict(zip(potential.variables, row.tolist())))) for row in position]
    torch.testing.assert_close(potential(position).flatten(), torch.tensor(exact, dtype=torch.float64))


def test_an_integer_coefficient_beyond_int64_is_evaluated_as_a_float():
    potential = Potential(*parse_expression("100000000000000000000*w**2"))   # had raised OverflowError
    value = potential(torch.tensor([[2.0]], dtype=torch.float64))
    assert value.item() == pytest.approx(4e20, rel=1e-15)
