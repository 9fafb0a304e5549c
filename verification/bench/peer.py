"""One LLC estimate timed as a whole process, beside a peer tool on the same job:
``sltlab bench --only peer``.

The job: a deep linear network [10, 10, 10, 10] at a rank-2 true parameter, n = 10⁴ rows,
minibatches of 100, 16 SGLD chains × 2,000 steps at step 10⁻⁴ with γ = 100, no burn-in and no
thinning. Each repeat runs ``sltlab estimate dln`` on it as a fresh Python process, so the time
holds everything a user waits for (imports, data, localisation, sampling, output); the
process's JSON gives the sampling seconds. The peer is not a dependency of sltlab. Either its
own command is given (``--peer-command``) and run as a whole process right before each of
sltlab's repeats, so both see the same machine, its sampling seconds read from its output by
``--peer-sampling-regex``; or its seconds from a run of its own are given (``--peer-seconds
WHOLE SAMPLING``). The row divides the peer's medians by sltlab's, beside the targets (10× end
to end, 30× in sampling alone).
"""

from __future__ import annotations

import json
import math
import re
import statistics
import subprocess
import sys
import time

JOB = ("dln", "--widths", "10", "10", "10", "10", "--rank", "2", "--n", "10000", "--chains", "16", "--draws", "2000",
       "--burnin", "0", "--thin", "1", "--batch-size", "100", "--step-size", "1e-4", "--localization", "100",
       "--sampler", "sgld", "--seed", "0", "--json")
TARGET_SPEED_UPS = {"whole": 10.0, "sampling": 30.0}
PEER_SAMPLING_REGEX = r"wall time = ([0-9.]+) s"   # what the devinterp baseline script prints of its sampling
_LAUNCH = "import sys; from sltlab.verification.cli import main; sys.exit(main())"


def _timed(command: list[str] | str) -> tuple[float, subprocess.CompletedProcess]:
    clock = time.perf_counter()
    done = subprocess.run(command, shell=isinstance(command, str), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - clock
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        if isinstance(command, str):   # the user's command: a one-line error, not a traceback
            raise ValueError(f"the peer command exited with {done.returncode}: {last}")
        raise RuntimeError(f"sltlab estimate exited with {done.returncode}: {last}")
    return seconds, done


def peer_row(repeats: int, threads: int, peer_seconds: tuple[float, float] | None = None, *,
             peer_command: str | None = None, peer_sampling_regex: str = PEER_SAMPLING_REGEX) -> dict:
    """Medians over ``repeats`` fresh processes of the whole job's seconds and its sampling
    seconds; with ``peer_command`` the peer's, timed in turn with sltlab's, and with either that
    or ``peer_seconds`` (whole, sampling) the speed-ups over the peer."""
    if peer_seconds is not None and not all(0 < seconds < math.inf for seconds in peer_seconds):
        raise ValueError(f"--peer-seconds must be two positive, finite numbers (whole, sampling), got {peer_seconds}")
    if peer_seconds is not None and peer_seconds[1] > peer_seconds[0]:
        raise ValueError(f"--peer-seconds gives the peer's sampling ({peer_seconds[1]:g} s) as longer than its whole "
                         f"process ({peer_seconds[0]:g} s): give whole, then sampling")
    if peer_seconds is not None and peer_command is not None:
        raise ValueError("give the peer's seconds or its command, not both")
    try:
        groups = re.compile(peer_sampling_regex).groups
    except re.error as error:
        raise ValueError(f"--peer-sampling-regex {peer_sampling_regex!r} is no regular expression: {error}") from None
    if groups < 1:
        raise ValueError(f"--peer-sampling-regex {peer_sampling_regex!r} has no group: put the seconds in (…)")
    whole, sampling, peer_whole, peer_sampling = [], [], [], []
    for _ in range(repeats):
        if peer_command is not None:
            seconds, done = _timed(peer_command)
            peer_whole.append(seconds)
            found = re.search(peer_sampling_regex, done.stdout + done.stderr)
            if found is None:
                raise ValueError(f"the peer's output has no match for --peer-sampling-regex {peer_sampling_regex!r}")
            peer_sampling.append(_seconds(found.group(1), peer_sampling_regex))
        seconds, done = _timed([sys.executable, "-c", _LAUNCH, "estimate", *JOB, "--threads", str(threads)])
        whole.append(seconds)
        sampling.append(float(json.loads(done.stdout)["sampling_seconds"]))
    row = {"job": "sltlab estimate " + " ".join(JOB), "repeats": repeats, "torch_threads": threads,
           "whole_seconds": statistics.median(whole), "sampling_seconds": statistics.median(sampling),
           "whole_spread": [min(whole), max(whole)], "target_speed_ups": TARGET_SPEED_UPS}
    if peer_command is not None:
        peer_seconds = (statistics.median(peer_whole), statistics.median(peer_sampling))
        row.update(peer_command=peer_command, peer_timed="in turn with sltlab's repeats, medians")
    elif peer_seconds is not None:
        row.update(peer_timed="given, from a run of its own")
    if peer_seconds is not None:
        speed_ups = {"whole": peer_seconds[0] / row["whole_seconds"],
                     "sampling": peer_seconds[1] / row["sampling_seconds"]}
        row.update(peer_whole_seconds=peer_seconds[0], peer_sampling_seconds=peer_seconds[1], speed_ups=speed_ups,
                   meets_targets=all(speed_ups[part] >= TARGET_SPEED_UPS[part] for part in speed_ups))
    return row


def format_peer(row: dict) -> str:
    lines = [row["job"],
             f"  whole process {row['whole_seconds']:.2f} s (median of {row['repeats']}, from "
             f"{row['whole_spread'][0]:.2f} to {row['whole_spread'][1]:.2f} s), "
             f"sampling {row['sampling_seconds']:.2f} s, {row['torch_threads']} torch thread(s)"]
    if "speed_ups" not in row:
        lines.append("  no --peer-command or --peer-seconds given: the peer's speed-up is not computed")
        return "\n".join(lines)
    for part, label in (("whole", "end to end"), ("sampling", "sampling alone")):
        target = row["target_speed_ups"][part]
        verdict = "ok" if row["speed_ups"][part] >= target else "MISSED"
        lines.append(f"  {label}: peer {row[f'peer_{part}_seconds']:.1f} s ({row['peer_timed']}), "
                     f"{row['speed_ups'][part]:.1f}× faster (target ≥ {target:g}×: {verdict})")
    return "\n".join(lines)


def _seconds(text: str, regex: str) -> float:
    """The peer's sampling seconds as its output gives them: a positive, finite number, or a one-line
    ``ValueError`` (an infinite or zero time would read as an infinite or zero speed-up)."""
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"--peer-sampling-regex {regex!r} matched {text!r} in the peer's output, not a number of "
                         "seconds") from None
    if not 0 < seconds < math.inf:
        raise ValueError(f"the peer's sampling time read by --peer-sampling-regex {regex!r} is {text}: it must be a "
                         "positive, finite number of seconds")
    return seconds
