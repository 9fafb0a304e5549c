"""Centres sampled in one batched run (the checkpoints of a training run) burn SGLD's chains in
for the longest start lag any one centre needs, as a single estimate at that centre would alone:
the two-parameter quadratic loss of test_start_spread, whose soft direction relaxes over ~10⁴ steps,
at its minimum, and a stiffer copy of it whose lag is shorter."""

import warnings

import torch

from sltlab.estimators import LLCConfig, estimate_llc_from_loss
from sltlab.estimators.batched import estimate_llc_at_centers
from sltlab.estimators.notices import EstimateWarning

from tests.estimators.test_start_spread import GAMMA, HESSIAN, NBETA, settled_burn_in

STEP = 1e-3


def two_quadratics(position, batch):
    """½·wᵀHw on the first two coordinates, scaled by 1 + 1000·w₃² (w₃ fixed per centre: 0 or 1)."""
    soft = 0.5 * ((position[..., :2] @ HESSIAN) * position[..., :2]).sum(-1, keepdim=True)
    return soft * (1 + 1000 * position[..., 2:] ** 2)


def config(burnin=None):
    return LLCConfig(sampler="sgld", chains=4, draws=2000, burnin=burnin, step_size=STEP, nbeta=NBETA,
                     localization=GAMMA, localize_at="true_parameter", dtype="float64")


def quietly(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimateWarning)
        return call()


CENTERS = [torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64)]


def test_batched_centres_share_the_longest_burn_in_a_single_estimate_would_take():
    alone = [quietly(lambda: estimate_llc_from_loss(two_quadratics, center, (), config(), n=10_000)).config.burnin
             for center in CENTERS]
    together = quietly(lambda: estimate_llc_at_centers(two_quadratics, CENTERS, (), config(), n=10_000))
    assert alone[0] < alone[1] and [result.config.burnin for result in together] == [alone[1]] * 2
    for result in together:
        assert settled_burn_in([note[len("centre 1's "):] for note in result.notes
                                if note.startswith("centre 1's burn-in")]) == alone[1]
        assert any(note.endswith("the centres sampled together share the longest burn-in any one needs")
                   for note in result.notes)


def test_a_burn_in_given_is_kept():
    together = quietly(lambda: estimate_llc_at_centers(two_quadratics, CENTERS, (), config(burnin=500), n=10_000))
    assert [result.config.burnin for result in together] == [500, 500]
    assert not any("burn-in" in note for result in together for note in result.notes)
