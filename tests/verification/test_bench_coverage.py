"""The coverage bench's count: an interval covers the truth within 2 SE, and a group of chains
with no estimate counts as not covering, so losing groups cannot raise the coverage."""

import math
from types import SimpleNamespace

from sltlab.verification.bench.coverage import coverage_row, format_coverage


def _estimate(mean, se):
    return SimpleNamespace(mean=mean, standard_error=se)


def test_a_group_without_an_estimate_stays_in_the_count_as_not_covered():
    estimates = [_estimate(1.0, 0.1), _estimate(1.15, 0.1), _estimate(1.3, 0.1), _estimate(None, None),
                 _estimate(1.0, None)]
    row = coverage_row("case", 1.0, estimates)
    assert (row["seeds"], row["covered"], row["without_estimate"]) == (5, 2, 2) and row["coverage"] == 0.4
    assert math.isclose(row["median_z"], 1.5)   # z = 0, 1.5 and 3
    table = format_coverage({"potentials": [row], "interval_95": [0.1, 0.8], "coverage": 0.4, "seeds": 5,
                             "target": [0.9, 0.98], "meets_target": False})
    assert "(2 without an estimate, not covered)" in table and "MISSED" in table
    assert coverage_row("case", 1.0, [_estimate(None, None)])["median_z"] is None
