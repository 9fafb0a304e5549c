"""Real numbers on the command line: decimals and fractions alike, anything else refused in one line."""

import pytest

from sltlab.verification.cli import build_parser, main


@pytest.mark.parametrize("command", [["estimate", "dln", "--widths", "2", "3", "2", "--rank", "2"],
                                     ["dynamics", "saddle", "--out", "unused"]])
def test_singular_values_take_fractions_as_the_theory_commands_do(command):
    args = build_parser().parse_args([*command, "--singular-values", "2/5", "1e-1", " 3 "])
    assert args.singular_values == [0.4, 0.1, 3.0]


@pytest.mark.parametrize("value", ["1/0", "1e400", "1e10000000", "nan", "inf", "two"])
def test_a_singular_value_that_is_no_finite_number_is_refused_in_one_line(value, capsys):
    assert main(["estimate", "dln", "--widths", "2", "2", "--rank", "1", "--singular-values", value]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"sltlab: error: argument --singular-values: {value!r} is not a finite number (a decimal such as "
                   "0.4, or a fraction such as 2/5)")


@pytest.mark.parametrize("argv", [["theory", "nc", "--k", "1", "--h", "1e10000000"],
                                  ["theory", "nc", "--k", "1", "--h", "1e-100000"],
                                  ["theory", "transitions", "--widths", "3", "2", "3", "--singular-values",
                                   "1e-10000000"],
                                  ["dynamics", "bayes", "--model", "dln", "--widths", "2", "2", "--singular-values",
                                   "1E+1000", "--out", "unused"]])
def test_an_exact_number_with_a_huge_exponent_is_refused_before_it_is_built(argv, capsys):
    """Read exactly, 1e-10000000 had taken minutes before any check of its size."""
    assert main(argv) == 2
    assert "has an exponent beyond ±400 (the values are at most 1e100)" in capsys.readouterr().err


def test_a_coefficient_sympy_cannot_read_exactly_is_one_line(capsys):
    assert main(["theory", "poly", "1e10000*w1**2"]) == 2
    assert capsys.readouterr().err.strip() == ("sltlab: error: coefficients of K must be rational numbers that can be "
                                               "read exactly: write very large or small ones as integers or fractions")


@pytest.mark.parametrize("argv, said", [
    (["theory", "poly", "x**2*y**2", "--prior", "-1/2", "0"], "every entry of prior must be non-negative, got -1/2"),
    (["theory", "nc", "--k", "1", "2", "--h", "-1/3", "0"], "every entry of h must be non-negative, got -1/3"),
])
def test_a_negative_fraction_is_read_as_a_number_not_an_option(argv, said, capsys):
    assert main(argv) == 2   # read, then refused by the theory: these exponents are ≥ 0
    assert capsys.readouterr().err.strip() == f"sltlab: error: {said}"


@pytest.mark.parametrize("value, said", [
    ("-1e-3", "need 1 positive finite singular value, got [-0.001]"),
    ("-2.5E+2", "need 1 positive finite singular value, got [-250.0]"),
    ("-1.", "need 1 positive finite singular value, got [-1.0]"),
    ("-inf", "argument --singular-values: '-inf' is not a finite number"),
    ("-NaN", "argument --singular-values: '-NaN' is not a finite number"),
])
def test_a_negative_number_in_any_spelling_reaches_the_check_of_its_value(value, said, capsys):
    argv = ["estimate", "dln", "--widths", "3", "2", "3", "--rank", "1", "--singular-values", value]
    assert main(argv) == 2   # -1e-3 and -inf had read "expected at least one argument", taken for options
    assert said in capsys.readouterr().err


def test_a_negative_fraction_reaches_the_option_that_takes_it():
    args = build_parser().parse_args(["theory", "nc", "--k", "1", "2", "--h", "-1/3", "-2"])
    assert [str(value) for value in args.h] == ["-1/3", "-2"]


@pytest.mark.parametrize("argv, said", [
    (["theory", "nc", "--k", str(10 ** 101), "1", "--h", "1", "1"],   # had read "must be a non-negative integer"
     "every entry of k must be at most 1e100 (λ is also given in floating point), got a number of 102 digits"),
    (["estimate", "dln", "--widths", "3", "2", "3", "--rank", "1", "--step-size", "1e-300"],   # had sampled, 0 % taken
     "step size = 1e-300 lies below float32's smallest normal number (1.18e-38): the sampler's arithmetic with it "
     "underflows and no chain moves; leave it out to have it chosen"),
])
def test_a_number_out_of_range_is_said_to_be_so(argv, said, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"sltlab: error: {said}"
