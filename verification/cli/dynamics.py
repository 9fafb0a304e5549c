"""``sltlab dynamics saddle|grokking``: the LLC along training, beside theory where it exists.

Each study writes ``DIR/<study>.json`` and ``DIR/<study>.png`` and keeps its checkpoints and
estimates under ``DIR/cache``, keyed by the settings, so a second run with the same settings
re-plots without training or sampling. Exit code 1 when a study's target is missed.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace

from sltlab.verification.cli.bayes import add_bayes_study_command
from sltlab.verification.cli.command import Result, folder, seed, subcommand
from sltlab.verification.threads import threads_option, use_threads

_COMMON = (
    ("--out", dict(type=folder, required=True, metavar="DIR", help="output folder (results, figure, cache)")),
    threads_option(),
)


def add_dynamics_commands(commands) -> None:
    parser = commands.add_parser("dynamics", help="the LLC along training runs",
                                 description="The LLC along training runs.")
    studies = parser.add_subparsers(dest="study", required=True, metavar="STUDY")
    subcommand(studies, "saddle", "saddle-to-saddle training of deep linear networks, the LLC at each plateau "
               "beside the exact staircase", _saddle,
               ("--widths", dict(type=int, nargs="+", action="append", metavar="H",
                                 help="widths [input, hidden..., output]; repeat for several architectures "
                                      "(default: 10 5 5 10 and 10 5 10)")),
               ("--init-scale", dict(type=float, dest="init_scale",
                                     help="singular value of every layer at the balanced start (default: chosen "
                                          "from the depth so that the end-to-end map starts at 1e-4)")),
               ("--steps", dict(type=int, help="step budget of gradient descent; training stops earlier once the "
                                                "teacher's rank is reached (default: 30 times the predicted escape "
                                                "of the teacher's weakest mode)")),
               ("--learning-rate", dict(type=float, dest="learning_rate",
                                        help="step size of gradient descent (default: half the stability limit at "
                                             "the strongest mode, at most 0.01)")),
               ("--singular-values", dict(type=float, nargs="+", dest="singular_values", metavar="S",
                                          help="the teacher's singular values (default 10 5 2.5 1.25, cut to as many "
                                               "as the narrowest layer carries)")),
               ("--rank-tolerance", dict(type=float, dest="rank_tolerance",
                                         help="singular values above this count towards the rank (0.1)")),
               ("--seed", dict(type=seed, help="seed of teacher, data and initialisation (0)")),
               ("--aligned-start", dict(action="store_true", default=None, dest="aligned_start",
                                        help="start with the end-to-end map along the data's least-squares fit "
                                             "(Saxe et al.'s decoupled start; default: where the narrowest layer "
                                             "is as wide as the teacher's rank, a random orientation elsewhere)")),
               ("--random-start", dict(action="store_true", dest="random_start",
                                       help="start at a random orientation wherever the default would align")),
               ("--n", dict(type=int, help="training rows; nβ = n/log n (2000)")),
               ("--plateau-sampler", dict(dest="plateau_sampler", choices=("mala", "exchange"),
                                          help="λ̂ at the plateaus by MALA or by replica exchange (default: exchange "
                                               "from five weight layers on, MALA below)")),
               ("--plateau-extensions", dict(type=int, dest="plateau_extensions", metavar="K",
                                             help="MALA's plateaus whose chains fail the mixing gate go on from where "
                                                  "they ended, doubling their draws, at most K times (2)")),
               ("--unmixed-plateaus", dict(dest="unmixed_plateaus", choices=("exchange", "report"),
                                           help="MALA's plateaus still failing the mixing gate after going on: "
                                                "estimated again by replica exchange, or reported as they are "
                                                "(exchange)")),
               ("--chains", dict(type=int, help="MALA chains per estimate (16)")),
               ("--draws", dict(type=int, help="draws per chain (5000)")),
               ("--burnin", dict(type=int, help="burn-in steps, after as many warm-up steps (5000)")),
               ("--localization", dict(type=float, help="localisation γ of the plateaus' sampler (0.1)")),
               ("--anneal", dict(type=float, metavar="F",
                                 help="both samplers' warm-up cools over its first half from nβ/F to nβ (10; 1 "
                                      "turns it off)")),
               ("--curve-chains", dict(type=int, dest="curve_chains",
                                       help="MALA chains per estimate along the LLC curve (16)")),
               ("--curve-draws", dict(type=int, dest="curve_draws",
                                      help="draws per chain along the LLC curve (4000), after four times as many "
                                           "burn-in steps, at most 2000")),
               *_COMMON)
    subcommand(studies, "grokking", "grokking on modular addition, the LLC at every checkpoint of every seed "
               "(step calibrated at its memorisation) with the stages of each curve, and under several sampler "
               "settings on the first seed", _grokking,
               ("--modulus", dict(type=int, help="p of (a + b) mod p (53)")),
               ("--train-fraction", dict(type=float, dest="train_fraction",
                                         help="share of the p² pairs trained on (0.4)")),
               ("--width", dict(type=int, dest="hidden", help="hidden units (64)")),
               ("--embedding-dim", dict(type=int, dest="embedding_dim", help="embedding width (32)")),
               ("--weight-decay", dict(type=float, dest="weight_decay", help="AdamW weight decay (1.0)")),
               ("--learning-rate", dict(type=float, dest="learning_rate", help="AdamW learning rate (3e-3)")),
               ("--steps", dict(type=int, help="AdamW steps (10000)")),
               ("--seeds", dict(type=seed, nargs="+", help="seeds trained, each with its LLC curve; the sensitivity "
                                                          "check follows the first (0 1 2 3 4)")),
               ("--curve-draws", dict(type=int, dest="curve_draws",
                                      help="draws per chain of every seed's calibrated curve, after half as many "
                                           "burn-in steps (4000)")),
               ("--curve-extensions", dict(type=int, dest="curve_extensions", help="times the checkpoints "
                                           "failing the mixing gate go on where they ended, doubling their draws (2)")),
               ("--draws", dict(type=int, help="draws per chain in every setting of the sensitivity check (200)")),
               *_COMMON)
    add_bayes_study_command(studies)


def _prepare(args) -> bool:
    """Threads and the output folder; returns whether to show progress bars."""
    use_threads(args.threads)
    for name in ("steps", "chains", "draws", "seed", "burnin"):
        value = getattr(args, name, None)
        if value is not None and value < (0 if name in ("seed", "burnin") else 1):
            raise ValueError(f"--{name} must be {'non-negative' if name in ('seed', 'burnin') else 'positive'}, "
                             f"got {value}")
    args.out.mkdir(parents=True, exist_ok=True)
    return not args.json and sys.stderr.isatty()


def _saddle_setups(args):
    from sltlab.verification.dynamics.saddle import SADDLE_SETUPS, SaddleSetup

    presets = {setup.widths: setup for setup in SADDLE_SETUPS}
    chosen = [tuple(widths) for widths in args.widths] if args.widths else list(presets)
    given = {name: getattr(args, name) for name in ("init_scale", "steps", "learning_rate", "rank_tolerance", "seed",
                                                    "n", "plateau_sampler", "aligned_start", "plateau_extensions",
                                                    "unmixed_plateaus")
             if getattr(args, name) is not None}
    if args.singular_values is not None:
        given["singular_values"] = tuple(args.singular_values)
    if args.random_start:
        if args.aligned_start:
            raise ValueError("--aligned-start and --random-start ask for opposite starts; give one")
        given["aligned_start"] = False
    setups = [replace(presets.get(widths) or SaddleSetup(widths), **given) for widths in chosen]
    for setup in setups:
        setup.validate()
    return setups


def _saddle(args) -> Result:
    from sltlab.verification.dynamics.saddle import SADDLE_SAMPLER, saddle_study
    from sltlab.verification.dynamics.saddle_stages import CURVE_SAMPLER

    progress = _prepare(args)
    setups = _saddle_setups(args)
    sampler = replace(SADDLE_SAMPLER, **{name: getattr(args, name) for name in ("chains", "draws", "burnin",
                                                                               "localization", "anneal")
                                         if getattr(args, name) is not None})
    curve_draws = CURVE_SAMPLER.draws if args.curve_draws is None else args.curve_draws
    curve_sampler = replace(CURVE_SAMPLER, chains=CURVE_SAMPLER.chains if args.curve_chains is None
                            else args.curve_chains, draws=curve_draws,
                            burnin=min(4 * curve_draws, CURVE_SAMPLER.burnin), anneal=sampler.anneal)
    sampler.validate()
    curve_sampler.validate()
    clock = time.perf_counter()
    studies = []
    for setup in setups:
        started = time.perf_counter()
        study = saddle_study(setup, sampler, curve_sampler=curve_sampler, cache=args.out / "cache", progress=progress)
        studies.append({**study, "wall_seconds": time.perf_counter() - started})
    seconds = time.perf_counter() - clock
    from sltlab.verification.dynamics.figures import plot_saddle

    figure = plot_saddle(studies, args.out / "saddle.png")
    passed = all(s["targets_met"] for s in studies)
    summary = {"studies": studies, "targets_met": passed, "wall_seconds": seconds, "torch_threads": args.threads,
               "figure": str(figure), "results": str(args.out / "saddle.json")}
    (args.out / "saddle.json").write_text(json.dumps(summary, allow_nan=False, indent=1))
    return Result(summary, _saddle_text(summary), exit_code=int(not passed))


def _plateau_sampler_line(sampler, plateaus, unmixed_rule) -> str:
    mala = (f"{sampler['sampler'].upper()} {sampler['chains']} chains × {sampler['draws']} draws after "
            f"{sampler['burnin']} burn-in")
    rule = plateaus[0]["step_size_rule"] if plateaus else "automatic step"
    settings = f"γ = {sampler['localization']:g}, nβ = {sampler['nbeta']:.1f}"
    if sampler.get("plateaus") == "exchange":
        return f"  plateaus by {rule}; {settings}; negative control by {mala}"
    drawn = [(row["rank"], row.get("mala_unmixed", row)["draws"]) for row in plateaus]
    went_on = ", ".join(f"rank {rank} to {draws:,}" for rank, draws in drawn if draws > sampler["draws"])
    exchanged = ", ".join(f"rank {row['rank']}" for row in plateaus if "mala_unmixed" in row)
    after = (f"replica exchange answers (at: {exchanged or 'none'})" if unmixed_rule == "exchange"
             else "they are reported as they are (--unmixed-plateaus report)")
    return (f"  {mala}, {settings}, step: {rule}; plateaus failing the mixing gate go on, doubling their draws, "
            f"at most {sampler['extensions']} times (went on: {went_on or 'none'}), and where they still fail, {after}")


def _saddle_text(summary) -> str:
    lines = []
    for study in summary["studies"]:
        sampler, training, setup, stages = study["sampler"], study["training"], study["setup"], study["stages"]
        chosen = ", ".join(study["chosen_from_architecture"]) or "nothing"
        reached = training["teacher_rank_reached_at_step"]
        lines += [f"saddle-to-saddle, widths {study['widths']} (d = {study['dim']}): ranks visited "
                  f"{study['ranks_visited']} of 0..{training['teacher_rank']}; {study['wall_seconds']:.0f} s",
                  f"  teacher singular values {' '.join(f'{v:g}' for v in setup['singular_values'])}; "
                  f"{'aligned' if setup['aligned_start'] else 'random'} start, init scale "
                  f"{setup['init_scale']:.3g}, learning rate {setup['learning_rate']:.3g}, budget "
                  f"{training['step_budget']} steps (chosen from the architecture: {chosen}); trained "
                  f"{training['steps_taken']} steps, stopped because {training['stopped_because']}"
                  + ("" if reached is None else f" (rank {training['teacher_rank']} at step {reached})"),
                  _plateau_sampler_line(sampler, study["plateaus"], setup["unmixed_plateaus"]),
                  f"  {'rank':>4}  {'steps':>12}  {'at':>6}  {'λ_k':>6}  {'λ̂ ± SE':>14}  {'error':>7}  "
                  f"{'R-hat':>5}  {'truth':>6}  {'sampler':>7}  {'estimand':>8}  negative control (real data)"]
        for row in study["plateaus"]:
            control = row["negative_control_real_data"]["llc_mean"]
            estimate = "diverged" if row["llc_mean"] is None else f"{row['llc_mean']:.2f} ± {row['llc_se'] or 0:.2f}"
            error = "" if row["rel_error"] is None else f"{100 * row['rel_error']:+.1f}%"
            rhat = "" if row["rhat"] is None else f"{row['rhat']:.3f}"
            sampler_error = "" if row["sampler_error"] is None else f"{100 * row['sampler_error']:+.1f}%"
            lines.append(f"  {row['rank']:>4}  {row['first_step']:>5}–{row['last_step']:<6}  "
                         f"{row['checkpoint_step']:>6}  {row['lambda_exact']:>6}  {estimate:>14}  {error:>7}  "
                         f"{rhat:>5}  {row['finite_n_truth']['mean']:>6.2f}  {sampler_error:>7}  "
                         f"{100 * row['estimand_bias']:>+7.1f}%  {'diverged' if control is None else f'{control:.4g}'}")
        lines.append("  truth: nβ·E[ΔL] by blocked Gibbs at the same centre, nβ and γ; sampler = λ̂ against it, "
                     "estimand = it against λ_k")
        lines.append(_resting_line(study["plateaus"]))
        finest = stages.get("bandwidth")   # absent when too few checkpoints had an estimate
        found = ", ".join(f"{b['step']} [{b['window_start']}–{b['window_end']}"
                          + (f", at h = {b['bandwidth']:.3g}]" if b["bandwidth"] > finest else "]")
                          for b in stages["boundaries"])
        smoothing = "" if finest is None else (f" (smoothing h = {finest:.3g} in log step; a boundary found only "
                                               f"at a coarser h says so)")
        lines += [f"  LLC curve at {len(study['llc_curve']['steps'])} checkpoints: rank changes at steps "
                  f"{stages['true_rank_change_steps']}; stage boundaries [windows] {found or 'none'}{smoothing}; "
                  f"missed {stages['missed']}, spurious {len(stages['spurious'])}"
                  + "".join(f"; a {m['direction']} steepest at the curve's {m['edge']} checkpoint, not located "
                            f"[{m['window_start']}–{m['window_end']}]" for m in stages["edge_moves"]),
                  f"  targets {'met' if study['targets_met'] else 'MISSED: ' + '; '.join(study['reasons'])}",
                  _mixing_line(study)]
    lines += [f"targets (every rank 0..teacher visited one per stage, every λ̂ within 10 %, every rank change "
              f"a stage boundary): {'met' if summary['targets_met'] else 'MISSED'}",
              f"wall time {summary['wall_seconds']:.0f} s with {summary['torch_threads']} torch thread(s)"
              + (" (every study loaded from the cache)" if all(s["from_cache"] for s in summary["studies"]) else ""),
              f"wrote {summary['results']} and {summary['figure']}"]
    return "\n".join(lines)


def _resting_line(plateaus) -> str:
    """Where the plateaus rest, and which of them rest where their rank is not resolved."""
    if not plateaus:
        return "  no plateau"
    rule = plateaus[0]["resolution"]
    unresolved = [row["rank"] for row in plateaus if not row["resolution"]["resolved"]]
    return (f"  each plateau rests at its quietest checkpoint whose rank is resolved (its last learned mode ≥ "
            f"{rule['learned_at_least_sds']:g} posterior SDs 1/√nβ from zero, the next ≤ {rule['next_at_most_sds']:g})"
            + (f"; NOT resolved anywhere on the plateaus of rank {unresolved}: they rest at their best resolved "
               "checkpoint, and λ_k may not be their finite-n estimand" if unresolved else ""))


def _mixing_line(study) -> str:
    """The plateaus whose λ̂ fails the mixing gate: shown beside the targets, not one of them."""
    from sltlab.estimators.gate import ESS_MIN, RHAT_MAX

    unmixed = study["unmixed_plateaus"]
    if not unmixed:
        return f"  mixing gate (R-hat ≤ {RHAT_MAX}, ESS ≥ {ESS_MIN}) passed at every plateau"
    worst = max((row["rhat"] for row in study["plateaus"] if row["rank"] in unmixed and row["rhat"] is not None),
                default=None)
    return (f"  mixing gate (R-hat ≤ {RHAT_MAX}, ESS ≥ {ESS_MIN}; reported, not a target) FAILED at the plateaus of "
            f"rank {unmixed}" + ("" if worst is None else f", R-hat up to {worst:.3f}"))


def _grokking(args) -> Result:
    from sltlab.verification.dynamics.grokking import (SENSITIVITY_SETTINGS, GrokkingSetup, SamplerSetting,
                                                       grokking_study)
    from sltlab.verification.cli.grokking_text import grokking_text
    from sltlab.verification.dynamics.grokking_along import CURVE_CONFIG, CURVE_EXTENSIONS

    progress = _prepare(args)
    given = {name: getattr(args, name) for name in ("modulus", "train_fraction", "hidden", "embedding_dim",
                                                    "weight_decay", "learning_rate", "steps")
             if getattr(args, name) is not None}
    if args.seeds is not None:
        given["seeds"] = tuple(args.seeds)
    setup = replace(GrokkingSetup(), **given)
    setup.validate()
    settings = tuple(SamplerSetting(s.name, replace(s.config, draws=args.draws or s.config.draws))
                     for s in SENSITIVITY_SETTINGS)
    curve = CURVE_CONFIG if args.curve_draws is None else replace(CURVE_CONFIG, draws=args.curve_draws,
                                                                 burnin=args.curve_draws // 2)
    clock = time.perf_counter()
    extensions = CURVE_EXTENSIONS if args.curve_extensions is None else args.curve_extensions
    if extensions < 0:
        raise ValueError(f"--curve-extensions must be 0 or more, got {extensions}")
    study = grokking_study(setup, settings, curve=curve, extend_unmixed=extensions, cache=args.out / "cache",
                           progress=progress)
    seconds = time.perf_counter() - clock
    from sltlab.verification.dynamics.figures import plot_grokking

    figure = plot_grokking(study, args.out / "grokking.png")
    passed = (study["all_seeds_grok"] and study["every_seed_spearman_above_target"]
              and study["every_checkpoint_rhat_within_target"])
    summary = {**study, "targets_met": passed, "wall_seconds": seconds, "torch_threads": args.threads,
               "figure": str(figure),
               "results": str(args.out / "grokking.json")}
    (args.out / "grokking.json").write_text(json.dumps(summary, allow_nan=False, indent=1))
    return Result(summary, grokking_text(summary), exit_code=int(not passed))
