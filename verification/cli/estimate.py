"""``sltlab estimate``: LLC estimates of deep linear networks and potentials beside the exact
λ, and the volume-scaling fit of λ and m."""

from __future__ import annotations

import sys
from dataclasses import fields, replace

from sltlab import theory
from sltlab.estimators.config import LOCALIZATIONS, SAMPLER_NAMES
from sltlab.verification.cli.command import PROG, Result, shell_word, subcommand

# Options shared by every sampling estimate; None leaves the model's default in place.
_SAMPLING_OPTIONS = (
    ("--sampler", dict(choices=SAMPLER_NAMES, help="sampler (default: the model's)")),
    ("--chains", dict(type=int, help="number of chains, run as one batch")),
    ("--draws", dict(type=int, help="recorded draws per chain")),
    ("--burnin", dict(type=int, help="steps discarded first (default draws/4)")),
    ("--thin", dict(type=int, help="steps per recorded draw (default 1)")),
    ("--step-size", dict(type=float, dest="step_size", help="step size (default: chosen from the model)")),
    ("--localization", dict(type=float, help="localisation strength γ")),
    ("--localize-at", dict(choices=LOCALIZATIONS, dest="localize_at",
                           help="centre w*: the empirical minimum reached from the true parameter (default) "
                                "or the true parameter itself")),
    ("--nbeta", dict(type=float, help="inverse temperature times n (default n/log n)")),
    ("--batch-size", dict(type=int, dest="batch_size", help="minibatch size (default: the model's)")),
    ("--n", dict(type=int, help="data set size n")),
    ("--seed", dict(type=int, help="seed of the data and of the sampler's one generator")),
    ("--device", dict(choices=["auto", "cpu", "cuda"], help="auto uses CUDA when present (default)")),
    ("--dtype", dict(choices=["float32", "float64"], help="sampling precision (default float32)")),
    ("--temperatures", dict(type=int, metavar="K",
                            help="also estimate at K values of nβ over two decades and fit λ − (m−1)/log nβ")),
    ("--fluctuation", dict(action="store_true", help="also estimate the singular fluctuation ν̂ (full-data passes)")),
    ("--calibrate", dict(action="store_true", help="choose the step size by a step-size sweep of short pilot runs")),
)


def add_estimate_commands(commands) -> None:
    parser = commands.add_parser("estimate", help="numerical estimates of λ and m",
                                 description="Numerical estimates of λ and m.")
    estimators = parser.add_subparsers(dest="estimator", required=True, metavar="ESTIMATOR")
    subcommand(estimators, "dln", "LLC of a deep linear network at a balanced true parameter, beside Aoyagi's λ",
               _estimate_dln,
               ("--widths", dict(type=int, nargs="+", required=True, metavar="H",
                                 help="widths [input, hidden..., output]")),
               ("--rank", dict(type=int, required=True, help="rank r of the teacher")),
               ("--singular-values", dict(type=float, nargs="+", dest="singular_values", metavar="S",
                                          help="the teacher's r singular values (default all 1)")),
               *_SAMPLING_OPTIONS)
    subcommand(estimators, "poly", "LLC of a potential K(w) at w* = 0, beside the Newton-polyhedron λ",
               _estimate_poly,
               ("potential", dict(help='K(w) as a sympy expression, e.g. "w1**2*w2**2"')),
               ("--vars", dict(nargs="+", metavar="NAME", help="variables (default: all symbols)")),
               *_SAMPLING_OPTIONS)
    subcommand(estimators, "volume", "λ and m fitted to V(ε) = vol{K < ε} on a box, beside the exact value",
               _estimate_volume,
               ("potential", dict(help='K(w) in 1 to 3 variables, e.g. "(w1 + w2)**2"')),
               ("--vars", dict(nargs="+", metavar="NAME",
                               help="variables, the last integrated exactly (default: all symbols)")),
               ("--box", dict(type=float, default=1.0, help="half-width b of the box [-b, b]^d (default 1)")))


def _config(args, defaults):
    from sltlab.estimators.config import LLCConfig

    given = {f.name: getattr(args, f.name) for f in fields(LLCConfig)
             if getattr(args, f.name, None) is not None}
    if args.fluctuation:
        given["functional_variance"] = True
    return replace(defaults, **given)


def _check_counts(args) -> None:
    for name in ("n", "temperatures"):
        value = getattr(args, name)
        if value is not None and value < 2:
            raise ValueError(f"--{name} must be at least 2, got {value}")


