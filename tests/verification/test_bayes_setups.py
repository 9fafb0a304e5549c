"""A Bayesian phase-transition study's settings are refused, before any sampling, where they
cannot describe a study: no such model, too few rungs or ladders, a range of n outside the one
the critical n is solved in (up to 10¹²), bad teachers, and runs of more chains or gradients than
a study can take (a hundred million rungs had run on, silent, until killed)."""

import pytest

from sltlab.verification.dynamics.bayes_problems import BayesSetup


@pytest.mark.parametrize("change, words", [
    (dict(model="mlp"), "model must be tms or dln"), (dict(rungs=2), "at least 3 rungs"),
    (dict(ladders=5), "even number of ladders"), (dict(n_min=1.0), "need 3 ≤ n_min < n_max ≤ 1e+12"),
    (dict(n_max=5.0, n_min=10.0), "got 10 and 5"), (dict(n_max=1e300), "got 40 and 1e+300"),
    (dict(singular_values=("1", "-1")), ""), (dict(widths=(3,)), ""), (dict(draws=0), "draws ≥ 10"),
    (dict(rungs=10 ** 8), "100000000 rungs × 16 ladders = 1,600,000,000 chains"),
    (dict(draws=10 ** 8, thin=100), "8e+10 gradients per chain, more than the 1e+09")])
def test_bad_setups_are_refused(change, words):
    setup = BayesSetup(**{**dict(model="dln", widths=(4, 2, 4), singular_values=("1", "0.3")), **change})
    with pytest.raises(ValueError) as error:
        setup.validate()
    assert words in str(error.value) and "\n" not in str(error.value)
