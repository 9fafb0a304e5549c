"""A Metropolis sampler rejects a proposal where the loss is not finite, which cuts the posterior
off where the model fails; the result says how many it rejected so, where it had said nothing."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from sltlab.estimators import estimate_llc

SHORT = dict(nbeta=2.0, localize_at="true_parameter", draws=200, chains=4, extend_unmixed=0, fallback=None)


class FailsAwayFromZeroBias(nn.Module):
    """A linear layer whose outputs are NaN once its bias leaves (−limit, limit)."""

    def __init__(self, limit: float):
        super().__init__()
        self.linear, self.limit = nn.Linear(3, 1), limit
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
            self.linear.bias.zero_()

    def forward(self, x):
        out = self.linear(x)
        return torch.where(self.linear.bias.abs() < self.limit, out, torch.full_like(out, float("nan")))


@pytest.mark.parametrize("sampler, limit, said", [("mala", 0.3, True), ("mala", float("inf"), False),
                                                  ("hmc", 1.0, True), ("hmc", float("inf"), False)])
def test_proposals_rejected_for_a_loss_that_is_not_finite_are_counted(sampler, limit, said):
    """(HMC at a wall of 1.0, not 0.3: nearer walls reject so many trajectories that its warm-up
    shrinks the step, and the trajectories' leapfrog steps grow, without end.)"""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(200, 1, generator=generator)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # short runs: the mixing gate is not what is tested
        result = estimate_llc(FailsAwayFromZeroBias(limit), (x, y), sampler=sampler, **SHORT)
    notes = [note for note in result.notes if "rejected because the potential there was NaN or +inf" in note]
    assert len(notes) == int(said)
    if said:   # at nβ = 2 the bias's posterior reaches past the wall: some proposals land there
        rejected, recorded = (int(word.replace(",", "")) for word in notes[0].split()[:4:3])
        assert 0 < rejected < recorded == result.trace.fields["unfinite"].size
