"""Per-step cost of the samplers on small models, where launching many small tensor operations
(not arithmetic) sets the pace: ``sltlab bench --only overhead``.

Each row is one sampler on a deep linear network whose loss comes from the data's sufficient
statistics (:class:`sltlab.models.deep_linear.FullDataLoss`, the default DLN estimate's loss),
8 chains, the DLN defaults' float32, nβ = n/log n and γ, run through the chain driver that
estimates use (:func:`sltlab.estimators.sampling.run_chains`), recording every step. The
median over repeats of the wall time per step is reported in microseconds, with the torch
thread count it ran under.
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence

import torch

from sltlab.estimators.mala import mala
from sltlab.estimators.posterior import LocalPosterior, compiled
from sltlab.estimators.rmsprop_sgld import rmsprop_sgld
from sltlab.estimators.sampling import Batches, run_chains
from sltlab.estimators.sgld import sgld
from sltlab.verification.defaults import DLN_DEFAULTS
from sltlab.verification.suite import dln_problem

# (widths, rank): d = 16 (the network of the slow random draw), 300 and 10,000.
OVERHEAD_NETWORKS = (([1, 2, 7], 0), ([10, 10, 10, 10], 2), ([50, 50, 50, 50, 50], 5))
# Half the cost measured here on [10,10,10,10] with 8 chains and one thread on a quiet 2-core
# machine before the per-step overhead was cut (MALA 1,200 µs, SGLD 720 µs per step).
TARGET_MICROSECONDS = {("mala", 300): 600.0, ("sgld", 300): 360.0}
KERNELS = {"sgld": lambda posterior, step: sgld(posterior, step_size=step),
           "rmsprop_sgld": lambda posterior, step: rmsprop_sgld(posterior, step_size=step, adapt_steps=10**9),
           "mala": lambda posterior, step: mala(posterior, step_size=step)}


def microseconds_per_step(widths: Sequence[int], rank: int, sampler: str, *, chains: int = 8, steps: int = 300,
                          repeats: int = 5, compile_step: bool = False) -> dict[bool, float]:
    """Median over ``repeats`` runs of the wall time of one step of ``chains`` chains, in µs, by
    whether the step was compiled: eager only, or with ``compile_step`` eager and compiled by
    ``torch.compile`` (:func:`sltlab.estimators.posterior.compiled`; compiled in an untimed
    warm-up run) timed alternately, so that load on the machine falls on both alike.
    The step, 0.01/nβ, is small enough that no chain diverges and MALA accepts nearly always."""
    config = DLN_DEFAULTS.config
    problem = dln_problem(widths, rank, n=DLN_DEFAULTS.n, seed=0)
    nbeta = DLN_DEFAULTS.n / math.log(DLN_DEFAULTS.n)
    dtype = getattr(torch, config.dtype)
    posterior = LocalPosterior(problem.loss, nbeta, config.localization, problem.true_parameter.to(dtype))
    eager = KERNELS[sampler](posterior, 0.01 / nbeta)
    kernels = {False: eager, True: compiled(eager)} if compile_step else {False: eager}
    batches = Batches((), 1)
    generator = torch.Generator().manual_seed(0)
    seconds = {variant: [] for variant in kernels}
    for kernel in kernels.values():
        run_chains(kernel, posterior, batches, chains=chains, draws=5, generator=generator)   # warm up, compile
    for _ in range(repeats):
        for variant, kernel in kernels.items():
            seconds[variant].append(run_chains(kernel, posterior, batches, chains=chains, draws=steps,
                                               generator=generator).seconds / steps)
    return {variant: 1e6 * statistics.median(values) for variant, values in seconds.items()}


def run_overhead_benchmarks(repeats: int, networks=OVERHEAD_NETWORKS, samplers: Sequence[str] = tuple(KERNELS),
                            steps: int = 300, compile_step: bool = False) -> list[dict]:
    """One row per (network, sampler): µs per step of 8 chains, the thread count, the target;
    with ``compile_step`` a row of the compiled step after each, with its speed-up over the eager
    row."""
    rows = []
    for widths, rank in networks:
        dim = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
        for sampler in samplers:
            micro = microseconds_per_step(widths, rank, sampler, steps=steps, repeats=repeats,
                                          compile_step=compile_step)
            target = TARGET_MICROSECONDS.get((sampler, dim))
            rows.append({"name": f"{sampler} {list(widths)} (d = {dim:,}), 8 chains, full data",
                         "sampler": sampler, "dim": dim, "chains": 8, "microseconds_per_step": micro[False],
                         "torch_threads": torch.get_num_threads(), "repeats": repeats, "target_microseconds": target,
                         "meets_target": None if target is None else micro[False] <= target})
            if compile_step:
                speedup = micro[False] / micro[True]
                rows.append({**rows[-1], "name": f"  the same, compiled ({speedup:.2f}× eager)",
                             "microseconds_per_step": micro[True], "compiled": True, "speedup_over_eager": speedup,
                             "target_microseconds": None, "meets_target": None})
    return rows


def format_overhead_rows(rows: list[dict]) -> str:
    threads = sorted({row["torch_threads"] for row in rows})
    lines = [f"{'per-step overhead (torch threads ' + ', '.join(map(str, threads)) + ')':<68} {'µs/step':>9}  target"]
    for row in rows:
        target = "" if row["target_microseconds"] is None else (
            f"≤ {row['target_microseconds']:,.0f} " + ("ok" if row["meets_target"] else "MISSED"))
        lines.append(f"{row['name']:<68} {row['microseconds_per_step']:>9,.0f}  {target}")
    return "\n".join(lines)
