"""Readable rendering of an LLC estimate's JSON summary, led by the error a verification gate
would judge."""

from __future__ import annotations

from typing import Any

from sltlab.verification.suite.gates import judged_error


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _per_chain(values: list[float | None]) -> str:
    if len(values) <= 12:
        return "per chain: " + ", ".join(_number(v, 4) for v in values)
    finite = sorted(v for v in values if v is not None)
    if not finite:
        return "per chain: none"
    return (f"per chain ({len(values)}): min {finite[0]:.4g}, median {finite[len(finite) // 2]:.4g}, "
            f"max {finite[-1]:.4g} (all in --json)")


def _elasticity_lines(summary: dict[str, Any]) -> list[str]:
    """d log λ̂/d log γ (:mod:`sltlab.estimators.elasticity`), beside its exact value where known."""
    elasticity, truth = summary.get("gamma_elasticity"), summary.get("finite_n_truth_gamma_elasticity")
    if elasticity is None:
        return []
    exact = "" if truth is None else f"; at the same nβ, γ and w* by blocked Gibbs {_plus_minus(truth)}"
    return [f"  d log λ̂/d log γ  {_plus_minus(elasticity)} (0: the loss holds the chains; −1: γ does{exact})"]


def _plus_minus(reading: dict[str, Any]) -> str:
    return f"{reading['value']:.3f} ± {_number(reading['standard_error'], 2)}"


UNMOVED = ("never left w*", "never moved")   # how a chain dropped for standing still is described


def render_estimate(summary: dict[str, Any]) -> str:
    config = summary["config"]
    if "estimates" in summary:   # extrapolated over n (sltlab.verification.suite.extrapolation)
        sizes = " and ".join(f"{line['n']:,}" for line in summary["estimates"])
        lines = [summary["problem"] + f"  (d = {summary['dim']}; λ̂ extrapolated to nβ → ∞ from n = {sizes})"]
    else:
        lines = [summary["problem"] + f"  (d = {summary['dim']}, n = {summary['n']}, nβ = {config['nbeta']:.5g})"]
    reasons = summary.get("divergence") or {}
    if summary["llc_mean"] is None and reasons and all(why.startswith(UNMOVED) for why in reasons.values()):
        chain, why = next(iter(reasons.items()))   # no chain diverged: a smaller step would not help
        what = "LEFT w*" if all(why.startswith(UNMOVED[0]) for why in reasons.values()) else "MOVED"
        lines.append(f"  NO CHAIN {what}: no estimate; chain {chain} {why} (step {config['step_size']:.3g}).")
    elif summary["llc_mean"] is None:
        lines.append(f"  ALL {config['chains']} CHAINS DIVERGED: no estimate. Lower --step-size "
                     f"(was {config['step_size']:.3g}).")
    else:
        lines += _judged_lines(summary)
        lines.append(f"  λ̂        {summary['llc_mean']:.4f} ± {_number(summary['llc_se'])} (Monte Carlo SE)")
    if summary["lambda_exact"] is not None and "estimates" in summary:
        lines.append(f"  exact λ   {summary['lambda_exact']} = {summary['lambda_exact_float']:.6g}, "
                     f"m = {summary['multiplicity_exact']} (what the extrapolation estimates)")
    elif summary["lambda_exact"] is not None:
        band = ("not applied (a note says why)" if summary["band"] is None
                else "[{:.4g}, {:.4g}]".format(*summary["band"]))
        lines.append(f"  exact λ   {summary['lambda_exact']} = {summary['lambda_exact_float']:.6g}, "
                     f"m = {summary['multiplicity_exact']}; band [λ − (m−1)/log nβ, λ] = {band}")
    else:
        answered_by = summary.get("exact_answered_by")
        lines.append(f"  exact λ   none: {summary['exact_unavailable']}"
                     + ("" if answered_by is None else f"; answered by: {answered_by}"))
    lines += _size_lines(summary)
    lines.append(f"  R-hat {_number(summary['rhat'])}   ESS {_number(summary['ess'], 5)}   "
                 + ("" if summary["acceptance"] is None else f"acceptance {summary['acceptance']:.2f}   ")
                 + _per_chain(summary["llc_per_chain"]))
    lines += _elasticity_lines(summary)
    lines += [f"  WARNING: {warning}" for warning in summary["warnings"]]
    lines += [f"  note: {note}" for note in summary["notes"]]
    if "singular_fluctuation" in summary:
        nu = summary["singular_fluctuation"]
        lines.append(f"  ν̂         {_number(nu['mean'])} ± {_number(nu['se'])} (singular fluctuation)")
    if "multiplicity_fit" in summary:
        fit = summary["multiplicity_fit"]
        if fit.get("fit", True) is None:
            lines.append(f"  multiplicity fit: not possible ({fit['reason']})")
        else:
            lines.append(f"  fit over {len(fit['ladder'])} temperatures: "
                         f"λ = {fit['lambda']:.4f} ± {fit['lambda_se']:.4f}, "
                         f"m = {fit['multiplicity']:.2f} ± {fit['multiplicity_se']:.2f} "
                         + (f"(≈ {fit['multiplicity_rounded']})" if fit["multiplicity_rounded"] is not None
                            else f"(no integer m read: {fit['multiplicity_unresolved']})"))
        lines.append(f"  ladder    {fit['sampled']} (each rung's warnings among the warnings above)")
    local = summary["localization"]
    lines.append(f"  w*        {local['at'].replace('_', ' ')} ({local['iterations']} L-BFGS iterations, moved "
                 f"{local['distance']:.3g}, ‖∇L_n‖ = {local['gradient_norm']:.1e}); L_n(w*) from "
                 f"{summary['loss_reference']}")
    lines.append(f"  sampler   {config['sampler']}, {config['chains']} chains × {config['draws']} draws "
                 f"(burn-in {config['burnin']}, thin {config['thin']}), step {config['step_size']:.3g} "
                 f"({summary['step_size_rule']}), γ = {config['localization']:g}, "
                 f"{'full batch' if config['batch_size'] is None else 'batch ' + str(config['batch_size'])}, "
                 f"{config['dtype']} on {config['device']}")
    if "calibration" in summary:
        calibration = summary["calibration"]
        sweep = ", ".join(f"{p['step_size']:.3g} → " + ("diverged" if p["estimate"] is None else f"{p['estimate']:.4g}")
                          for p in calibration["sweep"])
        if calibration["sweep"]:
            lines.append(f"  calibrated step {calibration['chosen']:.3g}: {calibration['reason']}")
            lines.append(f"  sweep     ε → pilot λ̂: {sweep}")
        else:
            lines.append(f"  calibration: {calibration['reason']}")
    threads = summary.get("torch_threads")
    lines.append(f"  time      {summary['sampling_seconds']:.2f} s sampling ({summary['steps']} steps)"
                 + ("" if threads is None else f", {threads} torch thread(s)"))
    return "\n".join(lines)


