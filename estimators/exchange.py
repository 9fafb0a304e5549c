"""Replica exchange (parallel tempering) over a ladder of nβ, with HMC within each rung.

Rung r targets p_r(w) ∝ exp{−nβ_r·L(w) − (γ/2)‖w − w₀‖²}; with γ = 1 and w₀ = 0 that is the
Bayesian posterior at sample size nβ_r under a standard Gaussian prior. M independent ladders
run side by side, so the chains are one batch of R·M positions (rung-major: chain r·M + m is
rung r of ladder m). Every ``swap_every`` steps, neighbouring rungs of each ladder propose to
exchange their states, rungs (0, 1), (2, 3), … on even rounds and (1, 2), (3, 4), … on odd
ones (the deterministic even–odd scheme; Okabe et al. 2001, Syed et al. 2022), accepted with
probability min{1, exp[(nβ_{r+1} − nβ_r)(L(w_{r+1}) − L(w_r))]} (Swendsen & Wang 1986; Geyer
1991): the prior is common to the rungs and cancels. Where each rung's loss is that of a data
set of its own, E_r(w) = Σ_{j ≤ n_r} ℓ_j(w), the ratio is exp[E_r(w_r) + E_{r+1}(w_{r+1}) −
E_r(w_{r+1}) − E_{r+1}(w_r)] instead, given by the caller (``swap_log_ratio``). Each rung keeps
its own HMC step size, tuned during warm-up by dual averaging of its chains' mean acceptance
(Hoffman & Gelman 2014, Alg. 5, their constants) and then held fixed, so every kernel after
warm-up is exact. With
``groups`` > 1 the ladders form that many consecutive blocks, each (e.g. a centre of its own,
through a per-chain ``center`` and loss) with its own step per rung: several problems as one run.
"""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from sltlab.estimators.adapt import DualAveraging
from sltlab.estimators.hmc import hmc
from sltlab.estimators.posterior import LocalPosterior, Loss
from sltlab.estimators.sampling import progress_bar

TARGET_ACCEPTANCE = 0.8


class ExchangeTrace(NamedTuple):
    """What a run recorded, by rung: every ``records`` entry and ``replica`` (which of the
    ladder's R states sits at the rung) are [R, M, draws, ...]; step sizes and acceptances
    (means after warm-up) are per rung and group of ladders; ``round_trips`` counts per ladder
    the returns to the lowest rung of states that had reached the highest since they last left it."""

    records: dict[str, np.ndarray]
    replica: np.ndarray
    nbetas: np.ndarray            # [R]
    step_size: np.ndarray         # [R, G], after warm-up
    move_acceptance: np.ndarray   # [R, G]
    swap_acceptance: np.ndarray   # [R − 1, G], between rungs r and r + 1
    round_trips: np.ndarray       # [M]
    steps: int
    seconds: float


def tempered_log_ratio(losses: Tensor, nbetas: Tensor) -> Tensor:
    """log of the acceptance ratio of exchanging the states of rungs r and r + 1 when rung r
    targets exp(−nβ_r·L): (nβ_{r+1} − nβ_r)(L(w_{r+1}) − L(w_r)), [R − 1, M] from ``losses``
    [R, M] (L at each rung's state) and ``nbetas`` [R]."""
    return (nbetas[1:] - nbetas[:-1]).unsqueeze(-1) * (losses[1:] - losses[:-1])


