"""Stage detection on seeded LLC curves whose boundaries are known: ``sltlab bench --only stages``.

Each curve is a staircase λ(t) = 12.5 + Σ_k jump_k·sigmoid((log(1 + t) − log(1 + t_k))/width) at
checkpoints spaced evenly in log time from step 75 to 10,000, observed with Gaussian noise whose
SE, handed to the detector, lies between 1 and 1.3 times a stated one. For every case and seed,
:func:`~sltlab.verification.dynamics.stages.detect_stages` with its bandwidth chosen per curve
(Mallows' C_L, the default) and with the fixed bandwidth it had before, max(0.1, the mean
spacing) in log(1 + step), is matched to the true change steps
(:func:`~sltlab.verification.dynamics.stages.match_boundaries`): a seed fails when a change is
missed or a boundary is spurious. A flat curve counts the seeds with any boundary at all.
The cases are the tests' staircases and harder ones: sparse checkpoints, small rises, and a
short stage between two sharp rises as a deep linear network's LLC curve shows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sltlab.verification.dynamics.stages import detect_stages, match_boundaries, mean_log_spacing

CHANGES = (300, 600, 1200, 2400)   # ln 2 apart in log time, as the deep linear staircase with halving singular values
SHORT_STAGE = (300, 600, 780, 2400)   # the third change 0.26 after the second in log time

CASES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("rises of 10 SE, 40 checkpoints", dict(checkpoints=40, jumps=(5, 5, 5, 5), standard_error=0.5)),
    ("rises of 10 SE, 100 checkpoints", dict(checkpoints=100, jumps=(5, 5, 5, 5), standard_error=0.5)),
    ("rises of 10 SE, 30 checkpoints", dict(checkpoints=30, jumps=(5, 5, 5, 5), standard_error=0.5)),
    ("rises of 50 SE, 60 checkpoints", dict(checkpoints=60, jumps=(5, 5, 5, 5), standard_error=0.1)),
    ("rises of 10–27 SE, 60 checkpoints", dict(checkpoints=60, jumps=(5, 3, 8, 4), standard_error=0.3)),
    ("falls and rises of 10 SE", dict(checkpoints=60, jumps=(-5, 5, -5, 5), standard_error=0.5)),
    ("rises of 5 SE, 60 checkpoints", dict(checkpoints=60, jumps=(2, 2, 2, 2), standard_error=0.4)),
    ("a stage of 3 checkpoints between sharp rises", dict(checkpoints=60, jumps=(6, 6, 6, 6), standard_error=0.4,
                                                          width=0.005, changes=SHORT_STAGE)),
    ("a stage of 2 checkpoints between sharp rises", dict(checkpoints=40, jumps=(6, 6, 6, 6), standard_error=0.4,
                                                          width=0.005, changes=SHORT_STAGE)),
    ("flat, 60 checkpoints", dict(checkpoints=60, jumps=(0, 0, 0, 0), standard_error=0.5)),
)


def staircase(seed: int, *, checkpoints: int, jumps: tuple[float, ...], standard_error: float, width: float = 0.04,
              changes: tuple[int, ...] = CHANGES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps, noisy λ̂ and the SEs of one seeded staircase (module docstring)."""
    rng = np.random.default_rng(seed)
    steps = np.unique(np.round(np.logspace(np.log10(75), 4, checkpoints)).astype(int))
    log_steps = np.log1p(steps)
    truth = 12.5 + sum(jump / (1 + np.exp(-(log_steps - np.log1p(change)) / width))
                       for change, jump in zip(changes, jumps))
    errors = standard_error * (1 + 0.3 * rng.random(steps.size))
    return steps, truth + errors * rng.standard_normal(steps.size), errors


def former_bandwidth(steps: np.ndarray) -> float:
    """The fixed bandwidth stage detection used before choosing it per curve."""
    return max(0.1, mean_log_spacing(steps))


def stage_rows(count: int = 40) -> list[dict[str, Any]]:
    """Per case, the seeds (of ``count``) that fail under each bandwidth rule, and the median
    bandwidth chosen."""
    if count < 1:
        raise ValueError(f"--count must be at least 1, got {count}")
    rows = []
    for name, case in CASES:
        changes = case.get("changes", CHANGES) if any(case["jumps"]) else ()
        failed = {"chosen": 0, "former": 0}
        chosen = []
        for seed in range(count):
            steps, llc, errors = staircase(seed, **case)
            for rule, bandwidth in (("chosen", None), ("former", former_bandwidth(steps))):
                detection = detect_stages(steps, llc, errors, bandwidth=bandwidth)
                match = match_boundaries(changes, detection.boundaries)
                failed[rule] += bool(match.missed or match.spurious)
                if rule == "chosen":
                    chosen.append(detection.bandwidth)
        rows.append({"case": name, "seeds": count, "failed_chosen": failed["chosen"],
                     "failed_former": failed["former"], "median_bandwidth_chosen": float(np.median(chosen))})
    return rows


def format_stages(rows: list[dict[str, Any]]) -> str:
    lines = ["stage detection on seeded staircases: seeds with a change missed or a boundary spurious "
             "(flat: with any boundary), bandwidth chosen per curve (C_L) against the former max(0.1, spacing)"]
    for row in rows:
        lines.append(f"  {row['case']:<46} C_L {row['failed_chosen']:>3}/{row['seeds']}   former "
                     f"{row['failed_former']:>3}/{row['seeds']}   (h chosen {row['median_bandwidth_chosen']:.3f})")
    return "\n".join(lines)
