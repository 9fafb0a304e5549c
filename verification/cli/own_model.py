"""``sltlab estimate module``: the LLC of a researcher's own ``nn.Module`` on their own data, from
files, through the same calls as in Python (:func:`sltlab.estimators.estimate_llc` at one
checkpoint, :func:`sltlab.estimators.estimate_llc_along` along several, whose curve's stages
:func:`sltlab.estimators.stages.detect_stages` reads)."""

from __future__ import annotations

import json
import math
import re
import sys
import tempfile
from contextlib import nullcontext, redirect_stdout
from pathlib import Path

from sltlab.estimators.config import LOCALIZATIONS, METRICS, SAMPLER_NAMES
from sltlab.estimators.gate import DRIFT_MAX, ESS_MIN, RHAT_MAX, SIDES_MAX, other_warnings
from sltlab.estimators.result_text import shown
from sltlab.verification.cli.command import Result, folder, seed, subcommand
from sltlab.verification.threads import threads_option, use_threads

DEFAULTS = ("default: the one call's (MALA on the full data, 8 chains × 4,000 draws, going on while they fail the "
            "mixing gate; at one checkpoint HMC as the fallback), LLCConfig()'s when a sampler or batch size is given")
SETTINGS = (("--sampler", dict(choices=SAMPLER_NAMES)), ("--chains", dict(type=int)), ("--draws", dict(type=int)),
            ("--burnin", dict(type=int)), ("--step-size", dict(type=float, dest="step_size")),
            ("--localization", dict(type=float, metavar="GAMMA")),
            ("--localize-at", dict(choices=LOCALIZATIONS, dest="localize_at")), ("--nbeta", dict(type=float)),
            ("--batch-size", dict(type=int, dest="batch_size")), ("--seed", dict(type=seed)),
            ("--device", dict(choices=["auto", "cpu", "cuda"])), ("--dtype", dict(choices=["float32", "float64"])),
            ("--metric", dict(choices=METRICS)),
            ("--extend-unmixed", dict(type=int, dest="extend_unmixed", metavar="K")))


def add_module_command(estimators) -> None:
    subcommand(estimators, "module", "LLC of your own nn.Module on your data, at one checkpoint or along several "
               "with the stages of the curve", _estimate_module,
               ("--model", dict(required=True, metavar="FILE.py:NAME",
                                help="a Python file and the nn.Module it defines, or a function or class of no "
                                     "arguments that returns one")),
               ("--data", dict(required=True, metavar="DATA.pt",
                               help="a torch.save file of a tuple of tensors (inputs first, targets last) or a dict "
                                    "of named tensors, a row per sample; n is its number of rows")),
               ("--checkpoint", dict(nargs="+", metavar="CKPT.pt",
                                     help="state dicts, or training checkpoints holding one under state_dict, "
                                          "model_state_dict or model, loaded into the model in turn: one estimate at "
                                          "each (MALA's step tuned at each, an unadjusted sampler's calibrated once), "
                                          "and, when there are as many as detect_stages reads a curve from, the "
                                          "stages of the curve (default: the model as NAME gives it)")),
               ("--steps", dict(type=float, nargs="+", metavar="STEP",
                                help="the training step of each checkpoint, for the stages (default: the step each "
                                     "file records under step, global_step, iteration or epoch, else 0, 1, 2, ...)")),
               ("--calibrate-at", dict(default="-1", metavar="K", dest="calibrate_at",
                                       help="along several checkpoints with an unadjusted sampler (sgld): the index "
                                            "of the one its step size is calibrated at and shared from, or none for "
                                            "each checkpoint's own step-size rule (default: -1, the last)")),
               ("--loss", dict(default="mse", choices=("mse", "gaussian_nll", "cross_entropy", "binary_cross_entropy"),
                               help="per-sample loss; mse is the unit-variance Gaussian negative log-likelihood "
                                    "½‖y − f(x)‖² (default: mse)")),
               ("--inputs", dict(metavar="FIELD", nargs="+", help="the tensor the module receives: an index or a "
                                                                  "dict key, or several, given to it in turn (by "
                                                                  "name where the forward names them; default: the "
                                                                  "first, or x/input/inputs, or else the keys the "
                                                                  "forward names)")),
               ("--targets", dict(metavar="FIELD", help="the tensor the loss compares with: an index or a dict key "
                                                        "(default: the last, or y/target/label...)")),
               ("--restrict-to", dict(nargs="+", action="append", metavar="PATTERN", dest="restrict_to",
                                      help="sample only the parameters any of these patterns matches (names, globs "
                                           "such as '2.*', submodule names), as one estimate, the others frozen at "
                                           "the checkpoint; the option repeated (--restrict-to A --restrict-to B) "
                                           "gives each its own estimate, or its own curve along checkpoints "
                                           "(default: every parameter)")),
               ("--out", dict(type=folder, metavar="DIR",
                              help="along several checkpoints: write the curve with its stages (llc_along.png) and "
                                   "every number (llc_along.json) there")),
               *((flag, {**options, "help": "as LLCConfig's field (" + (
                   DEFAULTS if flag == "--sampler" else "default: float64 for a model whose parameters all are, "
                   "else float32" if flag == "--dtype" else "default: as --sampler says") + ")"})
                 for flag, options in SETTINGS),
               threads_option())