def swap_rungs(log_ratio: Tensor, uniform: Tensor, parity: int) -> tuple[Tensor, Tensor, Tensor]:
    """One round of exchanges between rungs (r, r + 1), r ≡ parity (mod 2), in every ladder.

    Parameters
    ----------
    log_ratio : Tensor
        [R − 1, M] log of each pair's acceptance ratio (:func:`tempered_log_ratio`).
    uniform : Tensor
        [R − 1, M] uniform numbers, one per possible pair.
    parity : int
        0 or 1.

    Returns
    -------
    (permutation [R, M], accepted [R − 1, M], proposed [R − 1]): gathering a [R, M, ...]
    arrangement along rungs by the permutation gives the new one; a pair not proposed this
    round is not accepted.
    """
    rungs, ladders = log_ratio.shape[0] + 1, log_ratio.shape[1]
    proposed = (torch.arange(rungs - 1, device=log_ratio.device) % 2 == parity).unsqueeze(-1)
    accepted = proposed & (torch.log(uniform) < log_ratio)
    permutation = torch.arange(rungs, device=log_ratio.device).unsqueeze(-1).expand(rungs, ladders).clone()
    lower = torch.nonzero(accepted, as_tuple=True)
    permutation[lower[0], lower[1]] = lower[0] + 1
    permutation[lower[0] + 1, lower[1]] = lower[0]
    return permutation, accepted, proposed.squeeze(-1)


