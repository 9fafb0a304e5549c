"""Calibration plus run against the run alone: ``sltlab bench --only calibration``.

One deep linear case of the dln suite at its smoke length ([10,10,10,10] rank 2, n = 10⁴, the
registry's settings with 2,000 draws after 5,000 burn-in steps), timed as the suite runs it —
:func:`~sltlab.estimators.calibrate.calibrate_for_run` and then
:func:`~sltlab.estimators.estimate.estimate_llc_from_loss` at the calibrated settings — against
the second call alone, at the settings the calibration chose. With the suite's own sampler
(MALA) nothing runs before the estimate (an exact sampler is not swept; its warm-up, which is
its burn-in, tunes the step in both ways), so the ratio is 1 up to the machine's noise. With
SGLD the pilots of the sweep cover a quarter of the run's diffusion time each, and the run is
lengthened by rule/chosen step, so the sweep's share is what the row shows. The ratio of the
medians is judged against the target of 1.5; a shorter run than the suite's makes the fixed
costs weigh more, so the ratio is if anything high.
"""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import replace

from sltlab.estimators.calibrate import CalibrationError, calibrate_for_run
from sltlab.estimators.cooled_share import without_idle_cooling
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.notices import EstimateWarning
from sltlab.verification.suite.cases import DLN_SMOKE
from sltlab.verification.suite.problems import dln_problem
from sltlab.verification.suite.runner import MAX_RUN_SCALE

TARGET_RATIO = 1.5           # calibration plus run, over the run alone
CASE = ([10, 10, 10, 10], 2)
SAMPLERS = ("mala", "sgld")


def calibration_rows(repeats: int, *, widths=CASE[0], rank: int = CASE[1], n: int = 10_000,
                     config=DLN_SMOKE, samplers=SAMPLERS) -> list[dict]:
    """For each sampler, the medians over ``repeats`` of calibration plus run and of the run
    alone, taken in turn, their ratio, and the step and run length the calibration chose."""
    problem = dln_problem(widths, rank, n=n, seed=0)
    rows = []
    for sampler in samplers:
        settings = without_idle_cooling(replace(config, sampler=sampler, fallback=None), sampler, config.anneal)
        row = {"name": f"{sampler}: {problem.name}, n = {n:,}", "sampler": sampler, "repeats": repeats,
               "target_ratio": TARGET_RATIO}
        try:
            row.update(_timed(problem, settings, repeats))
        except CalibrationError as error:   # no equivalent pair: nothing to time, and a loud row
            row.update(failure=str(error), meets_target=False)
        rows.append(row)
    return rows


def _timed(problem, settings, repeats: int) -> dict:
    """Calibration plus run, then the run alone, ``repeats`` times in turn; medians and ratio."""
    together, alone = [], []
    with warnings.catch_warnings():   # a short run may fail the mixing gate; only its time is read here
        warnings.simplefilter("ignore", EstimateWarning)
        for repeat in range(repeats):
            seeded = replace(settings, seed=repeat)
            clock = time.perf_counter()
            chosen, calibration = calibrate_for_run(problem.loss, problem.true_parameter, problem.data, seeded,
                                                    n=problem.n, max_scale=MAX_RUN_SCALE)
            estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data, chosen, n=problem.n)
            together.append(time.perf_counter() - clock)
            clock = time.perf_counter()
            estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data, chosen, n=problem.n)
            alone.append(time.perf_counter() - clock)
    ratio = statistics.median(together) / statistics.median(alone)
    return {"calibration_and_run_seconds": statistics.median(together), "run_seconds": statistics.median(alone),
            "ratio": ratio, "pilots": len(calibration["sweep"]), "chosen_step_size": calibration.get("chosen"),
            "rule_step_size": calibration.get("rule"), "run_steps": chosen.burnin_steps + chosen.draws * chosen.thin,
            "meets_target": ratio <= TARGET_RATIO}


def format_calibration(rows: list[dict]) -> str:
    lines = [f"{'calibration plus run against the run alone':<64} {'both':>8} {'run':>8} {'ratio':>6}  target"]
    for row in rows:
        if "failure" in row:
            lines.append(f"{row['name']:<64} MISSED: calibration failed: {row['failure']}")
            continue
        swept = (f"{row['pilots']} pilots, step {row['chosen_step_size']:.3g} (rule {row['rule_step_size']:.3g})"
                 if row["pilots"] else "no sweep (exact sampler): nothing runs before the estimate")
        lines.append(f"{row['name']:<64} {row['calibration_and_run_seconds']:7.1f}s {row['run_seconds']:7.1f}s "
                     f"{row['ratio']:5.2f}×  ≤ {row['target_ratio']:g}× " + ("ok" if row["meets_target"] else "MISSED"))
        lines.append(f"  {swept}; the run {row['run_steps']:,} steps; medians of {row['repeats']}")
    return "\n".join(lines)
