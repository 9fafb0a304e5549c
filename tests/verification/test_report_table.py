"""The report of a suite from synthetic results: every row leads with the verdict and the error
the gate judged, every column has a legend entry, the step column says where the step came
from, and a provenance block says where and how the suite ran."""

import re

import pytest

from sltlab.verification.suite.gates import judged_error
from sltlab.verification.suite.report import render_markdown, summary
from sltlab.verification.suite.provenance import provenance
from sltlab.verification.suite.table import COLUMNS

BAND = "band [λ − (m − 1)/log nβ, λ], widened by k·SE + budget of λ"
TRUTH = "finite-n truth t·E_t[K] by quadrature, ± k·SE + budget of the truth"


def _line(case_id, mean, se, *, lam=0.5, m=1, truth=None, passed=True, bias=0.05, config=None, calibration=None):
    band = [lam - (m - 1) / 7.0, lam]
    line = {"id": case_id, "family": "newton", "tags": ["smoke"], "dim": 2, "passed": passed, "llc_mean": mean,
            "llc_se": se, "lambda_exact": str(lam), "lambda_exact_float": lam, "multiplicity_exact": m,
            "rel_error": (mean - lam) / lam, "rel_error_outside_band": max(band[0] - mean, mean - lam, 0) / lam,
            "band": band, "rhat": 1.01, "ess": 900.0, "diverged_chains": [], "seconds": 3.0, "torch_threads": 1,
            "config": config or {"sampler": "sgld", "step_size": 2.5e-5, "nbeta": 1096.6},
            "gates": {"mixing": {"rhat_max": 1.05, "ess_min": 200, "passed": True},
                      "accuracy": {"k": 3.0, "bias_budget": bias, "finite_n": BAND if truth is None else TRUTH,
                                   "interval": [0, 1], "passed": passed}}}
    if truth is not None:
        line["finite_n_truth"] = truth
    if calibration is not None:
        line["calibration"] = calibration
    return line


LINES = [
    _line("smoke:dln[a]", 4.9, 0.1, lam=5.5, m=3),                                      # SGLD at the rule step
    _line("newton[b]", 0.45, 0.01, truth=0.40, passed=False, bias=0.01,                  # z = +5 against the truth
          config={"sampler": "slice", "step_size": 2.0, "nbeta": 1085.7},
          calibration={"chosen": 2.0, "rule": 2.0, "sweep": []}),
    _line("dln[c]", 5.4, 0.05, lam=5.5, calibration={"chosen": 1.2e-5, "rule": 2.4e-5, "sweep": [{"step_size": 1}]}),
    {"id": "dln[d]", "family": "dln", "tags": [], "dim": 12, "passed": False, "failure": "no equivalent pair",
     "lambda_exact_float": 3.5, "seconds": 9.0},
]


@pytest.fixture(scope="module")
def report():
    facts = summary(LINES)
    facts.update(provenance=provenance(LINES), figures={}, trace_figures={})
    return render_markdown(LINES, facts, "synthetic")


def _table(report):
    rows = [row for row in report.splitlines() if row.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def test_every_column_of_the_table_is_in_the_legend(report):
    header, *rows = _table(report)
    legend = re.findall(r"^- \*\*(.+?)\*\*: ", report.split("Columns:")[1], flags=re.M)
    assert header == legend == [name for name, _ in COLUMNS]
    assert {"step (rule)", "s", "judged error"} <= set(header)
    assert len(rows) == len(LINES) and all(len(row) == len(header) for row in rows)


def test_each_row_leads_with_the_verdict_and_the_judged_error(report):
    header, *rows = _table(report)
    cells = [dict(zip(header, row)) for row in rows]
    band, truth, calibrated, failed = cells
    assert band["verdict"] == "pass" and band["judged error"] == "5.7% of λ"     # 0.314 below the band
    assert band["allowed"] == "≤ 10.5% of λ"                                        # (3·0.1 + 5 % of 5.5)/5.5
    assert band["judged against"] == "band [5.214, 5.5]" and band["error to λ"] == "-10.9%"
    assert truth["verdict"] == "**FAIL**: accuracy" and truth["judged error"] == "z = +5.00"
    assert truth["allowed"] == "z within ±3.40" and truth["judged against"] == "t·E[K] = 0.4"
    assert calibrated["judged error"] == "1.8% of λ" and calibrated["allowed"] == "≤ 7.7% of λ"
    assert failed["verdict"] == "**FAIL**: no estimate" and failed["judged error"] == "—"
    opening = report.split("## Gates")[0]
    assert "`newton[b]`: accuracy: z = +5.00, allowed z within ±3.40, against t·E[K] = 0.4" in opening
    assert "`dln[d]`: no estimate (no equivalent pair)" in opening


def test_the_step_column_says_rule_calibrated_or_not_swept(report):
    header, *rows = _table(report)
    steps = [dict(zip(header, row))["step (rule)"] for row in rows]
    assert steps == ["2.5e-05 (rule)", "2 (rule, not swept)", "1.2e-05 (calibrated; rule 2.4e-05)", "—"]


def test_the_provenance_block_says_where_and_how_the_suite_ran(report):
    block = report.split("## Provenance")[1]
    import torch

    for words in ("sltlab commit: ", f"torch {torch.__version__}", "machine: ", "torch threads 1",
                  "report written ", "wall time: 18 s for 4 cases"):
        assert words in block
    assert re.search(r"sltlab commit: ([0-9a-f]{40}( \(with uncommitted changes\))?|unknown);", block)


def test_judged_error_matches_the_gate_it_explains():
    judged = judged_error(LINES[1])
    assert judged["kind"] == "z" and judged["value"] == pytest.approx(5.0)
    assert judged["allowed"] == pytest.approx(3 + 0.01 * 0.40 / 0.01)
    assert judged_error(LINES[3]) is None


def test_a_dln_case_with_no_estimate_counts_against_the_suite_targets_as_an_error_of_100_percent():
    good = {**_line("dln[a]", 5.45, 0.05, lam=5.5), "tags": ["dln"]}
    lost = {"id": "dln[b]", "family": "dln", "tags": ["dln"], "dim": 12, "passed": False,
            "failure": "no equivalent pair", "lambda_exact_float": 3.5, "seconds": 9.0}
    assert summary([good])["dln"]["meets_targets"]
    facts = summary([good, lost])
    assert (facts["dln"]["cases"], facts["dln"]["without_estimate"], facts["dln"]["worst_abs_rel_error"]) == (2, 1, 1.0)
    assert not facts["dln"]["meets_targets"]
    facts.update(provenance=provenance([good, lost]), figures={}, trace_figures={})
    assert "(2 cases of the dln suite, 1 of them with no estimate (counted as 100 %))" in render_markdown(
        [good, lost], facts, "synthetic")