def run_replica_exchange(loss: Loss, nbetas: Sequence[float], start: Tensor, *, localization: float = 1.0,
                         center: Tensor | None = None, leapfrog_steps: int = 8, warmup: int, draws: int,
                         thin: int = 1, swap_every: int = 1, record: Callable[[Tensor], dict[str, Tensor]],
                         generator: torch.Generator, groups: int = 1, progress: bool = False,
                         swap_log_ratio: Callable[[Tensor, Tensor], Tensor] | None = None) -> ExchangeTrace:
    """Run M ladders of R rungs from ``start`` [R, M, d]: ``warmup`` steps that tune each rung's
    step size, then ``draws·thin`` steps recording ``record(positions [R·M, d])`` (a dict of
    tensors with the chains first) and L every ``thin`` steps. ``center`` is [d] or one per
    chain, [R·M, d] (rung-major, as the chains); ``groups`` divides the M ladders into blocks of
    M/groups, each tuning its own steps. ``swap_log_ratio(positions [R, M, d], losses [R, M])``
    gives each pair's log acceptance ratio [R − 1, M] where rung r's target is not
    exp(−nβ_r·L) with one L for all rungs (:func:`tempered_log_ratio`, the default): a rung
    whose loss is that of a data set of its own, as ``loss`` then computes it chain by chain."""
    rungs, ladders, dim = start.shape
    ladder = torch.as_tensor(nbetas, dtype=start.dtype, device=start.device)
    if ladder.shape != (rungs,) or not bool((ladder[1:] > ladder[:-1]).all()) or not bool((ladder > 0).all()):
        raise ValueError(f"need {rungs} positive, increasing nβ, one per rung of start")
    if warmup < 10 or draws < 1 or thin < 1 or swap_every < 1:
        raise ValueError("need warmup ≥ 10, draws ≥ 1, thin ≥ 1 and swap_every ≥ 1")
    if groups < 1 or ladders % groups:
        raise ValueError(f"{ladders} ladders do not divide into {groups} equal groups")
    each = ladders // groups

    def per_chain(step: Tensor) -> Tensor:   # [R, G] → [R·M], chain r·M + g·(M/G) + l
        return step.repeat_interleave(each, dim=1).reshape(-1)

    def by_group(values: Tensor, count: int) -> Tensor:   # [count·M] → mean per group [count, G]
        return values.reshape(count, groups, each).double().mean(-1).cpu()

    scale = ladder.repeat_interleave(ladders).unsqueeze(-1)

    def scaled(position: Tensor, batch: Any) -> Tensor:
        return scale * loss(position, batch)

    posterior = LocalPosterior(scaled, 1.0, localization,
                               torch.zeros(dim, dtype=start.dtype, device=start.device) if center is None else center)
    log_step = torch.log(0.1 / ladder.sqrt()).unsqueeze(-1).expand(rungs, groups).clone()
    averaging = DualAveraging(log_step, TARGET_ACCEPTANCE)
    sampler = hmc(posterior, step_size=per_chain(log_step.exp()), leapfrog_steps=leapfrog_steps)
    state = sampler.init(start.reshape(rungs * ladders, dim), None)
    replica = torch.arange(rungs, device=start.device).unsqueeze(-1).expand(rungs, ladders).clone()
    trips = _RoundTrips(rungs, ladders)
    records: dict[str, list[Tensor]] = {}
    placed, moves = [], torch.zeros(rungs, groups, dtype=torch.float64)
    swaps, proposals, swap_rounds = torch.zeros(rungs - 1, groups, dtype=torch.float64), torch.zeros(rungs - 1, 1), 0
    steps = warmup + draws * thin
    bar = progress_bar(steps, "replica exchange", enabled=progress)
    clock = time.perf_counter()
    for index in range(steps):
        state, info = sampler.step(state, None, sampler.noise(state, generator))
        acceptance = by_group(info["acceptance"], rungs)
        if index < warmup:
            sampler = hmc(posterior, step_size=per_chain(averaging.update(acceptance).exp()),
                          leapfrog_steps=leapfrog_steps)
            if index == warmup - 1:
                sampler = hmc(posterior, step_size=per_chain(averaging.averaged_step_size),
                              leapfrog_steps=leapfrog_steps)
        else:
            moves += acceptance
        if (index + 1) % swap_every == 0:
            losses = (state.here.mean_loss / scale.squeeze(-1)).reshape(rungs, ladders)
            uniform = torch.rand(rungs - 1, ladders, generator=generator, dtype=start.dtype, device=start.device)
            log_ratio = (tempered_log_ratio(losses, ladder) if swap_log_ratio is None
                         else swap_log_ratio(state.position.reshape(rungs, ladders, dim), losses))
            permutation, accepted, proposed = swap_rungs(log_ratio, uniform, swap_rounds % 2)
            swap_rounds += 1
            arranged = permutation.unsqueeze(-1).expand(-1, -1, dim)
            positions = state.position.reshape(rungs, ladders, dim).gather(0, arranged)
            replica = replica.gather(0, permutation)
            state = sampler.init(positions.reshape(rungs * ladders, dim), None)
            trips.update(replica)
            if index >= warmup:
                swaps += by_group(accepted.reshape(-1), rungs - 1)
                proposals += proposed.float().cpu().unsqueeze(-1)
        if index >= warmup and (index - warmup) % thin == thin - 1:
            fields = dict(record(state.position), loss=state.here.mean_loss / scale.squeeze(-1))
            for name, value in fields.items():
                records.setdefault(name, []).append(value.detach().reshape(rungs, ladders, *value.shape[1:]).cpu())
            placed.append(replica.cpu())
        if bar is not None and (index + 1) % 20 == 0:
            bar.update(20)
    if bar is not None:
        bar.close()
    return ExchangeTrace({name: torch.stack(values, 2).double().numpy() for name, values in records.items()},
                         torch.stack(placed, 2).numpy(), ladder.cpu().numpy(), averaging.averaged_step_size.numpy(),
                         (moves / (steps - warmup)).numpy(), (swaps / proposals.clamp_min(1)).numpy(),
                         trips.count.cpu().numpy(), steps, time.perf_counter() - clock)


class _RoundTrips:
    """Counts, per ladder, states returning to rung 0 after visiting rung R − 1."""

    def __init__(self, rungs: int, ladders: int):
        self.rungs = rungs
        self.reached_top = torch.zeros(rungs, ladders, dtype=torch.bool)   # by replica label
        self.count = torch.zeros(ladders, dtype=torch.long)

    def update(self, replica: Tensor) -> None:
        bottom, top = replica[0].cpu(), replica[-1].cpu()
        ladders = torch.arange(replica.shape[1])
        self.reached_top[top, ladders] = True
        returned = self.reached_top[bottom, ladders]
        self.count += returned.long()
        self.reached_top[bottom, ladders] = False
