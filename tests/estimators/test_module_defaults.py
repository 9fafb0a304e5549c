"""What ``estimate_llc(model, data)`` samples with when it is told nothing, and that it lands on the
exact finite-nβ LLC of a regular model.

For a linear map y = W x under the loss ½‖y − W x‖² averaged over n rows, L_n is a quadratic in
vec W with Hessian H = I ⊗ Σ̂ (Σ̂ = XᵀX/n). Under the localised posterior
exp(−nβ·L_n(w) − (γ/2)‖w − w*‖²) at the least-squares w*, each eigen-direction of H with curvature
h is Gaussian, with E[nβ·½h·δ²] = ½·nβh/(nβh + γ); so the finite-nβ LLC is
Σ_h ½·nβh/(nβh + γ), just under λ = d/2 (Watanabe 2009: a regular model has λ = d/2). MALA is
exact at any step, so the estimate misses it only by its Monte Carlo error and the chains' start
at w*.
"""

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from sltlab.estimators import EstimateWarning, LLCConfig, estimate_llc
from sltlab.estimators.module import MODULE_DEFAULTS, module_defaults, prepare

START_BUDGET = 0.01   # of the truth: chains that start at w* and have not quite spread out


@pytest.mark.parametrize("config, settings, expected", [
    (None, {}, MODULE_DEFAULTS),
    (None, {"draws": 100}, MODULE_DEFAULTS),
    (None, {"batch_size": None}, MODULE_DEFAULTS),
    (None, {"sampler": "mala"}, LLCConfig()),
    (None, {"batch_size": 64}, LLCConfig()),
    (LLCConfig(draws=10), {}, LLCConfig()),
    (None, {"anneal": 1.0}, replace(MODULE_DEFAULTS, anneal=1.0, cooled_share=1.0)),   # no cooling, no share cooled
    (None, {"anneal": 5.0}, MODULE_DEFAULTS),
])
def test_the_defaults_are_mala_unless_a_config_a_sampler_or_a_batch_size_is_given(config, settings, expected):
    assert module_defaults(config, settings) == expected


def test_the_defaults_are_the_measured_ones():
    assert MODULE_DEFAULTS.sampler == "mala" and MODULE_DEFAULTS.draws == 4000
    assert MODULE_DEFAULTS.anneal == 10 and MODULE_DEFAULTS.cooled_share == 0.5   # half from above, half from w*
    assert MODULE_DEFAULTS.fallback == "hmc" and MODULE_DEFAULTS.fallback_budget == 4 * 350 / 300   # 4 on the draws
    assert MODULE_DEFAULTS.extend_unmixed == 2   # unmixed chains go on to 8,000 and then 16,000 draws
    assert MODULE_DEFAULTS.metric == "auto"      # the Hessian's metric where its Gaussian holds at w*


def test_the_default_estimate_of_a_linear_map_is_its_exact_finite_nbeta_llc():
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(500, 3, generator=generator, dtype=torch.float64)
    y = x @ torch.randn(3, 2, generator=generator, dtype=torch.float64) + torch.randn(500, 2, generator=generator,
                                                                                       dtype=torch.float64)
    linear = nn.Linear(3, 2, bias=False).double()
    with torch.no_grad():
        linear.weight.copy_(torch.linalg.lstsq(x, y).solution.T)   # the least-squares minimum
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = estimate_llc(linear, (x, y), dtype="float64", draws=1000)   # the defaults but a quarter of the draws
    assert [w for w in caught if issubclass(w.category, EstimateWarning)] == []
    assert result.config.sampler == "mala" and result.config.anneal == MODULE_DEFAULTS.anneal
    assert "for 4 of the 8 chains" in result.step_size_rule
    assert result.config.metric == "hessian" and "in the metric (nβ + γ)·P⁻¹" in result.step_size_rule   # quadratic
    curvatures = np.repeat(np.linalg.eigvalsh((x.T @ x / len(x)).numpy()), 2)   # H = I₂ ⊗ Σ̂
    nbeta, gamma = result.nbeta, result.config.localization
    truth = float(np.sum(0.5 * nbeta * curvatures / (nbeta * curvatures + gamma)))
    assert result.rhat <= 1.05 and result.ess >= 200 and result.diverged == []
    assert abs(result.mean - truth) <= 3 * result.standard_error + START_BUDGET * truth, (result.mean, truth)
    assert 2.9 < truth < 3   # d/2 = 3, less the localisation's share (γ/(nβh + γ) per direction)


@pytest.mark.parametrize("precision, config, settings, sampled_in", [
    (torch.float64, None, {}, "float64"),
    (torch.float64, None, {"draws": 10}, "float64"),
    (torch.float64, None, {"dtype": "float32"}, "float32"),   # told otherwise
    (torch.float64, LLCConfig(), {}, "float32"),              # a config names its own dtype
    (torch.float32, None, {}, "float32"),
])
def test_a_float64_module_is_sampled_in_its_own_precision_unless_told_otherwise(precision, config, settings,
                                                                                sampled_in):
    model = nn.Linear(3, 2).to(precision)
    data = (torch.randn(10, 3, dtype=precision), torch.randn(10, 2, dtype=precision))
    prepared = prepare(data, "mse", config, settings, None, None, defaults=module_defaults(config, settings),
                       model=model)
    assert prepared.config.dtype == sampled_in
    own = [note for note in prepared.notes if "sampled in float64, their own precision" in note]
    assert len(own) == (sampled_in == "float64")


@pytest.mark.parametrize("precisions, sampled_in", [((torch.float64, torch.float64), "float64"),
                                                    ((torch.float64, torch.float32), "float32"),
                                                    ((torch.float32, torch.float64), "float32")])
def test_checkpoints_are_sampled_in_float64_only_when_every_one_is_float64(precisions, sampled_in):
    modules = [nn.Linear(3, 2).to(precision) for precision in precisions]
    data = (torch.randn(10, 3), torch.randn(10, 2))
    prepared = prepare(data, "mse", None, {}, None, None, model=modules[0], checkpoints=modules)
    assert prepared.config.dtype == sampled_in
