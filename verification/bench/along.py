"""λ̂ at K checkpoints of the grokking network, batched against one after the other:
``sltlab bench --only along``.

The network and data are the grokking study's (:mod:`sltlab.verification.dynamics.grokking`:
p = 53, embedding 32, hidden 64, the 40 % training pairs), trained for ``10·(K − 1)`` AdamW steps
with a checkpoint every 10; its second sampler setting (SGLD at step 10⁻³, γ = 100, batches of
128, centred at each checkpoint) with ``chains`` chains and ``draws`` draws after a quarter as
many burn-in steps (longer where SGLD's start lag asks, batched for the longest any checkpoint needs; the row
gives the steps each way took). Each repeat times the whole estimate both ways — every checkpoint's C
chains in one run (:func:`~sltlab.estimators.batched.estimate_llc_at_centers`) and
:func:`~sltlab.estimators.estimate.estimate_llc_from_loss` per checkpoint — and the speed-up is
the ratio of the medians. Every run has its own seed, so the two estimates of a checkpoint (and
those of different checkpoints) are independent: their difference has standard deviation
√(SE₁² + SE₂²), and the row counts the checkpoints where it is within 2 and within 3 of those,
and gives the mean of the signed differences in those units, which an offset between the two
ways would move away from zero by more than about 1/√K. The row also says what bounds the
speed-up: the batched sampling's GFLOP/s against this machine's measured float32 matmul peak
(the FLOPs of one chain-step counted by torch's FlopCounterMode on the network's loss and
gradient at one checkpoint), and the speed-up left were that sampling to run at the peak with
the rest of the batched run as measured.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from dataclasses import replace

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from sltlab.estimators.batched import estimate_llc_at_centers
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.functional import FunctionalModel
from sltlab.estimators.sample_losses import cross_entropy
from sltlab.estimators.notices import EstimateWarning
from sltlab.verification.bench.sampling import matmul_peak_gflops
from sltlab.verification.dynamics.grokking import SENSITIVITY_SETTINGS, GrokkingSetup, train_seed

TARGET_SPEED_UP = 5.0   # the issue's, at 50 checkpoints


def along_row(repeats: int, checkpoints: int = 50, chains: int = 4, draws: int = 200) -> dict:
    """Medians over ``repeats`` of the wall time of the LLC at ``checkpoints`` checkpoints both
    ways, µs per chain-step of the sampling, and how far the two curves are apart in SE."""
    if checkpoints < 2:
        raise ValueError(f"need at least 2 checkpoints, got {checkpoints}")
    if chains < 2 or draws < 4:
        raise ValueError(f"need at least 2 chains and 4 draws, got {chains} and {draws}")
    every = 10
    setup = GrokkingSetup(steps=every * (checkpoints - 1), early_every=every, early_until=0, checkpoint_every=every,
                          seeds=(0,))
    run, network, split = train_seed(setup, 0)
    centers = list(run.positions)
    model, data = FunctionalModel(network, cross_entropy), (split.train_pairs, split.train_labels)
    config = replace(SENSITIVITY_SETTINGS[1].config, chains=chains, draws=draws)
    timings = {"batched": [], "sequential": []}
    with warnings.catch_warnings():   # short runs fail the mixing gate; the row compares them in SE
        warnings.simplefilter("ignore", EstimateWarning)
        together, apart = _timed_repeats(repeats, model, centers, data, config, timings)
    chain_steps = checkpoints * chains * together[0].trace.steps
    medians = {way: statistics.median(total for total, _ in rows) for way, rows in timings.items()}
    sampling = {way: statistics.median(seconds for _, seconds in rows) for way, rows in timings.items()}
    sequential_chain_steps = chains * sum(r.trace.steps for r in apart)   # each checkpoint its own burn-in
    per_step = flops_per_chain_step(network, split.train_pairs, split.train_labels, config.batch_size)
    peak = matmul_peak_gflops(device=together[0].config.device)   # where the chains ran
    at_peak = medians["batched"] - sampling["batched"] + chain_steps * per_step / (peak * 1e9)
    return {"name": f"LLC at {checkpoints} grokking checkpoints (d = {centers[0].numel():,}), {chains} chains × "
                    f"{draws} draws, sgld, batches of {config.batch_size}",
            "checkpoints": checkpoints, "chains": chains, "draws": draws, "steps": together[0].trace.steps,
            "sequential_steps": [min(r.trace.steps for r in apart), max(r.trace.steps for r in apart)],
            "dim": centers[0].numel(), "repeats": repeats,
            "batched_seconds": medians["batched"], "sequential_seconds": medians["sequential"],
            "speed_up": medians["sequential"] / medians["batched"],
            "batched_microseconds_per_chain_step": 1e6 * sampling["batched"] / chain_steps,
            "sequential_microseconds_per_chain_step": 1e6 * sampling["sequential"] / sequential_chain_steps,
            "flops_per_chain_step": per_step, "matmul_peak_gflops": peak,
            "batched_sampling_gflops": chain_steps * per_step / sampling["batched"] / 1e9,
            "sequential_sampling_gflops": sequential_chain_steps * per_step / sampling["sequential"] / 1e9,
            "speed_up_with_sampling_at_peak": medians["sequential"] / at_peak,
            **agreement_in_se(together, apart), "target_speed_up": TARGET_SPEED_UP,
            "meets_target": None if checkpoints < 50 else medians["sequential"] / medians["batched"] >= TARGET_SPEED_UP}


def flops_per_chain_step(network: torch.nn.Module, pairs, labels, batch_size: int) -> float:
    """The floating-point operations of one chain's minibatch loss and gradient, as torch's
    FlopCounterMode counts them (matrix products; the embedding's lookup and the elementwise work
    are not counted, so the GFLOP/s read from it are a lower bound)."""
    with FlopCounterMode(display=False) as counter:
        loss = torch.nn.functional.cross_entropy(network(pairs[:batch_size]), labels[:batch_size], reduction="sum")
        torch.autograd.grad(loss, list(network.parameters()))
    return float(counter.get_total_flops())


def agreement_in_se(together, apart) -> dict:
    """How far apart two lists of independent estimates of the same quantities are, each pair in
    units of √(SE₁² + SE₂²): counts within 2 and 3, the largest and the mean signed distance."""
    signed = [(a.estimate.mean - b.estimate.mean) / math.hypot(a.estimate.standard_error, b.estimate.standard_error)
              for a, b in zip(together, apart)
              if None not in (a.estimate.mean, b.estimate.mean, a.estimate.standard_error, b.estimate.standard_error)]
    distances = [abs(z) for z in signed]
    return {"compared": len(distances), "within_2_se": sum(x <= 2 for x in distances),
            "within_3_se": sum(x <= 3 for x in distances), "largest_se_distance": max(distances, default=None),
            "mean_signed_se_distance": statistics.fmean(signed) if signed else None}


def agreement_text(row: dict, what: str) -> str:
    """:func:`agreement_in_se` in words."""
    return (f"λ̂ of the two within 2 SE at {row['within_2_se']} and within 3 SE at {row['within_3_se']} of "
            f"{row['compared']} {what} (largest {row['largest_se_distance']:.2f} SE; mean signed difference "
            f"{row['mean_signed_se_distance']:+.2f} SE, about ±{1 / math.sqrt(max(row['compared'], 1)):.2f} without "
            "an offset)")


def _timed_repeats(repeats: int, model, centers, data, config, timings: dict):
    """Both ways ``repeats`` times, appending (wall seconds, sampling seconds) to ``timings``;
    the last repeat's results. Every run has its own seed, each checkpoint of the sequential way
    too: with one seed for all, neighbouring checkpoints would share their noise and their
    errors, and the mean signed difference would not fall like 1/√K."""
    for repeat in range(repeats):
        clock = time.perf_counter()
        together = estimate_llc_at_centers(model, centers, data, replace(config, seed=independent_seed(repeat, 0)))
        timings["batched"].append((time.perf_counter() - clock, sum(r.trace.seconds for r in together)))
        clock = time.perf_counter()
        apart = [estimate_llc_from_loss(model, center, data, replace(config, seed=independent_seed(repeat, 1 + index)),
                                        compare_with_minimum=False) for index, center in enumerate(centers)]
        timings["sequential"].append((time.perf_counter() - clock, sum(r.trace.seconds for r in apart)))
    return together, apart


def independent_seed(repeat: int, run: int) -> int:
    """A seed for run ``run`` of repeat ``repeat``, independent of the others (NumPy's SeedSequence)."""
    return int(np.random.SeedSequence([repeat, run]).generate_state(1)[0])


def format_along(row: dict) -> str:
    verdict = (f"target ≥ {row['target_speed_up']:g}× at 50 checkpoints: " +
               ("ok" if row["meets_target"] else "MISSED" if row["checkpoints"] >= 50 else "not measured at 50"))
    return "\n".join([
        row["name"],
        f"  one after the other {row['sequential_seconds']:8.2f} s   "
        f"({row['sequential_microseconds_per_chain_step']:,.0f} µs per chain-step sampling)",
        f"  batched             {row['batched_seconds']:8.2f} s   "
        f"({row['batched_microseconds_per_chain_step']:,.0f} µs per chain-step sampling)",
        f"  speed-up {row['speed_up']:.2f}× (medians of {row['repeats']}); {verdict}",
        f"  sampling at {row['batched_sampling_gflops']:.1f} GFLOP/s batched and "
        f"{row['sequential_sampling_gflops']:.1f} one after the other "
        f"({row['flops_per_chain_step'] / 1e6:.2f} MFLOP per chain-step), against a matmul peak of "
        f"{row['matmul_peak_gflops']:.1f}: batched sampling at that peak would leave a speed-up of "
        f"{row['speed_up_with_sampling_at_peak']:.2f}× with the rest of its run as measured",
        "  " + agreement_text(row, "checkpoints"),
        f"  steps per chain: {row['steps']:,} batched (the longest burn-in any checkpoint's lag needs), "
        + ("{:,}".format(row["sequential_steps"][0]) if row["sequential_steps"][0] == row["sequential_steps"][1] else
           "{:,}–{:,}".format(*row["sequential_steps"])) + " one after the other"])
