"""The mixing gate every estimate is judged by: R-hat, ESS, a drift between the first and last
quarter of the draws, the two sides of a start that cooled only some chains, and λ̂ told apart
from zero (Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021, Bayesian Analysis 16(2), §4),
with what to do when the chains fail it."""

from __future__ import annotations

from typing import Sequence

from sltlab.estimators.llc import LLCEstimate

RHAT_MAX = 1.05   # the mixing gate (Vehtari et al. 2021 advise 1.01 for final inference)
ESS_MIN = 200     # ESS (:func:`~sltlab.estimators.llc.llc_from_gaps`): the MCSE is then known to within about 5 %
DRIFT_MAX = 4.0   # |z| of the drift between the first and last quarter of the draws (6e-5 by chance)
SIDES_MAX = 4.0   # |z| between the chains cooled from a hotter start and those from w* (the same odds)


# What to do when the chains fail the gate, by sampler: the Metropolis-adjusted samplers are exact at
# any step and tune their own in the warm-up, so a calibration sweep of the step does not help them.
TUNED_STEP = ("run more draws or chains ({} is exact at any step, and a step left to it is tuned during its "
              "warm-up, so calibrating it does not help{})")
HMC_ACROSS = "; where the model is cheap to evaluate, HMC, as the sampler or the fallback, crosses the directions " \
             "held only by γ in one trajectory"
MIXING_REMEDIES = {"mala": TUNED_STEP.format("MALA", HMC_ACROSS),
                   "hmc": TUNED_STEP.format("HMC", ""), "slice": "run more draws or chains"}
STEP_REMEDY = "run more draws or chains (or calibrate the step size, where it was not)"


MIXING_FAILED = "the chains fail the mixing gate"   # how the mixing warning begins, to tell it from the others


def other_warnings(warnings: Sequence[str]) -> list[str]:
    """An estimate's warnings less the mixing gate's (:func:`mixing_concern`)."""
    return [warning for warning in warnings if not warning.startswith(MIXING_FAILED)]


def mixing_concern(estimate: LLCEstimate, remedy: str = STEP_REMEDY) -> str | None:
    """What is wrong with the mixing of the kept chains, against the gate R-hat ≤ ``RHAT_MAX``
    and ESS ≥ ``ESS_MIN`` as :func:`~sltlab.estimators.llc.llc_from_gaps` reads them (Vehtari et al.
    2021, §4), a drift of at most ``DRIFT_MAX`` standard errors
    (:func:`~sltlab.estimators.llc.drift_z`), the two sides of a start that cooled only some chains
    within ``SIDES_MAX`` standard errors of each other (:func:`~sltlab.estimators.llc.sides_z`)
    and λ̂ more than two standard errors from zero, or None
    when it passes or there is no estimate (every chain dropped, said elsewhere).
    The last because λ is a positive rational number (Watanabe 2009: −λ is the largest pole of
    the zeta function ∫K(w)^z φ(w) dw, whose poles are negative rationals), and the finite-n LLC
    is positive wherever the loss varies near w*: a λ̂ that cannot be told from 0 comes from
    chains that have not left w*. On [20,22,14,7,1,6] rank 0 (SGLD on batches of 100 at the
    rule's step, 8 × 1,000 draws) the chains moved 0.6 from w*, as far as free diffusion at that
    step goes (√(ε·T·d) = 0.62), and read λ̂ = −6e-6 ± 5e-6 with R-hat, ESS and drift inside the
    gate, against a finite-n truth of 2.63 (blocked Gibbs)."""
    if estimate.mean is None or estimate.flat:
        return None
    failures = []
    if estimate.drift is not None and not abs(estimate.drift) <= DRIFT_MAX:   # written so that NaN fails
        direction = ("rising, as chains from w* do, so λ̂ is likely low" if estimate.drift > 0
                     else "falling, as chains from a hotter start do, so λ̂ is likely high")
        failures.append(f"λ̂ of the last quarter of the draws differs from that of the first by {estimate.drift:+.1f} "
                        f"standard errors (|z| > {DRIFT_MAX:g}): the chains are still drifting, together, which "
                        f"R-hat does not see ({direction})")
    if estimate.sides is not None and not abs(estimate.sides) <= SIDES_MAX:
        lagging = ("those from w* are still rising to it, so λ̂ is likely low" if estimate.sides > 0
                   else "the cooled ones read lower, so λ̂ lies between two sides that have not met")
        failures.append(f"the chains cooled from a hotter start and those started at w* read λ̂ {estimate.sides:+.1f} "
                        f"standard errors apart (|z| > {SIDES_MAX:g}): they have not yet forgotten where they "
                        f"started, which R-hat, weighing every chain against every other, can miss ({lagging})")
    if estimate.rhat is None:
        failures.append("R-hat could not be computed (one chain, under four draws, or constant draws)")
    elif not estimate.rhat <= RHAT_MAX:
        failures.append(f"R-hat {estimate.rhat:.3f} > {RHAT_MAX}")
    if estimate.ess is None:
        failures.append("ESS could not be computed")
    elif not estimate.ess >= ESS_MIN:
        failures.append(f"ESS {estimate.ess:.0f} < {ESS_MIN}")
    if estimate.standard_error and not abs(estimate.mean) > 2 * estimate.standard_error:
        failures.append(f"λ̂ = {estimate.mean:.3g} is within two standard errors ({estimate.standard_error:.3g}) of "
                        "zero, where λ > 0 for every model whose loss varies near w*: the chains have not yet moved "
                        "far enough from w* to feel the loss (a step too small for the run, or too few draws)")
    if not failures:
        return None
    return (f"{MIXING_FAILED}: {' and '.join(failures)}, so λ̂ and its standard error are not yet "
            f"to be trusted; {remedy}")


def readings_pass(rhat: float | None, ess: float | None, dropped_chains, drift: float | None = None,
                  sides: float | None = None) -> bool:
    """The gate's R-hat, ESS, dropped-chain, drift and sides rules on readings already taken (a
    suite's line, a sampled truth, a study's row), an R-hat or ESS that is missing or not a number
    failing and a drift or sides not read (None) giving no verdict: the rules of :func:`mixing_concern`
    less its test against zero, which those judge against exact values."""
    return (rhat is not None and ess is not None and rhat <= RHAT_MAX and ess >= ESS_MIN and not dropped_chains
            and (drift is None or abs(drift) <= DRIFT_MAX) and (sides is None or abs(sides) <= SIDES_MAX))


def gate_reading(estimate: LLCEstimate) -> str:
    """What the mixing gate read, in words: R-hat, ESS, drift and, where only some chains cooled,
    the two sides' gap."""
    rhat = "—" if estimate.rhat is None else f"{estimate.rhat:.3f}"
    ess = "—" if estimate.ess is None else f"{estimate.ess:.0f}"
    drift = "—" if estimate.drift is None else f"{estimate.drift:+.1f} SE"
    sides = "" if estimate.sides is None else f", sides {estimate.sides:+.1f} SE"
    return f"R-hat {rhat}, ESS {ess}, drift {drift}{sides}"


def unmixed(estimate) -> bool:
    """Whether an estimate's (or a result's) chains fail the gate on R-hat, ESS or the two sides of
    their start, the readings that more draws of the same chains mend (no reading: every chain
    dropped, which more draws cannot mend, is not counted)."""
    sides = getattr(estimate, "estimate", estimate).sides
    return (estimate.rhat is not None and estimate.ess is not None
            and not readings_pass(estimate.rhat, estimate.ess, [], sides=sides))
