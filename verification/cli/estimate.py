"""``sltlab estimate``: LLC estimates of deep linear networks and potentials beside the exact
λ, and the volume-scaling fit of λ and m."""

from __future__ import annotations

import sys
from dataclasses import fields, replace

from sltlab import theory
from sltlab.estimators.cooled_share import without_idle_cooling
from sltlab.estimators.config import (FALLBACK_SAMPLERS, HMC_TRAJECTORIES, LOCALIZATIONS, MAX_METRIC_PARAMETERS,
                                     METRICS, SAMPLER_NAMES, LLCConfig)
from sltlab.verification.cli.command import PROG, Result, number, seed, shell_word, subcommand
from sltlab.verification.cli.own_model import add_module_command
from sltlab.verification.defaults import DLN_DEFAULTS, DLN_ESTIMATE_DEFAULTS, POTENTIAL_DEFAULTS, ModelDefaults
from sltlab.verification.threads import threads_option, use_threads

# Settings whose default is resolved at run time, and the rule that resolves them.
RESOLVED_AT_RUN_TIME = {"burnin": "draws/4, SGLD's up to 4× the draws' steps where its chains from w* would lag",
                        "step_size": "the sampler's step-size rule", "nbeta": "n/log n", "batch_size": "all n rows"}
# The settings of a family's recipe that its fallback was chosen for.
RECIPE = ("sampler", "draws", "burnin", "thin", "step_size")


def sampling_options(family: ModelDefaults, family_name: str, rows_n: int | None = None) -> tuple:
    """The options of every sampling estimate, each help ending in its default for the family,
    read from ``family`` (sltlab.verification.defaults). Where it differs from a bare
    ``LLCConfig()``'s, the help says so. An option left out (None) keeps the family's default."""
    bare = LLCConfig()

    def default(field: str) -> str:
        value, plain = getattr(family.config, field), getattr(bare, field)
        text = _shown(field, value)
        return text if value == plain else f"{text} for {family_name}; LLCConfig() alone: {_shown(field, plain)}"

    return (
        ("--sampler", dict(choices=SAMPLER_NAMES, help=f"sampler (default: {default('sampler')})")),
        ("--chains", dict(type=int, help=f"number of chains, run as one batch (default: {default('chains')})")),
        ("--draws", dict(type=int, help=f"recorded draws per chain; with --sampler hmc trajectories, "
                                        f"{HMC_TRAJECTORIES['draws']:,} unless given (default: {default('draws')})")),
        ("--burnin", dict(type=int, help=f"steps discarded first; with --sampler hmc trajectories, its step "
                                         f"adapting, {HMC_TRAJECTORIES['burnin']:,} unless given "
                                         f"(default: {default('burnin')})")),
        ("--thin", dict(type=int, help=f"steps per recorded draw; with --sampler hmc {HMC_TRAJECTORIES['thin']} "
                                       f"unless given (default: {default('thin')})")),
        ("--step-size", dict(type=float, dest="step_size", help=f"step size (default: {default('step_size')})")),
        ("--localization", dict(type=float, help=f"localisation strength γ (default: {default('localization')})")),
        ("--localize-at", dict(choices=LOCALIZATIONS, dest="localize_at",
                               help="centre w*: the empirical minimum reached from the true parameter, or the true "
                                    f"parameter itself (default: {default('localize_at')})")),
        ("--nbeta", dict(type=float, help=f"inverse temperature times n (default: {default('nbeta')})")),
        ("--batch-size", dict(type=int, dest="batch_size", help=f"minibatch size (default: {default('batch_size')})")),
        ("--n", dict(type=int, help=f"data set size n (default: {_shown('n', family.n)}"
                                    + ("" if rows_n is None else f"; {_shown('n', rows_n)} with --batch-size or "
                                       "--fluctuation, which need the rows") + ")")),
        ("--seed", dict(type=seed, help=f"seed of the data and of the sampler's one generator "
                                       f"(default: {default('seed')})")),
        ("--device", dict(choices=["auto", "cpu", "cuda"],
                          help=f"auto uses CUDA when present (default: {default('device')})")),
        ("--dtype", dict(choices=["float32", "float64"], help=f"sampling precision (default: {default('dtype')})")),
        ("--metric", dict(choices=METRICS, help=f"MALA's metric: identity, hessian ((nβ + γ)·P⁻¹, P = nβ·H(w*) + γ; "
                                                f"≤ {MAX_METRIC_PARAMETERS:,} parameters) or auto (hessian if U is "
                                                f"near P's Gaussian, mixing λ̂ faster) (default: {default('metric')})")),
        ("--temperatures", dict(type=int, metavar="K", help="also estimate at K (2-64) values of nβ over two decades "
                                                            "and fit λ − (m−1)/log nβ; with sgld or mala the K rungs "
                                                            "are one batched run (default: off)")),
        ("--fluctuation", dict(action="store_true",
                               help="also estimate the singular fluctuation ν̂, from passes over all n rows "
                                    "(default: off)")),
        ("--compile", dict(action="store_true", dest="compile_step", default=None,
                           help="run the sampling step through torch.compile: seconds to a minute to compile, "
                                f"then fewer µs per step on long runs (default: {default('compile_step')})")),
        ("--reruns", dict(type=int, metavar="K",
                          help="while the chains fail the mixing gate (R-hat > 1.05 or ESS < 200), run as long again "
                               "from where they ended, at most K times, the earlier run discarded as burn-in "
                               f"(default: {default('reruns')})")),
        ("--extend-unmixed", dict(type=int, metavar="K", dest="extend_unmixed",
                                  help="then, while they fail it on R-hat or ESS, go on from where they ended for as "
                                       "many draws as they hold, every draw kept, at most K times, and only while "
                                       "the rounds left could bring them through "
                                       f"(default: {default('extend_unmixed')})")),
        ("--fallback", dict(choices=(*FALLBACK_SAMPLERS, "none"),
                            help="when the chains still fail the mixing gate, estimate anew from w* with this sampler "
                                 f"and its own counts ({HMC_TRAJECTORIES['draws']:,} trajectories after "
                                 f"{HMC_TRAJECTORIES['burnin']:,} for hmc); dropped when --sampler, --draws, --burnin, "
                                 f"--thin or --step-size change the family's recipe (default: {default('fallback')})")),
        ("--anneal", dict(type=float, metavar="F",
                          help="MALA only: its warm-up starts at nβ/F and cools to nβ over its first half, and the "
                               "run continues from where the warm-up ended, so that directions held only by γ "
                               f"relax F times faster (default: {default('anneal')})")),
        ("--cooled-share", dict(type=float, metavar="S", dest="cooled_share",
                                help="with --anneal, only this share of the chains cools; the others start at w* at "
                                     "nβ, so R-hat compares chains that came from above and from below (default: "
                                     f"{default('cooled_share')})")),
        ("--calibrate", dict(action="store_true",
                             help="choose the step size by a sweep of short pilot runs (default: off)")),
        threads_option(),
    )


