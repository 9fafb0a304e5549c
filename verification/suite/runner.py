"""Run verification cases, gate them, and stream each result to ``results.jsonl`` as it ends.

A case is calibrated (:mod:`estimators.calibrate`), estimated, and judged by two stated
gates: mixing (rank-normalised R-hat and ESS, Vehtari et al. 2021) and accuracy
(:class:`verification.cases.Tolerance`). Cases run in this process by default, or on a Dask
cluster: ``"local"`` starts a LocalCluster, an address such as ``tcp://host:8786`` joins one.
Each finished case is appended and flushed at once, so a killed run loses nothing finished
and ``resume`` skips what is already there.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

try:
    import fcntl
except ImportError:   # Windows: no flock (writing_to)
    fcntl = None

from sltlab.estimators.calibrate import CALIBRATED, CalibrationError, calibrate_for_run, sweep_records
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.notices import EstimateWarning
from sltlab.estimators.sampling import progress_bar
from sltlab.verification.suite.cases import Case
from sltlab.verification.suite.gates import gates
from sltlab.verification.suite.summary import summarize
from sltlab.verification.scale_out import check_dask, run_each
from sltlab.verification.threads import use_threads

TRACE_POINTS = 200       # per chain, kept for the trace plots of failed cases
CASE_LINE_START = '{"id": '   # how every line of results.jsonl begins
HELD_FOLDERS: set[Path] = set()   # output folders this process holds (writing_to)
MAX_RUN_SCALE = 4        # a calibrated step may lengthen the run at most this much


def run_case(case: Case, progress: bool = False, threads: int | None = None) -> dict[str, Any]:
    """Calibrate, estimate and gate one case; a JSON-ready line for ``results.jsonl``. With
    ``threads`` the process (e.g. a Dask worker) first sets torch's thread count to it."""
    if threads is not None:
        use_threads(threads, at_most_cores=False)
    clock = time.perf_counter()
    problem = case.problem()
    line: dict[str, Any] = {"id": case.id, "family": case.family, "tags": sorted(case.tags), "seed": case.seed,
                            "step": case.step}
    config = case.config
    try:
        if case.step == "auto":
            config, line["calibration"] = calibrate_for_run(problem.loss, problem.true_parameter, problem.data, config,
                                                            n=problem.n, max_scale=MAX_RUN_SCALE, progress=progress)
        with warnings.catch_warnings():   # a case records its warnings in its line instead
            warnings.simplefilter("ignore", EstimateWarning)
            result = estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data, config, n=problem.n,
                                            progress=progress, step_rule=CALIBRATED if case.step == "auto" else "given")
    except CalibrationError as error:
        line.update(problem=problem.name, passed=False, failure=str(error), dim=int(problem.true_parameter.numel()),
                    lambda_exact_float=problem.exact.lam_float, calibration={"sweep": sweep_records(error.sweep)},
                    seconds=time.perf_counter() - clock)
        return line
    line.update(summarize(problem, result, reference=True))
    if line.get("calibration", {}).get("sweep"):
        line["step_size_rule"] = line["calibration"]["reason"]
    line["gates"] = gates(line, case.tolerance)
    line["passed"] = all(gate["passed"] for gate in line["gates"].values())
    line["trace"] = _thumbnail(result.trace, result.config.nbeta)
    line["seconds"] = time.perf_counter() - clock
    line["torch_threads"] = torch.get_num_threads()
    return line


def _thumbnail(trace, nbeta: float) -> list[list[float]]:
    """nβ·(L_b(w) − L_b(w*)) per chain at up to TRACE_POINTS evenly spaced draws."""
    gaps = nbeta * (trace.fields["loss"] - trace.fields["center_loss"])
    columns = np.unique(np.linspace(0, gaps.shape[1] - 1, min(TRACE_POINTS, gaps.shape[1])).astype(int))
    return [[float(v) if math.isfinite(v) else None for v in row] for row in gaps[:, columns]]


def finished_ids(results: Path) -> set[str]:
    """Ids of the cases already in ``results`` (:func:`read_results`: a torn last line from a
    killed run is ignored, a line that is no case's result refused)."""
    return {line["id"] for line in read_results(results)}


