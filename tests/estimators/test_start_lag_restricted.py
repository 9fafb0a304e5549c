"""The lag of SGLD's chains from w* on a data set larger than the rows the Hessian is taken on,
and for restrictions sampled together: y = a·(x₁, x₂) + b·x₃ with input scales 10, 0.1 and 1 on
2,000 rows, at its least-squares fit. Restricted to a, the direction of x₂ (curvature 3.6 at nβ = 263,
γ = 1) relaxes in about 150,000 steps of the step that x₁ sets, so λ̂ lacks about 0.36."""

import warnings

import pytest
import torch

from sltlab.estimators import BurnInWarning, LLCConfig, estimate_llc


class TwoLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(2, 1, bias=False)
        self.b = torch.nn.Linear(1, 1, bias=False)

    def forward(self, x):
        return self.a(x[:, :2]) + self.b(x[:, 2:])


@pytest.fixture(scope="module")
def fitted(fitted_by_least_squares):
    return fitted_by_least_squares(TwoLayers().double(), [10.0, 0.1, 1.0], [1.0, 2.0, 1.0])


def _estimate(fitted, restrict_to):
    module, data = fitted
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = estimate_llc(module, data, config=LLCConfig(chains=4, draws=1000, dtype="float64"),
                              restrict_to=restrict_to)
    return result, [str(w.message) for w in caught if issubclass(w.category, BurnInWarning)]


def test_the_pull_is_the_whole_data_s_gradient_so_a_lag_at_a_full_data_minimum_is_seen(fitted):
    # On the 1,024 rows the Hessian is taken on, the fit's gradient is no zero: read as a pull, it
    # had predicted chains drifting high and cancelled the lag, so neither burn-in nor warning came.
    result, said = _estimate(fitted, "a.weight")
    assert result.config.burnin == 4000   # the cap: four times the 1,000 draws, short of the ~170,000 needed
    assert len(said) == 1 and "short by about" in said[0]


def test_restrictions_sampled_together_share_the_longest_burn_in_any_one_needs(fitted):
    results, said = _estimate(fitted, ["a.weight", "b.weight"])
    assert [result.config.burnin for result in results] == [4000, 4000]
    assert all(any(note.startswith("restriction 0's burn-in 4,000 steps instead of 250") and note.endswith(
        "the restrictions sampled together share the longest burn-in any one needs") for note in result.notes)
               for result in results)
    assert len(said) == 1 and "short by about" in said[0]   # a's lag, left by the cap; b has none
