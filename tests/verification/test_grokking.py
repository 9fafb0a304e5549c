"""The grokking study's parts: memorisation and grokking steps, the shape summary and its split
at the test loss's peak, a small study with its cache and its curves going on where unmixed, and
stages set beside memorisation and grokking."""

import json

import numpy as np
import pytest
import torch

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.notices import MixingWarning
from sltlab.estimators.elasticity import ELASTICITY_MIN, ELASTICITY_SPREADS
from sltlab.verification.dynamics.grokking import (GrokkingSetup, SamplerSetting, first_step_reaching, grokking_study,
                                                   shape_summary)
from sltlab.verification.dynamics.grokking_along import curve_stages



def test_memorisation_and_grokking_steps_and_the_shape_summary():
    steps = torch.tensor([0, 10, 20, 30, 40])
    assert first_step_reaching(steps, torch.tensor([0.1, 0.5, 0.99, 1.0, 1.0]), 0.99) == 20
    assert first_step_reaching(steps, torch.tensor([0.1, 0.2, 0.3, 0.3, 0.3]), 0.95) is None
    summary = shape_summary([0, 10, 20, 30, 40], [5.0, 9.0, 20.0, 8.0, 1.0], [4.0, 6.0, 9.0, 5.0, 0.5],
                            memorised=20, grokked=40)
    assert summary["spearman_with_test_loss"] == pytest.approx(1.0) and summary["spearman_above_target"]
    assert summary["rises_through_memorisation"] and summary["falls_through_grokking"]
    assert summary["peak_step"] == 20 and summary["test_loss_peak_step"] == 20
    assert summary["spearman_llc_peak_to_test_peak"] is None      # one checkpoint: no correlation
    assert summary["spearman_from_test_peak"] == pytest.approx(1.0)


def test_the_shape_summary_splits_the_correlation_at_the_test_loss_peak():
    """λ̂ peaks at step 10 and falls while the test loss rises to step 30, then both fall."""
    summary = shape_summary([0, 10, 20, 30, 40, 50, 60], [2.0, 20.0, 15.0, 10.0, 6.0, 3.0, 1.0],
                            [4.0, 6.0, 8.0, 10.0, 7.0, 3.0, 1.0], memorised=10, grokked=50)
    assert (summary["peak_step"], summary["test_loss_peak_step"]) == (10, 30)
    assert summary["spearman_llc_peak_to_test_peak"] == pytest.approx(-1.0)
    assert summary["spearman_from_test_peak"] == pytest.approx(1.0)
    assert summary["spearman_with_test_loss"] == pytest.approx(5 / 7) and not summary["spearman_above_target"]
    assert summary["spearman_with_train_loss_from_llc_peak"] is None      # no training loss given
    # from λ̂'s peak on (steps 10–60) λ̂ falls with the training loss but for one swap, at steps 40 and 50
    train_loss = [3.0, 2.0, 1.0, 0.5, 0.1, 0.2, 0.01]
    with_train = shape_summary([0, 10, 20, 30, 40, 50, 60], [2.0, 20.0, 15.0, 10.0, 6.0, 3.0, 1.0],
                               [4.0, 6.0, 8.0, 10.0, 7.0, 3.0, 1.0], memorised=10, grokked=50, train_loss=train_loss)
    assert with_train["spearman_with_train_loss_from_llc_peak"] == pytest.approx(1 - 6 * 2 / (6 * 35))


