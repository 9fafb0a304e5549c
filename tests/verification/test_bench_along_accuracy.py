"""`sltlab bench --only along-accuracy`: the LLC along training judged at two points of each random
network's minimum set, each against the blocked-Gibbs truth at its own centre."""

import math

import torch

from sltlab.verification.bench.along_accuracy import (along_accuracy_rows, checkpoint_named, format_along_accuracy,
                                                      rescaled)
from sltlab.verification.bench.module_accuracy import BIAS_BUDGET, MIN_PASSING_SHARE


def test_along_accuracy_bench_judges_each_checkpoint_against_its_own_truth():
    """One network as two checkpoints, each setting run short: a row per checkpoint and setting,
    each judged as the module bench judges one estimate, against the truth at its own centre."""
    result = along_accuracy_rows(count=1, seeds=(0,), rows_of_data=500, shorter=dict(chains=2, draws=40, burnin=10),
                                 gibbs=dict(chains=2, sweeps=40, burnin=10))
    (draw,) = result["draws"]
    assert [(row["network"][:2], row["sampler"]) for row in draw["rows"]] == [
        ("@0", "mala"), ("@1", "mala"), ("@0", "sgld"), ("@1", "sgld")]
    for row in draw["rows"]:
        if row["llc"] is not None:
            beyond = abs(row["llc"] - row["truth"]) - 3 * math.hypot(row["se"], row["truth_se"])
            assert row["misses"] == (beyond > BIAS_BUDGET * abs(row["truth"]))
    assert any(row["llc"] is not None for row in draw["rows"])   # the rule was applied
    defaults = draw["summary"]["defaults (mala)"]
    assert defaults["networks"] == 2 and result["meets_target"] == (
        defaults["silent_misses"] == 0 and defaults["passing_gate"] >= MIN_PASSING_SHARE * defaults["networks"])
    assert "@1 its first layer ×1.5" in format_along_accuracy(result)
    network = torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False), torch.nn.Linear(4, 2, bias=False)).double()
    inputs = torch.randn(5, 3, dtype=torch.float64)
    before, first = network(inputs), network[0].weight.clone()
    moved = rescaled(network, 1.5)
    torch.testing.assert_close(moved(inputs), before, rtol=1e-14, atol=1e-14)   # the same map
    assert torch.equal(moved[0].weight, 1.5 * first)                           # at another point


def test_an_along_warning_counts_for_the_checkpoint_it_names():
    messages = ("checkpoint 1: R-hat 1.2", "checkpoint 12: x", "the chains …: y", "checkpoint one: z")
    assert [checkpoint_named(message) for message in messages] == [1, 12, None, None]
