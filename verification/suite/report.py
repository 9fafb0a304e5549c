"""The report of a verification suite: ``report.md``, ``report.json`` and the figures, from
the lines of ``results.jsonl`` (so a resumed run reports every case it has)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Sequence

from sltlab.verification.suite.gates import DRIFT_MAX, ESS_MIN, RHAT_MAX, SIDES_MAX, false_failure_rate
from sltlab.verification.suite.provenance import provenance, provenance_markdown
from sltlab.verification.suite.table import cases_table, failure_reason

DLN_MEDIAN_TARGET, DLN_WORST_TARGET = 0.03, 0.10


def summary(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, the deep-linear accuracy against its targets, and the false-failure rate."""
    failed = [line["id"] for line in lines if not line["passed"]]
    gated = [line for line in lines if "gates" in line]
    ks = sorted({line["gates"]["accuracy"]["k"] for line in gated})
    budgets = {line["config"]["sampler"]: line["gates"]["accuracy"]["bias_budget"] for line in gated}
    result = {"cases": len(lines), "passed": len(lines) - len(failed), "failed": failed,
              "gates": {"mixing": {"rhat_max": RHAT_MAX, "ess_min": ESS_MIN, "drift_max": DRIFT_MAX,
                                   "sides_max": SIDES_MAX},
                        "accuracy": {"k": ks, "bias_budget": budgets}},
              "false_failure_rate": {"per_case": {k: false_failure_rate([k]) for k in ks},
                                     "suite": false_failure_rate([line["gates"]["accuracy"]["k"] for line in gated]),
                                     "basis": "2Φ(−k) per case for an estimate whose bias is within its budget and "
                                              "whose SE is right; the mixing gate's rate is not included"}}
    linear = [line for line in lines if "dln" in line.get("tags", ())]
    if linear:   # the dln suite's targets; a case with no estimate, or no band to judge by, counts as 100 % off
        errors = [1.0 if line.get("rel_error") is None else abs(line["rel_error"]) for line in linear]
        outside = [1.0 if line.get("rel_error_outside_band") is None else line["rel_error_outside_band"]
                   for line in linear]
        result["dln"] = {
            "cases": len(linear), "without_estimate": sum(line.get("rel_error") is None for line in linear),
            "median_abs_rel_error": statistics.median(errors), "worst_abs_rel_error": max(errors),
            "median_outside_band": statistics.median(outside), "worst_outside_band": max(outside),
            "targets": {"median": DLN_MEDIAN_TARGET, "worst": DLN_WORST_TARGET},
            "meets_targets": statistics.median(errors) < DLN_MEDIAN_TARGET and max(errors) < DLN_WORST_TARGET}
    return result


FIGURE_CAPTIONS = {
    "estimate_vs_exact": "Each estimate λ̂ ± 3 SE against its exact λ (blue: passed, orange: failed; shape: family). "
                         "The grey bar behind it is the interval its accuracy gate accepts; a black tick marks the "
                         "finite-n truth where one was computed. An estimate below y = x inside its grey bar is right: "
                         "at finite nβ the LLC sits below λ. Cases with the same λ are drawn a few per cent apart "
                         "sideways (factors 1.035^±i) so that none hides another.",
    "error_vs_dim": "Relative error (λ̂ − λ)/λ ± 3 SE against the number of parameters, over the interval the gate "
                    "accepts in the same units (grey); cases with the same d are drawn a few per cent apart.",
    "calibration": "Step-size sweeps of the calibrated cases: pilot λ̂ ± 3 SE against the step size, the chosen step "
                   "(green) and the exact λ (dashed).",
}


def write_report(lines: list[dict[str, Any]], out: Path, title: str, outside: Sequence[str] = ()) -> dict[str, Any]:
    """Write report.md, report.json and the figures into ``out``; returns the summary. ``outside``:
    ids of the cases ``out/results.jsonl`` also holds that are not this report's, which it names."""
    from sltlab.verification.suite import figures as suite_plots

    facts = summary(lines)
    facts["provenance"] = provenance(lines)
    figures = {"estimate_vs_exact": suite_plots.plot_estimate_vs_exact(lines, out / "estimate_vs_exact.png"),
               "error_vs_dim": suite_plots.plot_error_vs_dim(lines, out / "error_vs_dim.png")}
    calibration = suite_plots.plot_calibration(lines, out / "calibration.png")
    if calibration is not None:
        figures["calibration"] = calibration
    traces = {line["id"]: suite_plots.plot_trace(line, out / suite_plots.trace_file_name(line["id"]))
              for line in lines if not line["passed"] and line.get("trace")}
    facts["figures"] = {name: path.name for name, path in figures.items()}
    facts["trace_figures"] = {case_id: path.name for case_id, path in traces.items()}
    facts["not_reported"] = list(outside)
    (out / "report.json").write_text(json.dumps({"title": title, "summary": facts, "cases": [
        {key: value for key, value in line.items() if key != "trace"} for line in lines]}, indent=1, allow_nan=False))
    (out / "report.md").write_text(render_markdown(lines, facts, title))
    return facts


