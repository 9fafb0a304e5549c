"""Several weight restrictions as one batched run: a chain confined by a mask steps exactly as
the restricted chain would on the same noise and never moves a frozen weight; the curvature
check sees the restricted Hessian; and every layer of a deep linear network, sampled together,
lands on its exact restricted λ as the restrictions one after the other do."""

import math
import sys
import warnings
from pathlib import Path

import pytest
import torch

from sltlab.estimators import LLCConfig, estimate_llc
from sltlab.estimators.posterior import LocalPosterior
from sltlab.estimators.sgld import sgld
from sltlab.estimators.step_size import top_hessian_eigenvalues_lanczos
from sltlab.verification.suite import dln_problem

sys.path.insert(0, str(Path(__file__).parent))
from test_module_dln import exact_restricted_lambda, sequential_network  # noqa: E402

GAMMA = 2.0
SUBSETS = ([0, 2], [1], [0, 1, 3])


def coupled(seed=0, dim=4):
    generator = torch.Generator().manual_seed(seed)
    root = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    return root @ root.T + 0.5 * torch.eye(dim, dtype=torch.float64)


def quadratic_of(hessian):
    """½ wᵀHw with coupled coordinates, one 'sample' per chain."""
    return lambda position, batch: 0.5 * ((position @ hessian) * position).sum(-1, keepdim=True)


def test_a_masked_step_is_the_restricted_step_on_the_same_noise_and_frozen_weights_stay():
    hessian, chains = coupled(), 3
    generator = torch.Generator().manual_seed(1)
    center = torch.randn(4, generator=generator, dtype=torch.float64)
    masks = torch.zeros(len(SUBSETS), 4, dtype=torch.float64)
    for row, subset in enumerate(SUBSETS):
        masks[row, subset] = 1.0
    per_chain_mask = masks.repeat_interleave(chains, 0)
    steps = torch.tensor([0.01, 0.03, 0.02], dtype=torch.float64)
    position = center + per_chain_mask * torch.randn(len(per_chain_mask), 4, generator=generator, dtype=torch.float64)
    noise = torch.randn(len(per_chain_mask), 4, generator=generator, dtype=torch.float64)
    together = sgld(LocalPosterior(quadratic_of(hessian), 50.0, GAMMA, center),
                    step_size=steps.repeat_interleave(chains), mask=per_chain_mask)
    moved, _ = together.step(together.init(position.clone()), None, noise)
    for group, subset in enumerate(SUBSETS):
        rows = slice(group * chains, (group + 1) * chains)
        frozen = [i for i in range(4) if i not in subset]
        assert torch.equal(moved.position[rows][:, frozen], position[rows][:, frozen])

        def restricted(part, batch):   # the loss of the subset, the other weights at the centre
            full = center.expand(len(part), 4).clone()
            full[:, subset] = part
            return quadratic_of(hessian)(full, batch)

        alone = sgld(LocalPosterior(restricted, 50.0, GAMMA, center[subset]), step_size=float(steps[group]))
        expected, _ = alone.step(alone.init(position[rows][:, subset].clone()), None, noise[rows][:, subset])
        torch.testing.assert_close(moved.position[rows][:, subset], expected.position, rtol=1e-13, atol=1e-14)


def test_the_masked_curvature_is_the_top_eigenvalue_of_the_restricted_hessian():
    hessian = coupled(seed=3, dim=6)
    subset = [1, 4, 5]
    mask = torch.zeros(2, 6, dtype=torch.float64)
    mask[:, subset] = 1.0
    points = torch.randn(2, 6, dtype=torch.float64)
    top = top_hessian_eigenvalues_lanczos(quadratic_of(hessian), points, (), steps=3, mask=mask,
                                          generator=torch.Generator().manual_seed(0))
    restricted = torch.linalg.eigvalsh(hessian[subset][:, subset]).max()
    torch.testing.assert_close(top, restricted.expand(2), rtol=1e-10, atol=0)
    assert float(restricted) < 0.99 * float(torch.linalg.eigvalsh(hessian).max())   # the mask matters here


# SGLD's own bias at the rule's step: each curved direction's variance is 1/(1 − εk/4) times the
# exact one, εk ≤ 0.1 by the rule, so up to 2.6 % high; localisation and the start at w* under 1 %.
SGLD_BIAS_BUDGET = 0.04


def test_every_layer_sampled_together_lands_on_its_exact_restricted_lambda():
    widths = [4, 3, 3, 4]   # rank 1: λ_l = 1·4/2, 1·1/2, 4·1/2
    problem = dln_problem(widths, 1, n=1000, seed=0, per_sample=True)
    module = sequential_network(widths, problem.loss, problem.true_parameter)
    config = LLCConfig(chains=4, draws=1000, dtype="float64", seed=3)
    layers = [f"{layer}.weight" for layer in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        together = estimate_llc(module, problem.data, config=config, restrict_to=layers)
        apart = estimate_llc(module, problem.data, config=config, restrict_to=layers, batched=False)
    for layer, batched, alone in zip(range(3), together, apart):
        exact = exact_restricted_lambda(module, layer)
        assert batched.parameters == (f"{layer}.weight",) and batched.restricted_to == f"{layer}.weight"
        assert any("3 restrictions sampled together" in note for note in batched.notes)
        assert any("one after the other: batched=False" in note for note in alone.notes)
        assert batched.rhat <= 1.05 and batched.diverged == []
        # the rule, on the restricted loss; batched and single curvature passes may round apart
        assert math.isclose(batched.config.step_size, alone.config.step_size, rel_tol=1e-12)
        for result in (batched, alone):
            assert abs(result.mean - exact) <= 3 * result.standard_error + SGLD_BIAS_BUDGET * exact, (
                layer, result.mean, exact)


def _small_network_estimates(restrictions, **settings):
    """Short estimates of [3,2,3] rank 1 under a list of restrictions (about what is run, not accuracy)."""
    widths = [3, 2, 3]
    problem = dln_problem(widths, 1, n=200, seed=0, per_sample=True)
    module = sequential_network(widths, problem.loss, problem.true_parameter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimate_llc(module, problem.data, restrict_to=restrictions, chains=2, burnin=10, seed=0, **settings)


def test_a_list_of_restrictions_with_mala_runs_one_after_the_other_and_says_why():
    results = _small_network_estimates(["0.weight", "1.weight"], sampler="mala", draws=20)
    assert all(any("only sgld confines chains to a restriction" in note for note in result.notes) for result in results)


@pytest.mark.parametrize("settings, reason", [
    ({"draws": 20}, "only sgld confines chains to a restriction's parameters in one run, not mala"),   # defaults
    ({"sampler": "sgld", "draws": 20, "reruns": 1}, "reruns and a fallback act on each restriction's own chains"),
])
def test_a_list_of_restrictions_run_one_after_the_other_says_the_first_reason(settings, reason):
    results = _small_network_estimates(["0.weight", "1.weight"], **settings)
    assert all(any(reason in note for note in result.notes) for result in results)


def test_all_parameters_beside_one_layer_in_a_list_of_restrictions():
    whole, layer = _small_network_estimates([None, "0.weight"], sampler="sgld", draws=30)
    assert whole.restricted_to is None and whole.parameters == ("0.weight", "1.weight")
    assert layer.restricted_to == "0.weight" and layer.parameters == ("0.weight",)
    assert any("2 restrictions sampled together" in note for note in layer.notes)
