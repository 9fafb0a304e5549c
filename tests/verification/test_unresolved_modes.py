"""A deep linear teacher whose smallest modes cost under one nat at the run's nβ: the band of its
own rank is not applied, a note says which modes and which λ λ̂ reads towards, and the accuracy
gate, with nothing to judge against, fails rather than passes."""

import json

from sltlab.verification.cli import main
from sltlab.verification.suite import dln_problem
from sltlab.verification.suite.cases import Tolerance
from sltlab.verification.suite.gates import gates, judged_error
from sltlab.verification.suite.summary import RESOLVED_NATS, unresolved_modes


def test_the_problem_records_the_teachers_singular_values_largest_first():
    problem = dln_problem([4, 3, 4], 2, n=100, seed=0, singular_values=[0.2, 1.5])
    assert [round(s, 12) for s in problem.teacher_singular_values] == [1.5, 0.2]
    assert [round(s, 12) for s in dln_problem([4, 3, 4], 2, n=100, seed=0).teacher_singular_values] == [1.0, 1.0]


def test_a_mode_is_unresolved_exactly_below_one_nat():
    problem = dln_problem([3, 2, 3], 1, n=100, seed=0, singular_values=[0.1])
    edge = 2 * RESOLVED_NATS / 0.1 ** 2   # nβ·s²/2 = 1 here, up to the SVD's rounding of s
    assert unresolved_modes(problem, 1.01 * edge) is None
    note = unresolved_modes(problem, 0.99 * edge)
    assert "0.1 costs nβ·s²/2 = 0.99 < 1 nat" in note
    assert "λ = 5/2 of the rank-0 truncation, not rank 1's" in note   # Aoyagi's λ of [3,2,3] at rank 0


def test_several_unresolved_modes_name_the_largest_cost_and_the_rank_left():
    problem = dln_problem([4, 3, 4], 3, n=100, seed=0, singular_values=[1, 0.01, 0.02])
    note = unresolved_modes(problem, 1000.0)
    assert "singular values 0.02, 0.01 cost nβ·s²/2 = 0.2 at most" in note and "rank-1 truncation, not rank 3's" in note


def test_with_no_band_the_accuracy_gate_has_nothing_to_judge_and_fails():
    line = {"llc_mean": 2.3, "llc_se": 0.04, "lambda_exact_float": 3.5, "band": None, "rel_error_outside_band": None,
            "rhat": 1.0, "ess": 1000.0, "diverged_chains": []}
    assert judged_error(line) is None
    accuracy = gates(line, Tolerance(k=3.0, bias=0.05))["accuracy"]
    assert accuracy["interval"] is None and accuracy["passed"] is False and accuracy["finite_n"].startswith("none")


def test_the_command_leaves_the_band_out_and_says_why(capsys):
    code = main(["estimate", "dln", "--widths", "3", "2", "3", "--rank", "1", "--singular-values", "1e-300",
                 "--draws", "40", "--burnin", "40", "--chains", "2", "--n", "1000", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["band"] is None and result["rel_error_outside_band"] is None
    assert any("1e-300 costs nβ·s²/2 = 0 < 1 nat" in note for note in result["notes"])


def test_a_problem_whose_exact_value_is_not_aoyagis_names_the_rank_left_without_a_lambda():
    from sltlab.verification.suite.problems import reduced_rank_problem
    note = unresolved_modes(reduced_rank_problem([3, 2, 3], 1, n=100, seed=0), 1.5)
    assert "costs nβ·s²/2 = 0.75 < 1 nat" in note and "reads towards the rank-0 truncation, not rank 1's" in note
