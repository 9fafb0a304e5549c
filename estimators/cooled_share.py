"""Which chains a cooled warm-up cools, and what is said of it: a share of them cools from
nβ/anneal (:func:`sltlab.estimators.adapt.mala_warm_up`), the rest start at w*, so that R-hat
over both sides sees a start not yet forgotten (the overdispersed starts of Gelman & Rubin 1992,
§2); a cooling asked for that no warm-up runs is said to be not applied. The cooled side comes
from outside only as far as its warm-up carries it: on [9,6,12,9,3,1] rank 1 at γ = 1 it ran at
‖w − w*‖ 7.5–9.3 and the side from w* at 5.8–7.7, against blocked Gibbs's 15.8, so there both
sides lag from inside and agree (README, on chains started across the localised posterior)."""

from __future__ import annotations

import numbers
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from sltlab.estimators.config import LLCConfig


def without_idle_cooling(defaults: LLCConfig, sampler: str, anneal) -> LLCConfig:
    """``defaults`` with no cooling (``anneal = 1``, ``cooled_share = 1``) where none would run: for
    any sampler but MALA (only MALA's warm-up cools), or at ``anneal`` ≤ 1; otherwise as they
    are. Defaults that cool half the chains would else state a share the run never applies. An
    ``anneal`` that is no number is left to the settings' own check."""
    numeric = isinstance(anneal, numbers.Real) and not isinstance(anneal, bool)
    if sampler != "mala" or (numeric and anneal <= 1):
        return replace(defaults, anneal=1.0, cooled_share=1.0)
    return defaults


def cooling_not_applied(config: LLCConfig, warmed_up: bool) -> tuple[str | None, LLCConfig]:
    """Where ``config`` asks for a cooling (``anneal`` > 1) that no MALA warm-up ran to apply (another
    sampler, or a step given), the note that says so (naming a share of cooled chains asked for) and
    the settings as used (``anneal = 1``, ``cooled_share = 1``); where ``anneal = 1`` no chain
    cools, so a share below 1 is not applied either, and a note says so; otherwise no note and the
    settings as they are."""
    if config.anneal <= 1:   # nothing cools, so no share of the chains does: the settings say so
        note = None if config.cooled_share >= 1 else (
            f"cooled_share = {config.cooled_share:g} was not applied: at anneal = {config.anneal:g} no chain cools, "
            "so every chain starts at w* at nβ (give anneal > 1 with MALA to cool a share of them)")
        return note, replace(config, cooled_share=1.0)
    if config.sampler == "mala" and warmed_up:
        return None, config
    share = f" and cooled_share = {config.cooled_share:g} were" if config.cooled_share < 1 else " was"
    return (f"anneal = {config.anneal:g}{share} not applied (only MALA's warm-up cools, and it runs only when the "
            "step size is chosen automatically)", replace(config, anneal=1.0, cooled_share=1.0))


def cooled_chains(count: int, chains: int, share: float, device) -> Tensor | None:
    """Which of ``count`` chains (groups of ``chains``) cool in an annealed warm-up: the first
    ``share`` of each group, at least one, as a mask [count]; None when all do. Chains cooled from
    above and chains from w* come to the typical set from opposite sides, so R-hat over both sees
    a start not yet forgotten (the overdispersed starts of Gelman & Rubin 1992, §2)."""
    cooled = cooled_count(chains, share)
    return None if cooled == chains else (torch.arange(count, device=device) % chains) < cooled


def cooled_count(chains: int, share: float) -> int:
    """How many of a group's ``chains`` cool: the ``share`` of them, rounded, at least one."""
    return chains if share >= 1 else max(1, round(share * chains))


def sides_of_the_start(anneal: float, per_chain: list[float | None], cooled: np.ndarray | None) -> str:
    """Where a warm-up cooled only some chains from nβ/``anneal`` (``cooled``, the trace's mask:
    None where none or all did), λ̂ of those that came from above and of those from w*, as a
    sentence for the mixing warning; "" otherwise."""
    if cooled is None or len(per_chain) != len(cooled):
        return ""
    sides = [[value for value, here in zip(per_chain, cooled) if here == side and value is not None]
             for side in (True, False)]
    if not all(sides):
        return ""
    above, below = (sum(side) / len(side) for side in sides)
    count, started = int(cooled.sum()), int((~cooled).sum())
    return (f". The {'chain' if count == 1 else f'{count} chains'} cooled from nβ/{anneal:g} read λ̂ = {above:.4g} "
            f"and the {'one' if started == 1 else started} started at w* {below:.4g}")
