"""Automatic step-size calibration of the stochastic-gradient samplers by a step-size sweep.

The discretisation bias of Langevin samplers is first order in the step: E_ε[λ̂] = λ̂ + a·ε +
O(ε²) (Vollmer, Zygalakis & Teh 2016, JMLR 17, Thm 3.3; Durmus et al. 2016 use the same
expansion for Richardson–Romberg extrapolation), so the estimates at ε and at ε/2 differ by
about the bias at ε/2. The sweep halves the step from a multiple of the sampler's rule step
and chooses ε/2 for the largest ε at which the pair is shown *equivalent*: the one-sided 95 %
interval of the difference, |Δ| + z·SE_Δ with z = 1.645, lies inside ±δ·λ̂ (an equivalence
test, Schuirmann 1987; failing to reject a difference would let short noisy pilots always
agree). Pilots with their own seeds are independent and SE_Δ is the root sum of squares of
their standard errors; a pair whose interval straddles δ is rerun twice as long (at most
``max_lengthening`` times).

For SGLD the two pilots of a pair run coupled, on one Brownian path (:mod:`sltlab.estimators.coupled`),
and SE_Δ is the standard error of their paired difference: on a deep linear network of 300
parameters it read 0.004 where two independent pilots of the same length gave 1.6, so a pair is
decided at once instead of rerun longer. The other samplers' pilots have independent seeds.
Every pilot covers the same diffusion time (steps ∝ 1/ε), so a small step is not mistaken for
a stable one merely because it has not moved yet. No chain may diverge, and the
Metropolis–Hastings acceptance of the sampler's own move at ε (MALA's test, Roberts & Tweedie
1996, of the Langevin move, preconditioned as RMSProp-SGLD preconditions it) must be at least
``min_acceptance``: a guard against collapse only, since 1 − acceptance grows like
√d·(ε·h)^{3/2} (Roberts & Rosenthal 1998). SGNHT's momentum move has no such counterpart here:
its guard is skipped and the calibration says so. MALA and HMC are exact at any step; their step
is their dual-averaging adaptation and no sweep is run. When no pair is shown equivalent,
:class:`CalibrationError` says so with the whole sweep.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from dataclasses import replace
from typing import NamedTuple

import numpy as np
from torch import Tensor

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.result import LLCResult
from sltlab.estimators.localize import Localization
from sltlab.estimators.notices import EstimateWarning
from sltlab.estimators.pilots import COUPLED_SAMPLER, SweepPoint, coupled_pair, pilot_point
from sltlab.estimators.samplers import SAMPLERS

EQUIVALENCE_Z = 1.645          # one-sided 95 %


class Calibration(NamedTuple):
    """The chosen step, the whole sweep and the reason, in words."""

    step_size: float
    rule_step_size: float       # the starting point: the sampler's rule step
    sweep: tuple[SweepPoint, ...]
    reason: str
    nbeta: float
    localization: float
    localize_at: str


CALIBRATED = "calibrated by the step-size sweep"   # the rule of a run at the sweep's step


class CalibrationError(RuntimeError):
    """No step in the sweep was shown stable; carries the sweep for the report."""

    def __init__(self, message: str, sweep: tuple[SweepPoint, ...]):
        super().__init__(message)
        self.sweep = sweep


def calibrate_step_size(loss, true_parameter: Tensor, data: tuple[Tensor, ...], config: LLCConfig, *,
                        n: int | None = None, factors: tuple[float, ...] = (2.0, 1.0, 0.5, 0.25, 0.125),
                        pilot_fraction: float = 0.25, tolerance: float = 0.05, min_acceptance: float = 0.25,
                        max_lengthening: int = 2, localization: Localization | None = None,
                        progress: bool = False) -> Calibration:
    """Sweep ``factors`` × the rule step with pilots of ``pilot_fraction`` of the diffusion time
    of the run ``config`` describes, and choose the step (module docstring). ``factors`` must
    halve at each step; ``tolerance`` is δ, relative to the estimate."""
    if len(factors) < 2 or any(b != a / 2 for a, b in zip(factors, factors[1:])):
        raise ValueError("calibration factors must halve at each step, e.g. (2, 1, 0.5, 0.25)")
    if not 0 < pilot_fraction <= 1 or not tolerance > 0:
        raise ValueError(f"need a pilot fraction in (0, 1] and δ > 0, got {pilot_fraction} and {tolerance}")
    with _quiet():   # four draws read only the rule's step: no fallback to a second sampler
        rule = estimate_llc_from_loss(loss, true_parameter, data, replace(
            config, step_size=None, draws=4, burnin=0, fallback=None, extend_unmixed=0), n=n, localization=localization,
            compare_with_minimum=False)
    localization, base = rule.localization, rule.config.step_size
    described = dict(rule_step_size=base, nbeta=rule.config.nbeta, localization=rule.config.localization,
                     localize_at=localization.kind)
    if SAMPLERS[config.sampler].exact:
        return Calibration(base, sweep=(), reason=_exact_reason(config.sampler), **described)

    def settings(factor: float, length: float, index: int) -> LLCConfig:
        return replace(rule.config, step_size=base * factor, functional_variance=False, extend_unmixed=0,
                       seed=_independent_seed(config.seed, index),
                       burnin=round(config.burnin_steps * pilot_fraction * length / factor),
                       draws=max(8, round(config.draws * pilot_fraction * length / factor)))

    def pilot(factor: float, length: float, index: int) -> SweepPoint:
        with _quiet():
            result = estimate_llc_from_loss(loss, true_parameter, data, settings(factor, length, index), n=n,
                                            localization=localization, progress=progress, compare_with_minimum=False)
        return pilot_point(loss, result, data)

    def pair(factor: float, length: float, index: int) -> tuple[SweepPoint, SweepPoint]:
        """Pilots at ``factor`` × 2 and ``factor`` × the rule step: coupled for SGLD, else independent."""
        if config.sampler == COUPLED_SAMPLER:
            return coupled_pair(loss, data, settings(2 * factor, length, index), localization, n, progress)
        return pilot(2 * factor, length, index), pilot(factor, length, index + 1)

    sweep: list[SweepPoint] = []
    larger = None if config.sampler == COUPLED_SAMPLER else pilot(factors[0], 1.0, 0)
    sweep += [] if larger is None else [larger]
    for factor in factors[1:]:
        length = 1.0
        if larger is None:
            larger, smaller = pair(factor, length, len(sweep))
            sweep += [larger, smaller]
        else:
            smaller = pilot(factor, length, len(sweep))
            sweep.append(smaller)
        verdict = pilot_verdict(larger, smaller, tolerance, min_acceptance)
        while verdict == "inconclusive" and length < 2 ** max_lengthening:
            length *= 2
            larger, smaller = pair(factor, length, len(sweep))
            sweep += [larger, smaller]
            verdict = pilot_verdict(larger, smaller, tolerance, min_acceptance)
        if verdict == "equivalent":
            return Calibration(smaller.step_size, sweep=tuple(sweep), reason=_reason(
                larger, smaller, len(sweep), pilot_fraction, tolerance, min_acceptance, factors[0], rule), **described)
        last, larger = (larger, smaller), None if config.sampler == COUPLED_SAMPLER else smaller
    estimates = ", ".join("diverged" if p.estimate is None else f"{p.estimate:.4g}" for p in sweep)
    raise CalibrationError(f"no stable step size: across {len(sweep)} pilots from {sweep[0].step_size:.3g} down to "
                           f"{sweep[-1].step_size:.3g} (λ̂ = {estimates}) no estimate was shown within "
                           f"{tolerance:.0%} of the one at half its step (one-sided 95 %) with acceptance ≥ "
                           f"{min_acceptance} and no chain dropped; the last pair: "
                           f"{_why_not_equivalent(*last, tolerance, min_acceptance)}", tuple(sweep))


def pilot_verdict(larger: SweepPoint, smaller: SweepPoint, tolerance: float, min_acceptance: float) -> str:
    """Whether ε (``larger``) is shown stable against ε/2 (``smaller``): "equivalent" where both
    have finite chains, the acceptance of the move at ε is at least ``min_acceptance`` (where
    measured) and the interval |Δ| ± z·SE_Δ lies inside δ·|λ̂(ε/2)|; "different" where it lies
    entirely outside, a chain was dropped or the move collapsed; "inconclusive" where it straddles δ."""
    if _dropped(larger, smaller) or _collapsed(larger, min_acceptance):
        return "different"
    difference, margin, bound = _interval(larger, smaller, tolerance)
    if difference + margin <= bound:
        return "equivalent"
    return "different" if difference - margin > bound else "inconclusive"


def _dropped(larger: SweepPoint, smaller: SweepPoint) -> bool:
    return bool(larger.diverged_chains or smaller.diverged_chains) or None in (
        larger.estimate, smaller.estimate, larger.standard_error, smaller.standard_error)


def _collapsed(larger: SweepPoint, min_acceptance: float) -> bool:
    return larger.acceptance is not None and larger.acceptance < min_acceptance


def _interval(larger: SweepPoint, smaller: SweepPoint, tolerance: float) -> tuple[float, float, float]:
    """|Δ|, z·SE_Δ (from the paired difference of coupled pilots, else from both SEs) and δ·|λ̂(ε/2)|."""
    if smaller.paired_difference is not None and smaller.paired_difference_se is not None:
        difference, margin = abs(smaller.paired_difference), EQUIVALENCE_Z * smaller.paired_difference_se
    else:
        difference = abs(larger.estimate - smaller.estimate)
        margin = EQUIVALENCE_Z * math.hypot(larger.standard_error, smaller.standard_error)
    return difference, margin, tolerance * abs(smaller.estimate)


def _why_not_equivalent(larger: SweepPoint, smaller: SweepPoint, tolerance: float, min_acceptance: float) -> str:
    """In words, what kept a pair (ε, ε/2) from being shown equivalent."""
    if _dropped(larger, smaller):
        return (f"{larger.diverged_chains} chain(s) dropped at {larger.step_size:.3g} and {smaller.diverged_chains} at "
                f"{smaller.step_size:.3g} (diverged, or left the basin of w*)")
    if _collapsed(larger, min_acceptance):
        return f"the move at {larger.step_size:.3g} accepted {larger.acceptance:.2f} < {min_acceptance}"
    difference, margin, bound = _interval(larger, smaller, tolerance)
    return (f"|Δ| = {difference:.3g} with 1.645·SE_Δ = {margin:.3g} against δ·λ̂ = {bound:.3g} "
            f"({'outside' if difference - margin > bound else 'straddling'} it)")


def _reason(larger: SweepPoint, chosen: SweepPoint, pilots: int, pilot_fraction: float, tolerance: float,
            min_acceptance: float, first_factor: float, rule: LLCResult) -> str:
    guard = ("no Metropolis–Hastings counterpart of this sampler's move: acceptance not measured"
             if larger.acceptance is None else f"acceptance of the move {larger.acceptance:.2f} ≥ {min_acceptance}")
    coupled = chosen.paired_difference is not None
    pilots_were = "in coupled pairs, each pair on one Brownian path" if coupled else "of independent seeds"
    paired = (f" (paired difference {chosen.paired_difference:+.3g} ± {chosen.paired_difference_se:.2g})"
              if coupled else "")
    return (f"half the largest step of a halving sweep ({pilots} pilots {pilots_were}, each at least "
            f"{pilot_fraction:.0%} of the run's diffusion time) at which λ̂ = {larger.estimate:.4g} is shown within "
            f"{tolerance:.0%} of λ̂ = {chosen.estimate:.4g} at half the step{paired} (one-sided 95 %), no chain "
            "diverged, "
            f"{guard}; the sweep started at {first_factor:g}× the rule step {rule.config.step_size:.3g} "
            f"({rule.step_size_rule})")


def _independent_seed(seed: int, index: int) -> int:
    """A seed for pilot ``index`` independent of ``seed``'s own stream (NumPy's SeedSequence)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


