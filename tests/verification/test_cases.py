"""The case registry and the gates, exactly."""

import json
import math

import numpy as np
import pytest
import sympy
import torch

from sltlab import theory
from sltlab.models.tanh_network import TanhNetwork
from sltlab.estimators.config import LLCConfig
from sltlab.verification.suite.cases import (CASES, EXACT_TOLERANCE, FAMILIES, Case, Tolerance, random_dln_cases,
                                            suite)
from sltlab.verification.suite.report import write_report
from sltlab.verification.suite.runner import run_suite
from sltlab.verification.suite.table import failure_reason
from sltlab.verification.suite import dln_problem, multiplicity_shortfall, outside_band
from sltlab.verification.suite.gates import band_floor
from sltlab.verification.suite.problems import normal_crossing_problem
from sltlab.verification.suite import false_failure_rate, gates


def test_ids_are_unique_and_every_suite_is_non_empty():
    assert len({case.id for case in CASES}) == len(CASES)
    assert all(suite(name) for name in ("smoke", "dln", "toy", "full"))
    assert suite("full") == CASES
    with pytest.raises(ValueError, match="unknown suite"):
        suite("huge")


def test_smoke_covers_every_family_and_steps_are_calibrated_outside_it():
    assert {case.family for case in suite("smoke")} == set(FAMILIES)
    assert all(case.config.step_size is None for case in CASES)
    assert all(case.step == "auto" for case in CASES)
    # Every family samples exactly: MALA for linear networks, slice sampling for the rest.
    assert {case.config.sampler for case in CASES} == {"mala", "slice"}


def test_dln_suite_spans_depth_rank_and_size():
    shapes = [(dict(case.arguments)["widths"], dict(case.arguments)["rank"]) for case in suite("dln")
              if case.family == "dln"]
    depths = {len(widths) - 1 for widths, _ in shapes}
    assert depths == set(range(1, 9)) - {7}
    assert any(rank == 0 for _, rank in shapes) and any(rank == min(widths) for widths, rank in shapes)
    dims = [theory.deep_linear(list(widths), rank).dim for widths, rank in shapes]
    assert min(dims) == 100 and max(dims) >= 100_000
    assert any(min(widths[1:-1]) < min(widths[0], widths[-1]) for widths, _ in shapes if len(widths) > 2)


@pytest.mark.parametrize("case", suite("smoke"), ids=lambda case: case.id)
def test_smoke_problems_carry_the_exact_value_of_their_family(case):
    problem = case.problem()
    arguments = dict(case.arguments)
    expected = {
        "dln": lambda: theory.deep_linear(list(arguments["widths"]), arguments["rank"]),
        "reduced_rank": lambda: theory.reduced_rank(*arguments["widths"], arguments["rank"]),
        "restricted_dln": lambda: theory.restricted_deep_linear_balanced(list(arguments["widths"]), arguments["rank"],
                                                                         arguments["layer"]),
        "regular": lambda: theory.regular(arguments["inputs"] * arguments["outputs"]),
        "normal_crossing": lambda: theory.normal_crossing(list(arguments["k"]), list(arguments["h"])),
        "newton": lambda: theory.newton(arguments["expression"]),
        "tanh": lambda: theory.tanh_network(arguments["hidden"]),
    }[case.family]()
    assert problem.exact == expected
    assert problem.true_parameter.numel() == expected.dim


def test_random_cases_are_reproducible_and_valid():
    first, again = random_dln_cases(6, seed=3), random_dln_cases(6, seed=3)
    assert first == again and first != random_dln_cases(6, seed=4)
    for case in first:
        widths, rank = dict(case.arguments)["widths"], dict(case.arguments)["rank"]
        assert 1 <= len(widths) - 1 <= 6 and 0 <= rank <= min(widths)
        assert case.id.startswith("random-3-")
    with pytest.raises(ValueError):
        random_dln_cases(0, seed=0)
    for settings, said in ((dict(count=2.5, seed=0), "a whole number of cases from 1 to 10,000, got 2.5"),
                           (dict(count=10 ** 12, seed=0), "from 1 to 10,000, got 1000000000000"),   # had filled memory
                           (dict(count=2, seed=None), "need a whole seed, got None"),   # other cases at each call
                           (dict(count=2, seed=0, max_depth=1), "need a whole max_depth of at least 2, got 1")):
        with pytest.raises(ValueError, match=said):   # had been Python's randrange and range errors
            random_dln_cases(**settings)


def test_random_cases_draw_wide_hidden_layers_and_bottlenecks_in_turn():
    drawn = [dict(case.arguments)["widths"] for case in random_dln_cases(30, seed=5)]
    wide = [widths for widths in drawn[1::3]]
    bottlenecked = [widths for widths in drawn[2::3]]
    assert all(len(widths) >= 3 and min(widths[1:-1]) >= 2 * max(widths[0], widths[-1]) for widths in wide)
    assert all(len(widths) >= 3 and min(widths[1:-1]) <= 3 < 6 <= min(widths[0], widths[-1]) for widths in bottlenecked)
    assert len({len(widths) for widths in drawn}) >= 4


