"""Whether a run's precision resolved the gaps nβ·(L_n(w) − L_n(w*)) that λ̂ averages, measured
after the run by evaluating the loss again in float64, where the sum over the rows adds no
rounding of its own, on the rows the draws were compared on: all of them for a full-data run (a
subsample's own gradient at w* would add a change the draws never saw), else at most
``SPREAD_ROWS`` drawn with the run's seed. :func:`~sltlab.estimators.llc.rounding_concern` says
beforehand what the spacing of the numbers at L_n(w*) allows; these say what the loss's own
evaluation did, which can be far coarser: a loss whose terms cancel ([3,2,3] learning a singular
value of 10⁴ from sufficient statistics, terms of 10⁸ summing to a few units) is held by float32
only to several units."""

from __future__ import annotations

import math

import torch

from sltlab.estimators.llc import ROUNDING_SHARE_MAX
from sltlab.estimators.posterior import LocalPosterior, mean_loss
from sltlab.estimators.sampling import Batches, Trace
from sltlab.estimators.start_spread import SPREAD_ROWS
from sltlab.estimators.streamed import on_device

FLAT_SCALES = (10.0, 100.0, 1000.0)   # how far beyond the chains' reach a flat loss is looked at


def rounded_gaps(posterior: LocalPosterior, batches: Batches, trace: Trace, mean: float | None, dtype: str,
                 seed: int) -> str | None:
    """For a float32 run: each chain's last gap nβ·(L_n(w) − L_n(w*)) as the run's dtype evaluates
    it, against float64's at the same points; a sentence where they differ by more than
    ``ROUNDING_SHARE_MAX`` of max(|λ̂|, 1). On [3,2,3] above, MALA read λ̂ = 0 (no draw's loss
    differing from L_n(w*) in float32) or −289 ± 161 (one chain a spacing of 4 below it), against 2.7
    in float64; the gaps at the chains' ends were off by 3 and 579. Every chain of the run is
    evaluated, the centre beside each. Problems sampled together under a stacked loss are checked
    each with its own (:func:`~sltlab.estimators.batched.estimate_llc_in_groups`); a loss that still
    cannot score these chains alone (one of a fixed number of chains) skips the check."""
    if dtype != "float32" or trace.final_state is None or trace.diverged.all():
        return None
    rows = _rows(posterior, batches, seed)
    ended = trace.final_state.position
    gaps = []
    with torch.no_grad():
        for precision in (ended.dtype, torch.float64):
            these = rows if rows is None else on_device(rows, ended.device, precision)
            try:
                center = posterior.center.to(precision).expand_as(ended)
                gaps.append(posterior.nbeta * (mean_loss(posterior.loss, ended.to(precision), these) -
                                               mean_loss(posterior.loss, center, these)).double())
            except (ValueError, RuntimeError):   # a stacked loss, or centres, of more chains than this group's
                return None
    kept = torch.as_tensor(~trace.diverged, device=ended.device)
    off = (gaps[0] - gaps[1])[kept]
    off = off[torch.isfinite(off)]
    scale = max(abs(mean or 0.0), 1.0)
    worst = float(off.abs().max()) if len(off) else 0.0
    if worst <= ROUNDING_SHARE_MAX * scale:
        return None
    return (f"evaluated again in float64 at the chains' last positions, the gaps nβ·(L_n(w) − L_n(w*)) that λ̂ "
            f"averages differ from {dtype}'s by up to {worst:.3g} ({worst / scale:.1%} of max(|λ̂|, 1)): {dtype} does "
            "not resolve the loss's changes there (its terms may be far larger than their sum, and cancel), so the "
            "gaps λ̂ averages carry rounding errors of up to that size: dtype='float64' (--dtype float64) resolves it")


STEP_ROUNDING_SHARE_MAX = 0.01   # rounding variance per SGLD step, as a share of the step's own noise variance


