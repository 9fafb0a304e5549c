"""One ``sltlab verify`` output folder, read and written as a whole: a second run into it at
the same time is refused, a folder that cannot be written fails before any case runs, a case
recorded twice counts once, any start of a torn line is skipped, and a report of part of the
recorded cases names the others."""

import fcntl
import json

import pytest

from sltlab.verification.cli import main
from sltlab.verification.suite import cases, runner
from sltlab.verification.suite.runner import read_results, run_suite

from tests.verification.test_verify import TINY


def _never_run(*args, **kwargs):
    raise AssertionError("a case ran")
    yield


def test_a_second_run_into_a_folder_in_use_is_refused_before_any_case_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "run_each", _never_run)
    with (tmp_path / ".sltlab-verify.lock").open("a") as held:   # another run holds the folder
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ValueError, match=f"^another sltlab verify is writing to {tmp_path}: wait for it"):
            run_suite(TINY, tmp_path)   # two at once had appended one case twice and written two reports


def test_a_folder_that_cannot_be_written_fails_before_any_case_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "run_each", _never_run)
    (tmp_path / ".sltlab-verify.lock").mkdir()   # stands for a folder this process may not write into
    with pytest.raises(OSError):
        run_suite(TINY, tmp_path)


@pytest.mark.parametrize("torn", ['{"id', "{", '{"id": "smoke:new'])
def test_any_start_of_a_line_is_read_as_torn_and_a_case_recorded_twice_counts_once(tmp_path, torn):
    line = {"id": "a", "family": "dln", "passed": False}
    lines = [line, {**line, "id": "b"}, {**line, "passed": True}]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(one) + "\n" for one in lines) + torn)
    assert read_results(tmp_path / "results.jsonl") == [{**line, "id": "b"}, {**line, "passed": True}]


def test_a_report_of_some_recorded_cases_names_the_selection_and_the_others(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cases, "suite", lambda name: TINY)
    assert main(["verify", "--only", "newton", "--out", str(tmp_path), "--json"]) == 0
    assert main(["verify", "--only", "normal", "--out", str(tmp_path), "--resume", "--json"]) == 0
    capsys.readouterr()
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# sltlab verify: suite smoke, the 1 of 2 cases whose id contains 'normal'\n")
    assert "results.jsonl also holds 1 case of another selection, not in this report: newton[w1**2]." in report
    assert json.loads((tmp_path / "report.json").read_text())["summary"]["not_reported"] == ["newton[w1**2]"]


def test_the_folder_is_held_from_the_first_case_to_the_report_and_the_same_process_may_enter_again(tmp_path):
    with runner.writing_to(tmp_path), runner.writing_to(tmp_path):   # the command holds it around run_suite's hold
        with (tmp_path / ".sltlab-verify.lock").open("a") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)   # another process is kept out all the while
    with (tmp_path / ".sltlab-verify.lock").open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)   # and let in once it ends
