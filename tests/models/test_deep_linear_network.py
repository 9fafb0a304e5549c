import math

import pytest
import torch

from sltlab.models import deep_linear
from sltlab.models.deep_linear import DeepLinearNetwork, balanced_factorization, regression_data, teacher_matrix
from sltlab.models.deep_linear_losses import FullDataLoss, PopulationLoss, StackedFullDataLoss


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def test_shapes_and_round_trip():
    net = DeepLinearNetwork([3, 4, 5, 2])
    assert net.shapes == ((4, 3), (5, 4), (2, 5))
    assert net.dim == 12 + 20 + 10
    position = torch.randn(6, net.dim, generator=generator(), dtype=torch.float64)
    weights = net.weights(position)
    assert [tuple(w.shape) for w in weights] == [(6, 4, 3), (6, 5, 4), (6, 2, 5)]
    assert torch.equal(net.flatten(weights), position)


def test_as_a_module_the_network_computes_the_same_map():
    network = DeepLinearNetwork((3, 4, 2, 5))
    position = torch.randn(network.dim, dtype=torch.float64)
    module = network.as_module(position)
    x = torch.randn(7, 3, dtype=torch.float64)
    product = x
    for weight in network.weights(position.unsqueeze(0)):
        product = product @ weight[0].T
    torch.testing.assert_close(module(x), product, rtol=1e-14, atol=1e-14)
    assert [name for name, _ in module.named_parameters()] == ["0.weight", "1.weight", "2.weight"]


def test_loss_is_gaussian_nll_per_sample_and_chain():
    net = DeepLinearNetwork([3, 4, 2])
    position = torch.randn(5, net.dim, generator=generator(), dtype=torch.float64)
    x = torch.randn(7, 3, generator=generator(1), dtype=torch.float64)
    y = torch.randn(7, 2, generator=generator(2), dtype=torch.float64)
    losses = net(position, (x.unsqueeze(0), y.unsqueeze(0)))
    assert losses.shape == (5, 7)
    w1, w2 = net.weights(position[2:3])
    expected = 0.5 * ((y - x @ (w2[0] @ w1[0]).T) ** 2).sum(-1) + math.log(2 * math.pi)
    torch.testing.assert_close(losses[2], expected)


@pytest.mark.parametrize("widths, rank", [([10, 10, 10, 10], 2), ([6, 3, 4], 3), ([5, 5], 0), ([4, 7, 7, 7, 3], 3)])
def test_balanced_factorization_is_a_deepest_true_parameter(widths, rank):
    net = DeepLinearNetwork(widths)
    values = [3.0, 2.0, 0.5][:rank]
    target = teacher_matrix(widths[0], widths[-1], rank, values, generator=generator())
    assert torch.linalg.matrix_rank(target) == rank
    torch.testing.assert_close(torch.linalg.svdvals(target)[:rank], torch.tensor(values, dtype=torch.float64))
    position = balanced_factorization(net, target, rank, generator=generator(1))
    torch.testing.assert_close(net.product(position.unsqueeze(0))[0], target)
    weights = [w[0] for w in net.weights(position.unsqueeze(0))]
    for weight in weights:
        assert torch.linalg.matrix_rank(weight) == rank
    for lower, upper in zip(weights, weights[1:]):   # balanced: W_{s+1}ᵀ W_{s+1} = W_s W_sᵀ
        torch.testing.assert_close(upper.T @ upper, lower @ lower.T)


def test_regression_data_follows_the_teacher():
    target = teacher_matrix(4, 3, 2, generator=generator())
    x, y = regression_data(target, 20000, generator=generator(1), noise_std=0.5)
    assert x.shape == (20000, 4) and y.shape == (20000, 3)
    fitted = torch.linalg.lstsq(x, y).solution.T
    assert torch.allclose(fitted, target, atol=0.02)
    assert abs(float((y - x @ target.T).std()) - 0.5) < 0.01


@pytest.mark.parametrize("call", [
    lambda: DeepLinearNetwork([3]),
    lambda: DeepLinearNetwork([3, 0, 2]),
    lambda: teacher_matrix(3, 2, 3, generator=generator()),
    lambda: teacher_matrix(3, 2, 2, [1.0, -1.0], generator=generator()),
    lambda: teacher_matrix(3, 2, 2, [1.0], generator=generator()),
    lambda: regression_data(torch.eye(2), 0, generator=generator()),
    lambda: DeepLinearNetwork([2, 2]).weights(torch.zeros(1, 5)),
])
def test_bad_input_is_refused(call):
    with pytest.raises(ValueError):
        call()


