"""A restriction's localisation concerns (a loss drop above d/2, a move beyond the reach of
χ²_d) count the parameters it samples, in a batched run of several restrictions too, where each
group's centre holds the frozen parameters as well."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from sltlab.estimators import estimate_llc
from sltlab.estimators.notices import LocalizationWarning


@pytest.mark.parametrize("restrict_to", [["0.*", "1.*"], "0.*"])
def test_d_is_that_of_the_restrictions_own_parameters(restrict_to):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(200, 1, generator=generator)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))   # untrained: localising moves each restriction far
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimate_llc(model, (x, y), restrict_to=restrict_to, sampler="sgld", chains=2, draws=20, localization=1e4)
    moved = [str(w.message) for w in caught if issubclass(w.category, LocalizationWarning)]
    halves = ["d/2 = 4:"] if restrict_to == "0.*" else ["d/2 = 4:", "d/2 = 1.5:"]   # 0.*: 6 weights + 2 biases; 1.*: 3
    assert len(moved) == len(halves) and all(half in message for half, message in zip(halves, moved))
