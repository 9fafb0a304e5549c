"""Gradient descent on deep linear networks: the balanced start, one step against autograd,
checkpoints, numerical rank and refusal of a diverging run."""

import pytest
import torch

from sltlab.models.deep_linear import DeepLinearNetwork, balanced_factorization, regression_data, teacher_matrix
from sltlab.models.training import (balanced_initialization, least_squares_fit, mode_overlaps, numerical_rank,
                                   train_deep_linear)




def small_problem(widths=(6, 3, 6), seed=0):
    generator = torch.Generator().manual_seed(seed)
    network = DeepLinearNetwork(widths)
    teacher = teacher_matrix(widths[0], widths[-1], 2, [4.0, 1.0], generator=generator)
    x, y = regression_data(teacher, 300, generator=generator)
    return network, x, y, generator


@pytest.mark.parametrize("widths", [(6, 3, 6), (5, 4, 2, 3), (3, 7)])
def test_balanced_initialization_is_balanced_with_every_singular_value_the_scale(widths):
    network = DeepLinearNetwork(widths)
    start = balanced_initialization(network, 0.05, generator=torch.Generator().manual_seed(1))
    weights = network.weights(start.unsqueeze(0))
    for lower, upper in zip(weights[:-1], weights[1:]):
        torch.testing.assert_close(upper[0].T @ upper[0], lower[0] @ lower[0].T)
    for weight in weights:
        singular = torch.linalg.svdvals(weight[0])[: min(widths)]
        torch.testing.assert_close(singular, torch.full_like(singular, 0.05))


def test_numerical_rank_counts_singular_values_above_the_tolerance():
    values = torch.tensor([[3.0, 0.5, 0.09, 1e-6], [0.05, 0.0, 0.0, 0.0]])
    assert numerical_rank(values, 0.1).tolist() == [2, 0]
    assert numerical_rank(values, 0.01).tolist() == [3, 1]
    with pytest.raises(ValueError, match="tolerance"):
        numerical_rank(values, 0.0)


def test_one_step_is_gradient_descent_on_the_mean_loss_over_the_rows():
    network, x, y, generator = small_problem()
    start = balanced_initialization(network, 0.3, generator=generator)
    run = train_deep_linear(network, x, y, start, learning_rate=0.05, steps=1, checkpoint_every=1)
    leaf = start.clone().unsqueeze(0).requires_grad_(True)
    (gradient,) = torch.autograd.grad(network(leaf, (x, y)).mean(), leaf)
    torch.testing.assert_close(run.positions[1], start - 0.05 * gradient[0])
    torch.testing.assert_close(run.gradient_norms[0], gradient.norm().double())


def test_checkpoints_fall_every_k_steps_and_at_the_end_and_the_loss_decreases():
    network, x, y, generator = small_problem()
    start = balanced_initialization(network, 1e-3, generator=generator)
    run = train_deep_linear(network, x, y, start, learning_rate=0.02, steps=250, checkpoint_every=100)
    assert run.steps.tolist() == [0, 100, 200, 250]
    assert run.positions.shape == (4, network.dim) and run.singular_values.shape == (4, 6)
    torch.testing.assert_close(run.positions[0], start)
    assert bool((run.losses[1:] <= run.losses[:-1]).all())
    singular = torch.linalg.svdvals(network.product(run.positions[-1:])[0])
    torch.testing.assert_close(run.singular_values[-1], singular)


def test_a_diverging_run_and_bad_settings_are_refused():
    network, x, y, generator = small_problem()
    start = balanced_initialization(network, 1.0, generator=generator)
    with pytest.raises(ValueError, match="finite"):
        train_deep_linear(network, x, y, start, learning_rate=50.0, steps=200, checkpoint_every=10)
    with pytest.raises(ValueError, match="learning rate"):
        train_deep_linear(network, x, y, start, learning_rate=0.0, steps=10, checkpoint_every=1)
    with pytest.raises(ValueError, match="scale"):
        balanced_initialization(network, -1.0, generator=generator)