def _estimate_module(args) -> Result:
    """The module command; under --json what the user's code prints goes to stderr, so that stdout
    holds the one JSON object."""
    with redirect_stdout(sys.stderr) if args.json else nullcontext():
        return _estimate_own_module(args)


def _estimate_own_module(args) -> Result:
    from sltlab.estimators import estimate_llc
    from sltlab.verification.cli.own_model_files import load_data, load_model

    use_threads(args.threads)
    model, data = load_model(args.model), load_data(args.data)
    names = (options.get("dest", flag[2:]) for flag, options in SETTINGS)
    settings = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    restrictions = [patterns[0] if len(patterns) == 1 else tuple(patterns)
                    for patterns in (list(dict.fromkeys(given)) for given in args.restrict_to or [])]   # each once
    inputs = None if args.inputs is None else tuple(map(_field, args.inputs))
    inputs = inputs[0] if inputs is not None and len(inputs) == 1 else inputs
    calls = dict(loss=args.loss, inputs=inputs, targets=_field(args.targets),
                 progress=not args.json and sys.stderr.isatty(), **settings)
    if args.checkpoint is not None and len(args.checkpoint) > 1:
        return _along(args, model, data, restrictions, calls)
    if args.steps is not None:
        raise ValueError("--steps names the training step of each of several --checkpoint files")
    if args.calibrate_at != "-1":
        raise ValueError("--calibrate-at chooses one of several --checkpoint files; one estimate calibrates where "
                         "it is")
    if args.out is not None:
        raise ValueError("--out writes the curve along several --checkpoint files; one estimate has no curve "
                         "(--json gives its numbers)")
    if args.checkpoint:
        _load_into(model, args.checkpoint[0])
    answer = estimate_llc(model, data, restrict_to=restrictions if len(restrictions) > 1 else
                          (restrictions[0] if restrictions else None), **calls)
    results = answer if isinstance(answer, list) else [answer]
    summaries = [result.summary() for result in results]
    heading = (f"{args.model} on {args.data}" + (f" at {args.checkpoint[0]}" if args.checkpoint else "")
               + f" (torch threads: {args.threads})")
    text = "\n".join([heading, *(repr(result) for result in results)])
    payload = {"model": args.model, "data": args.data, "checkpoint": (args.checkpoint or [None])[0],
               "torch_threads": args.threads, **(summaries[0] if len(summaries) == 1 else {"restrictions": summaries})}
    return Result(payload, text, exit_code=int(any(result.mean is None for result in results)))


