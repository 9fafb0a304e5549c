"""Deep linear networks written as ``nn.Sequential`` of bias-free ``Linear`` layers, through the
one call: the generic path agrees with the native batched network, and the LLC restricted to
one layer, the others frozen at a balanced rank-r true parameter, lands on its exact value.

Restricted to layer l, the loss is ½‖y − A_l W_l B_l x‖² averaged over the data, with A_l the
product of the frozen layers above and B_l of those below (identity at the ends): a quadratic
form in W_l whose rank is rank(A_l)·rank(B_l) (the Kronecker product B_l ⊗ A_l on vec W_l), so
λ_l = rank(A_l)·rank(B_l)/2 with m = 1 (regular in the curved directions, λ = d/2 there, Watanabe
2009; the flat directions add nothing). At finite nβ with localisation γ each curved direction of
curvature h contributes ½·nβh/(nβh + γ): here under 1 % below λ_l, inside the bias budget.
"""

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from sltlab.estimators import (BurnInWarning, EstimateWarning, LLCConfig, MixingWarning, estimate_llc,
                               estimate_llc_from_loss)
from sltlab.verification.suite import dln_problem

BIAS_BUDGET = 0.02   # of λ_l: the localisation's shortfall (< 1 % here) and the chains' start at w*


def sequential_network(widths, network, position, dtype=torch.float64):
    """The balanced true parameter of ``network`` (a DeepLinearNetwork of ``widths``) as nn.Sequential."""
    assert tuple(network.widths) == tuple(widths)
    return network.as_module(position, dtype)


def exact_restricted_lambda(module: nn.Sequential, layer: int) -> float:
    """rank(A_l)·rank(B_l)/2 from the frozen layers' matrices (identity at the ends)."""
    matrices = [linear.weight.detach().double().numpy() for linear in module]
    above = np.eye(matrices[-1].shape[0])
    for matrix in reversed(matrices[layer + 1:]):
        above = above @ matrix
    below = np.eye(matrices[0].shape[1])
    for matrix in matrices[:layer]:
        below = matrix @ below
    return np.linalg.matrix_rank(above) * np.linalg.matrix_rank(below) / 2


def only_mixing_warnings(call):
    """Run ``call``; the only estimate warnings may be that the short chains fail the mixing gate or
    have not yet spread from w*, lags both paths share at the same settings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    assert all(issubclass(w.category, (MixingWarning, BurnInWarning))
               for w in caught if issubclass(w.category, EstimateWarning))
    return result


@pytest.mark.parametrize("widths, rank", [([4, 3, 4], 1), pytest.param([5, 4, 4, 5], 2, marks=pytest.mark.slow),
                                          pytest.param([6, 3, 3, 3, 6], 1, marks=pytest.mark.slow)])
def test_the_generic_path_agrees_with_the_native_deep_linear_network(widths, rank):
    problem = dln_problem(widths, rank, n=2000, seed=0, per_sample=True)
    config = LLCConfig(chains=4, draws=300, batch_size=200, seed=1)
    native = only_mixing_warnings(lambda: estimate_llc_from_loss(problem.loss, problem.true_parameter,
                                                                 problem.data, config))
    module = sequential_network(widths, problem.loss, problem.true_parameter, torch.float32)
    generic = only_mixing_warnings(lambda: estimate_llc(module, problem.data, config=config))
    assert generic.n == native.n == 2000 and generic.nbeta == native.nbeta
    assert abs(generic.mean - native.mean) <= 3 * math.hypot(generic.standard_error, native.standard_error)
    # the same seed draws the same noise over the same parameters in the same order: the chains match
    np.testing.assert_allclose(generic.per_chain, native.per_chain, rtol=1e-3)


def _restricted(widths, rank, layers, *, n, draws):
    problem = dln_problem(widths, rank, n=n, seed=0, per_sample=True)
    module = sequential_network(widths, problem.loss, problem.true_parameter)
    config = LLCConfig(sampler="mala", chains=4, draws=draws, localization=1.0, dtype="float64")
    results = estimate_llc(module, problem.data, config=config, restrict_to=[f"{layer}.weight" for layer in layers])
    for layer, result in zip(layers, results):
        exact = exact_restricted_lambda(module, layer)
        assert result.parameters == (f"{layer}.weight",) and result.restricted_to == f"{layer}.weight"
        assert result.rhat <= 1.05 and result.ess >= 200 and result.diverged == []
        assert abs(result.mean - exact) <= 3 * result.standard_error + BIAS_BUDGET * exact, (layer, result.mean, exact)


@pytest.mark.parametrize("layer", [pytest.param(0, marks=pytest.mark.slow), 1, pytest.param(2, marks=pytest.mark.slow)])
def test_the_llc_restricted_to_one_layer_is_rank_above_times_rank_below_over_two(layer):
    # [4, 3, 3, 4] at rank 1: λ_l = 1·4/2, 1·1/2, 4·1/2
    _restricted([4, 3, 3, 4], 1, [layer], n=1000, draws=1000)


@pytest.mark.slow
@pytest.mark.parametrize("widths", [[10, 5, 5, 10], [6, 4, 4, 4, 6]])
def test_every_layer_of_a_rank_2_network_restricted_is_exact(widths):
    _restricted(widths, 2, list(range(len(widths) - 1)), n=2000, draws=2000)
