"""Sampler error alone on toy potentials: full-batch MALA must reproduce t·E_t[K], integrated
numerically at the same nβ and γ, within 3 Monte Carlo standard errors (fixed seeds)."""

import pytest

from sltlab.estimators.config import LLCConfig
from sltlab.verification.suite import potential_problem, run_estimate

FAST = ["w1**4", "w1**4 + w2**2", "w1**6 + w2**4", "(w1**2 + w2**2)**2"]
# The zero set of w1² + w1²w2² is the whole w2 axis, held only by γ: along it the chains relax in
# about 1/(ε·γ) ≈ 1,500 steps, and at 5,000 draws the gate's R-hat read 1.014–1.054 over seeds
# 0–5 (a bit-level change of the warm-up's arithmetic moved seed 3 from below 1.05 to 1.054);
# at 10,000 draws it read 1.006–1.034, and λ̂ was within 1.9 SE of t·E_t[K] on every seed.
ARM = "w1**2 + w1**2*w2**2"
# Zero sets with long arms mix slowly: the step that fits the narrow arm tips is small near the
# origin, and the Monte Carlo SE of such runs is too small. w1²w2⁴ + w1⁴w2² is therefore not
# tested here: at 50,000 draws MALA sits 4–5 SE below t·E[K] (0.270 against 0.285) on most seeds.
SLOW = ["w1**2*w2**2"]


def check(potential, draws):
    config = LLCConfig(sampler="mala", chains=64, draws=draws, localization=1.0, dtype="float64", seed=3)
    result = run_estimate(potential_problem(potential, n=10_000), config)
    assert result["diverged_chains"] == []
    assert abs(result["llc_mean"] - result["finite_n_truth"]) <= 3 * result["llc_se"], result


@pytest.mark.parametrize("potential, draws", [(potential, 5000) for potential in FAST] + [(ARM, 10_000)])
def test_mala_matches_the_finite_temperature_expectation(potential, draws):
    check(potential, draws)


@pytest.mark.slow
@pytest.mark.parametrize("potential", SLOW)
def test_mala_matches_the_finite_temperature_expectation_on_crossings(potential):
    check(potential, 50_000)
