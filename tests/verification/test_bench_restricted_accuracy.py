"""`sltlab bench --only restricted-accuracy`: the one call's LLC restricted to each layer of random
deep linear networks, judged against the closed-form truth of the Gaussian restricted posterior."""

import torch

from sltlab.theory.restricted import restricted_deep_linear_balanced
from sltlab.verification.bench.module_accuracy import BIAS_BUDGET, MIN_PASSING_SHARE
from sltlab.verification.bench.restricted_accuracy import (closed_form_truth, format_restricted_accuracy,
                                                           restricted_accuracy_rows)
from sltlab.verification.suite import dln_problem, random_dln_cases


def test_the_closed_form_truth_is_that_of_the_autograd_hessian_of_the_module_s_loss():
    """The Kronecker eigenvalues behind the truth against the Hessian autograd takes of the
    nn.Sequential's mean loss in one layer, the others at the true parameter (float64)."""
    problem = dln_problem([3, 4, 2, 3], 1, n=300, seed=5, per_sample=True)
    module = problem.loss.as_module(problem.true_parameter, torch.float64)
    x, y = (tensor.double() for tensor in problem.data)
    nbeta, gamma = 40.0, 1.5
    for layer in (1, 2, 3):
        weight = module[layer - 1].weight.detach()

        def loss(entries):
            out = x
            for index, other in enumerate(module):
                out = out @ (entries.reshape(weight.shape) if index == layer - 1 else other.weight.detach()).T
            return 0.5 * ((out - y) ** 2).sum(-1).mean()

        hessian = torch.autograd.functional.hessian(loss, weight.reshape(-1))
        curvature = nbeta * torch.linalg.eigvalsh(hessian).clamp(min=0)
        expected = float((0.5 * curvature / (curvature + gamma)).sum())
        assert abs(closed_form_truth(problem, layer, nbeta, gamma) - expected) < 1e-9 * max(1.0, expected)


def test_restricted_accuracy_bench_judges_every_layer_of_every_network():
    """One network, each setting run short: a row per layer and setting, each with the exact
    restricted λ beside its truth, and a miss exactly where the rule puts one."""
    result = restricted_accuracy_rows(count=1, seeds=(0,), rows_of_data=500, shorter=dict(chains=2, draws=40,
                                                                                          burnin=10))
    (draw,) = result["draws"]
    layers = len(draw["rows"]) // 2
    assert [row["network"].split(" random")[0] for row in draw["rows"]] == [f"layer {layer}" for layer in
                                                                            range(1, layers + 1)] * 2
    assert [row["sampler"] for row in draw["rows"]] == ["mala"] * layers + ["sgld"] * layers
    (case,) = random_dln_cases(1, 0)
    widths, rank = dict(case.arguments)["widths"], dict(case.arguments)["rank"]
    assert layers == len(widths) - 1
    for index, row in enumerate(draw["rows"]):
        assert row["lambda"] == restricted_deep_linear_balanced(list(widths), rank, index % layers + 1).lam_float
        assert row["truth_se"] == 0.0 and 0 <= row["truth"] <= row["lambda"]
        if row["llc"] is not None and row["se"] is not None:
            beyond = abs(row["llc"] - row["truth"]) - 3 * row["se"]
            assert row["misses"] == (beyond > BIAS_BUDGET * abs(row["truth"]))
    assert any(row["llc"] is not None and row["se"] is not None for row in draw["rows"])   # the rule was applied
    defaults = draw["summary"]["defaults (mala)"]
    assert defaults["networks"] == layers and result["meets_target"] == (
        defaults["silent_misses"] == 0 and defaults["passing_gate"] >= MIN_PASSING_SHARE * defaults["networks"])
    assert "closed-form truth ½·Σ nβh/(nβh + γ)" in format_restricted_accuracy(result)
