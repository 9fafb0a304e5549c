"""λ̂'s elasticity in γ, read from one run's draws: exact arithmetic, the trace's pairing of each
loss with its distance, and against its closed form on a quadratic potential."""

import math
import warnings

import numpy as np
import pytest
import torch

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.elasticity import ELASTICITY_MIN, Elasticity, elasticity_concern, gamma_elasticity
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.notices import LocalizationWarning
from sltlab.estimators.posterior import LocalPosterior
from sltlab.estimators.sampling import Batches, run_chains
from sltlab.estimators.sgld import sgld

CURVATURES = torch.tensor([10.0, 1.0, 0.1, 0.01, 0.0, 0.0], dtype=torch.float64)   # two flat directions
NBETA = 100.0


def quadratic(position, batch=None):
    """L(w) = ½ Σ h_i w_i², a population potential ([C, 1])."""
    return (0.5 * position.square() * CURVATURES.to(position.dtype)).sum(-1, keepdim=True)


def closed_form(gamma: float) -> tuple[float, float]:
    """λ(γ) = Σ c_i, c_i = a_i/(2(a_i + γ)), and ε = −Σ c_i·γ/(a_i + γ) / Σ c_i, a_i = nβ·h_i."""
    a = NBETA * CURVATURES
    c = a / (2 * (a + gamma))
    return float(c.sum()), float(-(c * gamma / (a + gamma)).sum() / c.sum())


def test_elasticity_is_minus_gamma_times_the_covariance_over_the_mean():
    gaps = np.array([[1.0, 2.0, 3.0, 6.0], [2.0, 2.0, 4.0, 4.0], [9.0, 9.0, 9.0, 9.0]])
    distances = np.sqrt(2 * np.array([[4.0, 3.0, 2.0, 1.0], [1.0, 1.0, 2.0, 2.0], [5.0, 5.0, 5.0, 5.0]]))
    kept = np.array([True, True, False])   # the third chain is left out
    g, s = gaps[:2].ravel(), 0.5 * distances[:2].ravel() ** 2
    expected = -10.0 * np.mean((g - g.mean()) * (s - s.mean())) / g.mean()
    assert gamma_elasticity(gaps, distances, 10.0, kept, None).value == pytest.approx(expected, rel=1e-12)


def test_no_elasticity_without_localisation_kept_chains_or_a_positive_mean():
    gaps, distances = np.ones((2, 8)), np.ones((2, 8))
    assert gamma_elasticity(gaps, distances, 0.0, np.array([True, True]), None) is None
    assert gamma_elasticity(gaps, distances, 1.0, np.array([False, False]), None) is None
    assert gamma_elasticity(-gaps, distances, 1.0, np.array([True, True]), None) is None


def test_each_recorded_loss_is_paired_with_the_distance_where_it_was_read():
    # one curvature, centre 0: L(w) = ½·h·‖w‖² exactly, so the two fields determine each other
    def loss(position, batch=None):
        return 0.5 * 3.0 * position.square().sum(-1, keepdim=True)

    posterior = LocalPosterior(loss, NBETA, 1.0, torch.zeros(4, dtype=torch.float64))
    trace = run_chains(sgld(posterior, step_size=1e-3), posterior, Batches((), 1), chains=3, draws=50, burnin=5,
                       thin=2, generator=torch.Generator().manual_seed(0))
    assert trace.fields["distance"].shape == (3, 50)
    np.testing.assert_allclose(trace.fields["loss"], 1.5 * trace.fields["distance"] ** 2, rtol=1e-12)


@pytest.mark.parametrize("gamma", [1.0, 1000.0])
def test_mala_reads_the_closed_form_elasticity_of_a_quadratic(gamma):
    lam, epsilon = closed_form(gamma)
    config = LLCConfig(sampler="mala", chains=8, draws=4000, nbeta=NBETA, localization=gamma, seed=0,
                       localize_at="true_parameter", dtype="float64")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = estimate_llc_from_loss(quadratic, torch.zeros(6, dtype=torch.float64), (), config, n=1000)
    assert abs(result.mean - lam) < 3 * result.standard_error
    # MALA is exact; 3 SE of the elasticity's own error, nothing added
    assert abs(result.elasticity.value - epsilon) < 3 * result.elasticity.standard_error
    assert result.elasticity.standard_error < 0.05
    assert result.summary()["gamma_elasticity"]["value"] == result.elasticity.value
    assert "d log λ̂/d log γ" in repr(result)
    held = [w for w in caught if issubclass(w.category, LocalizationWarning)]
    assert len(held) == (1 if epsilon < ELASTICITY_MIN else 0)   # −0.10 at γ = 1, −0.57 at γ = 1,000
    assert (epsilon < ELASTICITY_MIN) == (gamma == 1000.0)


def test_the_warning_needs_the_elasticity_three_standard_errors_below_the_line():
    assert elasticity_concern(Elasticity(ELASTICITY_MIN - 0.1, 0.034), 1.0) is None
    assert elasticity_concern(Elasticity(ELASTICITY_MIN - 0.1, 0.033), 1.0) is not None
    assert elasticity_concern(Elasticity(ELASTICITY_MIN - 0.1, None), 1.0) is None
    message = elasticity_concern(Elasticity(-0.9, 0.02), 100.0)
    assert "-0.90 ± 0.02" in message and "γ = 100" in message
    assert f"{1 - 2 ** -0.9:.0%}" in message and math.isclose(1 - 2 ** -0.9, 0.464, abs_tol=1e-3)
