"""The slice sampler says when its shrinkage gives up: a slice far narrower than its bracket leaves
coordinates where they were, and λ̂ then reads only the directions the chains could resolve."""
import warnings
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import torch

from sltlab.estimators import LLCConfig, StepSizeWarning, estimate_llc_from_loss
from sltlab.estimators.slice import MAX_EXPANSIONS, stalled_concern
from sltlab.models.potential import Potential
from sltlab.theory import parse_expression

CROSS = Potential(*parse_expression("w1**2*w2**2"))   # λ = 1/2, m = 2: the posterior hugs the axes
ORIGIN = torch.zeros(2, dtype=torch.float64)
SLICE = LLCConfig(sampler="slice", chains=4, draws=100, burnin=20, dtype="float64", localize_at="true_parameter")


def estimated(nbeta: float):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = estimate_llc_from_loss(CROSS, ORIGIN, (), replace(SLICE, nbeta=nbeta), n=1000)
    return result, [str(notice.message) for notice in caught if issubclass(notice.category, StepSizeWarning)]


def test_a_slice_narrower_than_the_shrinkage_reaches_is_said_and_its_zero_is_not_taken_for_the_llc():
    """At nβ = 10³⁰⁰ the slice across an axis is about 10⁻¹⁵⁰ wide, beyond 2⁻⁶⁰ of the bracket of 2:
    every update across the axis the chain sits on gives up, which is half its coordinate updates."""
    result, said = estimated(1e300)
    assert result.mean == 0.0
    stalled = result.trace.fields["stalled"]
    assert stalled.min() == 0.5 and stalled.max() == 0.5   # one coordinate of two, at every step
    assert len(said) == 1 and "found no point of the slice on up to 50.0%" in said[0]
    assert f"2^-{MAX_EXPANSIONS}" in said[0] and "so λ̂ is not the LLC" in said[0]


def test_an_ordinary_temperature_never_stalls_and_says_nothing():
    result, said = estimated(100.0)
    assert result.mean > 0 and not result.trace.fields["stalled"].any() and said == []


def test_only_the_chains_kept_in_the_estimate_are_read():
    stalled = np.zeros((3, 10))
    stalled[1] = 0.5   # chain 1 stalls half its updates
    trace = SimpleNamespace(fields={"stalled": stalled}, diverged=np.zeros(3, dtype=bool))
    assert stalled_concern(trace, dropped=[1]) is None
    assert "up to 50.0%" in stalled_concern(trace, dropped=[0])
    assert stalled_concern(SimpleNamespace(fields={}, diverged=np.zeros(3, dtype=bool)), dropped=[]) is None
