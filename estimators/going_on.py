"""A single estimate's chains that fail the mixing gate, run again or sampled on.

Two remedies, applied in this order when ``LLCConfig`` asks for them:

- ``reruns``: run as many draws again from where the chains ended, the earlier run discarded as
  burn-in. The remedy for chains started at w* that are still climbing towards the typical set:
  they show it as a split R-hat or a drift above the gate, and a longer burn-in helps (Vehtari,
  Gelman, Simpson, Carpenter & Bürkner 2021, §4).
- ``extend_unmixed``: go on from where the chains ended for as many draws as they hold, every
  draw kept, so the result is that of one longer run of the same chains (the batched paths'
  :mod:`sltlab.estimators.sample_on` does the same for each of its groups, without the forecast
  below). The remedy for chains that have arrived but mix slowly: R-hat and ESS of a slow
  component improve with the run's length, which a rerun of the same length does not change.
  A single estimate goes on only while the rounds left could bring it through the gate
  (:func:`could_pass`): on twelve small trained MLPs, going on twice passed two, both of which
  HMC, tried next, had passed, and where MALA's chains read ESS 16–46 and still failed, it took
  two to five times as long for the same flagged result.
"""

from __future__ import annotations

import math
from typing import Callable

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.llc import llc_from_trace
from sltlab.estimators.gate import ESS_MIN, RHAT_MAX, SIDES_MAX, gate_reading, mixing_concern, unmixed
from sltlab.estimators.sampling import Trace, after_warm_up, joined


def rerun_until_mixed(trace: Trace, run: Callable[..., Trace], config: LLCConfig) -> tuple[Trace, str | None]:
    """While the kept chains fail the mixing gate (:func:`~sltlab.estimators.gate.mixing_concern`),
    at most ``config.reruns`` times: run as many draws again from where the chains ended, the
    earlier run becoming burn-in (its draws discarded, its divergences kept). Chains that climb
    slowly enough pass the gate before they arrive (two deep linear networks of 6,000–7,000
    parameters at n = 10⁶ passed after one rerun still 6 % below their exact LLC), so this is an
    option, not a cure. The note returned says how many reruns it took and what the gate read
    before. A run that passes at once is returned unchanged, with no note."""
    readings = []
    for _ in range(config.reruns):
        estimate = llc_from_trace(trace, config.nbeta)
        if mixing_concern(estimate) is None:
            break
        readings.append(gate_reading(estimate))
        trace = after_warm_up(trace, run(burnin=0, initial_state=trace.final_state))
    if not readings:
        return trace, None
    return trace, (f"the chains failed the mixing gate ({'; then '.join(readings)}), so the run was repeated "
                   f"{len(readings)} time(s) from where the chains ended, each earlier run discarded as burn-in "
                   f"({trace.steps:,} steps in all)")


def extend_until_mixed(trace: Trace, run: Callable[..., Trace], config: LLCConfig) -> tuple[Trace, str | None]:
    """While the kept chains fail the gate on R-hat, ESS or the sides of their start
    (:func:`~sltlab.estimators.gate.unmixed`), at most ``config.extend_unmixed`` times: go on from
    where they ended for as many draws as the trace holds, the draws of both runs kept
    (:func:`~sltlab.estimators.sampling.joined`), but only while the rounds left could bring them
    through (:func:`could_pass`). A drift or an estimate within two standard errors of zero alone
    does not send the chains on: keeping the draws of chains still on their way together would keep
    their bias (``reruns`` discards them). Two sides of a start that disagree go on as chains that
    disagree under R-hat do: the transient kept among the draws is diluted by the longer run, and
    the gate reads the sides again at its end. The note returned
    says at which lengths the gate failed, what it read, and why the chains stopped short of the
    rounds. A trace that passes at once is returned unchanged, with no note; one that holds the
    functional variance (a total over one run's draws) does not go on, and the note says so."""
    readings, stopped = [], ""
    for done in range(config.extend_unmixed):
        estimate = llc_from_trace(trace, config.nbeta)
        if not unmixed(estimate):
            break
        draws, growth = trace.fields["loss"].shape[1], 2 ** (config.extend_unmixed - done)
        readings.append(f"at {draws:,} draws {gate_reading(estimate)}")
        if trace.functional_variance is not None or not could_pass(estimate, growth):
            stopped = ("the functional variance is a total over one run's draws" if trace.functional_variance
                       is not None else f"{growth} times the draws would not be expected to pass it")
            break
        trace = joined(trace, run(burnin=0, initial_state=trace.final_state, draws=draws))
    if not readings:
        return trace, None
    failed, held = f"the chains failed the mixing gate ({'; '.join(readings)})", trace.fields["loss"].shape[1]
    went = f"went on from where they ended to {held:,} draws, every draw kept"
    if not stopped:
        return trace, f"{failed}, so they {went}"
    if len(readings) == 1:
        return trace, f"{failed} and did not go on (extend_unmixed=, --extend-unmixed): {stopped}"
    return trace, f"{failed}, {went}, and not further (extend_unmixed=, --extend-unmixed): {stopped}"


def could_pass(estimate, growth: int) -> bool:
    """Whether ``growth`` times the draws could bring chains that read ``estimate`` through the
    gate: ESS grows at most in proportion to the run's length, and for chains that have reached
    their typical set R-hat − 1 falls in proportion to it (split R-hat as Vehtari et al. 2021, §4.1,
    define it compares the variance of the chains' means, which falls like 1/length, with the
    variance within them). Two sides of a start not yet forgotten (:func:`~sltlab.estimators.llc.sides_z`)
    differ by a transient whose sum over the draws stays, so their gap falls like 1/length and its
    standard error like 1/√length: z like 1/√growth. An assumption, not a bound: chains at different
    levels do not follow it."""
    sides_pass = estimate.sides is None or abs(estimate.sides) / math.sqrt(growth) <= SIDES_MAX
    return estimate.ess * growth >= ESS_MIN and 1 + (estimate.rhat - 1) / growth <= RHAT_MAX and sides_pass