def _shown(field: str, value) -> str:
    if value is None and field == "fallback":
        return "none"
    if value is None:
        return RESOLVED_AT_RUN_TIME[field]
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_estimate_commands(commands) -> None:
    parser = commands.add_parser("estimate", help="numerical estimates of λ and m",
                                 description="Numerical estimates of λ and m.")
    estimators = parser.add_subparsers(dest="estimator", required=True, metavar="ESTIMATOR")
    subcommand(estimators, "dln", "LLC of a deep linear network at a balanced true parameter, beside Aoyagi's λ",
               _estimate_dln,
               ("--widths", dict(type=int, nargs="+", required=True, metavar="H",
                                 help="widths [input, hidden..., output]")),
               ("--rank", dict(type=int, required=True, help="rank r of the teacher")),
               ("--singular-values", dict(type=number, nargs="+", dest="singular_values", metavar="S",
                                          help="the teacher's r singular values (default: all 1)")),
               ("--sizes", dict(type=int, nargs="+", metavar="N",
                                help="estimate at each of several sample sizes (each its own data, the same teacher "
                                     "and true parameter) and extrapolate λ̂ to nβ → ∞ by λ̂(nβ) = λ − c/log nβ; "
                                     "where the shortfall falls faster than 1/log nβ this overshoots λ (default: "
                                     "one size, --n)")),
               ("--reference", dict(action="store_true",
                                    help="also compute the exact finite-temperature LLC nβ·E[ΔL] at the same centre, "
                                         "nβ and γ by blocked Gibbs sampling, and judge λ̂ against it (default: off)")),
               *sampling_options(DLN_ESTIMATE_DEFAULTS, "deep linear networks", rows_n=DLN_DEFAULTS.n))
    subcommand(estimators, "poly", "LLC of a potential K(w) at w* = 0, beside the Newton-polyhedron λ", _estimate_poly,
               ("potential", dict(help='K(w) as a sympy expression, e.g. "w1**2*w2**2"')),
               ("--vars", dict(nargs="+", metavar="NAME", help="variables (default: all symbols)")),
               *sampling_options(POTENTIAL_DEFAULTS, "potentials"))
    add_module_command(estimators)
    subcommand(estimators, "volume", "λ and m fitted to V(ε) = vol{K < ε} on a box, beside the exact value",
               _estimate_volume,
               ("potential", dict(help='K(w) in 1 to 3 variables, e.g. "(w1 + w2)**2"')),
               ("--vars", dict(nargs="+", metavar="NAME",
                               help="variables, the last integrated exactly (default: all symbols)")),
               ("--box", dict(type=float, default=1.0, help="half-width b of the box [-b, b]^d (default 1)")))


