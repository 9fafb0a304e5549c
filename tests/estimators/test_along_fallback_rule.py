"""Checkpoints estimated one after another at a calibrated step: a checkpoint whose chains fell
back to HMC reports HMC's own step rule, not the calibration's."""

import warnings

import torch
from torch import nn

from sltlab.estimators import estimate_llc_along

X = torch.arange(160, dtype=torch.float32).reshape(80, 2) / 80
Y = X.sum(1, keepdim=True)


def test_a_checkpoint_whose_chains_fell_back_keeps_the_fallbacks_own_step_rule():
    """Every checkpoint's rule had been overwritten with the calibration's, even where HMC had
    replaced the calibrated sampler's chains."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # 20 SGLD draws fail the gate, so HMC runs
        along = estimate_llc_along([nn.Linear(2, 1), nn.Linear(2, 1)], (X, Y), sampler="sgld", fallback="hmc",
                                   batched=False, calibrate_at=0, chains=2, draws=20, burnin=10,
                                   localize_at="true_parameter", extend_unmixed=0)
    assert [result.config.sampler for result in along.results] == ["hmc", "hmc"]
    assert all(result.step_size_rule.startswith("dual averaging to HMC acceptance") for result in along.results)
