"""Which chains a cooled warm-up cools, and what is said of it: a share of them cools from
nβ/anneal (:func:`sltlab.estimators.adapt.mala_warm_up`), the rest start at w*, so that R-hat
over both sides sees a start not yet forgotten (the overdispersed starts of Gelman & Rubin 1992,
§2); a cooling asked for that no warm-up runs is said to be not applied."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from sltlab.estimators.config import LLCConfig


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


def sides_of_the_start(config: LLCConfig, per_chain: list[float | None]) -> str:
    """When only some chains cooled (:func:`cooled_chains`), λ̂ of those that came from above and
    of those from w*, as a sentence for the mixing warning; "" otherwise."""
    cooled = cooled_count(config.chains, config.cooled_share)
    if config.anneal <= 1 or cooled == config.chains or len(per_chain) != config.chains:
        return ""
    sides = [[value for value in side if value is not None] for side in (per_chain[:cooled], per_chain[cooled:])]
    if not all(sides):
        return ""
    above, below = (sum(side) / len(side) for side in sides)
    cooled_ones = "chain" if cooled == 1 else f"{cooled} chains"
    started = config.chains - cooled
    return (f". The {cooled_ones} cooled from nβ/{config.anneal:g} read λ̂ = {above:.4g} and the "
            f"{'one' if started == 1 else started} started at w* {below:.4g}")