def _along(args, model, data, restrictions: list, calls: dict) -> Result:
    """The curve along the checkpoints, one per restriction when several are given."""
    from sltlab.estimators import CalibrationError, estimate_llc_along
    from sltlab.estimators.checkpoints import load_state
    from sltlab.estimators.functional import copied_module
    from sltlab.verification.cli.own_model_files import load_checkpoint

    resolved = [Path(path).resolve() for path in args.checkpoint]
    twice = next((path for index, path in enumerate(args.checkpoint) if resolved[index] in resolved[:index]), None)
    if twice is not None:
        raise ValueError(f"--checkpoint names {twice} twice: one file's weights would read as two points of training")
    checkpoints = [load_checkpoint(path) for path in args.checkpoint]
    fitted = copied_module(model)[0]   # every file's fit first: the steps' checks would otherwise hide a misfit
    for path, checkpoint in zip(args.checkpoint, checkpoints):
        load_state(fitted, checkpoint.state, f"--checkpoint {path}")
    steps = checkpoint_steps(args.steps, [checkpoint.step for checkpoint in checkpoints],
                             [checkpoint.step_key for checkpoint in checkpoints], args.checkpoint)
    if args.calibrate_at != "none" and not args.calibrate_at.lstrip("-").isdigit():
        raise ValueError(f"--calibrate-at takes the index of a checkpoint or none, got {args.calibrate_at!r}")
    calibrate_at = None if args.calibrate_at == "none" else int(args.calibrate_at)
    out = args.out
    earlier = out is not None and any((out / name).exists() for name in ("llc_along.json", "llc_along.png"))
    if out is not None:   # before sampling, so that a folder that cannot be written fails at once
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):   # a folder made, or there, may be read-only: found out before sampling
            pass
    try:
        answer = estimate_llc_along([checkpoint.state for checkpoint in checkpoints], data, model=model,
                                    calibrate_at=calibrate_at, restrict_to=restrictions if len(restrictions) > 1 else
                                    (restrictions[0] if restrictions else None), **calls)
    except (ValueError, CalibrationError) as error:   # "checkpoint 2" named by its file, the type kept
        error.args = (re.sub(r"\bcheckpoint (\d+)\b", lambda found: f"checkpoint {found[1]} "
                             f"(--checkpoint {args.checkpoint[int(found[1])]})" if int(found[1]) < len(
                                 args.checkpoint) else found[0], str(error)), *error.args[1:])
        raise
    curves = [_curve(along, steps, args.checkpoint) for along in (answer if isinstance(answer, list) else [answer])]
    payload = {"model": args.model, "data": args.data, "torch_threads": args.threads,
               **(curves[0] if len(curves) == 1 else {"curves": curves})}
    lines = [f"{args.model} on {args.data} (torch threads: {args.threads})"] + [
        line for curve in curves for line in curve_lines(curve, steps)]
    if out is not None:
        from sltlab.verification.dynamics.figures import plot_llc_along

        payload["figure"] = str(plot_llc_along(curves, out / "llc_along.png",
                                               title=f"{args.model}, {len(steps)} checkpoints"))
        payload["replaced_earlier"] = earlier
        (out / "llc_along.json").write_text(json.dumps(payload, indent=1, allow_nan=False))
        lines.append(f"figure and numbers: {payload['figure']}, {out / 'llc_along.json'}"
                     + (" (replacing the curve an earlier run had written there)" if earlier else ""))
    failed = any(row["llc"] is None for curve in curves for row in curve["checkpoints"])
    return Result(payload, "\n".join(lines), exit_code=int(failed))


def _curve(along, steps: list[float], paths: list[str]) -> dict:
    """One curve's checkpoints (file, step and result summary each), how they were sampled, and
    its stages with the moves at its edges."""
    stages, edge_moves, why_not = stages_as_dicts(steps, along.means, along.standard_errors)
    return {"restricted_to": along.results[0].restricted_to, "note": along.note, "calibrated_at": along.calibrated_at,
            "checkpoints": [{"file": path, "step": step, "mixed": mixed, **result.summary()}
                            for path, step, mixed, result in zip(paths, steps, along.mixed, along.results)],
            "unmixed_checkpoints": along.mixed.count(False), "shared_notes": along.shared_notes, "stages": stages,
            "edge_moves": edge_moves, "stages_not_read": why_not}


def curve_lines(curve: dict, steps: list[float]) -> list[str]:
    """One curve's text: how it was sampled, the table, each checkpoint's warnings besides the mixing
    gate's, the notes every checkpoint shares, the stage boundaries and the moves at the curve's
    edges, each naming the flagged checkpoints in its window."""
    restricted = "" if curve["restricted_to"] is None else f"restricted to {curve['restricted_to']}: "
    lines = [f"{restricted}{curve['note']}",
             f"{'step':>10}  {'λ̂':>10}  {'± SE':>9}  {'R-hat':>6}  {'ESS':>6}  warnings"]
    lines += [f"{step:>10g}  {shown(row['llc']):>10}  {shown(row['standard_error']):>9}  "
              f"{shown(row['rhat'], 3):>6}  {_whole(row['ess']):>6}  "
              f"{len(row['warnings'])}" for step, row in zip(steps, curve["checkpoints"])]
    lines += [f"warning at step {step:g}: {warning}" for step, row in zip(steps, curve["checkpoints"])
              for warning in other_warnings(row["warnings"])]
    lines += [f"note, at every checkpoint: {note}" for note in curve["shared_notes"]]
    if curve["unmixed_checkpoints"]:
        lines.append(f"{curve['unmixed_checkpoints']} of {len(steps)} checkpoints fail the mixing gate (R-hat above "
                     f"{RHAT_MAX} or ESS under {ESS_MIN}, either not computable, or a drift above {DRIFT_MAX:g} SE "
                     f"or a gap between the sides of the start above {SIDES_MAX:g} SE; result warnings in --json): "
                     "their λ̂ and SE, and stages read from them, are not yet to be trusted; run more --draws or "
                     "--chains")
    if empty := [f"{step:g}" for step, row in zip(steps, curve["checkpoints"]) if row["llc"] is None]:
        lines.append(f"no estimate at step{'s' if len(empty) > 1 else ''} {', '.join(empty)}: every chain was dropped "
                     "(the warnings above say why)")
    lines += [f"stage boundary at step {stage['step']:g} ({stage['direction']}, window {stage['window_start']:g}–"
              f"{stage['window_end']:g}): λ̂ from {stage['level_before']:.4g} to {stage['level_after']:.4g}"
              + _flagged_in(stage, steps, curve["checkpoints"])
              for stage in curve["stages"]] or ([] if curve["edge_moves"] else
                                                [f"stages: {curve['stages_not_read'] or 'none found'}"])
    lines += [_edge_move_line(move, steps) + _flagged_in(move, steps, curve["checkpoints"])
              for move in curve["edge_moves"]]
    return lines