def test_dln_suite_holds_the_shapes_people_train():
    shapes = [dict(case.arguments)["widths"] for case in suite("dln") if case.family == "dln"]
    assert any(len(w) > 2 and min(w[1:-1]) >= 4 * max(w[0], w[-1]) for w in shapes)          # wide hidden layers
    assert any(len(w) > 4 and min(w[1:-1]) * 10 <= min(w[0], w[-1]) for w in shapes)         # bottleneck between wide
    assert max(len(w) - 1 for w in shapes) == 8


def test_normal_crossing_prior_becomes_a_flat_prior_in_new_coordinates():
    problem = normal_crossing_problem([1, 2], [1, 1], n=100)
    w1, w2 = sympy.symbols("w1 w2")
    assert sympy.simplify(sympy.sympify(problem.expression) - sympy.Abs(w1) * sympy.Abs(w2) ** 2) == 0
    assert problem.exact.lam == sympy.Rational(1, 2)
    with pytest.raises(ValueError, match="cusp"):
        normal_crossing_problem([1], [2], n=100)


def test_tanh_network_is_the_sum_of_tanh_units():
    network = TanhNetwork(2)
    position = torch.tensor([[0.5, -1.0, 2.0, 0.3]], dtype=torch.float64)  # a = (0.5, −1), b = (2, 0.3)
    x = torch.tensor([[0.7, -1.2]], dtype=torch.float64)
    expected = 0.5 * torch.tanh(2 * x) - torch.tanh(0.3 * x)
    torch.testing.assert_close(network.forward(position, x), expected)
    y = torch.zeros_like(x)
    torch.testing.assert_close(network(position, (x, y)), 0.5 * expected ** 2 + 0.5 * math.log(2 * math.pi))


def _line(mean, se, lam=10.0, m=1, truth=None, rhat=1.0, ess=1000.0, diverged=()):
    nbeta = math.e ** 2
    return {"llc_mean": mean, "llc_se": se, "lambda_exact_float": lam, "multiplicity_exact": m, "rhat": rhat,
            "ess": ess, "diverged_chains": list(diverged), "config": {"nbeta": nbeta}, "finite_n_truth": truth,
            "band": [lam - multiplicity_shortfall(m, nbeta), lam]}


TOLERANCE = Tolerance(k=3.0, bias=0.05)


def test_accuracy_gate_is_lambda_plus_band_bias_and_k_standard_errors():
    # m = 3 at log nβ = 2: band 1 below λ = 10; slack 0.05·10 + 3·0.1 = 0.8
    gate = gates(_line(10.0, 0.1, m=3), TOLERANCE)["accuracy"]
    assert gate["interval"] == pytest.approx([8.2, 10.8])
    assert gates(_line(8.21, 0.1, m=3), TOLERANCE)["accuracy"]["passed"]
    assert not gates(_line(8.19, 0.1, m=3), TOLERANCE)["accuracy"]["passed"]
    assert not gates(_line(10.81, 0.1, m=3), TOLERANCE)["accuracy"]["passed"]


def test_the_band_ends_at_zero_where_the_multiplicity_shortfall_exceeds_lambda():
    # nβ = 1 + 10⁻⁷: (m − 1)/log nβ ≈ 10⁷ had made the band [−10⁷, λ], which accepts any λ̂ below λ
    assert band_floor(3.5, 2, 1 + 1e-7) == 0.0 and band_floor(10.0, 3, math.e ** 2) == pytest.approx(9.0)
    assert outside_band(-1.0, 3.5, 2, 1 + 1e-7) == pytest.approx(1.0 / 3.5)


def test_accuracy_gate_is_the_finite_n_truth_plus_minus_k_se_and_budget_only():
    # truth 8: slack 3·0.1 + 0.05·8 = 0.7; λ = 10 is reported beside, never inside the window
    gate = gates(_line(8.0, 0.1, truth=8.0), TOLERANCE)["accuracy"]
    assert gate["interval"] == pytest.approx([7.3, 8.7]) and gate["passed"]
    assert gate["relative_distance_to_lambda"] == pytest.approx(-0.2)
    assert not gates(_line(9.0, 0.1, truth=8.0), TOLERANCE)["accuracy"]["passed"]   # between truth and λ: fails


def test_mixing_gate_and_missing_numbers_fail():
    assert gates(_line(10.0, 0.1), TOLERANCE)["mixing"]["passed"]
    assert not gates(_line(10.0, 0.1, rhat=1.06), TOLERANCE)["mixing"]["passed"]
    assert not gates(_line(10.0, 0.1, ess=199.0), TOLERANCE)["mixing"]["passed"]
    assert not gates(_line(10.0, 0.1, diverged=[3]), TOLERANCE)["mixing"]["passed"]
    assert gates({**_line(10.0, 0.1), "drift_z": -3.9}, TOLERANCE)["mixing"]["passed"]
    assert not gates({**_line(10.0, 0.1), "drift_z": 4.2}, TOLERANCE)["mixing"]["passed"]   # still drifting
    assert gates({**_line(10.0, 0.1), "sides_z": 3.9}, TOLERANCE)["mixing"]["passed"]
    assert not gates({**_line(10.0, 0.1), "sides_z": -4.1}, TOLERANCE)["mixing"]["passed"]   # two sides not met
    assert not gates(_line(None, None), TOLERANCE)["accuracy"]["passed"]


