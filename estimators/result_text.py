"""The short form of an LLC result: ``result.summary()`` (a JSON-ready dict of what a reader
needs to judge the number) and ``print(result)`` (the same as a few lines). The trace and every
resolved setting stay on the result itself."""

from __future__ import annotations

from typing import Any


def result_summary(result) -> dict[str, Any]:
    """λ̂ ± SE, its diagnostics, where w* is and the settings that decide the number."""
    config, centre = result.config, result.localization
    return {"llc": result.mean, "standard_error": result.standard_error, "rhat": result.rhat, "ess": result.ess,
            "drift_z": result.estimate.drift, "sides_z": result.estimate.sides, "chains": config.chains,
            "diverged": list(result.diverged),
            "acceptance": result.acceptance,
            "nbeta": config.nbeta, "n": result.n, "sampler": config.sampler, "draws": config.draws,
            "burnin": config.burnin, "thin": config.thin, "step_size": config.step_size,
            "step_size_rule": result.step_size_rule, "localization": config.localization,
            "batch_size": config.batch_size,
            "gamma_elasticity": None if result.elasticity is None else result.elasticity._asdict(),
            "singular_fluctuation": None if result.fluctuation is None else {
                "mean": result.fluctuation.mean, "standard_error": result.fluctuation.standard_error},
            "centre": {"at": centre.kind, "distance": centre.distance, "converged": centre.converged},
            "restricted_to": result.restricted_to, "warnings": list(result.warnings), "notes": list(result.notes)}


def result_text(result) -> str:
    """:func:`result_summary` as a few lines, for ``print(result)``: the estimate, its diagnostics,
    the settings, then every warning and every note."""
    facts = result_summary(result)
    size = "" if facts["n"] is None else f", n = {facts['n']:,}"
    if facts["llc"] is None:
        head = f"LLCResult: no estimate, all {facts['chains']} chains diverged (nβ = {facts['nbeta']:.5g}{size})"
    elif result.estimate.flat:
        head = (f"LLCResult: λ̂ = 0, no draw's loss differing from another in {result.config.dtype}: where the "
                f"chains went the loss did not change by more than it rounds (nβ = {facts['nbeta']:.5g}{size})")
    else:
        head = (f"LLCResult: λ̂ = {facts['llc']:.4f} ± {shown(facts['standard_error'])}  "
                f"(nβ = {facts['nbeta']:.5g}{size})")
    diverged = ", ".join(map(str, facts["diverged"])) or "none"
    accepted = "" if facts["acceptance"] is None else f"   acceptance {facts['acceptance']:.2f}"
    batch = "full batch" if facts["batch_size"] is None else f"batch {facts['batch_size']}"
    centre = facts["centre"]
    lines = [head,
             f"  R-hat {shown(facts['rhat'])}   ESS {shown(facts['ess'], 5)}   drift {_drift(facts['drift_z'])}"
             + ("" if facts["sides_z"] is None else f"   cooled − from w* {_drift(facts['sides_z'])}")
             + f"   chains {facts['chains']} (dropped: {diverged}){accepted}",
             f"  {facts['sampler']}, {facts['draws']:,} draws (burn-in {facts['burnin']:,}, thin {facts['thin']}), "
             f"step {facts['step_size']:.3g} ({facts['step_size_rule']}), γ = {facts['localization']:g}"
             f"{_elasticity(facts['gamma_elasticity'])}, {batch}",
             f"  w* {centre['at'].replace('_', ' ')}, moved {centre['distance']:.3g}"
             + ("" if centre["converged"] else " (L-BFGS did not converge)")]
    if facts["restricted_to"] is not None:
        lines.append(f"  restricted to {facts['restricted_to']}")
    if facts["singular_fluctuation"] is not None and facts["singular_fluctuation"]["mean"] is not None:
        fluctuation = facts["singular_fluctuation"]
        lines.append(f"  singular fluctuation ν̂ = {fluctuation['mean']:.4g} ± {shown(fluctuation['standard_error'])}")
    lines += [f"  WARNING: {warning}" for warning in facts["warnings"]]
    lines += [f"  note: {note}" for note in facts["notes"]]   # how the inputs were read, as the suites print them
    lines.append("  (result.summary() gives this as a dict, --json on the command line; result.trace holds every "
                 "draw)")
    return "\n".join(lines)


def _elasticity(elasticity: dict | None) -> str:
    if elasticity is None:
        return ""
    return f" (d log λ̂/d log γ {elasticity['value']:.2f} ± {shown(elasticity['standard_error'], 2)})"


def _drift(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f} SE"


def shown(value: float | None, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits, or a dash where there is none."""
    return "—" if value is None else f"{value:.{digits}g}"
