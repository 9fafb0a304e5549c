"""A deep linear teacher with modes fewer than LEARNED_SDS posterior SDs from zero at the run's nβ:
the band of its own rank is not applied, a note says which modes and which λ λ̂ reads towards,
and the accuracy gate, with nothing to judge against, fails with that reason."""

import json
import math

import pytest

from sltlab.verification.cli import main
from sltlab.verification.mode_resolution import ABSENT_SDS, LEARNED_SDS
from sltlab.verification.suite import dln_problem
from sltlab.verification.suite.cases import Tolerance
from sltlab.verification.suite.gates import gates, judged_error
from sltlab.verification.suite.problems import reduced_rank_problem
from sltlab.verification.suite.summary import unresolved_modes


def test_the_problem_records_the_teachers_singular_values_as_given_largest_first():
    assert dln_problem([4, 3, 4], 2, n=100, seed=0, singular_values=[0.2, 1.5]).teacher_singular_values == (1.5, 0.2)
    assert dln_problem([4, 3, 4], 2, n=100, seed=0).teacher_singular_values == (1.0, 1.0)


def test_a_mode_is_learned_from_five_sds_unseen_up_to_one_and_partly_seen_between():
    problem = dln_problem([3, 2, 3], 1, n=100, seed=0, singular_values=[0.1])
    learned, unseen = (LEARNED_SDS / 0.1) ** 2, (ABSENT_SDS / 0.1) ** 2   # nβ at which s·√nβ reaches each line
    assert unresolved_modes(problem, learned) is None
    partly = unresolved_modes(problem, 0.99 * learned)
    assert f"0.1 ({0.1 * math.sqrt(0.99 * learned):.3g}) stands fewer than 5 posterior SDs" in partly
    assert "is expected between the rank-0 truncation's λ = 5/2 and the rank-1 truncation's λ = 7/2" in partly
    unseen_note = unresolved_modes(problem, unseen)
    assert "to read towards the rank-0 truncation's λ = 5/2, and the band of rank 1" in unseen_note


def test_several_short_modes_are_each_listed_with_their_sds():
    problem = dln_problem([4, 3, 4], 3, n=100, seed=0, singular_values=[1, 0.01, 0.03])
    note = unresolved_modes(problem, 10_000.0)   # √nβ = 100: 1 → 100 SDs, 0.03 → 3, 0.01 → 1
    assert "singular values 0.03 (3), 0.01 (1) stand fewer than 5" in note
    assert "is expected between the rank-1 truncation's λ = 6 and the rank-2 truncation's λ = 7" in note   # Aoyagi's
    assert "band of rank 3, which assumes every mode learned, is not applied" in note


def test_a_problem_whose_exact_value_is_not_aoyagis_names_the_truncation_without_its_lambda():
    note = unresolved_modes(reduced_rank_problem([3, 2, 3], 1, n=100, seed=0), 0.5)
    assert "to read towards the rank-0 truncation's λ, and the band of rank 1" in note


def test_with_no_band_the_accuracy_gate_says_it_has_nothing_to_judge_and_fails():
    line = {"llc_mean": 2.3, "llc_se": 0.04, "lambda_exact_float": 3.5, "band": None, "rel_error_outside_band": None,
            "rhat": 1.0, "ess": 1000.0, "diverged_chains": []}
    assert judged_error(line) is None
    accuracy = gates(line, Tolerance(k=3.0, bias=0.05))["accuracy"]
    assert accuracy["interval"] is None and accuracy["passed"] is False and accuracy["finite_n"].startswith("none")
    assert accuracy["reason"] == "no band to judge against: the teacher has a mode this nβ does not resolve"


FEW = ["--draws", "40", "--burnin", "40", "--chains", "2"]


@pytest.mark.parametrize("reference", [False, True])
def test_the_command_leaves_the_band_out_and_says_why(capsys, reference):
    code = main(["estimate", "dln", "--widths", "3", "2", "3", "--rank", "1", "--singular-values", "1e-300", *FEW,
                 "--n", "1000", "--json"] + (["--reference"] if reference else []))
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["band"] is None and result["rel_error_outside_band"] is None
    assert any("1e-300 (" in note and "to read towards the rank-0 truncation's λ = 5/2" in note
               for note in result["notes"])
    assert ("finite_n_truth" in result) == reference


def test_extrapolating_through_a_size_that_misses_a_mode_names_that_size_and_judges_nothing(capsys):
    # s = 0.06: 0.722 SDs at n = 1,000 (nβ = 145), unseen; 1.98 at n = 10,000 (nβ = 1,086), partly seen
    arguments = ["estimate", "dln", "--widths", "3", "2", "3", "--rank", "1", "--singular-values", "0.06", *FEW,
                 "--sizes", "1000", "10000"]
    assert main(arguments + ["--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    unresolved = result["unresolved_modes"]   # every size's, not the largest size's alone
    assert result["band"] is None and unresolved.startswith("at n = 1000: ") and "; at n = 10000: " in unresolved
    code = main(arguments)
    out = capsys.readouterr().out
    assert code == 0 and "at n = 1000: the teacher's singular value 0.06 (0.722) stands" in out
    assert "at n = 10000: the teacher's singular value 0.06 (1.98) stands" in out
    assert "reported, not judged: a note says which of the teacher's modes some size does not resolve" in out
    assert "error     " not in out