@pytest.mark.parametrize("mixing, passes", [({"rhat": 1.01, "ess": 900.0, "dropped_chains": 0}, True),
                                            ({"rhat": 1.2, "ess": 900.0, "dropped_chains": 0}, False),
                                            ({"rhat": 1.01, "ess": 150.0, "dropped_chains": 0}, False),
                                            ({"rhat": 1.01, "ess": 900.0, "dropped_chains": 1}, False)])
def test_a_sampled_truth_must_pass_the_mixing_gate_itself(mixing, passes):
    """The Gibbs truth is a sampler too: judged against chains that did not mix, a case fails."""
    line = {**_line(8.0, 0.1, truth=8.0), "finite_n_truth_mixing": mixing}
    accuracy = gates(line, TOLERANCE)["accuracy"]
    assert accuracy["passed"] is passes and ("reason" not in accuracy) is passes
    if not passes:
        assert accuracy["reason"].startswith("the truth's own chains fail the mixing gate")
        assert failure_reason({**line, "gates": gates(line, TOLERANCE)}).startswith(
            "accuracy: the truth's own chains fail the mixing gate")


def test_a_sampled_truth_that_gave_no_value_fails_the_case_instead_of_falling_back_to_the_band():
    line = {**_line(10.0, 0.1), "finite_n_truth_mixing": {"rhat": None, "ess": None, "dropped_chains": 8}}
    accuracy = gates(line, TOLERANCE)["accuracy"]
    assert gates(_line(10.0, 0.1), TOLERANCE)["accuracy"]["passed"]   # inside the band, with no truth attempted
    assert not accuracy["passed"] and accuracy["reason"].startswith("the truth's own chains gave no value")


@pytest.mark.parametrize("mean, se", [(None, None), (10.0, None)])
def test_without_an_estimate_and_its_error_the_accuracy_gate_fails_with_no_interval(mean, se):
    """Every chain dropped, or a single chain: no interval of ±∞, which results.jsonl (strict JSON)
    cannot hold and which had stopped a whole suite at the first such case."""
    accuracy = gates(_line(mean, se), TOLERANCE)["accuracy"]
    assert accuracy["interval"] is None and not accuracy["passed"] and "no estimate" in accuracy["reason"]
    json.dumps(accuracy, allow_nan=False)


def test_a_case_whose_chains_all_diverge_is_a_failed_line_of_the_suite(tmp_path):
    """SGLD at step 1 on K = w1⁴ + w2²: every chain diverges; the case is written and failed."""
    config = LLCConfig(sampler="sgld", chains=4, draws=200, burnin=50, step_size=1.0, localization=1.0)
    case = Case("newton[diverging]", "newton", (("expression", "w1**4 + w2**2"),), config, 10_000, EXACT_TOLERANCE,
                frozenset({"t"}), step="rule")
    (line,) = run_suite([case], tmp_path)
    assert line["llc_mean"] is None and not line["passed"] and line["gates"]["accuracy"]["interval"] is None
    facts = write_report([line], tmp_path, "diverging")
    text = (tmp_path / "report.md").read_text()
    assert facts["failed"] and "0 of 1" in text
    assert "## Warnings" in text and "- `newton[diverging]` (FAILED): 4 of 4 chains dropped" in text


def test_false_failure_rate_is_the_normal_tail():
    per_case = false_failure_rate([3.0])
    assert per_case == pytest.approx(0.0026998, rel=1e-4)
    assert false_failure_rate([3.0] * 10) == pytest.approx(1 - (1 - per_case) ** 10)
    assert false_failure_rate([2.0, 3.0]) == pytest.approx(1 - (1 - 0.0455003) * (1 - per_case), rel=1e-5)


def test_no_two_potential_cases_sample_the_same_function():
    potentials = [case for case in suite("toy") if case.family in ("normal_crossing", "newton")]
    expressions = [sympy.sympify(case.problem().expression) for case in potentials]
    for i, first in enumerate(expressions):
        for second in expressions[i + 1:]:
            assert sympy.simplify(first - second) != 0, (first, second)


@pytest.mark.parametrize("settings, said", [
    (dict(n=1e6 + 0.5, seed=0), "n must be a whole number of at least 1, got 1000000.5"),   # had become the n
    (dict(n=100, seed=1.5), "seed must be a whole number of at least 0, got 1.5"),   # had failed in torch
    (dict(n=100, seed=2 ** 70), "seed must be at most 2\\*\\*63 − 1, got 1180591620717411303424"),
    (dict(n=100, seed=0, per_sample="no"), "per_sample must be True or False, got 'no'"),   # had read as True
])
def test_a_deep_linear_problem_takes_whole_numbers_and_a_flag(settings, said):
    with pytest.raises(ValueError, match=f"^{said}$"):
        dln_problem([2, 2, 2], 1, **settings)
    assert dln_problem([2, 2, 2], 1, n=np.int64(100), seed=np.int64(3)).n == 100   # NumPy integers are whole