@pytest.mark.filterwarnings("ignore::sltlab.estimators.notices.BurnInWarning")   # 6 SGLD draws: near w*
def test_a_small_grokking_study_reports_every_checkpoint_and_setting(tmp_path):
    setup = GrokkingSetup(modulus=7, embedding_dim=4, hidden=8, steps=30, early_every=5, early_until=10,
                          checkpoint_every=10, seeds=(0, 1))
    settings = (SamplerSetting("a", LLCConfig(chains=2, draws=6, step_size=1e-3, localization=100.0, batch_size=8,
                                              localize_at="true_parameter")),
                SamplerSetting("b", LLCConfig(chains=2, draws=6, step_size=3e-4, localization=10.0, batch_size=8,
                                              localize_at="true_parameter")))
    # MALA is exact: not calibrated, each checkpoint's warm-up tunes its step, so each seed's curve is sampled.
    curve = LLCConfig(sampler="mala", chains=2, draws=20, burnin=10, localization=100.0, localize_at="true_parameter")
    with pytest.warns(MixingWarning):   # 2 chains × 6 draws cannot reach an ESS of 200
        result = grokking_study(setup, settings, curve=curve, cache=tmp_path)
    assert result["steps"] == [0, 5, 10, 20, 30] and len(result["seeds"]) == 2
    # the cache holds measurements only; mixing tallies, correlations and stages are judged on load
    stored_results = sorted(tmp_path.glob("grokking-*.json"))
    assert len(stored_results) == 4   # two seeds' curves, two sensitivity settings
    for stored in stored_results:
        assert not {"rhat_within_target", "checkpoints_over_rhat", "spearman_with_test_loss", "stages",
                    "checkpoints_held_by_gamma"} & set(json.loads(stored.read_text()))
    for curve in result["sensitivity"]:
        assert len(curve["llc_mean"]) == 5 and curve["config"]["localize_at"] == "true_parameter"
    for row in result["seeds"]:
        curve = row["curve"]
        assert len(curve["llc_mean"]) == len(curve["rhat"]) == len(curve["ess"]) == 5
        assert curve["calibrated_at_step"] is None and curve["step_size"] > 0
        assert curve["calibration"].startswith("mala is exact at any step: no calibration")
        # the summary counts what the per-checkpoint rows hold, and the target reads that count
        over = sum(r is None or r > 1.05 for r in curve["rhat"])
        assert curve["checkpoints_over_rhat"] == over and curve["rhat_within_target"] == (over == 0)
        assert curve["max_rhat"] == max(r for r in curve["rhat"] if r is not None)
        assert curve["checkpoints_under_ess"] == 5 and "spearman_with_test_loss" in curve
        # d log λ̂/d log γ at every checkpoint; the count is of those read below the warning's line
        assert len(curve["gamma_elasticity"]) == len(curve["gamma_elasticity_se"]) == 5
        assert curve["checkpoints_held_by_gamma"] == sum(
            value is not None and error is not None and value + ELASTICITY_SPREADS * error < ELASTICITY_MIN
            for value, error in zip(curve["gamma_elasticity"], curve["gamma_elasticity_se"]))
        # every checkpoint failed the gate at 20 draws and at 40, so each went on twice, to 80
        assert curve["extend_unmixed"] == 2 and curve["draws_per_checkpoint"] == [80] * 5 == [curve["draws"]] * 5
    assert result["every_checkpoint_rhat_within_target"] == all(r["curve"]["rhat_within_target"]
                                                                 for r in result["seeds"])
    json.dumps(result, allow_nan=False)


def test_stages_of_a_grokking_curve_are_set_beside_memorisation_and_grokking():
    """A rise to step 200 and a fall from 500 to 3,000 (λ̂ ± 1 on a log grid): two boundaries,
    the memorisation step in the rise's window and the grokking step in the fall's."""
    steps = [0, 25, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 10000]
    log_steps = np.log1p(steps)
    llc = 20 + 160 * np.clip((log_steps - np.log1p(25)) / (np.log1p(200) - np.log1p(25)), 0, 1)
    llc = llc - 179.8 * np.clip((log_steps - np.log1p(500)) / (np.log1p(3000) - np.log1p(500)), 0, 1)
    stages = curve_stages(steps, list(llc), [1.0] * len(steps), memorised=150, grokked=2000)
    assert [b["direction"] for b in stages["stages"]] == ["rise", "fall"]
    rise, fall = stages["stages"]
    assert stages["memorisation_boundary"] == rise["step"] and stages["grokking_boundary"] == fall["step"]
    # each step on its own: a window holding both names its boundary twice
    both = curve_stages(steps, list(llc), [1.0] * len(steps), memorised=1000, grokked=2000)
    assert both["memorisation_boundary"] == both["grokking_boundary"] == fall["step"]
    assert curve_stages(steps[:4], list(llc[:4]), [1.0] * 4, memorised=25, grokked=None)["stages"] == []


def test_a_rise_still_going_at_the_last_checkpoint_is_an_edge_move_that_holds_no_step():
    """The same curve rising again by 10 from step 6,000 on, steepest at the last checkpoint: not a
    boundary at step 10,000 (which would have held the grokking step, 8,000) but a move at the last
    checkpoint, window 4,000–10,000, which names no boundary for the step inside it."""
    steps = [0, 25, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 10000]
    log_steps = np.log1p(steps)
    llc = 20 + 160 * np.clip((log_steps - np.log1p(25)) / (np.log1p(200) - np.log1p(25)), 0, 1)
    llc = llc - 179.8 * np.clip((log_steps - np.log1p(500)) / (np.log1p(3000) - np.log1p(500)), 0, 1)
    llc = llc + 10 * np.clip((log_steps - np.log1p(6000)) / (np.log1p(10000) - np.log1p(6000)), 0, 1) ** 2
    stages = curve_stages(steps, list(llc), [1.0] * len(steps), memorised=150, grokked=8000)
    assert [(b["direction"], b["step"], b["window_start"], b["window_end"]) for b in stages["stages"]] == [
        ("rise", 25, 0, 300), ("fall", 1500, 300, 4000)]
    (move,) = stages["edge_moves"]
    assert (move["edge"], move["direction"], move["window_start"], move["window_end"]) == ("last", "rise", 4000, 10000)
    assert stages["grokking_boundary"] is None and stages["memorisation_boundary"] == 25
    assert curve_stages(steps[:4], list(llc[:4]), [1.0] * 4, memorised=25, grokked=None)["edge_moves"] == []