def _estimate_dln(args) -> Result:
    from sltlab.verification.suite import DLN_DEFAULTS, dln_problem

    _check_counts(args)
    config = _config(args, DLN_DEFAULTS.config)
    problem = dln_problem(args.widths, args.rank, n=args.n or DLN_DEFAULTS.n, seed=config.seed,
                          singular_values=args.singular_values,
                          per_sample=args.batch_size is not None or args.fluctuation)
    return _estimate(problem, config, args)


def _estimate_poly(args) -> Result:
    from sltlab.verification.suite import POTENTIAL_DEFAULTS, potential_problem

    _check_counts(args)
    if args.fluctuation:
        raise ValueError("the singular fluctuation needs per-sample likelihoods, and a potential has none")
    config = _config(args, POTENTIAL_DEFAULTS.config)
    problem = potential_problem(args.potential, n=args.n or POTENTIAL_DEFAULTS.n, variables=args.vars)
    # where the Newton polyhedron refuses, the output names the command that answers λ
    answered_by = volume_command(args.potential, args.vars) if problem.exact is None else None
    return _estimate(problem, config, args, exact_answered_by=answered_by)


def _estimate(problem, config, args, exact_answered_by: str | None = None) -> Result:
    from sltlab.verification.suite.render import render_estimate
    from sltlab.verification.suite.summary import run_estimate

    progress = not args.json and sys.stderr.isatty()
    calibration = None
    if args.calibrate:
        from sltlab.estimators.calibrate import (CalibrationError, calibrate_step_size, calibrated_config, describe,
                                          sweep_records)

        if args.step_size is not None:
            raise ValueError("--calibrate chooses the step size: leave out --step-size")
        try:
            found = calibrate_step_size(problem.loss, problem.true_parameter, problem.data, config, n=problem.n,
                                        progress=progress)
        except CalibrationError as failure:
            return Result({"calibration_failed": str(failure), "sweep": sweep_records(failure.sweep)},
                          f"calibration failed: {failure}", exit_code=1)
        config, calibration = calibrated_config(config, found), describe(found)
    summary = run_estimate(problem, config, temperatures=args.temperatures, progress=progress)
    if exact_answered_by is not None:
        summary["exact_answered_by"] = exact_answered_by
    if calibration is not None:
        summary["calibration"], summary["step_size_rule"] = calibration, calibration["reason"]
    return Result(summary, render_estimate(summary), exit_code=int(summary["llc_mean"] is None))


def volume_command(potential: str, variables=None) -> str | None:
    """The ``sltlab estimate volume`` command that fits λ and m of ``potential`` where the
    Newton polyhedron refuses, or None when it has more variables than the fit takes."""
    from sltlab.verification.reference.volume_scaling import MAX_VARIABLES

    _, symbols = theory.parse_expression(potential, variables)
    if len(symbols) > MAX_VARIABLES:
        return None
    named = "" if variables is None else " --vars " + " ".join(shell_word(name) for name in variables)
    return f"{PROG} estimate volume {shell_word(potential)}{named}"


def _estimate_volume(args) -> Result:
    from sltlab.verification.reference.volume_scaling import volume_scaling

    try:
        exact, refusal = theory.newton(args.potential, variables=args.vars).as_dict(), None
        exact_text = f"λ = {exact['lambda']}, m = {exact['multiplicity']} (Newton polyhedron)"
    except theory.DegenerateError as error:
        exact, refusal = None, " ".join(str(error).split())
        exact_text = f"none: {refusal}"
    fit = volume_scaling(args.potential, variables=args.vars, box=args.box)
    volumes = "   ".join(f"V({eps:.0e}) = {v:.4g}" for eps, v in zip(fit.epsilons[::4], fit.volumes[::4]))
    lines = [f"volume scaling of K = {args.potential} on [-{args.box:g}, {args.box:g}]^d",
             f"  fitted λ  {fit.lam:.4f}", f"  fitted m  {fit.multiplicity}", f"  exact     {exact_text}",
             f"  {volumes}"]
    return Result({"lambda_fit": fit.lam, "multiplicity_fit": fit.multiplicity, "epsilons": fit.epsilons,
                   "volumes": fit.volumes, "residuals_by_m": fit.residuals, "exact": exact,
                   "newton_refusal": refusal}, "\n".join(lines))
