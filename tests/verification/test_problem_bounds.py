"""Deep linear problems too large to build, or whose loss float64 cannot resolve, are refused in
one line before anything is allocated or sampled: widths beyond 10⁴ or 10⁸ parameters (a width of
10²⁰ had failed inside torch with a C++ stack, two of 10⁵ asked for 80 GB), n beyond 2⁶² (an
OverflowError), and a teacher singular value s with nβ·s²·2⁻⁵³ above 0.01 (s = 10³⁰⁰ had made the
loss NaN, blamed on a model and data the user never gave); the saddle study and the Bayesian
study apply the same bounds, and estimates at several n check every n before the first is sampled."""

import math

import pytest

from sltlab.estimators import LLCConfig
from sltlab.verification.cli import main
from sltlab.verification.dynamics.bayes_problems import BayesSetup
from sltlab.verification.dynamics.saddle import SaddleSetup
from sltlab.verification.suite import extrapolation
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


def test_the_default_teacher_and_bad_values_are_checked_too():
    with pytest.raises(ValueError, match="a teacher singular value of 1 on"):   # ones by default: refused at 10¹⁷
        dln_problem([3, 2, 3], 1, n=10 ** 17, seed=0)
    for values in ([None], ["x"]):   # had been a TypeError, or float()'s own words
        with pytest.raises(ValueError, match="singular values must be numbers"):
            dln_problem([3, 2, 3], 1, n=100, seed=0, singular_values=values)


def test_a_saddle_study_says_a_bad_n_before_the_teacher_is_judged_against_it():
    for n in (0, -3):   # had been a ZeroDivisionError and a math domain error
        with pytest.raises(ValueError, match=rf"n \(--n\) must be at least 2, got {n}"):
            SaddleSetup((4, 3, 4), n=n).validate()


def test_every_size_of_an_extrapolation_is_checked_before_the_first_is_sampled(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("sampled before every size was checked")
    monkeypatch.setattr(extrapolation, "run_estimate", never)
    with pytest.raises(ValueError, match=r"n must be at most 2\*\*62"):
        extrapolation.extrapolated_dln([3, 2, 3], 1, LLCConfig(), sizes=[1000, 10 ** 20])
