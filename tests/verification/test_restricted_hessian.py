"""The restricted λ against the loss itself: at a balanced rank-r true parameter
(models.balanced_factorization), the Hessian of the training loss in one layer's weights, the
others frozen, has rank 2λ_l (theory.restricted_deep_linear_balanced), and the loss is exactly
quadratic in that layer."""

import pytest
import torch

from sltlab.models import DeepLinearNetwork, balanced_factorization
from sltlab.models.deep_linear import teacher_matrix
from sltlab.theory import restricted_deep_linear_balanced


@pytest.mark.parametrize("widths, rank", [((6, 3, 4, 5), 2), ((10, 5, 5, 10), 2), ((5, 4, 4, 4, 6), 3), ((4, 3, 4), 0)])
def test_the_hessian_rank_of_each_layer_is_twice_the_restricted_lambda(widths, rank):
    generator = torch.Generator().manual_seed(rank)
    network = DeepLinearNetwork(widths)
    teacher = teacher_matrix(widths[0], widths[-1], rank, [1.0 + s for s in range(rank)], generator=generator)
    true_parameter = balanced_factorization(network, teacher, rank, generator=generator)
    mixing = torch.randn(widths[0], widths[0], generator=generator, dtype=torch.float64)
    x = torch.randn(4 * widths[0], widths[0], generator=generator, dtype=torch.float64) @ mixing  # Σ full rank, not I
    y = x @ teacher.T
    sizes = [out * inp for inp, out in zip(widths, widths[1:])]
    for layer in range(1, len(widths)):
        start = sum(sizes[:layer - 1])

        def loss(block):
            position = torch.cat([true_parameter[:start], block, true_parameter[start + sizes[layer - 1]:]])
            return 0.5 * (y - network.forward(position.unsqueeze(0), x)[0]).square().sum(-1).mean()

        block = true_parameter[start:start + sizes[layer - 1]]
        hessian = torch.autograd.functional.hessian(loss, block)
        eigenvalues = torch.linalg.eigvalsh(hessian)
        rank_of_hessian = int((eigenvalues > 1e-9 * max(float(eigenvalues.max()), 1.0)).sum())
        assert rank_of_hessian == 2 * restricted_deep_linear_balanced(widths, rank, layer).lam
        assert float(loss(block)) < 1e-20
        step = torch.randn(block.shape, generator=generator, dtype=torch.float64)
        torch.testing.assert_close(loss(block + step), 0.5 * step @ hessian @ step, rtol=1e-9, atol=1e-12)