def rounded_steps(center: torch.Tensor, step_size: float | None, sampler: str, dtype: str,
                  moving: torch.Tensor | None = None) -> str | None:
    """For SGLD in float32: a sentence where rounding a position near w* to the dtype's spacing
    adds a variance of about spacing²/12 per step (uniform rounding error, the noise dithering it)
    that exceeds ``STEP_ROUNDING_SHARE_MAX`` of the step's own noise variance ε: the chains then
    sample a posterior wider by about that share, and λ̂ reads about that much high. At w* = (10⁴,
    10⁴) on ½‖w − w*‖² with n = 10⁶ (spacing 9.8·10⁻⁴, ε = 1.4·10⁻⁶: 5.8 %) λ̂ read 1.17 ± 0.05
    against 1.09 at w* = 0, once each step's move was added to the position at once (before, its
    drift rounded away and λ̂ read 3.2). Only the coordinates the chains move (``moving``, nonzero
    where they do; all when None) are looked at: a frozen weight of 10⁶ beside a restriction's had
    been said to inflate λ̂ 325 %."""
    if sampler != "sgld" or dtype != "float32" or step_size is None:
        return None
    moved = center if moving is None else center[moving.to(center.device) != 0]
    if not moved.numel():
        return None
    largest = moved.abs().max().to(torch.float32)
    spacing = float(torch.nextafter(largest, torch.tensor(math.inf)) - largest)
    share = spacing ** 2 / 12 / step_size
    if share <= STEP_ROUNDING_SHARE_MAX:
        return None
    return (f"float32's spacing at the centre's largest coordinate, {float(largest):.3g}, is {spacing:.2g}: "
            f"rounding each step's position there adds a variance of about {share:.1%} of the step's own noise "
            f"(ε = {step_size:.3g}), so the chains sample a posterior about that much wider and λ̂ reads about that "
            "much high: dtype='float64' (--dtype float64) resolves it")


def flat_by_rounding(posterior: LocalPosterior, batches: Batches, trace: Trace, dtype: str, seed: int) -> str | None:
    """Where no draw's loss differed from another (λ̂ = 0): a sentence if that is the dtype's
    rounding, not a loss free of the sampled parameters near w*. The chains' displacements from w*,
    scaled by ``FLAT_SCALES``, are evaluated in float64. Where the loss changes there, its change
    is carried back to the chains' own reach by the power at which it grows between the first two
    scales that see it (2 where only one does); rounding is said only where that change lies below
    the spacing of ``dtype``'s numbers at L_n(w*). A loss flat over the chains' reach and rising
    beyond it (a ReLU's dead zone) carries back a change far above that spacing, and is not said
    to be rounding."""
    rows = _rows(posterior, batches, seed)
    ended = trace.final_state.position[torch.as_tensor(~trace.diverged, device=posterior.center.device)]
    center, ended = posterior.center.double(), ended.double()
    rows = rows if rows is None else on_device(rows, center.device, torch.float64)
    with torch.no_grad():
        here = float(mean_loss(posterior.loss, center.unsqueeze(0), rows)[0])
        changes = []
        for scale in FLAT_SCALES:
            there = mean_loss(posterior.loss, center + scale * (ended - center), rows).double()
            finite = there[torch.isfinite(there)]
            change = float((finite - here).abs().max()) if len(finite) else 0.0
            changes += [(scale, change)] if change > 0 else []
    if not changes:
        return None
    (scale, change), further = changes[0], changes[1:2]
    power = min(max(math.log(further[0][1] / change) / math.log(further[0][0] / scale), 1.0), 8.0) if further else 2.0
    at_reach, spacing = change / scale ** power, torch.finfo(getattr(torch, dtype)).eps * abs(here)
    if not at_reach < spacing:
        return None
    remedy = "dtype='float64' (--dtype float64) or a smaller nβ" if dtype == "float32" else "a smaller nβ"
    return (f"λ̂ = 0 because no draw's loss differed from L_n(w*) = {here:.4g} in {dtype}, yet the loss depends on the "
            f"sampled parameters: {scale:g} times the chains' displacement from w* changes it by {change:.2g}, which "
            f"at their own reach (the change growing as the displacement to the power {power:.2g}) is {at_reach:.2g}, "
            f"below the {spacing:.2g} that {dtype} resolves there; λ̂ = 0 is that rounding, not the LLC: {remedy} "
            "resolves it")


def _rows(posterior: LocalPosterior, batches: Batches, seed: int):
    """The rows the checks evaluate (module docstring)."""
    if batches.is_full:
        return batches.full()
    return batches.subsample(SPREAD_ROWS, torch.Generator(posterior.center.device).manual_seed(seed))