def read_results(results: Path) -> list[dict[str, Any]]:
    """Every case's line in ``results``, the last where a case has several (a line torn by a
    killed run, any start of one, is skipped); a line that is no case's result is a one-line
    ``ValueError``: the file is not one this command wrote."""
    lines = {}
    for number, text in enumerate(results.read_text().splitlines() if results.exists() else [], 1):
        try:
            line = json.loads(text)
        except json.JSONDecodeError:   # every line begins with its case's id, and was cut somewhere in it
            if text.startswith(CASE_LINE_START) or CASE_LINE_START.startswith(text.strip()):
                continue
            line = None
        if not (isinstance(line, dict) and "id" in line and "family" in line and isinstance(line.get("passed"), bool)):
            raise ValueError(f"{results} line {number} is not a case's result: the file was not written by "
                             "sltlab verify; choose another --out")
        lines.pop(line["id"], None)   # a case run again is counted once, in the place of its last line
        lines[line["id"]] = line
    return list(lines.values())


@contextmanager
def writing_to(out: Path):
    """Hold ``out`` (made if missing) for this run alone, from its first case to its report: a second
    run into it at the same time is a one-line ``ValueError`` (two had appended the same case twice,
    and each wrote a report of its own); a folder that cannot be written fails here, before any case
    runs. Held again by the same process, it passes; where the system has no ``flock`` (Windows),
    runs into one folder are not kept apart."""
    out.mkdir(parents=True, exist_ok=True)
    key = out.resolve()
    if key in HELD_FOLDERS:
        yield
        return
    with (out / ".sltlab-verify.lock").open("a") as lock:
        try:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another sltlab verify is writing to {out}: wait for it to end, or choose another "
                             "--out") from None
        HELD_FOLDERS.add(key)
        try:
            yield
        finally:
            HELD_FOLDERS.discard(key)


def run_suite(cases: Iterable[Case], out: Path, *, resume: bool = False, dask: str | None = None,
              progress: bool = False, announce: Callable[[str], None] | None = None,
              threads: int | None = None, reach: bool = True) -> list[dict[str, Any]]:
    """Run the cases not yet in ``out/results.jsonl``, appending each line as it finishes;
    returns every line of the file (earlier and new). ``progress`` draws a bar (for a terminal);
    ``announce`` is instead handed one line of text per finished case (for a log). ``threads``:
    torch's thread count in the processes that run the cases (None: as they are); ``reach``:
    whether to ask the Dask scheduler first (False where the caller has)."""
    check_dask(dask, reach=reach)
    results = out / "results.jsonl"
    if results.exists() and not resume:
        raise ValueError(f"{results} exists: pass --resume to continue that run, or choose another --out")
    with writing_to(out):
        done = finished_ids(results)   # a file this command did not write is refused before any case runs
        _close_torn_line(results)
        pending = [case for case in cases if case.id not in done]
        bar = progress_bar(len(pending), "cases", enabled=progress and bool(pending), unit="case", leave=True)
        finished = 0
        for line in run_each(run_case, pending, dask, threads=threads):
            _append(results, line)   # created with the first finished case: a start that fails leaves no file
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{line['id']}: {'pass' if line['passed'] else 'FAIL'}")
            if announce is not None:
                finished += 1
                announce(f"[{finished}/{len(pending)}] {case_verdict(line)}")
        if bar is not None:
            bar.close()
        return read_results(results)


def _close_torn_line(results: Path) -> None:
    """End a line torn by a killed run, so that the next line stands alone."""
    if results.exists() and results.stat().st_size:
        with results.open("rb+") as stream:
            stream.seek(-1, os.SEEK_END)
            if stream.read(1) != b"\n":
                stream.write(b"\n")


def _append(results: Path, line: dict[str, Any]) -> None:
    """One case's line appended to ``results`` and flushed to disk at once."""
    with results.open("a") as stream:
        stream.write(json.dumps(line, allow_nan=False) + "\n")
        stream.flush()
        os.fsync(stream.fileno())


def case_verdict(line: dict[str, Any]) -> str:
    """One finished case in a line: its id, pass or FAIL, λ̂ ± SE beside λ, and its wall time."""
    verdict = "pass" if line["passed"] else "FAIL"
    if line.get("llc_mean") is None:
        found = line.get("failure") or "no estimate"
    else:
        spread = "" if line.get("llc_se") is None else f" ± {line['llc_se']:.2g}"
        found = f"λ̂ = {line['llc_mean']:.4g}{spread}, λ = {line['lambda_exact_float']:.4g}"
    return f"{line['id']}: {verdict} ({found}; {line['seconds']:.0f} s)"