def render_markdown(lines: list[dict[str, Any]], facts: dict[str, Any], title: str) -> str:
    gates, rates = facts["gates"], facts["false_failure_rate"]
    outside = facts.get("not_reported") or []
    unreported = (f"results.jsonl also holds {len(outside)} case{'s' if len(outside) != 1 else ''} of another "
                  f"selection, not in this report: {', '.join(outside)}.")
    text = [f"# {title}", "", *([unreported, ""] if outside else []),
            f"{facts['passed']} of {facts['cases']} cases pass both gates." + (" Failed:" if facts["failed"] else ""),
            "",
            *(f"- `{line['id']}`: {failure_reason(line)}" for line in lines if not line["passed"]),
            *([""] if facts["failed"] else []),
            "## Gates", "",
            f"- Mixing: rank-normalised R-hat ≤ {gates['mixing']['rhat_max']} (the larger of the draws' and of their "
            f"block means') and ESS ≥ "
            f"{gates['mixing']['ess_min']} (Vehtari et al. 2021; the smaller of the bulk ESS and σ²/SE², the ESS the "
            "block standard error implies), with no dropped chain (diverged, left the basin "
            "of w*, or stuck at one point while the others moved), and λ̂ of the last quarter of the draws within "
            f"{gates['mixing']['drift_max']:g} standard errors of the first's (chains still drifting together, which "
            "R-hat cannot see), and, where only some chains cooled from a hotter start, their λ̂ within "
            f"{gates['mixing']['sides_max']:g} standard errors of that of the chains from w* (a gap "
            "between them is a start not yet forgotten).",
            f"- Accuracy: where the finite-n truth nβ·E[ΔL] is computed (by quadrature for potentials in one or two "
            f"variables and for the one-unit tanh network, by exact blocked Gibbs sampling for linear networks, in "
            f"closed form for one layer alone), "
            f"|λ̂ − truth| ≤ k·SE + a declared "
            f"relative bias budget of the truth, SE combining the estimate's and the truth's, and the distance to λ "
            f"is reported beside; otherwise λ̂ within the band [λ − (m − 1)/log nβ, λ] widened by k·SE + the budget "
            f"of λ. k = {', '.join(f'{k:g}' for k in gates['accuracy']['k'])}; budgets "
            + ", ".join(f"{share:.0%} for {sampler}" for sampler, share in gates["accuracy"]["bias_budget"].items())
            + ".",
            "- False-failure rate of the accuracy gate: "
            + ", ".join(f"{rate:.2%} per case at k = {k:g}" for k, rate in rates["per_case"].items())
            + f"; {rates['suite']:.1%} for this suite of {facts['cases']} ({rates['basis']}).", ""]
    if "dln" in facts:
        dln = facts["dln"]
        lost = (f", {dln['without_estimate']} of them with no estimate (counted as 100 %)"
                if dln["without_estimate"] else "")
        text += [f"Deep linear networks ({dln['cases']} cases of the dln suite{lost}): |relative error| median "
                 f"{dln['median_abs_rel_error']:.1%} (target < {dln['targets']['median']:.0%}), worst "
                 f"{dln['worst_abs_rel_error']:.1%} (target < {dln['targets']['worst']:.0%}): "
                 + ("met" if dln["meets_targets"] else "MISSED")
                 + f"; outside the band [λ − (m − 1)/log nβ, λ]: median {dln['median_outside_band']:.1%}, "
                   f"worst {dln['worst_outside_band']:.1%}.", ""]
    warned = [line for line in lines if line.get("warnings")]
    text += ["## Cases", "", *cases_table(lines), ""]
    if warned:   # a case can pass both gates and still have raised a warning (a drift, a step, a centre)
        text += ["## Warnings", "", *(f"- `{line['id']}` ({'passed' if line['passed'] else 'FAILED'}): {warning}"
                                      for line in warned for warning in line["warnings"]), ""]
    text += ["## Figures", ""]
    for name, file in facts["figures"].items():
        text += [f"![{name}]({file})", "", f"*{FIGURE_CAPTIONS[name]}*", ""]
    for case_id, file in facts["trace_figures"].items():
        text += [f"![trace of {case_id}]({file})", "", f"*Failed case `{case_id}`: nβ·(L(w) − L(w*)) of every chain "
                 "over the recorded draws (subsampled), beside the exact λ (dashed).*", ""]
    failures = [line for line in lines if line.get("failure")]
    if failures:
        text += ["", "## Failures before an estimate", ""] + [f"- `{line['id']}`: {line['failure']}"
                                                            for line in failures]
    text += ["", *provenance_markdown(facts["provenance"])]
    return "\n".join(text) + "\n"