def _edge_move_line(move: dict, steps: list[float]) -> str:
    """A move steepest at the curve's first or last checkpoint, in words: not a located boundary."""
    at = steps[0] if move["edge"] == "first" else steps[-1]
    unseen = (f"go on after step {at:g}" if move["edge"] == "last" else f"have begun before step {at:g}" if at > 0
              else f"be steepest between steps 0 and {steps[1]:g}")
    return (f"{move['direction']} steepest at the curve's {move['edge']} checkpoint (step {at:g}, window "
            f"{move['window_start']:g}–{move['window_end']:g}): λ̂ from {move['level_before']:.4g} to "
            f"{move['level_after']:.4g}; not a located stage boundary: it may {unseen}, where the curve has no "
            "checkpoints to show it")


def _flagged_in(stage: dict, steps: list[float], rows: list[dict]) -> str:
    """Which checkpoints in a boundary's (or an edge move's) window fail the mixing gate or carry
    another warning: the boundary is read from them, so it is no firmer than they are."""
    flagged = [f"{step:g}" for step, row in zip(steps, rows) if stage["window_start"] <= step <= stage["window_end"]
               and (not row["mixed"] or other_warnings(row["warnings"]))]
    return f"; read from flagged checkpoints (steps {', '.join(flagged)})" if flagged else ""


def stages_as_dicts(steps: list[float], means: list, errors: list) -> tuple[list[dict], list[dict], str | None]:
    """The boundaries ``detect_stages`` finds and the moves at the curve's edges, as dicts, or why
    the curve was not read."""
    from sltlab.estimators.stages import MIN_CHECKPOINTS, detect_stages

    if len(steps) < MIN_CHECKPOINTS:
        return [], [], f"not read: fewer than {MIN_CHECKPOINTS} checkpoints"
    if any(value is None for value in (*means, *errors)) or min(errors) <= 0:
        return [], [], "not read: a checkpoint has no λ̂ or no positive standard error"
    detection = detect_stages(steps, means, errors)
    found = [[{key: value if key in ("direction", "edge") else float(value) for key, value in part._asdict().items()}
              for part in parts] for parts in (detection.boundaries, detection.edge_moves)]
    return found[0], found[1], None


def checkpoint_steps(given: list[float] | None, recorded: list[float | None], keys: list[str | None],
                     files: list[str]) -> list[float]:
    """The checkpoints' steps: ``--steps``, else those the files record (under one key), else their
    indices; files of which only some record a step, or under different keys, are refused, since
    their numbers would not compare."""
    if given is not None and len(given) != len(recorded):
        raise ValueError(f"--steps gives {len(given)} step{'s' if len(given) != 1 else ''} for {len(recorded)} "
                         "checkpoints")
    missing = [files[index] for index, step in enumerate(recorded) if step is None]
    if given is None and 0 < len(missing) < len(recorded):
        raise ValueError(f"--checkpoint {', '.join(missing)} record{'s' if len(missing) == 1 else ''} no training "
                         "step that is a number (none, or another kind of value) while the others do: give every "
                         "checkpoint's step with --steps")
    if given is None and not missing and len(set(keys)) > 1:
        raise ValueError(f"the checkpoints record their steps under different keys ({', '.join(sorted(set(keys)))}), "
                         "which do not compare: give every checkpoint's step with --steps")
    steps = given or (recorded if not missing else [float(index) for index in range(len(recorded))])
    increasing = all(later > earlier for earlier, later in zip(steps, steps[1:]))
    if not all(math.isfinite(step) for step in steps) or min(steps) < 0 or not increasing:
        hint = ""
        if not (given or missing):
            repeated = any(later == earlier for earlier, later in zip(steps, steps[1:]))
            hint = (": the curve needs a distinct step at each checkpoint (saves within one epoch record the same); "
                    "give them with --steps" if repeated else ": give the files in the order of their steps (a shell "
                    "glob sorts step200 before step60)")
        raise ValueError(f"the checkpoints' steps must be finite, non-negative and increasing, got {steps}{hint}")
    return steps


def _load_into(model, path: str) -> None:
    from sltlab.estimators.checkpoints import load_state
    from sltlab.verification.cli.own_model_files import load_checkpoint

    load_state(model, load_checkpoint(path).state, f"--checkpoint {path}")


def _field(text: str | None) -> int | str | None:
    if text is None:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def _whole(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"
