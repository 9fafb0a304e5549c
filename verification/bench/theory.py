"""``sltlab bench``: speed targets, measured as medians over repeated runs.

Speed is never asserted in unit tests (machines are noisy); it is measured here and reported
with the target beside it.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, NamedTuple

from sltlab.theory import deep_linear, dln_staircase, newton, reduced_rank


# Even monomials in 4 variables: exercises the exact LP (1820 candidate bases) and face search.
TWELVE_TERMS = ("w1**6*w2**2*w3**2 + w1**6 + w1**4*w2**4*w3**4*w4**2 + w1**4*w2**2*w4**2"
                " + w1**4*w3**4*w4**2 + w1**2*w2**4*w4**4 + w1**2*w2**2*w3**2*w4**4"
                " + w1**2*w3**2*w4**4 + w2**6*w4**6 + w2**4*w3**2*w4**6 + w2**2*w3**4*w4**6"
                " + w3**6*w4**6")


class Benchmark(NamedTuple):
    """One timed call, with the target its median should meet (None: no target)."""

    name: str
    call: Callable[[], object]
    target_seconds: float | None


THEORY_BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("theory: deep_linear, 10 layers of width 1000", lambda: deep_linear([1000] * 11, 500), 0.05),
    Benchmark("theory: dln_staircase, 10 layers of width 1000 (1001 ranks)",
              lambda: dln_staircase([1000] * 11), None),
    Benchmark("theory: reduced_rank(1000, 500, 800, 250)", lambda: reduced_rank(1000, 500, 800, 250), 0.05),
    Benchmark("theory: newton, w1²w2² + w3⁴ (3 variables)", lambda: newton("w1**2*w2**2 + w3**4"), None),
    Benchmark("theory: newton, 12-term potential in 4 variables", lambda: newton(TWELVE_TERMS), None),
)


def median_seconds(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median and (max − min)/median of the wall time of ``call`` over ``repeats`` runs."""
    call()  # warm caches and imports once, untimed
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return median, (max(times) - min(times)) / median if median > 0 else 0.0


def run_benchmarks(repeats: int, benchmarks: tuple[Benchmark, ...] = THEORY_BENCHMARKS) -> list[dict]:
    """Time every benchmark; each row has the median, its relative spread and the target."""
    rows = []
    for bench in benchmarks:
        median, spread = median_seconds(bench.call, repeats)
        rows.append({
            "name": bench.name,
            "median_seconds": median,
            "relative_spread": spread,
            "repeats": repeats,
            "target_seconds": bench.target_seconds,
            "meets_target": None if bench.target_seconds is None else median <= bench.target_seconds,
        })
    return rows


def format_rows(rows: list[dict]) -> str:
    """A readable table of benchmark rows."""
    lines = [f"{'benchmark':<62} {'median':>11} {'spread':>7} {'target':>9}"]
    for row in rows:
        target = row["target_seconds"]
        verdict = "" if target is None else ("  ok" if row["meets_target"] else "  MISSED")
        target_text = "—" if target is None else f"{target * 1e3:.0f} ms"
        lines.append(f"{row['name']:<62} {row['median_seconds'] * 1e3:>8.3f} ms "
                     f"{row['relative_spread']:>6.0%} {target_text:>9}{verdict}")
    return "\n".join(lines)
