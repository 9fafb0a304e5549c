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
from sltlab.verification.cli.command import Result, folder, number, seed, subcommand
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
               ("--singular-values", dict(type=number, nargs="+", dest="singular_values", metavar="S",
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
    """Threads and the common settings' checks; returns whether to show progress bars. The output
    folder is made once every setting has been checked (:func:`_open`), so a refusal leaves none."""
    use_threads(args.threads)
    for name in ("steps", "chains", "draws", "seed", "burnin"):
        value = getattr(args, name, None)
        if value is not None and value < (0 if name in ("seed", "burnin") else 1):
            raise ValueError(f"--{name} must be {'non-negative' if name in ('seed', 'burnin') else 'positive'}, "
                             f"got {value}")
    return not args.json and sys.stderr.isatty()


def _open(args) -> None:
    args.out.mkdir(parents=True, exist_ok=True)


def _saddle_setups(args):
    from sltlab.verification.dynamics.saddle import SADDLE_SETUPS, SaddleSetup

    presets = {setup.widths: setup for setup in SADDLE_SETUPS}
    chosen = [tuple(widths) for widths in args.widths] if args.widths else list(presets)
    if len(set(chosen)) < len(chosen):
        raise ValueError(f"--widths names an architecture twice ({[list(w) for w in chosen]}): give each once")
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
        exchange = setup.resolved().plateau_sampler == "exchange"
        for name in ("plateau_extensions", "unmixed_plateaus"):
            if exchange and name in given:
                raise ValueError(f"--{name.replace('_', '-')} applies to plateaus sampled by MALA, and "
                                 f"{list(setup.widths)} samples its plateaus by replica exchange (five or more weight "
                                 "layers, or --plateau-sampler exchange), which does not go on")
    return setups


def _saddle(args) -> Result:
    from sltlab.verification.cli.saddle_text import saddle_text
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
    _open(args)
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
    return Result(summary, saddle_text(summary), exit_code=int(not passed))


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
    for config in (curve, *(setting.config for setting in settings)):
        config.validate()
    _open(args)
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
