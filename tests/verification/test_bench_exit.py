"""What ``sltlab bench`` exits with and judges: 1 where a target is missed at any depth of its
result, 2 for a ``--count`` below one in every group that reads it, and no met "no silent miss"
target for defaults that fail the gate everywhere."""

import pytest

from sltlab.verification.cli import main
from sltlab.verification.cli.bench import OPTION_GROUPS, missed


def test_a_missed_target_at_any_depth_is_exit_1_and_one_not_measured_is_no_verdict():
    assert missed({"a": [{"rows": [{"meets_target": True}, {"meets_target": False}]}]})
    assert missed({"grid": {"meets_targets": False}})
    assert not missed({"rows": [{"meets_target": None}, {"meets_target": True}], "meets_target": None})


@pytest.mark.parametrize("group", sorted(OPTION_GROUPS["count"]))
def test_every_group_that_reads_count_refuses_a_count_below_one_by_that_name(group, capsys):
    assert main(["bench", "--only", group, "--count", "0"]) == 2
    assert capsys.readouterr().err.strip().endswith("--count must be at least 1, got 0")


def test_defaults_that_fail_the_gate_everywhere_do_not_meet_the_no_silent_miss_target():
    from sltlab.verification.bench.module_accuracy import defaults_meet_target

    def draw(passing, networks=4):
        return {"summary": {"defaults": {"silent_misses": 0, "passing_gate": passing, "networks": networks}}}

    configs = {"defaults": {}, "LLCConfig()": {}}
    assert defaults_meet_target([draw(4), draw(2)], configs)
    assert not defaults_meet_target([draw(4), draw(0)], configs)   # no silent miss, but no pass either
    assert not defaults_meet_target([], configs)
