"""Coordinate-wise slice sampling (Neal 2003, Ann. Statist. 31, §4: stepping out, Fig. 3, and
shrinkage, Fig. 5) on the full-batch potential U = nβ·L + (γ/2)‖w − w*‖².

Exact, gradient-free, and it finds the local scale of every conditional by itself: along the
arms of a cross-shaped singular posterior (K = w1²w2², |u1|·|u2|, …) the conditional of one
coordinate is wide where that of the other is narrow, and the slice adapts to both, where a
Langevin step set by the narrowest width crawls along the arm — and where U has a kink, as at
a normal crossing sampled in the coordinates in which its prior is flat, gradients say little.
Each step updates every coordinate once, in order; it costs a few full-batch evaluations of U
per coordinate, so it is meant for the few-variable potentials of the verification suites.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

import torch
from torch import Tensor

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.posterior import LocalPosterior, Sampler, check_step_size, mean_loss
from sltlab.estimators.sampling import Batches

MAX_EXPANSIONS = 60   # per side and per coordinate; shrinkage halves the bracket about as often
STALLED_MAX = 0.01   # of a chain's coordinate updates whose shrinkage may give up (by chance: about 2⁻⁶⁰ each)


class SliceState(NamedTuple):
    position: Tensor
    energy: Tensor   # U at position, [C]
    loss: Tensor     # L at position, [C]


def slice_sampler(posterior: LocalPosterior, *, width: float) -> Sampler:
    """Slice sampling with initial bracket ``width`` in every coordinate (``step_size`` in a
    config). Pass the full data as the batch at every step."""
    width = check_step_size(width)

    def evaluate(position: Tensor, batch) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            loss = mean_loss(posterior.loss, position, batch)
            distance = torch.linalg.vector_norm(position - posterior.center, dim=-1)
            return posterior.nbeta * loss + 0.5 * posterior.localization * distance.square(), loss

    def init(position: Tensor, batch) -> SliceState:
        return SliceState(position, *evaluate(position, batch))

    def noise(state: SliceState, generator: torch.Generator):
        shape = state.position.shape
        options = dict(generator=generator, dtype=state.position.dtype, device=state.position.device)
        levels = -torch.rand(shape, **options).log()            # Exp(1): the slice's height
        offsets = torch.rand(shape, **options)                  # where the bracket starts
        shrinks = torch.rand((*shape, MAX_EXPANSIONS), **options)
        return levels, offsets, shrinks

    def step(state: SliceState, batch, noise):
        levels, offsets, shrinks = noise
        position, energy, loss = state
        stalled = torch.zeros_like(energy)
        for coordinate in range(position.shape[-1]):
            position, energy, loss, held = _update(position, energy, loss, coordinate, batch, levels[:, coordinate],
                                                   offsets[:, coordinate], shrinks[:, coordinate], width, evaluate)
            stalled += held
        return SliceState(position, energy, loss), {"loss": state.loss, "stalled": stalled / position.shape[-1]}

    return Sampler("slice", init, noise, step)


def _update(position, energy, loss, coordinate, batch, level, offset, shrinks, width, evaluate):
    """One coordinate: the slice {x : U(x) ≤ U(w) + level}, bracketed by stepping out from a
    randomly placed interval of ``width``, then sampled by shrinkage; with the new position, U and
    L, which chains found no point of the slice in ``MAX_EXPANSIONS`` shrinks and stayed (1.0, else 0.0)."""
    threshold = energy + level
    here = position[:, coordinate]

    def at(value: Tensor) -> tuple[Tensor, Tensor]:
        moved = position.clone()
        moved[:, coordinate] = value
        return evaluate(moved, batch)

    left, right = here - offset * width, here - offset * width + width
    for side, direction in ((0, -1.0), (1, 1.0)):
        for _ in range(MAX_EXPANSIONS):
            edge = left if side == 0 else right
            inside = at(edge)[0] <= threshold
            if not bool(inside.any()):
                break
            moved = torch.where(inside, edge + direction * width, edge)
            left, right = (moved, right) if side == 0 else (left, moved)
    chosen, chosen_energy, chosen_loss = here.clone(), energy.clone(), loss.clone()
    done = torch.zeros_like(here, dtype=torch.bool)
    for draw in range(MAX_EXPANSIONS):
        candidate = left + shrinks[:, draw] * (right - left)
        candidate_energy, candidate_loss = at(candidate)
        accepted = (candidate_energy <= threshold) & ~done
        chosen = torch.where(accepted, candidate, chosen)
        chosen_energy = torch.where(accepted, candidate_energy, chosen_energy)
        chosen_loss = torch.where(accepted, candidate_loss, chosen_loss)
        done |= accepted
        if bool(done.all()):
            break
        below = candidate < here
        left = torch.where(~done & below, candidate, left)
        right = torch.where(~done & ~below, candidate, right)
    updated = position.clone()
    updated[:, coordinate] = chosen
    return updated, chosen_energy, chosen_loss, (~done).to(energy.dtype)


def stalled_concern(trace, dropped: Sequence[int]) -> str | None:
    """Where the slice sampler's shrinkage gave up on more than ``STALLED_MAX`` of the coordinate
    updates of a chain kept in λ̂ (not among ``dropped``, the estimate's dropped chains):
    the slice was narrower than 2⁻⁶⁰ of its bracket, so those coordinates stayed where they were and
    the chains sampled only the directions they could resolve. At nβ = 10³⁰⁰ on
    K = w1²w2² the chains moved along the axes, where K is exactly 0, and read λ̂ = 0 against λ = 1/2."""
    kept = np.ones(len(trace.diverged), dtype=bool)
    kept[list(dropped)] = False
    if "stalled" not in trace.fields or not kept.any():
        return None
    share = trace.fields["stalled"][kept].mean(-1)
    if not share.max() > STALLED_MAX:
        return None
    return (f"the slice sampler's shrinkage found no point of the slice on up to {share.max():.1%} of a chain's "
            f"coordinate updates (a slice narrower than 2^-{MAX_EXPANSIONS} of its bracket), so those coordinates "
            "stayed where they were: the chains sampled only the directions they could resolve, so λ̂ is not the "
            "LLC (on w1²w2² at nβ = 1e300 it read 0); a smaller nβ, or an initial bracket (step size) near the "
            "posterior's narrowest width, resolves it")


def slice_width(posterior: LocalPosterior, batches: Batches, config: LLCConfig,
                generator: torch.Generator) -> tuple[float, str]:
    """The initial bracket: 2/√γ, the localising prior's scale (the posterior is no wider);
    1 without localisation. Stepping out widens it and shrinkage narrows it where needed."""
    if not batches.is_full:
        raise ValueError("slice sampling compares energies on the full data: leave out the batch size")
    width = 2 / math.sqrt(posterior.localization) if posterior.localization > 0 else 1.0
    return width, f"slice sampling, initial bracket {width:.3g} (2/√γ), stepped out and shrunk per coordinate"