def test_full_data_loss_from_sufficient_statistics_equals_the_mean_per_sample_loss():
    net = DeepLinearNetwork([4, 3, 5, 2])
    target = teacher_matrix(4, 2, 1, generator=generator())
    x, y = regression_data(target, 500, generator=generator(1))
    position = torch.randn(6, net.dim, generator=generator(2), dtype=torch.float64)
    exact = FullDataLoss(net, x, y)
    torch.testing.assert_close(exact(position), net(position, (x.unsqueeze(0), y.unsqueeze(0))).mean(-1, keepdim=True))
    with pytest.raises(ValueError):
        FullDataLoss(net, x[:, :3], y)


def test_drawn_sufficient_statistics_have_the_distribution_of_those_of_rows():
    """First and second moments of every entry of (Σxx, Σxy, tr Σyy), drawn directly and computed
    from n generated rows, 4,000 draws each: equal within 5 SE of their difference (fixed seed)."""
    from sltlab.models import sufficient_statistics

    generator = torch.Generator().manual_seed(11)
    target = teacher_matrix(3, 2, 1, [1.5], generator=generator)
    n, draws = 12, 4000

    def features(sxx, sxy, syy):
        first = torch.cat([sxx.reshape(-1), sxy.reshape(-1), torch.tensor([syy], dtype=torch.float64)])
        return torch.cat([first, first.square()])

    drawn = torch.stack([features(*sufficient_statistics(target, n, generator=generator)) for _ in range(draws)])
    from_rows = []
    for _ in range(draws):
        x, y = regression_data(target, n, generator=generator)
        from_rows.append(features(x.T @ x / n, x.T @ y / n, float((y * y).sum()) / n))
    from_rows = torch.stack(from_rows)
    difference = drawn.mean(0) - from_rows.mean(0)
    standard_error = ((drawn.var(0) + from_rows.var(0)) / draws).sqrt()
    assert (difference.abs() <= 5 * standard_error).all(), (difference / standard_error).tolist()
    with pytest.raises(ValueError, match="n > 3"):
        sufficient_statistics(target, 3, generator=generator)


def test_a_loss_from_statistics_equals_the_loss_from_their_rows():
    generator = torch.Generator().manual_seed(2)
    network = DeepLinearNetwork((3, 4, 2))
    target = teacher_matrix(3, 2, 1, generator=generator)
    x, y = regression_data(target, 50, generator=generator)
    position = torch.randn(5, network.dim, generator=generator, dtype=torch.float64)
    from_rows = FullDataLoss(network, x, y)
    again = FullDataLoss.from_statistics(network, x.T @ x / 50, x.T @ y / 50, float((y * y).sum()) / 50, 50)
    assert torch.equal(from_rows(position), again(position))
    with pytest.raises(ValueError, match="do not fit"):
        FullDataLoss.from_statistics(network, x.T @ x / 50, (x.T @ y / 50).T, 1.0, 50)


@pytest.mark.parametrize("widths", [[3, 2], [1, 2, 7], [4, 3, 5, 2], [10, 10, 10, 10], [2, 6, 1, 4, 3]])
def test_closed_form_gradients_equal_autograd(widths):
    net = DeepLinearNetwork(widths)
    target = teacher_matrix(widths[0], widths[-1], 1, generator=generator())
    x, y = regression_data(target, 200, generator=generator(1))
    position = torch.randn(5, net.dim, generator=generator(2), dtype=torch.float64)
    for loss in (FullDataLoss(net, x, y), PopulationLoss(net, target)):
        leaf = position.clone().requires_grad_(True)
        value = loss(leaf).mean(-1)
        (gradient,) = torch.autograd.grad(value.sum(), leaf)
        closed_value, closed_gradient = loss.mean_loss_and_gradient(position)
        assert torch.equal(closed_value, value.detach())   # the same arithmetic as calling the loss
        torch.testing.assert_close(closed_gradient, gradient, rtol=1e-12, atol=1e-12 * float(gradient.abs().max()))


@pytest.mark.parametrize("layer", [1, 2, 3])
def test_one_layer_alone_is_a_quadratic_whose_hessian_has_rank_rank_a_times_rank_b(layer):
    from sltlab.models.restricted import LayerRestrictedLoss

    network = DeepLinearNetwork((4, 3, 5, 2))
    generator = torch.Generator().manual_seed(3)
    target = teacher_matrix(4, 2, 2, generator=generator)
    centre = balanced_factorization(network, target, 2, generator=generator)
    x, y = regression_data(target, 300, generator=generator)
    restricted = LayerRestrictedLoss(FullDataLoss(network, x, y), centre, layer)
    inside = restricted.restrict(centre)
    assert torch.equal(restricted.embed(inside.unsqueeze(0))[0], centre)
    hessian = torch.autograd.functional.hessian(lambda w: restricted(w.unsqueeze(0)).sum(), inside)
    closed_form = restricted.hessian_eigenvalues()
    torch.testing.assert_close(torch.linalg.eigvalsh(hessian).sort().values, closed_form.sort().values,
                               rtol=0, atol=1e-12)
    ranks = {1: 2 * 4, 2: 2 * 2, 3: 2 * 2}          # rank(A_l)·rank(B_l), identities at the ends
    assert int((closed_form > 1e-9).sum()) == ranks[layer]
    with pytest.raises(ValueError, match="layer must lie in 1..3"):
        LayerRestrictedLoss(FullDataLoss(network, x, y), centre, 4)