@contextmanager
def _quiet():
    """Pilots report their dropped chains in the sweep; the run after calibration warns."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimateWarning)
        yield


def calibrate_for_run(loss, true_parameter: Tensor, data: tuple[Tensor, ...], config: LLCConfig, *, n: int | None,
                      max_scale: float = 4.0, progress: bool = False) -> tuple[LLCConfig, dict]:
    """The settings a calibrated run takes and, JSON-ready, what the calibration found: the
    sweep (:func:`calibrate_step_size`, :func:`calibrated_config`) for a stochastic-gradient
    sampler. For an exact sampler nothing runs: its run tunes its own step in its warm-up, and
    the sweep's rule estimate would only localise and probe the curvature that the run then does
    again (1.5 s of a 6 s smoke-length case)."""
    if SAMPLERS[config.sampler].exact:
        return config, {"reason": _exact_reason(config.sampler), "sweep": []}
    found = calibrate_step_size(loss, true_parameter, data, config, n=n, progress=progress)
    return calibrated_config(config, found, max_scale=max_scale), describe(found)


def _exact_reason(sampler: str) -> str:
    return (f"{sampler} is exact at any step: no sweep, the run chooses its own step as an estimate without "
            "calibration does")


def calibrated_config(config: LLCConfig, calibration: Calibration, *, max_scale: float = 4.0) -> LLCConfig:
    """``config`` at the calibrated step, its burn-in and draws lengthened by rule/chosen (at
    most ``max_scale``) so that the run keeps the diffusion time it had at the rule's step;
    unchanged for an exact sampler (no sweep), whose run chooses its step in its own warm-up."""
    if not calibration.sweep:
        return config
    scale = min(max_scale, max(1.0, calibration.rule_step_size / calibration.step_size))
    return replace(config, step_size=calibration.step_size, burnin=round(config.burnin_steps * scale),
                   draws=round(config.draws * scale))


def sweep_records(sweep: tuple[SweepPoint, ...]) -> list[dict]:
    """The pilots of a sweep as JSON-ready dicts."""
    return [point._asdict() for point in sweep]


def describe(calibration: Calibration) -> dict:
    """JSON-ready: the chosen and rule steps, the reason, and every pilot of the sweep."""
    return {"chosen": calibration.step_size, "rule": calibration.rule_step_size, "reason": calibration.reason,
            "nbeta": calibration.nbeta, "localization": calibration.localization,
            "localize_at": calibration.localize_at, "sweep": sweep_records(calibration.sweep)}
