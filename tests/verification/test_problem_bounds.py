"""Deep linear problems too large to build, or whose loss float64 cannot resolve, are refused in
one line before anything is allocated or sampled: widths beyond 10⁴ or 10⁸ parameters (a width of
10²⁰ had failed inside torch with a C++ stack, two of 10⁵ asked for 80 GB), n beyond 2⁶² (an
OverflowError), and a teacher singular value s with nβ·s²·2⁻⁵³ above 0.01 (s = 10³⁰⁰ had made the
loss NaN, blamed on a model and data the user never gave); the saddle study and the Bayesian
study apply the same bounds."""

import math

import pytest

from sltlab.verification.cli import main
from sltlab.verification.dynamics.bayes_problems import BayesSetup
from sltlab.verification.dynamics.saddle import SaddleSetup
from sltlab.verification.suite.problems import check_resolvable, dln_problem


@pytest.mark.parametrize("widths", [[3, 10 ** 20, 3], [10 ** 5, 10 ** 5], [10 ** 4, 10 ** 4, 10 ** 4]])
def test_networks_too_large_are_refused_everywhere(widths):
    for build in (lambda: dln_problem(widths, 1, n=100, seed=0), lambda: SaddleSetup(tuple(widths)).validate(),
                  lambda: BayesSetup("dln", widths=tuple(widths), singular_values=("1", "0.5")).validate()):
        with pytest.raises(ValueError, match="a deep linear network here takes widths up to 10,000 and at most"):
            build()


def test_a_count_of_rows_beyond_64_bits_is_refused():
    with pytest.raises(ValueError, match=r"n must be at most 2\*\*62"):
        dln_problem([3, 2, 3], 1, n=10 ** 21, seed=0)


def test_the_strongest_teacher_float64_resolves_is_the_bound():
    n = 10 ** 6
    bound = math.sqrt(0.01 * 2 ** 53 * math.log(n) / n)   # nβ·s²·2⁻⁵³ = 0.01 at nβ = n/log n
    check_resolvable([bound * (1 - 1e-12), 1.0], n)
    for strong in (bound * (1 + 1e-12), 1e300):
        with pytest.raises(ValueError, match="float64 holds the gaps") as error:
            check_resolvable([1.0, strong], n)
        assert f"keep s at most {bound:.3g}" in str(error.value)
    with pytest.raises(ValueError, match="keep s at most"):
        SaddleSetup((4, 3, 4), singular_values=(1e300,)).validate()


def test_the_command_line_says_it_in_one_line(capsys):
    assert main(["estimate", "dln", "--widths", "3", "2", "3", "--rank", "1", "--singular-values", "1e300"]) == 2
    said = capsys.readouterr().err.strip()
    assert "\n" not in said and "float64 holds the gaps" in said