@pytest.mark.parametrize("widths, rows", [([10, 10, 10, 10], 100), ([3, 40, 40, 2], 5), ([40, 2, 40], 3),
                                         ([6, 2, 6], 1)])
def test_forward_is_the_product_of_the_layers_whichever_order_is_cheaper(widths, rows):
    """Few rows through wide layers go layer by layer; many rows are multiplied by W_L ⋯ W_1
    formed first. Both are x ↦ x·W_1ᵀ ⋯ W_Lᵀ, to rounding, for a shared and for per-chain rows."""
    g = torch.Generator().manual_seed(0)
    network = DeepLinearNetwork(widths)
    position = torch.randn(4, network.dim, generator=g, dtype=torch.float64)
    for x in (torch.randn(rows, widths[0], generator=g, dtype=torch.float64),
              torch.randn(4, rows, widths[0], generator=g, dtype=torch.float64)):
        expected = x
        for weight in network.weights(position):
            expected = expected @ weight.transpose(-1, -2)
        torch.testing.assert_close(network.forward(position, x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("widths, rows", [([10, 10, 10, 10], 100), ([3, 40, 40, 2], 5), ([40, 2, 40], 3),
                                         ([6, 2, 6], 1), ([2, 6, 1, 4, 3], 50), ([5, 3], 3)])
@pytest.mark.parametrize("in_place_from", [2**18, 0])
def test_the_minibatch_gradient_written_out_equals_autograd(widths, rows, in_place_from, monkeypatch):
    """Product first and layer by layer, for shared rows [b, in] or [1, b, in], per-chain rows
    [C, b, in], and one position [1, d] against every chain's rows (its gradient summed over them,
    as autograd's is); the value is that of calling the loss and averaging its rows. The layers'
    gradients joined after (these networks are small) and written into views of the flat one
    (the large networks' way, forced here by a threshold of 0)."""
    monkeypatch.setattr(deep_linear, "WRITE_IN_PLACE_MIN", in_place_from)
    g = torch.Generator().manual_seed(1)
    network = DeepLinearNetwork(widths)
    chains = 4
    for position_rows, x_shape in ((chains, (rows, widths[0])), (chains, (chains, rows, widths[0])),
                                   (chains, (1, rows, widths[0])), (1, (chains, rows, widths[0])),
                                   (1, (1, rows, widths[0]))):
        position = torch.randn(position_rows, network.dim, generator=g, dtype=torch.float64)
        x = torch.randn(*x_shape, generator=g, dtype=torch.float64)
        y = torch.randn(*x_shape[:-1], widths[-1], generator=g, dtype=torch.float64)
        leaf = position.clone().requires_grad_(True)
        value = network(leaf, (x, y)).mean(-1)
        (gradient,) = torch.autograd.grad(value.sum(), leaf)
        closed_value, closed_gradient = network.mean_loss_and_gradient(position, (x, y))
        assert closed_gradient.shape == position.shape
        torch.testing.assert_close(closed_value, value.detach(), rtol=1e-13, atol=0)
        torch.testing.assert_close(closed_gradient, gradient, rtol=1e-12, atol=1e-12 * float(gradient.abs().max()))


def test_stacked_full_data_losses_score_each_row_by_its_own_loss_exactly():
    torch.manual_seed(3)
    network = DeepLinearNetwork((4, 3, 3, 4))
    x = torch.randn(40, 4, dtype=torch.float64)
    centres = torch.randn(3, network.dim, dtype=torch.float64)
    losses = [FullDataLoss(network, x, network.forward(centre.unsqueeze(0), x)[0]) for centre in centres]
    assignment = torch.tensor([2, 0, 0, 1, 2])
    stacked = StackedFullDataLoss(losses, assignment)
    positions = torch.randn(5, network.dim, dtype=torch.float64)
    value, gradient = stacked.mean_loss_and_gradient(positions)
    for row, which in enumerate(assignment.tolist()):
        alone, alone_gradient = losses[which].mean_loss_and_gradient(positions[row:row + 1])
        assert float(value[row]) == float(alone[0]) == float(stacked(positions)[row, 0])
        assert torch.equal(gradient[row], alone_gradient[0])
    with pytest.raises(ValueError, match="exactly 5 rows"):
        stacked(positions[:4])
    with pytest.raises(ValueError, match="one network"):
        StackedFullDataLoss([losses[0], FullDataLoss(network, x[:30], x[:30])], torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="assignment"):
        StackedFullDataLoss(losses, torch.tensor([0, 3]))