def test_training_stops_half_as_long_again_after_reaching_the_rank():
    network, x, y, generator = small_problem()
    start = balanced_initialization(network, 1e-2, generator=generator)
    full = train_deep_linear(network, x, y, start, learning_rate=0.02, steps=2000, checkpoint_every=10)
    early = train_deep_linear(network, x, y, start, learning_rate=0.02, steps=2000, checkpoint_every=10,
                              until_rank=(2, 0.1))
    reached = int(full.steps[int(torch.nonzero(numerical_rank(full.singular_values, 0.1) >= 2)[0])])
    assert int(early.steps[-1]) == -(-3 * reached // 2) < 2000
    torch.testing.assert_close(early.positions[:-1], full.positions[:len(early.steps) - 1])
    assert int(numerical_rank(early.singular_values[-1], 0.1)) == 2


def test_mode_overlaps_read_the_data_teacher_along_each_mode_with_its_sign():
    network, x, y, generator = small_problem()
    fit = least_squares_fit(x, y)
    singular = torch.linalg.svdvals(fit)[:3]
    position = balanced_factorization(network, fit, 3, generator=generator)   # end-to-end: fit's rank-3 part
    strengths, overlaps = mode_overlaps(network, position, fit)
    torch.testing.assert_close(strengths[:3], singular)
    torch.testing.assert_close(overlaps[:3], singular)
    turned = position.clone()
    turned[: network.shapes[0][0] * network.shapes[0][1]] *= -1             # the first layer negated
    strengths, overlaps = mode_overlaps(network, turned, fit)
    torch.testing.assert_close(strengths[:3], singular)
    torch.testing.assert_close(overlaps[:3], -singular)


def test_an_aligned_start_is_balanced_and_every_mode_starts_along_the_data():
    network, x, y, generator = small_problem()
    fit = least_squares_fit(x, y)
    start = balanced_initialization(network, 0.05, generator=generator, aligned_to=fit)
    weights = network.weights(start.unsqueeze(0))
    for lower, upper in zip(weights[:-1], weights[1:]):
        torch.testing.assert_close(upper[0].T @ upper[0], lower[0] @ lower[0].T)
    u, singular, vh = torch.linalg.svd(fit)
    torch.testing.assert_close(network.product(start.unsqueeze(0))[0], 0.05 ** 2 * u[:, :3] @ vh[:3])
    # The three strengths are equal, so the modes are any rotation within their span; their summed
    # overlap is not, and reaches Σ s_k, its largest possible value (von Neumann's trace inequality).
    _, overlaps = mode_overlaps(network, start, fit)
    torch.testing.assert_close(overlaps[:3].sum(), singular[:3].sum())


def test_an_aligned_start_reaches_the_teachers_rank_where_a_random_one_stalls():
    """[4,2,2,4] learning singular values 4 and 1, seed 9: from the random start the second mode
    points against its teacher direction (overlap −1.0) and 3,000 steps do not learn it."""
    generator = torch.Generator().manual_seed(9)
    network = DeepLinearNetwork((4, 2, 2, 4))
    teacher = teacher_matrix(4, 4, 2, [4.0, 1.0], generator=generator)
    x, y = regression_data(teacher, 300, generator=generator)
    state = generator.get_state()
    random_start = balanced_initialization(network, 0.05, generator=generator)
    generator.set_state(state)
    fit = least_squares_fit(x, y)
    aligned = balanced_initialization(network, 0.05, generator=generator, aligned_to=fit)
    assert float(mode_overlaps(network, random_start, fit)[1][1]) < -0.5
    reached = []
    for start in (random_start, aligned):
        run = train_deep_linear(network, x, y, start, learning_rate=0.02, steps=3000, checkpoint_every=10)
        ranks = numerical_rank(run.singular_values, 0.1)
        reached.append(int(ranks.max()))
    assert reached == [1, 2]

