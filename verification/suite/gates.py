"""The two gates every verification case is judged by, and the arithmetic of the finite-n
band they use.

- Mixing: rank-normalised R-hat ≤ 1.05 and ESS ≥ 200 (Vehtari, Gelman, Simpson, Carpenter &
  Bürkner 2021), as :class:`sltlab.estimators.llc.LLCEstimate` reads them: R-hat the larger of
  the draws' and of their block means', ESS the smaller of the bulk ESS and the one the block
  standard error implies; with no dropped chain (diverged, left the basin of w*, or stuck at one point
  while the others moved), and the last quarter of the draws within 4 standard errors of the first
  (:func:`sltlab.estimators.llc.drift_z`: chains still drifting together, which R-hat cannot see),
  and, where only some chains cooled from a hotter start, their λ̂ within 4 standard errors of that
  of the chains from w* (:func:`sltlab.estimators.llc.sides_z`): the estimator's own gate
  (:func:`sltlab.estimators.gate.readings_pass`) less its test of λ̂ against zero, which the
  accuracy gate covers.
- Accuracy, where the finite-n truth nβ·E[ΔL] is computed (by quadrature for potentials in
  one or two variables and for the one-unit tanh network; by the exact blocked-Gibbs sampler
  for linear networks in the suites; in closed form for one layer of a linear network alone):
  |λ̂ − truth| ≤ k·SE + a declared relative bias budget of the truth, SE combining the
  estimate's and the truth's; the distance from λ̂ to λ is reported beside, not folded in. A
  sampled truth must pass the mixing gate itself, or the case fails; so does a case whose
  sampled truth gave no value (every one of its chains dropped).
- Accuracy otherwise: λ̂ inside the band [λ − (m − 1)/log nβ, λ] widened by k·SE and the budget
  of λ (:class:`sltlab.verification.suite.cases.Tolerance`). At a singularity of multiplicity m
  the LLC at inverse temperature nβ sits about (m − 1)/log nβ below λ (the pole of order m of the
  zeta function, Watanabe 2009, Thm. 6.1).
"""

from __future__ import annotations

import math
from typing import Any

from sltlab.estimators.gate import DRIFT_MAX, ESS_MIN, RHAT_MAX, SIDES_MAX, readings_pass


def multiplicity_shortfall(multiplicity: int, nbeta: float) -> float:
    """(m − 1)/log nβ: how far below λ the finite-n LLC sits because of multiplicity."""
    return (multiplicity - 1) / math.log(nbeta)


def band_floor(lam: float, multiplicity: int, nbeta: float) -> float:
    """The band's lower end λ − (m − 1)/log nβ, at least 0 (no LLC is negative): near nβ = 1 the
    shortfall grows without bound, and the band would accept any λ̂ below λ."""
    return max(lam - multiplicity_shortfall(multiplicity, nbeta), 0.0)


def outside_band(estimate: float, lam: float, multiplicity: int, nbeta: float) -> float:
    """Distance from λ̂ to [λ − (m − 1)/log nβ, λ] (:func:`band_floor`) relative to λ (0 inside it)."""
    low = band_floor(lam, multiplicity, nbeta)
    return max(low - estimate, estimate - lam, 0.0) / lam


