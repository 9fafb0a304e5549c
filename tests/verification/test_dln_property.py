"""Property-based validation: Hypothesis draws small deep linear networks and teacher ranks;
the default estimate must land within its stated tolerance of Aoyagi's λ.

Stated tolerance: the worst-case accuracy target, 10 % of λ outside the band
[λ − (m − 1)/log nβ, λ] that multiplicity explains, plus 3 Monte Carlo standard errors.
Domain: one or two weight matrices and teacher rank ≥ 1. Outside it the defaults are known to
miss, measured and reported rather than hidden behind a wider tolerance:
- rank 0 (every direction degenerate), outside the band by: [1,1,1] 16 % (0.278 ± 0.007
  against λ = 1/2; the exact tempered value at γ = 3 is 0.343, so both the truncation by γ and
  SGLD's mixing along the axes of the zero set contribute), [4,2,4] 17 %, [6,1,6] 17 %,
  [6,6,6] 14 %;
- three or more weight matrices: [10,5,5,10] rank 0 13 % low, [50,50,50,50,50] rank 20 12 %
  high (`sltlab bench --only accuracy`).
Inside the domain the closest measured cases are [6,6,6] rank 1 (8.7 % with 3 SE) and
[6,3,6] rank 1 (8.3 %).
Few examples by default (each estimate is 120,000 steps); many under HYPOTHESIS_PROFILE=thorough.
"""

import os

from hypothesis import given, settings, strategies as st

from sltlab.verification.suite import DLN_DEFAULTS, dln_problem, outside_band, run_estimate

EXAMPLES = 200 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 4


@st.composite
def small_networks(draw):
    widths = draw(st.lists(st.integers(1, 6), min_size=2, max_size=3))
    return widths, draw(st.integers(1, min(widths)))


@settings(max_examples=EXAMPLES)
@given(case=small_networks(), seed=st.integers(0, 1000))
def test_default_estimate_lands_within_tolerance_of_aoyagi(case, seed):
    widths, rank = case
    result = run_estimate(dln_problem(widths, rank, n=DLN_DEFAULTS.n, seed=seed), DLN_DEFAULTS.config)
    assert result["diverged_chains"] == []
    lam, se = result["lambda_exact_float"], result["llc_se"]
    shifted = result["llc_mean"] - 3 * se if result["llc_mean"] > lam else result["llc_mean"] + 3 * se
    assert outside_band(shifted, lam, result["multiplicity_exact"], result["config"]["nbeta"]) <= 0.10, result
