"""Sampler benchmarks for ``sltlab bench``: throughput in chain-steps per second, its scaling
with the number of chains, and a ladder of network sizes measured against this machine's own
matmul peak.

FLOPs of one SGLD chain-step on a deep linear network with d weights and batch b, in the order
the network takes (:meth:`~sltlab.models.deep_linear.DeepLinearNetwork.product_first`). Layer by
layer: the forward pass costs 2·b·d, the weight gradients 2·b·d, the input gradients 2·b·(d − d₁)
(none for the first layer, whose input is data), and the paired loss of w* on the same batch one
more forward, 2·b·d: 8·b·d − 2·b·d₁ in all. Product first, with S = Σ_{s≥2} H_s·H_{s−1}·H_0 and
P = H_L·H_0: the partial products 2·S, the rows through P 2·b·P, the gradient with respect to P
2·b·P, its pullback through the layers 4·S, and w*'s loss 2·b·P with its products 2·S shared by
the C chains: 6·S + 6·b·P + 2·S/C.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Sequence

import torch

from sltlab.estimators.posterior import LocalPosterior
from sltlab.estimators.sampling import Batches, run_chains
from sltlab.estimators.sgld import sgld
from sltlab.models.deep_linear import DeepLinearNetwork

THROUGHPUT_TARGET = 30_000      # chain-steps/s on [10,10,10,10], batch 100, 64 chains
PEAK_FRACTION_TARGET = 0.5      # of the measured matmul peak, at d = 10⁶ with batch 100
# (widths, batch): d from 10² to 10⁶; the large end also at batch 1000, where the matmuls
# outweigh the per-step cost of drawing d·C Gaussian numbers and the elementwise update (and
# the rows go through the end-to-end matrix, formed first, which takes fewer FLOPs).
SCALE_LADDER = (([10, 10], 100), ([20, 20, 20, 20], 100), ([50, 50, 50, 50, 50], 100),
                ([160, 160, 160, 160, 160], 100), ([500, 500, 500, 500, 500], 100),
                ([500, 500, 500, 500, 500], 1000))


def matmul_peak_gflops(sizes: Sequence[int] = (512, 1024, 2048, 4096), repeats: int = 5,
                       device: str = "cpu") -> float:
    """This machine's practical peak on ``device``: the best over square float32 matmul sizes of
    the median GFLOP/s over ``repeats`` runs (on a GPU, each timed to its completion)."""
    finish = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    best = 0.0
    for size in sizes:
        a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
        a @ b
        finish()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            finish()
            times.append(time.perf_counter() - start)
        best = max(best, 2 * size**3 / statistics.median(times) / 1e9)
    return best


def sgld_flops_per_chain_step(widths: Sequence[int], batch_size: int, chains: int = 8) -> float:
    """8·b·d − 2·b·d₁ layer by layer, 6·S + 6·b·P + 2·S/C product first (module docstring)."""
    network = DeepLinearNetwork(widths)
    if not network.product_first(batch_size):
        return 8 * batch_size * network.dim - 2 * batch_size * widths[0] * widths[1]
    products = network.product_multiplications
    return 6 * products + 6 * batch_size * widths[-1] * widths[0] + 2 * products / chains


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
    rows.append({"name": "matmul peak (best of 512²…4096², float32)", "gflops": peak})
    for widths, batch in SCALE_LADDER:
        network = DeepLinearNetwork(widths)
        flops = 8 * sgld_flops_per_chain_step(widths, batch, chains=8)
        steps = max(10, min(100, int(2e9 / flops)))
        seconds = sgld_seconds_per_step(widths, 8, batch, steps, repeats)
        gflops = flops / seconds / 1e9
        large = network.dim >= 10**6 and batch == 100
        order = "product first" if network.product_first(batch) else "layer by layer"
        rows.append({"name": f"sgld {widths} (d = {network.dim:,}), batch {batch}, 8 chains, {order}",
                     "chain_steps_per_second": 8 / seconds, "gflops": gflops, "fraction_of_peak": gflops / peak,
                     "target_fraction_of_peak": PEAK_FRACTION_TARGET if large else None,
                     "meets_target": gflops / peak >= PEAK_FRACTION_TARGET if large else None})
    return rows


def format_sampler_rows(rows: list[dict]) -> str:
    lines = [f"{'sampler benchmark':<86} {'chain-steps/s':>14} {'GFLOP/s':>9} {'of peak':>8}  target"]
    for row in rows:
        rate = row.get("chain_steps_per_second")
        gflops, fraction = row.get("gflops"), row.get("fraction_of_peak")
        target = ""
        if row.get("target_chain_steps_per_second"):
            target = f"≥ {row['target_chain_steps_per_second']:,}/s " + ("ok" if row["meets_target"] else "MISSED")
        elif row.get("target_fraction_of_peak"):
            target = f"≥ {row['target_fraction_of_peak']:.0%} " + ("ok" if row["meets_target"] else "MISSED")
        lines.append(f"{row['name']:<86} {'' if rate is None else f'{rate:,.0f}':>14} "
                     f"{'' if gflops is None else f'{gflops:.1f}':>9} "
                     f"{'' if fraction is None else f'{fraction:.0%}':>8}  {target}")
    return "\n".join(lines)