def gates(line: dict[str, Any], tolerance) -> dict[str, dict[str, Any]]:
    """The mixing and accuracy gates of one estimate's summary ``line``, with their thresholds;
    ``tolerance`` is the case's :class:`sltlab.verification.suite.cases.Tolerance`."""
    rhat, ess, mean, se = line["rhat"], line["ess"], line["llc_mean"], line["llc_se"]
    mixing = {"rhat_max": RHAT_MAX, "ess_min": ESS_MIN, "drift_max": DRIFT_MAX, "sides_max": SIDES_MAX,
              "passed": readings_pass(rhat, ess, line["diverged_chains"], line.get("drift_z"), line.get("sides_z"))}
    lam = line["lambda_exact_float"]
    truth = line.get("finite_n_truth")
    if truth is not None:
        centre, budget = (truth, truth), tolerance.bias * abs(truth)
        basis = (f"finite-n truth nβ·E[ΔL] by {line.get('finite_n_truth_method', 'quadrature')}, ± k·SE + budget of "
                 "the truth (SE of the estimate and of the truth combined)")
    elif lam is not None and line["band"] is None:   # a teacher's mode this nβ does not resolve: nothing to judge
        centre, budget, basis = None, None, "none: the teacher has a mode this nβ does not resolve (a note says which)"
    else:
        centre, budget = tuple(line["band"]), tolerance.bias * lam
        basis = "band [λ − (m − 1)/log nβ, λ], widened by k·SE + budget of λ"
    # Without an estimate and its SE (every chain dropped, or one chain), or a band, there is
    # nothing to judge: the gate fails, with no interval (never one of ±∞, which JSON cannot hold).
    spread = None if mean is None or se is None or centre is None else tolerance.k * _combined_se(line) + budget
    interval = None if spread is None else [centre[0] - spread, centre[1] + spread]
    sampled = line.get("finite_n_truth_mixing")   # a sampled truth with no value (every chain dropped) judges nothing
    truth_mixed = _truth_mixed(sampled) if truth is not None else sampled is None
    accuracy = {"k": tolerance.k, "bias_budget": tolerance.bias, "finite_n": basis, "interval": interval,
                "passed": interval is not None and truth_mixed and interval[0] <= mean <= interval[1]}
    if centre is None:
        accuracy["reason"] = "no band to judge against: the teacher has a mode this nβ does not resolve"
    elif interval is None:
        accuracy["reason"] = "no estimate with a standard error to judge (every chain dropped, or a single chain)"
    elif not truth_mixed:
        what = "fail the mixing gate" if truth is not None else "gave no value"
        accuracy["reason"] = (f"the truth's own chains {what} ({sampled}): nothing trustworthy to judge against")
    if truth is not None and mean is not None:
        accuracy["relative_distance_to_lambda"] = (mean - lam) / lam
    return {"mixing": mixing, "accuracy": accuracy}


def _truth_mixed(mixing: dict[str, Any] | None) -> bool:
    """Whether a sampled truth (blocked Gibbs) passes the mixing gate itself: R-hat ≤ 1.05,
    ESS ≥ 200 and no dropped chain; a truth by quadrature or in closed form has no ``mixing``."""
    return mixing is None or readings_pass(mixing["rhat"], mixing["ess"], mixing["dropped_chains"])


def judged_error(line: dict[str, Any]) -> dict[str, Any] | None:
    """The error the accuracy gate judges, from an estimate's summary ``line``: where the
    finite-n truth t·E_t[K] is computed, z = (λ̂ − t·E_t[K])/SE (``kind`` "z"); otherwise the
    distance from λ̂ to the band [λ − (m − 1)/log nβ, λ] relative to λ (``kind``
    "outside_band"). ``reference`` is the truth or the band. None without an estimate, without a λ,
    or, with no truth, without a band (a teacher's mode that nβ does not resolve).

    With the gate's k and budget (``line["gates"]``), ``allowed`` is the largest error it
    passes, in the same unit: k + budget·|t·E_t[K]|/SE, or (k·SE + budget·λ)/λ."""
    mean, se, truth = line.get("llc_mean"), line.get("llc_se"), line.get("finite_n_truth")
    accuracy = line.get("gates", {}).get("accuracy")
    if mean is None:
        return None
    if truth is not None:
        combined = _combined_se(line)
        judged = {"kind": "z", "value": (mean - truth) / combined if combined else None, "reference": truth}
        if accuracy is not None and combined:
            judged["allowed"] = accuracy["k"] + accuracy["bias_budget"] * abs(truth) / combined
        return judged
    lam = line.get("lambda_exact_float")
    if lam is None or line.get("band") is None:   # no band where the teacher has modes n does not resolve
        return None
    judged = {"kind": "outside_band", "value": line["rel_error_outside_band"], "reference": line["band"]}
    if accuracy is not None and se is not None:
        judged["allowed"] = (accuracy["k"] * se + accuracy["bias_budget"] * lam) / lam
    return judged


def _combined_se(line: dict[str, Any]) -> float | None:
    """√(SE² + SE_truth²): the SE of λ̂ − truth, where the truth is itself a Monte Carlo mean
    (the Gibbs reference); the SE of λ̂ alone where the truth is exact (quadrature)."""
    se, truth_se = line.get("llc_se"), line.get("finite_n_truth_se") or 0.0
    return None if se is None else math.hypot(se, truth_se)


def false_failure_rate(ks: list[float]) -> float:
    """The chance that some case of a suite leaves its accuracy interval although every bias is
    within its budget and every SE is right: 1 − Π(1 − 2Φ(−k_i)), 2Φ(−k) = erfc(k/√2) being
    one normal estimate's chance of erring by more than k SE."""
    return 1 - math.prod(1 - math.erfc(k / math.sqrt(2)) for k in ks)
