"""Bayesian phase transitions on the command line: ``sltlab theory tms``, ``sltlab theory
transitions``, ``sltlab plot transitions`` and ``sltlab dynamics bayes``.

The study writes ``DIR/bayes-<model>.json`` and ``DIR/bayes-<model>.png`` and keeps its result
under ``DIR/cache``, keyed by the settings; exit code 1 when a target is missed.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from sltlab.verification.cli.command import REFUSED, Result, exact_number, folder, seed, subcommand
from sltlab.verification.threads import threads_option, use_threads

_PHASES = (
    ("--widths", dict(type=int, nargs="+", metavar="H", help="deep linear network widths [input, hidden..., output]")),
    ("--singular-values", dict(type=exact_number, nargs="+", dest="singular_values", metavar="S",
                               help="the teacher's singular values, exact decimals or fractions (e.g. 1 0.4 1/5)")),
    ("--features", dict(type=int, metavar="C", help="toy model of superposition with C features (instead)")),
)
_STUDY = (("n_min", float, "--n-min", "smallest n of the ladder"), ("n_max", float, "--n-max", "largest n"),
          ("rungs", int, "--rungs", "sample sizes on the ladder"),
          ("ladders", int, "--ladders", "independent ladders, an even number ≥ 4 (half start in each phase)"),
          ("warmup", int, "--warmup", "HMC steps tuning the step sizes"), ("draws", int, "--draws", "recorded draws"),
          ("thin", int, "--thin", "steps per draw"), ("leapfrog_steps", int, "--leapfrog-steps", "per HMC step"),
          ("seed", seed, "--seed", "seed of teacher, starts and sampler"))


def add_theory_transition_commands(models) -> None:
    subcommand(models, "tms", "regular k-gon critical points of the toy model of superposition: loss, kind, λ",
               _theory_tms,
               ("--features", dict(type=int, required=True, metavar="C", help="number of features c")),
               ("--k", dict(type=int, help="alive columns (default: every k, with dead biases all negative "
                                           "or all positive)")),
               ("--positive-dead", dict(type=int, default=0, dest="positive_dead", metavar="P",
                                        help="dead columns with positive bias 1/(2c) (default 0)")))
    subcommand(models, "transitions", "free energies of phases and the predicted critical n of each transition",
               _theory_transitions, *_PHASES)


def add_transition_plot_command(figures) -> None:
    subcommand(figures, "transitions", "free energy of each phase over n and the predicted occupancy",
               _plot_transitions, *_PHASES,
               ("--out", dict(type=Path, required=True, metavar="FILE", help="figure file (.png)")))


def add_bayes_study_command(studies) -> None:
    subcommand(studies, "bayes", "Bayesian phase transitions: the critical n predicted from exact λ beside the "
               "switch of posterior phase occupancy", _study,
               ("--model", dict(choices=["dln", "tms"], required=True, help="deep linear networks or the toy model")),
               ("--widths", dict(type=int, nargs="+", action="append", metavar="H",
                                 help="dln widths; repeat for several architectures (default 6 3 6 and 6 3 3 6)")),
               ("--singular-values", dict(type=exact_number, nargs="+", action="append", dest="singular_values",
                                          metavar="S", help="the teacher's singular values, one list per --widths")),
               ("--features", dict(type=int, metavar="C", help="tms features (default 6)")),
               ("--data", dict(choices=["population", "sampled"],
                               help="sample exp(−n·L) with L the population loss (default), or the posterior of "
                                    "a drawn data set of n rows, one per pair of ladders")),
               *((flag, dict(type=kind, dest=name, help=f"{text} (default: the study's)")) for name, kind, flag, text
                 in _STUDY),
               ("--out", dict(type=folder, required=True, metavar="DIR",
                              help="output folder (results, figure, cache)")),
               threads_option())


def _theory_tms(args) -> Result:
    from sltlab.theory.tms import kgon, tms_phases

    if args.k is None:
        if args.positive_dead:
            raise ValueError("--positive-dead sets the dead columns of one k-gon: give --k with it")
        points = list(tms_phases(args.features, each=kgon_progress(args))[1])
    else:
        points = [kgon(args.features, args.k, args.positive_dead)]
    header = f"{'point':<28}{'length':>9}{'bias':>10}{'loss':>9}{'½‖w‖²':>9}{'rank':>5}  {'kind':<8}{'λ':>6}"
    lines = [f"toy model of superposition, c = {args.features} features, two hidden dimensions", header]
    for point in points:
        table = point.as_dict()
        lines.append(f"{point.name:<28}{point.length:>9.6f}{point.bias:>10.6f}{point.loss:>9.5f}"
                     f"{point.half_norm_squared:>9.5f}{point.rank:>5}  {point.kind:<8}{table['lambda'] or '—':>6}")
    if args.k is not None:
        point = points[0]
        lines += [f"  {point.reason}", f"  ‖∇L‖ = {point.gradient_norm:.1e}; Hessian eigenvalues counted as zero ≤ "
                                       f"{point.as_dict()['largest_zero_eigenvalue']:.1e}, nonzero ≥ "
                                       f"{point.as_dict()['smallest_nonzero_eigenvalue'] or 0:.1e}"]
        return Result(points[0].as_dict(), "\n".join(lines), exit_code=REFUSED if point.kind == "refused" else 0)
    return Result({"features": args.features, "points": [p.as_dict() for p in points]}, "\n".join(lines))


def kgon_progress(args):
    """A bar over the k-gons looked at, on a terminal and not under ``--json`` (else None):
    ``each`` of :func:`sltlab.theory.tms.tms_phases`."""
    if getattr(args, "json", False) or not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm

    bar = None

    def each(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or tqdm(total=total, desc="k-gons", unit="point", leave=False)
        bar.update(done - bar.n)
        if done == total:
            bar.close()
    return each


def _classes(args):
    """(title, classes, Laplace classes or None, a note or None) from --widths/--singular-values or
    --features."""
    from sltlab.theory.free_energy import dln_phases

    if (args.features is None) == (args.widths is None) or (args.features is not None and args.singular_values):
        raise ValueError("give either --widths with --singular-values, or --features")
    if args.features is not None:
        from sltlab.theory.tms import tms_phases
        from sltlab.theory.tms_laplace import laplace_phases

        classes, laplace = {}, {}
        phases, points = tms_phases(args.features, each=kgon_progress(args))
        for phase in phases:
            classes.setdefault(phase.name.split()[0], []).append(phase)
        if not classes:
            raise ValueError(f"the toy model with c = {args.features} features has no k-gon minimum to compare: "
                             "k-gons with k ≤ 4 sit on a ReLU kink (sltlab theory tms lists them)")
        for phase in laplace_phases(points):
            laplace.setdefault(phase.name.split()[0], []).append(phase)
        return (f"toy model of superposition, c = {args.features}", classes, laplace,
                "each k-gon, its dead biases of either sign, is one phase of free energy −log Σ exp(−F_n) over its "
                "rows")
    if not args.singular_values:
        raise ValueError("--widths needs --singular-values")
    phases = dln_phases(args.widths, args.singular_values)
    title = f"deep linear network {args.widths}, teacher singular values {' '.join(args.singular_values)}"
    unlearnable = len(args.singular_values) - min(args.widths)
    note = None if unlearnable <= 0 else (f"the teacher has rank {len(args.singular_values)} and the narrowest layer "
                                          f"{min(args.widths)}: its {unlearnable} smallest mode(s) cannot be learnt, "
                                          "and every phase keeps their loss")
    return title, {p.name: [p] for p in phases}, None, note


def _theory_transitions(args) -> Result:
    from sltlab.theory.free_energy import N_MAX, N_MIN, critical_n, preferred_at, transitions

    title, classes, laplace, note = _classes(args)
    found = transitions(classes)
    lines = [title, *([note] if note else []), f"{'phase':<22} {'L':>11} {'λ':>6} {'m':>2} {'c = ½‖w*‖²':>11}"]
    phases = [p for members in classes.values() for p in members]
    for phase in phases:   # general format: a teacher's scale can make L and c any size
        lines.append(f"{phase.name:<22} {float(phase.loss):>11.6g} {str(phase.lam):>6} {phase.multiplicity:>2} "
                     f"{float(phase.constant):>11.6g}")
    first = preferred_at(classes, N_MIN)
    lines.append(f"preferred at n = {N_MIN:g}, the start of the range searched: {first}")
    rows = []
    for t in found:
        row = t.as_dict()
        if laplace and t.before in laplace and t.after in laplace:
            row["critical_n_laplace"] = critical_n(laplace[t.before], laplace[t.after])
        rows.append(row)
        extra = f", with the Laplace constant {row['critical_n_laplace']:.1f}" if row.get("critical_n_laplace") else ""
        without = t.critical_n_without_constant
        lines.append(f"{t.before} → {t.after}: n = {t.critical_n:.1f} (without c: "
                     f"{'none' if without is None else f'{without:.1f}'}{extra})")
    last = preferred_at(classes, N_MAX)
    lines.append(f"preferred at n = {N_MAX:.0e}, the end of the range searched: {last}")
    return Result({"title": title, "note": note, "phases": [p.as_dict() for p in phases], "transitions": rows,
                   "n_min": N_MIN, "preferred_at_n_min": first, "n_max": N_MAX, "preferred_at_n_max": last},
                  "\n".join(lines))


def _plot_transitions(args) -> Result:
    from sltlab.verification.catalogue.transitions import plot_transitions

    title, classes, laplace, _ = _classes(args)
    path = plot_transitions(classes, title, args.out, laplace_classes=laplace)
    return Result({"written": {"figure": str(path)}}, f"wrote {path}")


def _setups(args):
    from sltlab.verification.dynamics.bayes import BAYES_SETUPS

    given = {name: getattr(args, name) for name, *_ in [*_STUDY, ("data",)] if getattr(args, name) is not None}
    if args.model == "tms":
        if args.widths or args.singular_values:
            raise ValueError("--widths and --singular-values belong to --model dln")
        base = BAYES_SETUPS["tms"][0]
        setups = [replace(base, **given, **({} if args.features is None else {"features": args.features}))]
    else:
        if args.features is not None:
            raise ValueError("--features belongs to --model tms")
        if (args.widths is None) != (args.singular_values is None) or len(args.widths or ()) != len(
                args.singular_values or ()):
            raise ValueError("give one --singular-values list for every --widths")
        chosen = (zip(args.widths, args.singular_values) if args.widths else
                  [(s.widths, s.singular_values) for s in BAYES_SETUPS["dln"]])
        base = BAYES_SETUPS["dln"][0]
        setups = [replace(base, widths=tuple(w), singular_values=tuple(str(v) for v in s), **given) for w, s in chosen]
    for setup in setups:
        setup.validate()
    return setups


def _study(args) -> Result:
    use_threads(args.threads)
    setups = _setups(args)
    from sltlab.verification.dynamics.bayes import bayes_study
    from sltlab.verification.dynamics.bayes_figures import plot_bayes
    from sltlab.verification.dynamics.bayes_problems import build_problem

    problems = [build_problem(setup) for setup in setups]   # refuses a range with no predicted transition
    args.out.mkdir(parents=True, exist_ok=True)                # and only then makes the folder
    progress = not args.json and sys.stderr.isatty()
    clock = time.perf_counter()
    studies = [bayes_study(setup, cache=args.out / "cache", progress=progress, problem=problem)
               for setup, problem in zip(setups, problems)]
    seconds = time.perf_counter() - clock
    name = f"bayes-{args.model}"
    figure = plot_bayes(studies, args.out / f"{name}.png")
    passed = all(study["targets_met"] for study in studies)
    summary = {"studies": studies, "targets_met": passed, "wall_seconds": seconds, "torch_threads": args.threads,
               "figure": str(figure), "results": str(args.out / f"{name}.json")}
    (args.out / f"{name}.json").write_text(json.dumps(summary, allow_nan=False, indent=1))
    return Result(summary, _text(summary), exit_code=int(not passed))


def _text(summary) -> str:
    lines = []
    for study in summary["studies"]:
        sampler = study["sampler"]
        lines += [f"{study['title']} (d = {study['dim']}): posterior {sampler['likelihood']} × N(w; 0, I), n = "
                  f"{study['n'][0]:.0f} … {study['n'][-1]:.0f} on {study['setup']['rungs']} rungs",
                  f"  {sampler['chains']} chains: replica exchange × HMC, {study['setup']['draws']} draws; round trips "
                  f"per ladder {min(sampler['round_trips'])}–{max(sampler['round_trips'])}, swap acceptance ≥ "
                  f"{min(sampler['swap_acceptance']):.2f}; ladders started in {' and '.join(study['start_classes'])}",
                  f"  {'transition':<18}{'predicted':>10}{'no c':>8}{'Laplace':>9}{'observed ± SE':>17}"
                  f"{'by start':>16}{'/'.join(_SETTINGS[name] for name in _settings(study)):>19}{'error':>8}"]
        for row in study["transitions"]:
            observed = _rounded(row["observed_n"], "none") + ("" if row["observed_n"] is None else
                                                              f" ± {row['observed_se'] or 0:.0f}")
            starts = "/".join(_rounded(v) for v in row["observed_by_start"])
            settings = "/".join(_rounded(row["observed_by_classifier_setting"][name]) for name in _settings(study))
            error = "" if row["relative_error"] is None else f"{100 * row['relative_error']:+.0f}%"
            laplace = _rounded(row["predicted_n_laplace"], "")
            without = _rounded(row["predicted_n_without_constant"], "")
            lines.append(f"  {row['before'] + ' → ' + row['after']:<18}{row['predicted_n']:>10.0f}{without:>8}"
                         f"{laplace:>9}{observed:>17}{starts:>16}{settings:>19}{error:>8}")
            if study["unit_variance_scale"] not in (1, None):
                scaled = row["observed_n_unit_variance_likelihood"]
                hull = f" ({_rounded(scaled['label_hull'])} by the hull)" if "label_hull" in scaled else ""
                lines.append(f"    the same draws for a unit-variance Gaussian likelihood (n' = "
                             f"{study['unit_variance_scale']:g}n): {_rounded(scaled['label'])}{hull}")
        for row in study["llc"]:
            estimate = "diverged" if row["llc_mean"] is None else f"{row['llc_mean']:.3f} ± {row['llc_se'] or 0:.3f}"
            lines.append(f"  LLC {row['name']:<22} λ = {row['lambda_exact']:<5} λ̂ = {estimate}  "
                         f"({_signed_percent(row['relative_error'])}, R-hat {_rounded(row['rhat'], '—', '.3f')}, ESS "
                         f"{_rounded(row['ess'], '—')})")
        lines += [f"  target {name.replace('_', ' ')}: {'met' if met else 'MISSED'}"
                  for name, met in study["targets"].items()]
    cached = all(study["from_cache"] for study in summary["studies"])
    lines += [f"wall time {summary['wall_seconds']:.0f} s with {summary['torch_threads']} torch thread(s)"
              + (" (loaded from the cache)" if cached else ""), f"wrote {summary['results']} and {summary['figure']}"]
    return "\n".join(lines)


_SETTINGS = {"label_loose": "loose", "label_strict": "strict", "label_hull": "hull"}


def _settings(study) -> list[str]:
    """The classifier settings the study recorded besides its own, in a fixed order."""
    recorded = study["transitions"][0]["observed_by_classifier_setting"] if study["transitions"] else {}
    return [name for name in _SETTINGS if name in recorded]


def _rounded(value: float | None, missing: str = "—", form: str = ".0f") -> str:
    return missing if value is None else f"{value:{form}}"


def _signed_percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:+.1f}%"