def _config(args, defaults):
    """The family's defaults with the options given. Choosing hmc over a family whose default
    sampler is another also takes hmc's counts, which count trajectories, not steps. The family's
    fallback belongs to its recipe: another sampler, run length or step drops it unless
    --fallback is given; so does its cooling (anneal), which only MALA's warm-up applies."""
    given = {f.name: getattr(args, f.name) for f in fields(LLCConfig)
             if getattr(args, f.name, None) is not None}
    if args.fluctuation:
        given["functional_variance"] = True
    if any(given.get(name, getattr(defaults, name)) != getattr(defaults, name) for name in RECIPE):
        defaults = replace(defaults, fallback=None)
    if given.get("sampler") == "hmc" and defaults.sampler != "hmc":
        defaults = replace(defaults, **HMC_TRAJECTORIES)
    defaults = without_idle_cooling(defaults, *(given.get(k, getattr(defaults, k)) for k in ("sampler", "anneal")))
    if given.get("fallback") == "none":
        given["fallback"] = None
    return replace(defaults, **given)


def _check_counts(args) -> None:
    if args.n is not None and args.n < 2:
        raise ValueError(f"--n must be at least 2, got {args.n}")
    if args.temperatures is not None:   # refused before the data are built or any sampling
        from sltlab.estimators.multiplicity import check_rung_count, temperature_ladder

        check_rung_count(args.temperatures)
        if args.nbeta is not None:
            temperature_ladder(args.nbeta, args.temperatures)


def _estimate_dln(args) -> Result:
    from sltlab.verification.suite import dln_problem

    use_threads(args.threads)
    _check_counts(args)
    config = _config(args, DLN_DEFAULTS.config)
    one_size_only = [option for option, given in (
        ("--batch-size", args.batch_size is not None), ("--fluctuation", args.fluctuation),
        ("--temperatures", args.temperatures is not None), ("--calibrate", args.calibrate),
        ("--nbeta", args.nbeta is not None)) if given]
    if args.sizes is not None and args.n is not None:
        raise ValueError("give the sample size by either --n or --sizes, not both")
    if args.sizes is not None and len(set(args.sizes)) < len(args.sizes):
        raise ValueError(f"--sizes repeats a sample size, got {args.sizes}: the extrapolation needs different ones")
    rows_needed = args.batch_size is not None or args.fluctuation
    if args.reference and (rows_needed or not config.localization > 0):   # it had been left out, unsaid
        raise ValueError("--reference (blocked Gibbs) needs γ > 0 and the full data: no --batch-size or --fluctuation")
    sizes = sorted(set(args.sizes or [args.n or (DLN_DEFAULTS.n if rows_needed else DLN_ESTIMATE_DEFAULTS.n)]))
    if sizes[0] < 2:
        raise ValueError(f"every sample size must be at least 2, got {sizes[0]}")
    if len(sizes) > 1:
        if one_size_only:
            raise ValueError(f"{', '.join(one_size_only)} work{'s' if len(one_size_only) == 1 else ''} at one sample "
                             "size: give one with --n, not several --sizes")
        return _extrapolated(args, config, sizes)
    problem = dln_problem(args.widths, args.rank, n=sizes[0], seed=config.seed, singular_values=args.singular_values,
                          per_sample=rows_needed)
    return _estimate(problem, config, args)


