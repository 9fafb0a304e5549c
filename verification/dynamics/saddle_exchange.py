"""The LLC at a plateau of a deep network by replica exchange, where MALA's chains do not mix.

Near a low-rank plateau of a deep linear network the local posterior
exp{−nβ·L_n(w) − (γ/2)‖w − w*‖²} is held by the end-to-end product alone, which vanishes
when any one layer is small in the directions the others pass on. Its mass lies in branches
(one layer or another carrying the smallness) joined only through narrow necks, more of them
the deeper the network, and local moves cross them rarely. With four hidden layers, MALA's 16
chains read the rank-0 plateau of [10,6,6,6,6,10] 7.1 % under its finite-n truth (R-hat 1.07)
and ranks 0–1 of [8,6,6,6,6,8] 1–9 % under (R-hat up to 1.15), cooled or not, at either burn-in
tried.

Here 16 independent ladders of six rungs, nβ/10 … nβ spaced geometrically, run HMC within each
rung and exchange states between neighbouring rungs (replica exchange: Swendsen & Wang 1986;
Geyer 1991; :func:`sltlab.estimators.exchange.run_replica_exchange`); at the hotter rungs the
necks are wide, and exchanges carry states between branches down to nβ. Every kernel is exact
after the warm-up, so the top rung samples the same local posterior as MALA. λ̂ is read there,
nβ·(L_n(w) − L_n(w*)) over each ladder's top-rung draws, one ladder one chain of the
diagnostics (:func:`sltlab.estimators.llc.llc_from_gaps`). On [10,6,6,6,6,10] (one thread,
1,000 warm-up and 4,000 recorded steps, 120–140 s per plateau) it read ranks 0, 1 and 2 at
11.58 ± 0.12, 17.34 ± 0.14 and 22.99 ± 0.14 against truths of 11.38, 17.29 and 22.87, R-hat
≤ 1.009, with 29 %, 19 % and 13 % of exchanges accepted and 326–1,209 round trips. A network
this small costs by the step, not by the chain, so a run's plateaus are sampled as one batch,
each with its own ladders and steps: the five of [10,6,6,6,6,10] took 333 s together, against
543 s one after another.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
import torch

from sltlab.estimators.exchange import ExchangeTrace, run_replica_exchange
from sltlab.estimators.llc import llc_from_gaps
from sltlab.estimators.gate import mixing_concern
from sltlab.estimators.notices import MixingWarning
from sltlab.models.deep_linear_losses import FullDataLoss, StackedFullDataLoss

# The ladder: rungs from nβ/span to nβ, ladders side by side, leapfrog steps per HMC move, and
# the steps of warm-up (each rung's step tuned to acceptance 0.8) and of recording.
EXCHANGE_LADDER = dict(rungs=6, span=10.0, ladders=16, leapfrog_steps=8, warmup=1000, draws=3000)
EXCHANGE_FROM_LAYERS = 5   # plateaus of networks with this many weight layers or more use it


def exchange_llcs(losses: Sequence[FullDataLoss], positions: Sequence[torch.Tensor], nbeta: float,
                  localization: float, *, seed: int = 0, progress: bool = False, rungs: int = EXCHANGE_LADDER["rungs"],
                  span: float = EXCHANGE_LADDER["span"], ladders: int = EXCHANGE_LADDER["ladders"],
                  leapfrog_steps: int = EXCHANGE_LADDER["leapfrog_steps"],
                  warmup: int = EXCHANGE_LADDER["warmup"],
                  draws: int = EXCHANGE_LADDER["draws"]) -> list[dict[str, Any]]:
    """λ̂ at each of ``positions`` [d] against its own loss (module docstring), as the plateau
    rows summarise MALA's estimate, with the ladder's nβ, step sizes, acceptances and round trips
    beside it. The plateaus run as one batch (:class:`StackedFullDataLoss`), each with its own
    ladders and its own step per rung: small networks cost by the step, not by the chain."""
    if rungs < 2 or not span > 1:
        raise ValueError(f"need at least two rungs and a span above 1, got {rungs} and {span}")
    if not positions or len(losses) != len(positions):
        raise ValueError(f"need one loss per position, got {len(losses)} and {len(positions)}")
    nbetas = [nbeta * span ** (-(rungs - 1 - rung) / (rungs - 1)) for rung in range(rungs)]
    count, centers = len(positions), torch.stack(list(positions))
    start = centers.repeat_interleave(ladders, 0).expand(rungs, -1, -1).clone()          # [R, G·M, d]
    chain = torch.arange(rungs * count * ladders)
    stacked = StackedFullDataLoss(losses, chain % (count * ladders) // ladders)
    trace = run_replica_exchange(stacked, nbetas, start, localization=localization,
                                 center=start.reshape(-1, start.shape[-1]), leapfrog_steps=leapfrog_steps,
                                 warmup=warmup, draws=draws, record=lambda _: {}, groups=count,
                                 generator=torch.Generator().manual_seed(seed), progress=progress)
    rule = (f"replica exchange: {ladders} ladders of {rungs} rungs from nβ/{span:g} to nβ, HMC of {leapfrog_steps} "
            f"leapfrog steps within each, every rung's step tuned to acceptance 0.8 in {warmup} warm-up steps; λ̂ "
            f"from the top rung's {draws} draws per ladder; {count} plateau{'s' if count > 1 else ''} in one run")
    return [_summary(trace, group, ladders, nbeta, float(loss(position.unsqueeze(0), None)[0]), rule)
            for group, (loss, position) in enumerate(zip(losses, positions))]


def _summary(trace: ExchangeTrace, group: int, ladders: int, nbeta: float, center_loss: float,
             rule: str) -> dict[str, Any]:
    """One plateau's λ̂ from its ladders' top-rung draws, with the mixing gate's warning."""
    rows = slice(group * ladders, (group + 1) * ladders)
    gaps = nbeta * (trace.records["loss"][-1, rows] - center_loss)   # [ladders, draws] at the top rung
    broken = {int(ladder): "not finite" for ladder in np.flatnonzero(~np.isfinite(gaps).all(axis=1))}
    estimate = llc_from_gaps(np.where(np.isfinite(gaps), gaps, 0.0), nbeta, broken)
    concern = mixing_concern(estimate, "run more recorded steps or ladders")
    if concern:   # the same gate, and the same warning, as MALA's estimate in the other rows
        warnings.warn(f"replica exchange: {concern}", MixingWarning, stacklevel=3)
    return {"llc_mean": estimate.mean, "llc_se": estimate.standard_error, "rhat": estimate.rhat,
            "ess": estimate.ess, "diverged_chains": estimate.diverged_chains,
            "step_size": float(trace.step_size[-1, group]), "step_size_rule": rule,
            "sampling_seconds": trace.seconds / trace.step_size.shape[1],
            "exchange": {"nbetas": trace.nbetas.tolist(), "step_sizes": trace.step_size[:, group].tolist(),
                         "move_acceptance": trace.move_acceptance[:, group].tolist(),
                         "swap_acceptance": trace.swap_acceptance[:, group].tolist(),
                         "round_trips": trace.round_trips[rows].tolist()}}
