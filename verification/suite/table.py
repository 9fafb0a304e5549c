"""The cases table of a suite's report: each row leads with the verdict and the error the
accuracy gate judged, beside what it was judged against, and a legend explains every column."""

from __future__ import annotations

from typing import Any

from sltlab.estimators.gate import DRIFT_MAX, SIDES_MAX
from sltlab.verification.suite.gates import judged_error

# (column, its meaning), in table order; the legend under the table is made from this.
COLUMNS = (
    ("case", "the case's id: family and arguments (a smoke: prefix marks the smoke suite's shorter run)"),
    ("verdict", "pass when both gates pass, else FAIL and the gates that failed"),
    ("judged error", "the error the accuracy gate judges: z = (λ̂ − truth)/SE against the finite-n truth nβ·E[ΔL] "
                     "where it is computed (by quadrature for potentials in one or two variables, by exact blocked "
                     "Gibbs sampling for linear networks; SE combines the estimate's and the truth's), else the "
                     "distance from λ̂ to the band [λ − (m − 1)/log nβ, λ] as a share of λ (0 inside the band)"),
    ("allowed", "the largest judged error the gate passes, in the same unit: ±(k + budget·truth/SE) for z, "
                "(k·SE + budget·λ)/λ for the band"),
    ("judged against", "the finite-n truth (what an exact sampler converges to at this nβ and γ: t·E[K] by quadrature, "
                       "Gibbs nβ·E[ΔL] by blocked Gibbs, exact nβ·E[ΔL] in closed form for one layer alone, "
                       "quadrature nβ·E[ΔL] for the one-unit tanh network), or the "
                       "band [λ − (m − 1)/log nβ, λ] where the finite-n LLC "
                       "lies (Watanabe 2009, Thm 6.1)"),
    ("λ̂ ± SE", "the LLC estimate and its Monte Carlo standard error"),
    ("λ", "the exact learning coefficient (theory/)"),
    ("m", "its multiplicity"),
    ("error to λ", "(λ̂ − λ)/λ, reported, not judged: at finite nβ the LLC sits up to (m − 1)/log nβ below λ"),
    ("d", "number of parameters"),
    ("R-hat", "rank-normalised split R-hat over chains (Vehtari et al. 2021), the larger of the draws' and of their "
              "block means'; the mixing gate wants it ≤ 1.05"),
    ("ESS", "effective sample size, the smaller of the bulk ESS (Vehtari et al. 2021) and σ²/SE², the one the block "
            "standard error implies; the mixing gate wants it ≥ 200"),
    ("step (rule)", "the step size used and where it came from: rule = the sampler's own step-size rule, "
                    "calibrated = chosen by the step-size sweep (the rule's step beside it), not swept = an exact "
                    "sampler (slice, MALA), whose step is its rule's"),
    ("s", "wall time of the case in seconds: calibration and sampling"),
)


def cases_table(lines: list[dict[str, Any]]) -> list[str]:
    """The markdown table of ``lines`` and its legend."""
    header = "| " + " | ".join(name for name, _ in COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    legend = [f"- **{name}**: {meaning}." for name, meaning in COLUMNS]
    return [header, rule, *(row(line) for line in lines), "", "Columns:", "", *legend]


def row(line: dict[str, Any]) -> str:
    """One case as a table row, its cells in the order of COLUMNS."""
    judged = judged_error(line) or {}
    lam = line.get("lambda_exact") or _number(line.get("lambda_exact_float"), ".4g")
    against = _reference(judged, line.get("finite_n_truth_method"))
    cells = (f"`{line['id']}`", verdict(line), _judged(judged), _allowed(judged), against,
             f"{_number(line.get('llc_mean'), '.4g')} ± {_number(line.get('llc_se'), '.2g')}", lam,
             str(line.get("multiplicity_exact", "—")), _number(line.get("rel_error"), "+.1%"), str(line["dim"]),
             _number(line.get("rhat"), ".3f"), _number(line.get("ess"), ".0f"), step(line),
             f"{line['seconds']:.0f}")
    return "| " + " | ".join(cells) + " |"


def verdict(line: dict[str, Any]) -> str:
    if line["passed"]:
        return "pass"
    failed = [name for name, gate in line.get("gates", {}).items() if not gate["passed"]]
    return "**FAIL**: " + (", ".join(failed) if failed else "no estimate")


def failure_reason(line: dict[str, Any]) -> str:
    """Why a case failed, in one phrase: the gates' numbers against their thresholds."""
    if "gates" not in line:
        return f"no estimate ({line.get('failure', 'the run failed')})"
    reasons = []
    mixing = line["gates"]["mixing"]
    if not mixing["passed"]:
        reasons.append(f"mixing: R-hat {_number(line.get('rhat'), '.3f')} (≤ {mixing['rhat_max']}), ESS "
                       f"{_number(line.get('ess'), '.0f')} (≥ {mixing['ess_min']}), "
                       f"{len(line.get('diverged_chains', []))} dropped chains, drift "
                       f"{_number(line.get('drift_z'), '+.1f')} SE (within ±{mixing.get('drift_max', DRIFT_MAX):g})"
                       + ("" if line.get("sides_z") is None else f", cooled − from w* {line['sides_z']:+.1f} SE "
                          f"(within ±{mixing.get('sides_max', SIDES_MAX):g})"))
    accuracy = line["gates"]["accuracy"]
    if not accuracy["passed"]:
        judged = judged_error(line) or {}
        against = _reference(judged, line.get("finite_n_truth_method"))
        reasons.append(f"accuracy: {accuracy['reason']}" if "reason" in accuracy
                       else f"accuracy: {_judged(judged)}, allowed {_allowed(judged)}, against {against}")
    return "; ".join(reasons)


def step(line: dict[str, Any]) -> str:
    """The step size and its origin: the rule, a calibration sweep, or an exact sampler's own."""
    used = line.get("config", {}).get("step_size")
    calibration = line.get("calibration") or {}
    if calibration and not calibration.get("sweep"):
        return "—" if used is None else f"{used:.3g} (rule, not swept)"
    if "chosen" not in calibration:
        return "—" if used is None else f"{used:.3g} (rule)"
    return f"{calibration['chosen']:.3g} (calibrated; rule {calibration['rule']:.3g})"


def _judged(judged: dict[str, Any]) -> str:
    if judged.get("value") is None:
        return "—"
    return f"z = {judged['value']:+.2f}" if judged["kind"] == "z" else f"{judged['value']:.1%} of λ"


def _allowed(judged: dict[str, Any]) -> str:
    if "allowed" not in judged:
        return "—"
    return f"z within ±{judged['allowed']:.2f}" if judged["kind"] == "z" else f"≤ {judged['allowed']:.1%} of λ"


def _reference(judged: dict[str, Any], method: str | None) -> str:
    if not judged:
        return "—"
    if judged["kind"] == "z":
        name = ("Gibbs nβ·E[ΔL]" if method and method.startswith("blocked Gibbs")
                else "exact nβ·E[ΔL]" if method and method.startswith("closed form")
                else "quadrature nβ·E[ΔL]" if method and method.startswith("quadrature over") else "t·E[K]")
        return f"{name} = {judged['reference']:.4g}"
    low, high = judged["reference"]
    return f"band [{low:.4g}, {high:.4g}]"


def _number(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)