def _extrapolated(args, config: LLCConfig, sizes: list[int]) -> Result:
    from sltlab.verification.suite.extrapolation import extrapolated_dln
    from sltlab.verification.suite.render import render_estimate

    theory.deep_linear(args.widths, args.rank)   # bad widths or rank: one line before any sampling
    summary = extrapolated_dln(args.widths, args.rank, config, sizes=sizes, singular_values=args.singular_values,
                               reference=args.reference, progress=not args.json and sys.stderr.isatty())
    summary["torch_threads"] = args.threads
    return Result(summary, render_estimate(summary), exit_code=int(summary["llc_mean"] is None))


def _estimate_poly(args) -> Result:
    from sltlab.verification.suite import potential_problem

    use_threads(args.threads)
    _check_counts(args)
    if args.fluctuation:
        raise ValueError("the singular fluctuation needs per-sample likelihoods, and a potential has none")
    if args.batch_size is not None:
        raise ValueError("--batch-size draws minibatches of data rows, and a potential has none: leave it out")
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
        from sltlab.estimators.calibrate import CalibrationError, calibrate_for_run, sweep_records

        if args.step_size is not None:
            raise ValueError("--calibrate chooses the step size: leave out --step-size")
        try:
            config, calibration = calibrate_for_run(problem.loss, problem.true_parameter, problem.data, config,
                                                    n=problem.n, progress=progress)
        except CalibrationError as failure:
            return Result({"calibration_failed": str(failure), "sweep": sweep_records(failure.sweep)},
                          f"calibration failed: {failure}", exit_code=1)
    summary = run_estimate(problem, config, temperatures=args.temperatures, progress=progress,
                           reference=getattr(args, "reference", False), calibrated=calibration is not None)
    summary["torch_threads"] = args.threads
    if exact_answered_by is not None:
        summary["exact_answered_by"] = exact_answered_by
    if calibration is not None:
        summary["calibration"] = calibration
        if calibration["sweep"]:
            summary["step_size_rule"] = calibration["reason"]
    return Result(summary, render_estimate(summary), exit_code=int(summary["llc_mean"] is None))


def volume_command(potential: str, variables=None) -> str | None:
    """The ``sltlab estimate volume`` command that fits λ and m of ``potential`` where the
    Newton polyhedron refuses, or None when it has more variables than the fit takes."""
    from sltlab.verification.reference.volume_integral import MAX_VARIABLES

    _, symbols = theory.parse_expression(potential, variables)
    if len(symbols) > MAX_VARIABLES:
        return None
    return _potential_command("volume", potential, variables)


def answering_command(potential: str, variables=None) -> str:
    """The command that answers λ where the Newton polyhedron refuses: the volume fit, or, with
    more variables than it takes, the sampler's estimate ``sltlab estimate poly``."""
    return volume_command(potential, variables) or _potential_command("poly", potential, variables)


def _potential_command(kind: str, potential: str, variables) -> str:
    named = "" if variables is None else " --vars " + " ".join(shell_word(name) for name in variables)
    return f"{PROG} estimate {kind} {shell_word(potential)}{named}"


def _estimate_volume(args) -> Result:
    from sltlab.verification.reference.volume_scaling import disagreement, volume_scaling

    try:
        exact, refusal = theory.newton(args.potential, variables=args.vars).as_dict(), None
    except theory.DegenerateError as error:
        exact, refusal = None, " ".join(str(error).split())
    fit = volume_scaling(args.potential, variables=args.vars, box=args.box)
    volumes = "   ".join(f"V({eps:.0e}) = {v:.4g}" for eps, v in zip(fit.epsilons[::4], fit.volumes[::4]))
    disagrees = exact and disagreement(fit, exact["lambda"], exact["multiplicity"])
    known = f"λ = {exact['lambda']}, m = {exact['multiplicity']} (Newton polyhedron)" if exact else f"none: {refusal}"
    lines = [f"volume scaling of K = {args.potential} on [-{args.box:g}, {args.box:g}]^d", f"  fitted λ  {fit.lam:.4f}",
             f"  fitted m  {fit.multiplicity}", f"  exact     {known}", f"  {volumes}"] + (
        [f"  DISAGREES: {disagrees}"] if disagrees else [])
    return Result({"lambda_fit": fit.lam, "multiplicity_fit": fit.multiplicity, "epsilons": fit.epsilons,
                   "volumes": fit.volumes, "residuals_by_m": fit.residuals, "exact": exact, "newton_refusal": refusal,
                   "disagreement": disagrees or None}, "\n".join(lines), exit_code=int(bool(disagrees)))
