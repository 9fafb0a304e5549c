"""Stage detection on seeded LLC curves whose boundaries are known: ``sltlab bench --only stages``.

Each curve is a staircase λ(t) = 12.5 + Σ_k jump_k·sigmoid((log(1 + t) − log(1 + t_k))/width) at
checkpoints spaced evenly in log time from step 75 to 10,000, observed with Gaussian noise whose
SE, handed to the detector, lies between 1 and 1.3 times a stated one. For every case and seed,
:func:`~sltlab.estimators.stages.detect_stages` with its bandwidth chosen per curve
(Mallows' C_L) and read again at the coarser ones (the default), at the chosen bandwidth
alone, and at the fixed bandwidth it had before, max(0.1, the mean spacing) in log(1 + step), is
matched to the true change steps
(:func:`~sltlab.verification.dynamics.stage_matching.match_boundaries`): a seed fails when a change is
missed, a boundary is spurious, or a move is found steepest at the first or last checkpoint (every
change lies well inside the curve). A flat curve counts the seeds with any boundary or such move at all.
The cases are the tests' staircases and harder ones: sparse checkpoints, small rises, and a
short stage (or two in a row) between sharp rises as a deep linear network's LLC curve shows, and a gradual
small rise between sharp ones, as on the curve of a wide shallow network.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sltlab.verification.dynamics.stage_matching import match_boundaries
from sltlab.estimators.curve_smoothing import mean_log_spacing
from sltlab.estimators.stages import detect_stages

CHANGES = (300, 600, 1200, 2400)   # ln 2 apart in log time, as the deep linear staircase with halving singular values
SHORT_STAGE = (300, 600, 780, 2400)   # the third change 0.26 after the second in log time
SHORT_STAGES = (300, 600, 780, 1014)  # and the fourth 0.26 after the third

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
    ("two stages of 2 checkpoints in a row", dict(checkpoints=40, jumps=(6, 6, 6, 6), standard_error=0.4,
                                                  width=0.005, changes=SHORT_STAGES)),
    ("a gradual rise of 6 SE between sharp ones", dict(checkpoints=60, jumps=(5, 5, 2.5, 5), standard_error=0.4,
                                                        width=(0.04, 0.04, 0.1, 0.04))),
    ("flat, 60 checkpoints", dict(checkpoints=60, jumps=(0, 0, 0, 0), standard_error=0.5)),
)


def staircase(seed: int, *, checkpoints: int, jumps: tuple[float, ...], standard_error: float,
              width: float | tuple[float, ...] = 0.04,
              changes: tuple[int, ...] = CHANGES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps, noisy λ̂ and the SEs of one seeded staircase (module docstring); ``width`` is each
    change's sigmoid width in log(1 + step), one for all or one per change."""
    rng = np.random.default_rng(seed)
    steps = np.unique(np.round(np.logspace(np.log10(75), 4, checkpoints)).astype(int))
    log_steps = np.log1p(steps)
    widths = np.broadcast_to(width, (len(changes),))
    truth = 12.5 + sum(jump / (1 + np.exp(-(log_steps - np.log1p(change)) / spread))
                       for change, jump, spread in zip(changes, jumps, widths))
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
        failed = {"default": 0, "chosen": 0, "former": 0}
        chosen = []
        for seed in range(count):
            steps, llc, errors = staircase(seed, **case)
            default = detect_stages(steps, llc, errors)
            chosen.append(default.bandwidth)
            for rule, detection in (("default", default),
                                    ("chosen", detect_stages(steps, llc, errors, bandwidth=default.bandwidth)),
                                    ("former", detect_stages(steps, llc, errors, bandwidth=former_bandwidth(steps)))):
                match = match_boundaries(changes, detection.boundaries)
                failed[rule] += bool(match.missed or match.spurious or detection.edge_moves)
        rows.append({"case": name, "seeds": count, **{f"failed_{rule}": value for rule, value in failed.items()},
                     "median_bandwidth_chosen": float(np.median(chosen))})
    return rows


def format_stages(rows: list[dict[str, Any]]) -> str:
    lines = ["stage detection on seeded staircases: seeds with a change missed, a boundary spurious or a move "
             "at an edge (flat: with any boundary or move); the default (bandwidth chosen per curve by C_L, then "
             "the coarser ones), the chosen bandwidth alone, and the former max(0.1, spacing)"]
    for row in rows:
        lines.append(f"  {row['case']:<46} default {row['failed_default']:>3}/{row['seeds']}   C_L alone "
                     f"{row['failed_chosen']:>3}/{row['seeds']}   former {row['failed_former']:>3}/{row['seeds']}"
                     f"   (h chosen {row['median_bandwidth_chosen']:.3f})")
    return "\n".join(lines)
