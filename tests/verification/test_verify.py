"""``sltlab verify`` end to end on tiny cases: streaming, resume, reports, Dask, exit codes."""

import json
from dataclasses import replace

import pytest

from sltlab.estimators.config import LLCConfig
from sltlab.verification.suite import cases
from sltlab.verification.suite.cases import EXACT_TOLERANCE, Case, Tolerance
from sltlab.verification.cli import main
from sltlab.verification.suite import runner
from sltlab.verification.suite.runner import finished_ids, run_suite

TINY_MALA = LLCConfig(sampler="mala", chains=8, draws=300, localization=1.0, dtype="float64")
TINY = (
    Case("newton[w1**2]", "newton", (("expression", "w1**2"),), TINY_MALA, 1000, EXACT_TOLERANCE, frozenset({"t"})),
    Case("normal_crossing[k=1-1,h=1-0]", "normal_crossing", (("k", (1, 1)), ("h", (1, 0))), TINY_MALA, 1000,
         EXACT_TOLERANCE, frozenset({"t"})),
)


def test_each_finished_case_is_one_line_and_resume_skips_it(tmp_path):
    lines = run_suite(TINY[:1], tmp_path)
    assert [line["id"] for line in lines] == ["newton[w1**2]"]
    line = lines[0]
    assert line["passed"] and line["gates"]["mixing"]["passed"] and line["gates"]["accuracy"]["passed"]
    assert line["calibration"]["sweep"] == [] and "mala is exact" in line["calibration"]["reason"]
    assert line["step_size_rule"].startswith("dual averaging to MALA acceptance")
    assert len(line["trace"]) == 8
    with (tmp_path / "results.jsonl").open("a") as stream:
        stream.write('{"id": "torn')                 # a run killed while writing
    assert finished_ids(tmp_path / "results.jsonl") == {"newton[w1**2]"}
    with pytest.raises(ValueError, match="--resume"):
        run_suite(TINY, tmp_path)
    lines = run_suite(TINY, tmp_path, resume=True)
    assert [line["id"] for line in lines] == [case.id for case in TINY]  # the first was not rerun


@pytest.mark.parametrize("text", ['{"foo": 1}\n', "this is garbage\nmore garbage {{{\n",
                                  '{"id": "smoke:tanh[hidden=1]", "passed": "maybe"}\n'])
def test_a_results_file_that_verify_did_not_write_is_refused_before_any_case_runs(tmp_path, text):
    (tmp_path / "results.jsonl").write_text(text)
    with pytest.raises(ValueError, match="line 1 is not a case's result"):
        run_suite(TINY, tmp_path, resume=True)


def test_a_start_that_fails_leaves_no_results_file(tmp_path, monkeypatch):
    """The file is created with the first finished case, so a rerun needs no --resume."""
    def unreachable(*args, **kwargs):
        raise ValueError("Timed out trying to connect")
        yield

    monkeypatch.setattr(runner, "run_each", unreachable)
    with pytest.raises(ValueError, match="Timed out"):
        run_suite(TINY, tmp_path)
    assert not (tmp_path / "results.jsonl").exists()


def test_a_suite_runs_on_a_dask_local_cluster(tmp_path):
    lines = run_suite(TINY, tmp_path, dask="local")
    assert sorted(line["id"] for line in lines) == sorted(case.id for case in TINY)
    in_process = run_suite(TINY[:1], tmp_path / "again")
    same = next(line for line in lines if line["id"] == TINY[0].id)
    assert same["llc_mean"] == in_process[0]["llc_mean"]   # same seed, same numbers, wherever it ran


def test_cli_writes_the_report_and_exits_by_the_gates(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cases, "suite", lambda name: TINY)
    code = main(["verify", "--suite", "smoke", "--out", str(tmp_path), "--json"])
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert captured.err == ""                                  # --json is quiet on stderr
    assert code == 0 and payload["summary"]["failed"] == []   # MALA is exact: both tiny cases pass
    for name in ("results.jsonl", "report.md", "report.json", "estimate_vs_exact.png", "error_vs_dim.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert not (tmp_path / "calibration.png").exists()   # exact samplers are not swept: nothing to draw
    report = (tmp_path / "report.md").read_text()
    assert "k = 3" in report and "False-failure rate" in report and "newton[w1**2]" in report
    assert json.loads((tmp_path / "report.json").read_text())["summary"]["cases"] == 2


def test_without_a_terminal_each_finished_case_is_one_line_on_stderr(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cases, "suite", lambda name: TINY)
    assert main(["verify", "--suite", "smoke", "--out", str(tmp_path / "told")]) == 0
    told = capsys.readouterr().err.splitlines()   # pytest's stderr is not a terminal
    assert [line.split("]")[0] for line in told] == ["[1/2", "[2/2"]
    assert "newton[w1**2]: pass (λ̂ = " in told[0] and ", λ = 0.5; " in told[0] and told[0].endswith(" s)")
    assert main(["verify", "--suite", "smoke", "--out", str(tmp_path / "quiet"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_a_case_outside_its_gate_fails_the_suite_with_exit_1(tmp_path, capsys, monkeypatch):
    impossible = replace(TINY[0], tolerance=Tolerance(k=0.0, bias=0.0))   # a window of width zero
    monkeypatch.setattr(cases, "suite", lambda name: (impossible,))
    code = main(["verify", "--suite", "smoke", "--out", str(tmp_path), "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 1 and payload["summary"]["failed"] == [impossible.id]
    assert "**FAIL**" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["verify", "--suite", "huge"], "invalid choice"),
    (["verify", "--suite", "smoke", "--random", "3"], "either --suite or --random"),
    (["verify", "--dask", "nowhere"], "--dask takes"),
    (["verify", "--random", "0"], "a whole number of cases from 1 to 10,000"),
    (["verify", "--only", "no-such-case"], "no case id contains"),
    (["verify", "--suite", "smoke", "--seed", "5"], "--seed draws the networks of --random"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_summary_judges_the_dln_targets_on_dln_cases_only():
    from sltlab.verification.suite.report import summary

    def line(case_id, error, tags):
        return {"id": case_id, "passed": True, "tags": tags, "rel_error": error,
                "rel_error_outside_band": abs(error) / 2}

    lines = [line("a", 0.01, ["dln"]), line("b", -0.02, ["dln"]), line("c", 0.09, ["dln"]), line("d", 0.5, ["toy"])]
    facts = summary(lines)["dln"]
    assert (facts["cases"], facts["median_abs_rel_error"], facts["worst_abs_rel_error"]) == (3, 0.02, 0.09)
    assert facts["meets_targets"] and facts["worst_outside_band"] == 0.045
    assert not summary(lines + [line("e", -0.11, ["dln"])])["dln"]["meets_targets"]


def test_dask_without_its_package_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "distributed"
                        else find_spec(name, *rest))
    assert main(["verify", "--suite", "smoke", "--dask", "local", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "sltlab[dask]" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_scheduler_that_does_not_answer_is_a_one_line_error_before_anything_runs(tmp_path, capsys):
    import socket

    pytest.importorskip("distributed")
    with socket.socket() as free:   # a port nothing listens on once it is closed
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    assert main(["verify", "--suite", "smoke", "--dask", address, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: " in err and err.count("\n") == 1
    assert "Errno" not in err and not (tmp_path / "out").exists()
