"""One burn-in for groups of SGLD chains sampled in one run, each group from its own w* (the
checkpoints of a training run, or restrictions): the longest that any one group's start lag needs
(:func:`~sltlab.estimators.start_spread.burn_in_at_center`), since the run burns all of its chains
in together. A single estimate takes its own (:func:`~sltlab.estimators.estimate.estimate_llc_from_loss`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.posterior import LocalPosterior
from sltlab.estimators.sampling import Batches
from sltlab.estimators.start_spread import burn_in_at_center


def longest_burn_in(posteriors: Sequence[LocalPosterior], step_sizes: Sequence[float], batches: Batches,
                    resolved: LLCConfig, what: str) -> tuple[LLCConfig, str | None]:
    """``resolved`` with the longest burn-in any group's lag needs, and its note naming the group
    (``what`` and its index) where it lengthened the burn-in; ``resolved`` and no note where none
    did or for a sampler other than SGLD. For runs whose burn-in was not given."""
    if resolved.sampler != "sgld":
        return resolved, None
    lags = [burn_in_at_center(posterior, batches, resolved, step)[:2]
            for posterior, step in zip(posteriors, step_sizes)]
    longest = max(range(len(lags)), key=lambda index: lags[index][0])
    burnin, note = lags[longest]
    if burnin <= resolved.burnin:
        return resolved, None
    if len(lags) > 1:
        note = f"{what} {longest}'s {note}; the {what}s sampled together share the longest burn-in any one needs"
    return replace(resolved, burnin=burnin), note
