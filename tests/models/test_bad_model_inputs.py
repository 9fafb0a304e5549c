"""Bad inputs to the models are one-line ValueErrors that say what is wrong and what is allowed:
a target of the wrong shape or of lower rank than asked had given a torch traceback or layers of
zero singular values, a NaN or negative noise level a silent wrong number, names as one string a
failure deep in sympy, and rows of the wrong width torch's matmul error."""

from __future__ import annotations

import math

import pytest
import sympy
import torch

from sltlab.models import (DeepLinearNetwork, Potential, TanhNetwork, balanced_factorization, regression_data,
                           sufficient_statistics, teacher_matrix)
from sltlab.theory import parse_expression


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


NETWORK = DeepLinearNetwork((4, 3, 5))
TARGET = teacher_matrix(4, 5, 2, [2.0, 0.5], generator=generator())   # [out, in] = [5, 4], rank 2


@pytest.mark.parametrize("target, rank, message", [
    (TARGET.T, 2, r"^target must be \[out, in\] = \[5, 4\] for widths \[4, 3, 5\], got shape \[4, 5\]$"),
    (TARGET[0], 1, r"^target must be a 2-D floating-point tensor, got torch.float64 of shape \[4\]$"),
    (TARGET * math.nan, 2, r"^target must hold finite numbers, got 20 NaN or ±inf among its 20$"),
    (TARGET, 3, r"^rank 3 exceeds the target's rank 2 \(its singular values above .*\): ask for at most 2$"),
    (torch.zeros(5, 4, dtype=torch.float64), 1, r"^rank 1 exceeds the target's rank 0 .*ask for at most 0$"),
    (TARGET, -1, r"^rank must be a whole number of at least 0, got -1$"),
    (TARGET, 1.5, r"^rank must be a whole number of at least 0, got 1.5$"),
    (TARGET, 4, r"^rank 4 exceeds the narrowest width 3$"),
])
def test_balanced_factorization_refuses_a_target_it_cannot_factor_at_that_rank(target, rank, message):
    with pytest.raises(ValueError, match=message):
        balanced_factorization(NETWORK, target, rank, generator=generator())


@pytest.mark.parametrize("target, rank", [(TARGET, 2), (TARGET, 1), (TARGET.float(), 2),
                                          (torch.zeros(5, 4, dtype=torch.float64), 0)])