def _judged_lines(summary: dict[str, Any]) -> list[str]:
    """The error first: against the finite-n truth nβ·E[ΔL] in standard errors where it is
    computed, else outside the band; the relative error to λ beside it, reported, not judged."""
    judged = judged_error(summary)
    lines = []
    if judged is not None and judged["kind"] == "z":
        z = "—" if judged["value"] is None else f"{judged['value']:+.2f}"
        method = summary.get("finite_n_truth_method", "quadrature")
        where = ("the same n, nβ and γ: what an exact sampler's estimates extrapolate to" if "estimates" in summary
                 else "this nβ and γ: what an exact sampler converges to")
        lines.append(f"  error     z = (λ̂ − truth)/SE = {z} against the finite-n truth nβ·E[ΔL] = "
                     f"{judged['reference']:.4f} ({method}, at {where})")
    elif judged is not None and "estimates" in summary:
        lines.append(f"  error     {judged['value']:.2%} of λ (λ̂ extrapolated to nβ → ∞ estimates λ itself)")
    elif judged is not None:
        low, high = judged["reference"]
        lines.append(f"  error     {judged['value']:.2%} of λ outside the band [{low:.4g}, {high:.4g}] (where the "
                     "finite-n LLC lies)")
    z_judged, no_band = judged is not None and judged["kind"] == "z", summary["band"] is None
    if summary["rel_error"] is not None and "estimates" in summary:
        judging = ("reported; the z above judges the estimate" if z_judged else
                   "reported, not judged: a note says which of the teacher's modes some size does not resolve"
                   if no_band else
                   "judged where no truth is computed: the band [λ − (m−1)/log nβ, λ] closes on λ as nβ → ∞")
        lines.append(f"  to λ      {summary['rel_error']:+.2%} relative ({judging})")
    elif summary["rel_error"] is not None:
        outside = (f", {summary['rel_error_outside_band']:.2%} outside the band"
                   if z_judged and summary["rel_error_outside_band"] is not None else "")
        why = ("a note says which of the teacher's modes this nβ does not resolve" if no_band
               else "at finite nβ the LLC lies up to (m−1)/log nβ below λ")
        lines.append(f"  to λ      {summary['rel_error']:+.2%} relative{outside}: reported, not judged ({why})")
    return lines


def _size_lines(summary: dict[str, Any]) -> list[str]:
    """One line per sample size of an extrapolated estimate, and the fitted line."""
    if "estimates" not in summary:
        return []
    lines = []
    for line in summary["estimates"]:
        truth = ("" if line.get("finite_n_truth") is None
                 else f", truth {line['finite_n_truth']:.4f} ± {line['finite_n_truth_se']:.2g}")
        lines.append(f"  at n = {line['n']:<9,} nβ = {line['config']['nbeta']:<9.5g} "
                     f"λ̂ = {_number(line['llc_mean'])} ± "
                     f"{_number(line['llc_se'], 2)}{truth}, R-hat {_number(line['rhat'])}, step "
                     f"{line['config']['step_size']:.3g}")
    fit = summary.get("extrapolation")
    if fit is not None:
        chi2 = "" if fit["chi2"] is None else f", χ² = {fit['chi2']:.2f} on {len(fit['nbetas']) - 2} degrees of freedom"
        lines.append(f"  fit       λ̂(nβ) = λ̂ − c/log nβ with c = {fit['shortfall']:.3g}{chi2}")
    return lines
