"""Every layer's restricted LLC as one batched run against the layers one after the other:
``sltlab bench --only restrictions``.

The network is the dln-suite case [10,10,10,10] at rank 2 with n = 10⁴ rows, written as
``nn.Sequential`` of bias-free ``Linear`` layers (a researcher's network, through
:func:`sltlab.estimators.estimate_llc`), restricted to each of its three layers in turn: SGLD on
batches of 100, 8 chains × 2,000 draws, each layer's step from the rule on its own restricted
loss. Each repeat times the whole call both ways (``batched=True``: the three layers' chains in
one run, each confined to its layer by a mask; ``batched=False``: one estimate per layer), each
way with its own seed; the speed-up is the ratio of the medians. The estimates are compared in SE
with each other and set beside the exact restricted λ (r·H_1/2, r²/2 and H_4·r/2 at the balanced
true parameter, :func:`sltlab.theory.restricted_deep_linear_balanced`).
"""

from __future__ import annotations

import statistics
import time
import warnings

from sltlab.estimators import LLCConfig, estimate_llc
from sltlab.estimators.notices import EstimateWarning
from sltlab.theory.restricted import restricted_deep_linear_balanced
from sltlab.verification.bench.along import agreement_in_se, agreement_text, independent_seed
from sltlab.verification.suite.problems import dln_problem

WIDTHS, RANK, ROWS = (10, 10, 10, 10), 2, 10_000
CONFIG = LLCConfig(sampler="sgld", chains=8, draws=2000, batch_size=100, dtype="float64")


def restrictions_row(repeats: int) -> dict:
    """Medians over ``repeats`` of the call's wall time both ways, the last repeat's estimates
    and their agreement in SE."""
    problem = dln_problem(WIDTHS, RANK, n=ROWS, seed=0, per_sample=True)
    module = problem.loss.as_module(problem.true_parameter)
    layers = [f"{layer}.weight" for layer in range(len(WIDTHS) - 1)]
    timings: dict[str, list[float]] = {"batched": [], "sequential": []}
    with warnings.catch_warnings():   # the row compares the two ways in SE; the gate is not its question
        warnings.simplefilter("ignore", EstimateWarning)
        for repeat in range(repeats):
            runs = {}
            for way, batched in (("batched", True), ("sequential", False)):
                clock = time.perf_counter()
                runs[way] = estimate_llc(module, problem.data, config=CONFIG, restrict_to=layers, batched=batched,
                                         seed=independent_seed(repeat, int(batched)))
                timings[way].append(time.perf_counter() - clock)
    medians = {way: statistics.median(seconds) for way, seconds in timings.items()}
    exact = [restricted_deep_linear_balanced(WIDTHS, RANK, layer + 1).lam_float for layer in range(len(layers))]
    return {"name": f"every layer of dln {list(WIDTHS)} rank {RANK} restricted, n = {ROWS:,}, sgld on batches of "
                    f"{CONFIG.batch_size}, {CONFIG.chains} chains × {CONFIG.draws} draws per layer",
            "repeats": repeats, "layers": layers, "exact": exact,
            "batched_seconds": medians["batched"], "sequential_seconds": medians["sequential"],
            "speed_up": medians["sequential"] / medians["batched"],
            "estimates": [[a.mean, a.standard_error, b.mean, b.standard_error]
                          for a, b in zip(runs["batched"], runs["sequential"])],
            **agreement_in_se(runs["batched"], runs["sequential"])}


def format_restrictions(row: dict) -> str:
    layers = "; ".join(f"{name}: {a:.2f} ± {sa:.2f} / {b:.2f} ± {sb:.2f} (exact {exact:g})"
                       for name, (a, sa, b, sb), exact in zip(row["layers"], row["estimates"], row["exact"]))
    return "\n".join([
        row["name"],
        f"  one layer after the other {row['sequential_seconds']:8.2f} s",
        f"  one batched run           {row['batched_seconds']:8.2f} s",
        f"  speed-up {row['speed_up']:.2f}× (medians of {row['repeats']}; no target)",
        f"  λ̂ batched / one after the other: {layers}",
        "  " + agreement_text(row, "layers")])
