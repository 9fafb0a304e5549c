"""R-hat, bulk ESS and MCSE: equal to arviz-stats' on every kind of trace, and right where the
answer is known without it."""

import warnings

import numpy as np
import pytest
from arviz_stats.base import array_stats

from sltlab.estimators import diagnostics


def autoregressive(rng, chains, draws, phi):
    values = np.zeros((chains, draws))
    shocks = rng.normal(size=(chains, draws))
    for t in range(1, draws):
        values[:, t] = phi * values[:, t - 1] + shocks[:, t]
    return values


def traces():
    rng = np.random.default_rng(7)
    yield "normal", rng.normal(size=(4, 500))
    yield "odd draws", rng.normal(size=(3, 101))
    yield "one chain", rng.normal(size=(1, 300))
    yield "AR(1) 0.9", autoregressive(rng, 6, 400, 0.9)
    yield "AR(1) 0.99 with offsets", autoregressive(rng, 4, 300, 0.99) + rng.normal(size=(4, 1))
    yield "anticorrelated", autoregressive(rng, 4, 200, -0.7)
    yield "ties", rng.integers(0, 4, size=(4, 250)).astype(float)
    yield "heavy tails", rng.standard_cauchy(size=(8, 400))
    yield "a stuck chain", np.concatenate([rng.normal(size=(3, 200)), np.full((1, 200), 5.0)])
    yield "four draws", rng.normal(size=(2, 4))


@pytest.mark.parametrize("name, values", list(traces()), ids=[name for name, _ in traces()])
def test_the_diagnostics_equal_arviz_stats(name, values):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        pairs = [(diagnostics.bulk_ess(values), array_stats.ess(values, method="bulk")),
                 (diagnostics.mcse_mean(values), array_stats.mcse(values, method="mean"))]
        if values.shape[0] > 1:
            pairs.append((diagnostics.rhat(values), array_stats.rhat(values)))
    for ours, reference in pairs:
        reference = float(reference)
        if np.isnan(reference):
            assert np.isnan(ours)
        else:
            assert ours == pytest.approx(reference, rel=1e-12, abs=1e-300)


def test_independent_draws_have_an_ess_near_their_number_and_rhat_near_one():
    values = np.random.default_rng(3).normal(size=(8, 2000))
    # for independent draws the bulk ESS is S up to its own error, about S·√(2/draws) here
    assert diagnostics.bulk_ess(values) == pytest.approx(values.size, rel=0.1)
    assert abs(diagnostics.rhat(values) - 1) < 0.01
    # MCSE of independent draws: σ/√S
    assert diagnostics.mcse_mean(values) == pytest.approx(1 / np.sqrt(values.size), rel=0.1)


def test_a_chain_elsewhere_raises_rhat_and_a_constant_trace_counts_every_draw():
    rng = np.random.default_rng(4)
    values = rng.normal(size=(4, 500))
    values[0] += 1.0
    assert diagnostics.rhat(values) > 1.05
    assert diagnostics.bulk_ess(np.ones((3, 10))) == 30


def test_too_short_or_unknown_gives_nan():
    assert np.isnan(diagnostics.rhat(np.zeros((1, 100))))
    assert np.isnan(diagnostics.bulk_ess(np.zeros((2, 3))))
    values = np.ones((2, 10))
    values[0, 3] = np.nan
    assert np.isnan(diagnostics.mcse_mean(values)) and np.isnan(diagnostics.rhat(values))


def test_average_ranks_share_ties():
    normalised = diagnostics.rank_normalise(np.array([[1.0, 2.0, 2.0, 3.0]]))
    assert normalised[0, 1] == normalised[0, 2] == 0.0            # ranks 2 and 3 share 2.5, the middle
    assert normalised[0, 0] == -normalised[0, 3] < 0
