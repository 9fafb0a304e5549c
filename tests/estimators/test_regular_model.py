"""A regular model brought as a plain nn.Module (the generic vmap path): λ̂ and the singular
fluctuation ν̂ must both land within 3 standard errors and a stated bias budget of d/2
(Watanabe 2010: ν = d/2 in a regular realisable model). The budgets: SGLD's discretisation bias
at the default step (≈ c/4 = 2.5 %) for both, and for ν̂ also its finite-n deviation (≈ 1 % at
n = 10⁴, measured against the exact Gaussian posterior)."""

import torch
from torch import nn

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.functional import FunctionalModel


def test_linear_regression_with_bias_gives_half_the_dimension():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    module = nn.Linear(4, 3).double()
    model = FunctionalModel(module)
    x = torch.randn(10_000, 4, generator=generator, dtype=torch.float64)
    y = module(x).detach() + torch.randn(10_000, 3, generator=generator, dtype=torch.float64)
    result = estimate_llc_from_loss(model, model.flatten(), (x, y),
                                    LLCConfig(chains=16, draws=2000, batch_size=1000, functional_variance=True, seed=1))
    half = model.dim / 2
    assert model.dim == 15 and result.estimate.diverged_chains == []
    assert abs(result.estimate.mean - half) <= 3 * result.estimate.standard_error + 0.025 * half
    assert abs(result.fluctuation.mean - half) <= 3 * result.fluctuation.standard_error + 0.035 * half
    assert result.estimate.rhat < 1.05
