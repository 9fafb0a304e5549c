"""λ̂ along training: one estimate per checkpoint (modules or state dicts), one calibrated step
for all of them, and each checkpoint's own diagnostics."""

import copy
import math

import pytest
import torch
from torch import nn

from sltlab.estimators import LLCConfig, MixingWarning, estimate_llc_along

SHORT = LLCConfig(chains=2, draws=40, burnin=10, localize_at="true_parameter")


def _training_run():
    """Three state dicts of a small MLP trained on a regression task, and its data."""
    torch.manual_seed(0)
    x = torch.randn(200, 3)
    y = torch.tanh(x @ torch.randn(3, 2))
    mlp = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2))
    optimizer = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    checkpoints = []
    for step in range(61):
        if step % 30 == 0:
            checkpoints.append(copy.deepcopy(mlp.state_dict()))
        optimizer.zero_grad()
        nn.functional.mse_loss(mlp(x), y).backward()
        optimizer.step()
    return mlp, checkpoints, (x, y)


def test_each_checkpoint_has_its_estimate_and_diagnostics():
    mlp, checkpoints, data = _training_run()
    with pytest.warns(MixingWarning):   # 2 chains × 40 draws cannot reach a bulk ESS of 200
        along = estimate_llc_along(checkpoints, data, model=mlp, config=SHORT, calibrate_at=None, step_size=1e-4)
    assert len(along.results) == 3 and along.calibration is None and along.calibrated_at is None
    assert all(math.isfinite(mean) for mean in along.means) and all(se > 0 for se in along.standard_errors)
    assert len(along.rhats) == len(along.esses) == 3 and along.mixed == [False, False, False]
    assert all(any("mixing gate" in warning for warning in result.warnings) for result in along.results)
    first = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2))
    first.load_state_dict(checkpoints[0])
    torch.testing.assert_close(along.results[0].localization.center.float(),
                               torch.cat([p.detach().reshape(-1) for p in first.parameters()]))


def test_one_calibration_sets_the_step_of_every_checkpoint():
    mlp, checkpoints, data = _training_run()
    modules = []
    for state in checkpoints:
        module = copy.deepcopy(mlp)
        module.load_state_dict(state)
        modules.append(module)
    with pytest.warns(MixingWarning):
        along = estimate_llc_along(modules, data, config=SHORT, sampler="mala", calibrate_at=1)
    assert along.calibrated_at == 1 and along.calibration.sweep == ()   # MALA: its rule's step, no sweep
    assert {result.config.step_size for result in along.results} == {along.calibration.step_size}


@pytest.mark.parametrize("checkpoints, options, match", [
    ([], {}, "checkpoints is empty"),
    ([{"0.weight": torch.zeros(6, 3)}], {}, "need model="),
    ([{"0.weight": torch.zeros(5, 3)}], {"model": nn.Sequential(nn.Linear(3, 6))}, "checkpoint 0 does not fit"),
    (["not a checkpoint"], {}, "checkpoint 0 is str"),
    ([nn.Linear(3, 2)], {"calibrate_at": 3}, "calibrate_at=3"),
    ([nn.Linear(3, 2)], {"restrict_to": ["weight", "bias"]}, "one restriction"),
])
def test_bad_checkpoints_are_one_line_errors(checkpoints, options, match):
    x = torch.randn(20, 3)
    with pytest.raises(ValueError, match=match) as error:
        estimate_llc_along(checkpoints, (x, x[:, :2]), **options)
    assert "\n" not in str(error.value)
