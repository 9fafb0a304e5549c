"""The CUDA path: the same estimate on the GPU as on the CPU (skipped without CUDA)."""

import math

import pytest
import torch

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.models.deep_linear import DeepLinearNetwork, balanced_factorization, regression_data, teacher_matrix
from sltlab.models.deep_linear_losses import FullDataLoss


@pytest.mark.gpu
def test_cuda_estimate_agrees_with_cpu_within_standard_errors():
    generator = torch.Generator().manual_seed(0)
    network = DeepLinearNetwork([6, 4, 6])
    target = teacher_matrix(6, 6, 2, generator=generator)
    start = balanced_factorization(network, target, 2, generator=generator)
    x, y = regression_data(target, 5000, generator=generator)
    loss = FullDataLoss(network, x.cuda(), y.cuda())
    config = LLCConfig(chains=16, draws=2000, burnin=2000, device="cuda", dtype="float64")
    on_gpu = estimate_llc_from_loss(loss, start, (), config, n=5000)
    on_cpu = estimate_llc_from_loss(FullDataLoss(network, x, y), start, (),
                                    LLCConfig(**{**config.__dict__, "device": "cpu"}),
                                    n=5000)
    assert on_gpu.estimate.diverged_chains == []
    gap = abs(on_gpu.estimate.mean - on_cpu.estimate.mean)
    assert gap <= 4 * math.hypot(on_gpu.estimate.standard_error, on_cpu.estimate.standard_error)
