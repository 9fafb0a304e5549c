"""Automatic step-size calibration from short pilot runs (a step-size sweep).

The discretisation bias of Langevin samplers is first order in the step: E_ε[λ̂] = λ̂ + a·ε +
O(ε²) (Vollmer, Zygalakis & Teh 2016, JMLR 17, Thm 3.3; Durmus et al. 2016 use the same
expansion for Richardson–Romberg extrapolation). So the estimates at ε and at ε/2 differ by
about the bias at ε/2. The sweep halves the step from a multiple of the rule-based step
(:func:`estimators.step_size.default_step_size`, or MALA's adapted step) and finds the largest
ε whose estimate agrees with the one at ε/2 within ``k`` combined standard errors plus a
relative ``tolerance``, with no chain diverged at either step and the Metropolis–Hastings
acceptance of the Langevin move at ε (MALA's, Roberts & Tweedie 1996, on the full data) at or
above ``min_acceptance``. It then chooses ε/2, whose bias the agreement bounds. The acceptance
only guards against collapse: 1 − acceptance grows like √d·(ε·h)^{3/2} (Roberts & Rosenthal
1998), so in 10⁴ dimensions it is near 0.4 at steps whose estimate no longer moves; the
agreement of the estimates decides. Every pilot covers the same diffusion time (steps ∝ 1/ε),
so a small step is not mistaken for a stable one merely because it has not moved yet.
When no step passes, :class:`CalibrationError` says so with the whole sweep.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import NamedTuple

import torch
from torch import Tensor

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.estimate import LLCResult, estimate_llc
from sltlab.estimators.localize import Localization
from sltlab.estimators.mala import mala
from sltlab.estimators.posterior import LocalPosterior
from sltlab.estimators.sampling import Batches, run_chains

ACCEPTANCE_PROBE_STEPS = 100


class SweepPoint(NamedTuple):
    """One pilot: its step, estimate and diagnostics (``None`` where every chain diverged)."""

    step_size: float
    steps: int
    estimate: float | None
    standard_error: float | None
    rhat: float | None
    diverged_chains: int
    acceptance: float | None    # MALA acceptance of the same Langevin move, from the pilot's end


class Calibration(NamedTuple):
    """The chosen step, the whole sweep and the reason, in words."""

    step_size: float
    rule_step_size: float       # the starting point: the rule-based (or MALA-adapted) step
    sweep: tuple[SweepPoint, ...]
    reason: str
    nbeta: float
    localization: float
    localize_at: str


class CalibrationError(RuntimeError):
    """No step in the sweep was stable; carries the sweep for the report."""

    def __init__(self, message: str, sweep: tuple[SweepPoint, ...]):
        super().__init__(message)
        self.sweep = sweep


def calibrate_step_size(loss, true_parameter: Tensor, data: tuple[Tensor, ...], config: LLCConfig, *,
                        n: int | None = None, factors: tuple[float, ...] = (2.0, 1.0, 0.5, 0.25, 0.125),
                        pilot_fraction: float = 0.25, k: float = 2.0, tolerance: float = 0.005,
                        min_acceptance: float = 0.25, localization: Localization | None = None,
                        progress: bool = False) -> Calibration:
    """Sweep ``factors`` × the rule-based step with pilots of ``pilot_fraction`` of the run
    ``config`` describes (burn-in and draws scaled by 1/factor) and choose the step. The sweep
    stops at the first agreeing pair once three pilots have run.

    ``factors`` must be decreasing, each half the one before, so that consecutive pilots
    compare ε with ε/2.
    """
    if len(factors) < 2 or any(b != a / 2 for a, b in zip(factors, factors[1:])):
        raise ValueError("calibration factors must halve at each step, e.g. (2, 1, 0.5, 0.25)")
    if not 0 < pilot_fraction <= 1:
        raise ValueError(f"pilot fraction must lie in (0, 1], got {pilot_fraction}")
    rule = estimate_llc(loss, true_parameter, data, replace(config, step_size=None, draws=4, burnin=0),
                        n=n, localization=localization)
    localization, base = rule.localization, rule.config.step_size
    sweep, agreeing = [], None
    for factor in factors:   # from the largest step down, until a pair agrees and three pilots ran
        pilot = replace(rule.config, step_size=base * factor, functional_variance=False,
                        burnin=round(config.burnin_steps * pilot_fraction / factor),
                        draws=max(8, round(config.draws * pilot_fraction / factor)))
        result = estimate_llc(loss, true_parameter, data, pilot, n=n, localization=localization, progress=progress)
        sweep.append(_point(loss, result, data))
        if agreeing is None and len(sweep) >= 2 and pilots_agree(sweep[-2], sweep[-1], k, tolerance, min_acceptance):
            agreeing = (sweep[-2], sweep[-1])
        if agreeing is not None and len(sweep) >= min(3, len(factors)):
            break
    sweep = tuple(sweep)
    described = dict(nbeta=rule.config.nbeta, localization=rule.config.localization, localize_at=localization.kind)
    if agreeing is None:
        estimates = ", ".join("diverged" if p.estimate is None else f"{p.estimate:.4g}" for p in sweep)
        raise CalibrationError(
            f"no stable step size: across {len(sweep)} pilots from {sweep[0].step_size:.3g} down to "
            f"{sweep[-1].step_size:.3g} (λ̂ = {estimates}) no estimate agreed with the one at half its step "
            f"within {k} SE + {tolerance:.1%} with MALA acceptance ≥ {min_acceptance}", sweep)
    larger, chosen = agreeing
    reason = (f"half the largest step of a halving sweep ({len(sweep)} pilots, each {pilot_fraction:.0%} of the "
              f"run's diffusion time) at which λ̂ = {larger.estimate:.4g} agrees with λ̂ = {chosen.estimate:.4g} "
              f"at half the step within {k} SE + {tolerance:.1%}, no chain diverged"
              + ("" if larger.acceptance is None else f", MALA acceptance {larger.acceptance:.2f} ≥ {min_acceptance}")
              + f"; the sweep started at {factors[0]:g}× the rule step {base:.3g} ({rule.step_size_rule})")
    return Calibration(chosen.step_size, base, sweep, reason, **described)


def pilots_agree(larger: SweepPoint, smaller: SweepPoint, k: float, tolerance: float, min_acceptance: float) -> bool:
    """ε (``larger``) is stable: finite chains at ε and ε/2, estimates within k SE + tolerance,
    and MALA's acceptance of the move at ε at least ``min_acceptance`` (where measured)."""
    if larger.diverged_chains or smaller.diverged_chains or None in (larger.estimate, smaller.estimate,
                                                                     larger.standard_error, smaller.standard_error):
        return False
    if larger.acceptance is not None and larger.acceptance < min_acceptance:
        return False
    spread = k * math.hypot(larger.standard_error, smaller.standard_error) + tolerance * abs(smaller.estimate)
    return abs(larger.estimate - smaller.estimate) <= spread


