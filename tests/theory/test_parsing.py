"""One parser: every reader of a potential sees the same expression and the same coordinates."""

import re

import pytest
import sympy

from sltlab.models.potential import Potential
from sltlab.theory import natural_order, newton, normal_crossing, parse_expression
from sltlab.theory.free_energy import dln_phases
from sltlab.verification.reference.volume_scaling import volume
from sltlab.verification.suite import potential_problem


def test_natural_order_puts_w2_before_w10():
    w1, w2, w10 = sympy.symbols("w1 w2 w10")
    assert natural_order([w10, w2, w1]) == (w1, w2, w10)


def test_theory_and_sampler_agree_on_the_coordinates():
    # w10 has the quartic, w2 the square: swapped coordinates would give the sampler a
    # different function than the one the theory solved.
    expression = "w10**4 + w2**2"
    exact = newton(expression)
    problem = potential_problem(expression, n=100)
    assert exact.parameters["variables"] == ("w2", "w10")
    assert tuple(s.name for s in problem.loss.variables) == ("w2", "w10")
    assert problem.exact.parameters["variables"] == ("w2", "w10")


def test_caret_is_a_power_for_every_reader():
    expression, symbols = parse_expression("w1^2 + w2^4")
    assert expression == sympy.Symbol("w1") ** 2 + sympy.Symbol("w2") ** 4
    assert newton("w1^2 + w2^4").lam == sympy.Rational(3, 4)
    assert Potential(expression, symbols).dim == 2
    assert volume("w1^2").shape == volume("w1**2").shape


def test_typeset_signs_are_read_and_another_odd_character_is_named():
    """The messages list − among the signs a potential may hold; it had been a bare SyntaxError."""
    assert parse_expression("w1**4 − 2×w2**2 + 3·w1")[0] == parse_expression("w1**4 - 2*w2**2 + 3*w1")[0]
    with pytest.raises(ValueError, match=r"^cannot parse the potential 'w1² \+ w2\*\*2': it holds '²' \(U\+00B2\)"):
        parse_expression("w1² + w2**2")


@pytest.mark.parametrize("text, variables", [("w1**2 +", None), ("w1*w2", ["w1"]), ("3", None),
                                             ("w1**2", ["w1", "w1"])])
def test_bad_potentials_are_one_line_value_errors(text, variables):
    with pytest.raises(ValueError) as error:
        parse_expression(text, variables)
    assert "\n" not in str(error.value)


def test_two_different_symbols_of_one_name_are_refused():
    twins = sympy.Symbol("w1") ** 2 + sympy.Symbol("w1", real=True) ** 2   # λ 1 as two variables, 1/2 as one
    with pytest.raises(ValueError, match=r"two different symbols of one name among \['w1', 'w1'\]"):
        parse_expression(twins)


@pytest.mark.parametrize("text", ["__import__('os').system('touch /tmp/sltlab-parsed')", "().__class__.__mro__",
                                  "w1.real", "Symbol('x')**2", "exec('1')", "sin(w1, evaluate=False)", "[w1][0]",
                                  "(lambda: w1)()", "True*w1"])
def test_text_that_is_not_arithmetic_is_refused_before_sympy_evaluates_it(text):
    """sympy's parser runs the text through eval: only numbers, names, arithmetic and sympy's
    own functions reach it."""
    with pytest.raises(ValueError, match="may hold only numbers, variables") as error:
        parse_expression(text)
    assert "\n" not in str(error.value)


def test_a_call_of_another_function_is_named_with_sympys_own_where_it_has_one():
    with pytest.raises(ValueError, match=r"it has abs\(w1\), and abs is not one of sympy's functions \(sympy's is "
                                         r"Abs\)$"):
        parse_expression("abs(w1)")
    with pytest.raises(ValueError, match=r"it has foo\(w1\), and foo is not one of sympy's functions$"):
        parse_expression("foo(w1)")


def test_arithmetic_and_sympy_functions_still_parse():
    w1, w2 = sympy.symbols("w1 w2")
    assert parse_expression("-w1**2 + 3/2*w2^4")[0] == -w1**2 + sympy.Rational(3, 2) * w2**4
    assert parse_expression("sin(w1)**2 + sqrt(w2**2) + exp(w1) - 1")[0] == (
        sympy.sin(w1) ** 2 + sympy.sqrt(w2**2) + sympy.exp(w1) - 1)
    assert parse_expression("0.5*(w1 + w2)**2")[0] == sympy.Float(0.5) * (w1 + w2) ** 2


@pytest.mark.parametrize("text, exponent", [("x**(9**9)", "9 ** 9"), ("x**2 + y**2*9**9**9", "9 ** 9"),
                                            ("(x**2)**(10**9)", "10 ** 9"), ("x**1001", "1001")])
def test_an_exponent_that_is_not_a_small_number_is_refused_before_sympy_computes_it(text, exponent):
    """9**9**9 has 370 million digits: sympy computed it for minutes."""
    with pytest.raises(ValueError, match=f"raises to {re.escape(exponent)}: an exponent must be a number"):
        parse_expression(text)
    assert str(parse_expression("x**(2*3) + y**1000")[0]) == "x**6 + y**1000"


@pytest.mark.parametrize("call, message", [(lambda: natural_order(5), "sorts sympy symbols"),
                                           (lambda: newton("x**2", 5), "variables must be a list of names"),
                                           (lambda: newton("x**2", "x"), "variables must be a list of names"),
                                           # a set has no order: the prior's exponents would go to either variable
                                           (lambda: newton("w1**2 + w2**4", {"w1", "w2"}, prior=[2, 0]),
                                            "variables must be a list of names, in order, got"),
                                           (lambda: normal_crossing({1, 1}), "k must be a list of numbers in order"),
                                           (lambda: dln_phases([2, 3, 2], {1, 1}), "singular values must be a list")])
def test_arguments_of_the_wrong_kind_are_one_line_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("text, message", [
    ("+".join(f"x{i}**2" for i in range(3000)), "nests too deeply for Python's parser"),
    ("-" * 20_000 + "x", "nests too deeply for Python's parser"),
    ("-" * 100_000 + "x", "has 100,001 characters, more than the 50,000 read"),
])
def test_text_too_long_or_deep_to_parse_is_one_short_line(text, message):
    """A sum of 3,000 squares raised RecursionError and 100,000 minus signs MemoryError."""
    with pytest.raises(ValueError, match=message) as error:
        parse_expression(text)
    assert len(str(error.value)) < 300
