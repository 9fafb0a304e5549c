"""Verification suites: problems with exact answers, the registry of cases, the two gates,
the runner that streams ``results.jsonl``, and the report with its figures."""

from sltlab.verification.suite.cases import CASES, SUITES, Case, Tolerance, random_dln_cases, suite
from sltlab.verification.suite.gates import (ESS_MIN, RHAT_MAX, false_failure_rate, gates, multiplicity_shortfall,
                                             outside_band)
from sltlab.verification.defaults import DLN_DEFAULTS, POTENTIAL_DEFAULTS, ModelDefaults
from sltlab.verification.suite.problems import (Problem, dln_problem, normal_crossing_problem, potential_problem,
                                                reduced_rank_problem, regular_problem, restricted_dln_problem,
                                                tanh_problem)
from sltlab.verification.suite.report import write_report
from sltlab.verification.suite.runner import run_case, run_suite
from sltlab.verification.suite.summary import run_estimate, summarize

__all__ = ["CASES", "SUITES", "Case", "Tolerance", "random_dln_cases", "suite", "ESS_MIN", "RHAT_MAX",
           "false_failure_rate", "gates", "multiplicity_shortfall", "outside_band", "DLN_DEFAULTS",
           "POTENTIAL_DEFAULTS", "ModelDefaults", "Problem", "dln_problem", "normal_crossing_problem",
           "potential_problem", "reduced_rank_problem", "regular_problem", "restricted_dln_problem", "tanh_problem",
           "write_report",
           "run_case", "run_suite", "run_estimate", "summarize"]