def _point(loss, result: LLCResult, data: tuple[Tensor, ...]) -> SweepPoint:
    estimate = result.estimate
    acceptance = result.acceptance
    if acceptance is None and not result.trace.diverged.any():
        acceptance = _langevin_acceptance(loss, result, data)
    return SweepPoint(result.config.step_size, result.trace.steps, estimate.mean, estimate.standard_error,
                      estimate.rhat, len(estimate.diverged_chains), acceptance)


def _langevin_acceptance(loss, result: LLCResult, data: tuple[Tensor, ...]) -> float | None:
    """Mean MALA acceptance of the step, from the pilot's final positions on the full data:
    the Metropolis–Hastings verdict on exactly the move an unadjusted sampler makes."""
    config = result.config
    position = result.trace.final_state.position
    center = result.localization.center.to(position)
    full = tuple(t.to(device=position.device, dtype=position.dtype if t.is_floating_point() else t.dtype)
                 for t in data)
    posterior = LocalPosterior(loss, config.nbeta, config.localization, center)
    batches = Batches(full, len(full[0]) if full else 1)
    sampler = mala(posterior, step_size=config.step_size)
    generator = torch.Generator(device=position.device).manual_seed(config.seed + 1)
    trace = run_chains(sampler, posterior, batches, chains=len(position), draws=ACCEPTANCE_PROBE_STEPS,
                       generator=generator, initial_state=sampler.init(position, batches.full()))
    return float(trace.fields["acceptance"].mean())


def calibrated_config(config: LLCConfig, calibration: Calibration, *, max_scale: float = 4.0) -> LLCConfig:
    """``config`` at the calibrated step, its burn-in and draws lengthened by rule/chosen (at
    most ``max_scale``) so that the run keeps the diffusion time it had at the rule's step."""
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