def test_balanced_factorization_still_factors_a_target_at_or_below_its_rank(target, rank):
    position = balanced_factorization(NETWORK, target, rank, generator=generator())
    product = NETWORK.product(position.unsqueeze(0))[0]
    assert torch.linalg.matrix_rank(product) == rank
    if rank == 2:
        torch.testing.assert_close(product, target.double(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("draw", [regression_data, sufficient_statistics])
@pytest.mark.parametrize("noise_std", [math.nan, math.inf, -0.5, "1", True])
def test_the_noise_level_must_be_a_non_negative_finite_number(draw, noise_std):
    with pytest.raises(ValueError, match=r"^noise_std must be a non-negative finite number, got "):
        draw(TARGET, 10, generator=generator(), noise_std=noise_std)


@pytest.mark.parametrize("draw", [regression_data, sufficient_statistics])
@pytest.mark.parametrize("target, message", [
    (TARGET[0], r"^target must be a 2-D floating-point tensor, got torch.float64 of shape \[4\]$"),
    (torch.eye(2, dtype=torch.long), r"^target must be a 2-D floating-point tensor, got torch.int64 of shape"),
    ([[1.0, 0.0]], r"^target must be a 2-D floating-point tensor, got \[\[1.0, 0.0\]\]$"),
    (TARGET.clone().fill_(math.inf), r"^target must hold finite numbers, got 20 NaN or ±inf among its 20$"),
])
def test_the_data_need_a_finite_matrix_as_target(draw, target, message):
    with pytest.raises(ValueError, match=message):
        draw(target, 10, generator=generator())


def test_noise_free_data_are_still_drawn():
    x, y = regression_data(TARGET, 10, generator=generator(), noise_std=0)
    torch.testing.assert_close(y, x @ TARGET.T)
    sxx, sxy, syy = sufficient_statistics(TARGET, 10, generator=generator(), noise_std=0.0)
    torch.testing.assert_close(sxy, sxx @ TARGET.T)
    assert math.isclose(syy, float((TARGET @ sxx * TARGET).sum()), rel_tol=1e-12)


@pytest.mark.parametrize("expression, variables, message", [
    ("x**2", "x", r"^the potential must be a sympy expression, got 'x\*\*2': read text with "
                  r"sltlab.theory.parse_expression$"),
    (sympy.Symbol("x") ** 2, "x", r"^variables must be a sequence of names in order, e\.g\. \['w1', 'w2'\], "
                                  r"got 'x'$"),
    (sympy.Symbol("x") ** 2, {sympy.Symbol("x")}, r"^variables must be a sequence of names in order"),
    (sympy.Symbol("x") ** 2, ["x", "x"], r"^variables must be distinct names or sympy symbols, got \[x, x\]$"),
    (sympy.Symbol("x") ** 2, [3], r"^variables must be distinct names or sympy symbols, got \[3\]$"),
])
def test_a_potential_needs_an_expression_and_a_sequence_of_names(expression, variables, message):
    with pytest.raises(ValueError, match=message):
        Potential(expression, variables)


def test_a_potential_takes_its_variables_as_symbols_or_as_names():
    expression, symbols = parse_expression("w1**2*w2")
    by_symbol, by_name = Potential(expression, symbols), Potential(expression, ["w1", "w2"])
    assert by_name.variables == by_symbol.variables == symbols
    position = torch.tensor([[3.0, 2.0]], dtype=torch.float64)
    assert torch.equal(by_name(position), torch.tensor([[18.0]], dtype=torch.float64))
    real = sympy.Symbol("w", real=True)   # a name stands for K's symbol of that name, assumptions and all
    assert Potential(real**2, ["w"]).variables == (real,)


def test_the_deep_linear_network_refuses_rows_of_another_width():
    position = torch.randn(3, NETWORK.dim, generator=generator(), dtype=torch.float64)
    x, y = torch.randn(7, 4, dtype=torch.float64), torch.randn(7, 5, dtype=torch.float64)
    width = r"^x must be rows of the network's input width 4, \[b, 4\] or \[C, b, 4\], got "
    with pytest.raises(ValueError, match=width + r"rows of width 3, shape \[7, 3\]$"):
        NETWORK.forward(position, x[:, :3])
    with pytest.raises(ValueError, match=width + r"shape \[4\]$"):
        NETWORK.forward(position, x[0])
    with pytest.raises(ValueError, match=width + "rows of width 3"):
        NETWORK(position, (x[:, :3], y))
    with pytest.raises(ValueError, match=width + "rows of width 5"):
        NETWORK.mean_loss_and_gradient(position, (torch.randn(1, 7, 5, dtype=torch.float64), y))
    outputs = r"^y must be rows of the network's output width 5, \[b, 5\] or \[C, b, 5\], got rows of width 1"
    with pytest.raises(ValueError, match=outputs):
        NETWORK(position, (x, y[:, :1]))   # had broadcast against every output: a silent wrong loss
    with pytest.raises(ValueError, match=outputs):
        NETWORK.mean_loss_and_gradient(position, (x, y[:, :1]))
    losses = NETWORK(position, (x, y))
    value, gradient = NETWORK.mean_loss_and_gradient(position, (x.unsqueeze(0), y.unsqueeze(0)))
    assert losses.shape == (3, 7) and gradient.shape == position.shape
    torch.testing.assert_close(value, losses.mean(-1))


def test_the_tanh_network_refuses_inputs_it_cannot_read_as_one_per_row():
    network = TanhNetwork(2)
    position = torch.randn(3, network.dim, generator=generator(), dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^x must be one input per row, \[b\] or \[C, b\] \(input width 1, "
                                         r"no trailing axis\), got shape \[3, 7, 2\]$"):
        network(position, (torch.randn(3, 7, 2), torch.randn(3, 7)))
    with pytest.raises(ValueError, match=r"^x \[C, b\] has rows for 7 chains, position for 3: x must be \[b\], "
                                         r"\[1, b\] or \[3, b\]$"):
        network(position, (torch.randn(7, 1), torch.randn(7, 1)))   # a column of 7 inputs
    for one in (position[:1], position[0]):   # one chain: the column had read as 7 chains
        with pytest.raises(ValueError, match=r"^x \[C, b\] has rows for 7 chains, position for 1: "):
            network(one, (torch.randn(7, 1), torch.randn(7, 1)))
    assert network(position[0], (torch.randn(1, 7), torch.randn(1, 7))).shape == (1, 7)
    with pytest.raises(ValueError, match=r"^position has 5 parameters, the network has 4$"):
        network(torch.randn(3, 5), (torch.randn(7), torch.randn(7)))
    x = torch.randn(7, dtype=torch.float64)
    shared = network(position, (x, torch.zeros_like(x)))
    torch.testing.assert_close(network(position, (x.expand(3, 7), torch.zeros(3, 7, dtype=torch.float64))), shared)
    assert shared.shape == (3, 7)


@pytest.mark.parametrize("draw", [regression_data, sufficient_statistics])
@pytest.mark.parametrize("n", [2.5, "10", True, 0])
def test_the_number_of_rows_must_be_a_whole_number(draw, n):
    with pytest.raises(ValueError, match=r"^n must be a whole number of at least 1, got "):
        draw(TARGET, n, generator=generator())
