"""Saddle plateaus: on synthetic ranks, stretches of one rank, where each rests, and how well a
checkpoint's rank is resolved at nβ; on a small training run, which plateaus replica exchange
answers."""

import math

import pytest
import torch

from sltlab.estimators.gate import ESS_MIN, RHAT_MAX
from sltlab.models.training import numerical_rank
from sltlab.verification.dynamics.saddle import SADDLE_SAMPLER, SaddleSetup, train_setup
from sltlab.verification.dynamics.saddle_plateaus import (ABSENT_SDS, LEARNED_SDS, detect_plateaus, exchange_unmixed,
                                                          rank_margin, rises_one_per_stage)


def test_plateaus_are_stretches_of_one_rank_resting_at_the_smallest_gradient():
    ranks = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    norms = [0.1, 0.05, 0.3, 0.9, 0.2, 0.4, 0.8, 0.3, 0.01, 0.02]
    plateaus = detect_plateaus(ranks, norms)
    assert [(p.rank, p.first, p.last, p.resting) for p in plateaus] == [(0, 0, 2, 1), (1, 3, 5, 4), (2, 6, 9, 8)]
    assert rises_one_per_stage(plateaus)


def test_rank_margin_weighs_the_last_learned_and_the_next_mode_in_posterior_sds():
    assert (LEARNED_SDS, ABSENT_SDS) == (5.0, 1.0)
    sigma = torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.01, 0.0], [0.5, 0.2, 0.05], [2.0, 1.0, 0.25]])
    # nβ = 100: one posterior SD is 0.1
    got = rank_margin(sigma, [0, 1, 2, 3], 100.0)
    assert got[0] == math.inf                              # rank 0 with nothing learned, next σ = 0
    assert got[1] == pytest.approx(1.0)                    # min(0.5·10/5, 1/(0.01·10)) = min(1, 10)
    assert got[2] == pytest.approx(0.4)                    # min(0.2·10/5, 1/(0.05·10)) = min(0.4, 2)
    assert got[3] == pytest.approx(0.5)                    # full rank: only the last learned mode, 2.5/5
    assert rank_margin(sigma[1:2], [0], 100.0) == [pytest.approx(0.2)]   # the next mode 5 SDs out: 1/5


def test_a_plateau_rests_at_its_quietest_resolved_checkpoint_or_its_best_resolved_one():
    ranks = [0, 0, 1, 1, 1, 1, 2, 2, 2]
    norms = [0.1, 0.2, 0.01, 0.5, 0.3, 0.4, 0.05, 0.3, 0.2]
    margins = [9.0, 9.0, 0.4, 1.0, 1.6, 0.8, 0.2, 0.6, 0.4]
    plateaus = detect_plateaus(ranks, norms, margins=margins)
    # Rank 1's quietest checkpoint (index 2) is not resolved (a new mode only 2 SDs from zero,
    # say): it rests at the quieter of the two resolved ones. Rank 2 is resolved nowhere: at its
    # best resolved checkpoint.
    assert [p.resting for p in plateaus] == [0, 4, 7]
    assert [p.resting for p in detect_plateaus(ranks, norms)] == [0, 2, 6]
    with pytest.raises(ValueError, match="one margin per rank"):
        detect_plateaus(ranks, norms, margins=margins[1:])


def test_a_rank_passing_through_is_dropped_and_its_neighbours_merged():
    ranks = [0, 0, 0, 1, 0, 0, 1, 1, 2, 3, 3, 3]
    plateaus = detect_plateaus(ranks, [1.0] * len(ranks), min_checkpoints=2)
    assert [(p.rank, p.first, p.last) for p in plateaus] == [(0, 0, 5), (1, 6, 7), (3, 9, 11)]
    assert not rises_one_per_stage(plateaus)          # rank 2 was never a plateau: two modes at once
    assert not rises_one_per_stage(detect_plateaus([1, 1, 2, 2], [1.0] * 4))   # does not start at rank 0
    with pytest.raises(ValueError):
        detect_plateaus([0, 1], [1.0])


def test_only_the_plateaus_whose_mala_chains_fail_the_gate_are_answered_by_replica_exchange():
    setup = SaddleSetup((6, 3, 6), init_scale=1e-3, steps=800, learning_rate=0.02, checkpoint_every=10, n=500,
                        singular_values=(4.0, 1.0)).resolved()
    run, network, x, _ = train_setup(setup)
    ranks = numerical_rank(run.singular_values, setup.rank_tolerance).tolist()
    plateaus = detect_plateaus(ranks, run.gradient_norms.tolist())[:2]
    mixed = {"llc_mean": 7.4, "llc_se": 0.05, "rhat": 1.01, "ess": 900.0, "draws": 5000, "notes": []}
    unmixed = {**mixed, "llc_mean": 3.8, "rhat": 1.4, "ess": 12.0, "notes": ["went on twice"]}
    answered = exchange_unmixed(plateaus, [mixed, unmixed], run, network, x, setup.n, SADDLE_SAMPLER, False)
    assert answered[0] == mixed                                     # a plateau that passed keeps MALA's estimate
    kept, exchanged = answered[1]["mala_unmixed"], answered[1]
    assert kept == {name: unmixed[name] for name in ("llc_mean", "llc_se", "rhat", "ess", "draws")}
    assert "exchange" in exchanged and exchanged["rhat"] <= RHAT_MAX and exchanged["ess"] >= ESS_MIN
    assert exchanged["notes"] == ["went on twice", "MALA's chains still failed the mixing gate at 5,000 draws "
                                  "(λ̂ 3.800 ± 0.050, R-hat 1.400, ESS 12); replica exchange answered"]
