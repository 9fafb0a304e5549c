"""Sampler benchmarks for ``sltlab bench``: throughput in chain-steps per second, its scaling
with the number of chains, and a ladder of network sizes measured against this machine's own
matmul peak.

FLOPs of one SGLD chain-step on a deep linear network with d weights and batch b: the forward
pass costs 2·b·d multiply-adds counted as FLOPs, the backward pass twice that, and the paired
loss of w* on the same batch one more forward: 8·b·d in all.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Sequence

import torch

from estimators.posterior import LocalPosterior
from estimators.sampling import Batches, run_chains
from estimators.sgld import sgld
from models.deep_linear import DeepLinearNetwork

THROUGHPUT_TARGET = 30_000      # chain-steps/s on [10,10,10,10], batch 100, 64 chains (issue 3)
PEAK_FRACTION_TARGET = 0.5      # of the measured matmul peak, at the large end of the ladder
SCALE_LADDER = ([10, 10], [20, 20, 20, 20], [50, 50, 50, 50, 50], [160, 160, 160, 160, 160],
                [500, 500, 500, 500, 500])


def matmul_peak_gflops(size: int = 2048, repeats: int = 5, dtype=torch.float32) -> float:
    """Median GFLOP/s of a square float32 matmul: this machine's practical peak."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def sgld_seconds_per_step(widths: Sequence[int], chains: int, batch_size: int, steps: int,
                          repeats: int) -> float:
    """Median wall time of one batched SGLD step (recording every step) over ``repeats`` runs."""
    generator = torch.Generator().manual_seed(0)
    network = DeepLinearNetwork(widths)
    x = torch.randn(max(batch_size, 1000), widths[0], generator=generator)
    y = torch.randn(len(x), widths[-1], generator=generator)
    center = torch.randn(network.dim, generator=generator) / math.sqrt(max(widths))
    posterior = LocalPosterior(network, 1000.0, 1.0, center)
    sampler = sgld(posterior, step_size=1e-7)
    batches = Batches((x, y), batch_size)
    run_chains(sampler, posterior, batches, chains=chains, draws=2, generator=generator)  # warm up
    times = [run_chains(sampler, posterior, batches, chains=chains, draws=steps, generator=generator).seconds / steps
             for _ in range(repeats)]
    return statistics.median(times)


def run_sampler_benchmarks(repeats: int) -> list[dict]:
    """Throughput over chain counts, then the size ladder as a fraction of the matmul peak."""
    rows = []
    for chains in (1, 8, 64, 256):
        seconds = sgld_seconds_per_step([10, 10, 10, 10], chains, 100, 200, repeats)
        rows.append({"name": f"sgld [10,10,10,10] batch 100, {chains} chains",
                     "chain_steps_per_second": chains / seconds,
                     "microseconds_per_chain_step": 1e6 * seconds / chains,
                     "target_chain_steps_per_second": THROUGHPUT_TARGET if chains == 64 else None,
                     "meets_target": chains / seconds >= THROUGHPUT_TARGET if chains == 64 else None})
    peak = matmul_peak_gflops()
    rows.append({"name": "matmul peak (2048², float32)", "gflops": peak})
    for widths in SCALE_LADDER:
        network = DeepLinearNetwork(widths)
        steps = max(3, min(100, int(2e9 / (8 * 100 * network.dim * 8))))
        seconds = sgld_seconds_per_step(widths, 8, 100, steps, repeats)
        gflops = 8 * 100 * network.dim * 8 / seconds / 1e9
        large = network.dim >= 10**6
        rows.append({"name": f"sgld {widths} (d = {network.dim:,}), batch 100, 8 chains",
                     "chain_steps_per_second": 8 / seconds, "gflops": gflops, "fraction_of_peak": gflops / peak,
                     "target_fraction_of_peak": PEAK_FRACTION_TARGET if large else None,
                     "meets_target": gflops / peak >= PEAK_FRACTION_TARGET if large else None})
    return rows


def format_sampler_rows(rows: list[dict]) -> str:
    lines = [f"{'sampler benchmark':<62} {'chain-steps/s':>14} {'GFLOP/s':>9} {'of peak':>8}  target"]
    for row in rows:
        rate = row.get("chain_steps_per_second")
        gflops, fraction = row.get("gflops"), row.get("fraction_of_peak")
        target = ""
        if row.get("target_chain_steps_per_second"):
            target = f"≥ {row['target_chain_steps_per_second']:,}/s " + ("ok" if row["meets_target"] else "MISSED")
        elif row.get("target_fraction_of_peak"):
            target = f"≥ {row['target_fraction_of_peak']:.0%} " + ("ok" if row["meets_target"] else "MISSED")
        lines.append(f"{row['name']:<62} {'' if rate is None else f'{rate:,.0f}':>14} "
                     f"{'' if gflops is None else f'{gflops:.1f}':>9} "
                     f"{'' if fraction is None else f'{fraction:.0%}':>8}  {target}")
    return "\n".join(lines)
