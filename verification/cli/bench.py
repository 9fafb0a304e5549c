"""``sltlab bench``: speed and accuracy benchmarks, medians over repeated runs beside their targets."""

from __future__ import annotations

import sys

from sltlab.verification.bench.peer import PEER_SAMPLING_REGEX   # standard library only: cheap to import
from sltlab.verification.cli.command import Result, seed, subcommand
from sltlab.verification.scale_out import check_dask
from sltlab.verification.threads import keep_freed_memory, threads_option, use_threads

DEFAULT_REPEATS = 7   # timed runs per benchmark, the medians reported over them


def add_bench_command(commands) -> None:
    subcommand(commands, "bench", "speed and accuracy benchmarks: medians over repeated runs, beside their targets",
               _bench, ("--repeats", dict(type=int, help=f"timed runs per benchmark (default {DEFAULT_REPEATS})")),
               ("--only", dict(choices=["theory", "sampling", "overhead", "accuracy", "coverage", "grid", "estimand",
                                        "along", "curve", "ladder", "restrictions", "calibration", "spread", "module",
                                        "along-accuracy", "restricted-accuracy", "head-accuracy", "fallback",
                                        "peer", "stages"],
                               help="run one group (default theory, sampling, overhead and accuracy; accuracy takes "
                                    "several minutes; overhead times one step of each sampler on small networks; "
                                    "coverage counts how often λ̂ ± 2 SE covers exact finite-n truths; grid draws deep "
                                    "linear networks from the published band and splits each error; estimand gives "
                                    "their exact "
                                    "finite-n LLC at n = 10⁴ and 10⁶ by blocked Gibbs, no sampler; along times the "
                                    "LLC at the grokking network's checkpoints batched against one after the other; "
                                    "curve times a saddle run's LLC curve, each checkpoint with its own targets, the "
                                    "same two ways; "
                                    "ladder times a temperature ladder as one run against its rungs one after the "
                                    "other; restrictions times every layer's restricted LLC as one run against the "
                                    "layers one after the other; "
                                    "calibration times a dln-suite case's calibration plus run against the run alone; "
                                    "spread checks the size of the standard error on two random draws of deep linear "
                                    "networks (minibatch SGLD; --count networks each, 9 by default for it); "
                                    "module judges estimate_llc's defaults against exact finite-n truths on two "
                                    "random draws of deep linear networks as nn.Sequential (--count each, 3 by "
                                    "default; minutes per network); along-accuracy judges estimate_llc_along's "
                                    "defaults the same way at two points of each network's minimum set, given as "
                                    "two checkpoints (minutes per network); restricted-accuracy judges its "
                                    "restricted LLC of every layer against the closed-form truth of the Gaussian "
                                    "restricted posterior (minutes per network); head-accuracy judges its LLC "
                                    "restricted to the last layer of random trained MLPs, CNNs and transformer "
                                    "encoders against the exact truth of that layer's Gaussian posterior (--count "
                                    "networks each, 4 by default; "
                                    "minutes per network); fallback runs the one call with MALA "
                                    "alone and, where MALA fails the mixing gate, with its defaults' budgeted HMC "
                                    "fallback on "
                                    "three trained MLPs, or on --count random ones from --seed (minutes); "
                                    "peer times one estimate as a whole process on the job a peer tool is compared "
                                    "on; stages counts how often stage detection misses a known change on seeded "
                                    "staircases, --count seeds each, 40 by default)")),
               ("--checkpoints", dict(type=int, help="along: checkpoints of the grokking network (default 50); "
                                                    "curve: of the saddle run (default 60)")),
               ("--count", dict(type=int, help="grid, estimand: networks drawn (default 40; minutes each); spread, "
                                               "module, along-accuracy, restricted-accuracy, head-accuracy: networks "
                                               "in each of their two draws (default 9, 3, 3, 3, 4); fallback: "
                                               "random MLPs drawn instead of its three; stages: seeds per case (40)")),
               ("--seed", dict(type=seed, help="grid, estimand, fallback: seed of the draw; spread, module, "
                                              "along-accuracy, restricted-accuracy, head-accuracy: of the first of "
                                              "their two "
                                              "(default 0)")),
               ("--dask", dict(metavar="ADDRESS", help="grid, estimand: one network per Dask task, 'local' on a "
                                                       "LocalCluster "
                                                       "or tcp://host:port on a running scheduler (default: here, "
                                                       "one after another)")),
               ("--peer-seconds", dict(type=float, nargs=2, metavar=("WHOLE", "SAMPLING"), dest="peer_seconds",
                                       help="peer: the peer tool's seconds on the same job, whole process and "
                                            "sampling, to divide by (default: none, no speed-up computed)")),
               ("--peer-command", dict(metavar="CMD", dest="peer_command",
                                       help="peer: a shell command running the peer tool on the same job, timed "
                                            "as a whole process before each of sltlab's repeats (default: none)")),
               ("--peer-sampling-regex", dict(metavar="REGEX", dest="peer_sampling_regex",
                                              help="peer: where the peer command's output gives its sampling "
                                                   f"seconds, as group 1 (default: '{PEER_SAMPLING_REGEX}')")),
               ("--compile", dict(action="store_true", help="overhead: also time each step compiled by torch.compile "
                                                            "beside the eager one (default: off)")),
               threads_option())


# The groups that read each option: given to any other group, it would be silently ignored.
OPTION_GROUPS = {"checkpoints": {"along", "curve"},
                 "count": {"grid", "estimand", "spread", "module", "along-accuracy", "restricted-accuracy",
                           "head-accuracy", "fallback", "stages"},
                 "seed": {"grid", "estimand", "spread", "module", "along-accuracy", "restricted-accuracy",
                          "head-accuracy", "fallback"},
                 "dask": {"grid", "estimand"},
                 "peer_seconds": {"peer"}, "peer_command": {"peer"}, "peer_sampling_regex": {"peer"},
                 "compile": {"overhead"},
                 "repeats": {"theory", "sampling", "overhead", "along", "curve", "ladder", "restrictions",
                             "calibration", "peer"}}


def _bench(args) -> Result:
    from sltlab.verification.bench.theory import format_rows, run_benchmarks
    from sltlab.verification.bench.sampling import format_sampler_rows, run_sampler_benchmarks

    check_dask(args.dask)
    threads = use_threads(args.threads, at_most_cores=args.dask in (None, "local"))
    result = {"torch_threads": threads, "freed_memory_kept": keep_freed_memory()}
    tables = [f"torch threads: {args.threads}; freed memory kept for reuse: "
              f"{'yes' if result['freed_memory_kept'] else 'no (not glibc)'}"]
    wanted = {"theory", "sampling", "overhead", "accuracy"} if args.only is None else {args.only}
    for option, groups in OPTION_GROUPS.items():
        given = getattr(args, option)
        if given is not None and given is not False and not wanted & groups:   # 0 is given (0 == False in Python)
            raise ValueError(f"--{option.replace('_', '-')} applies to {', '.join(sorted(groups))}, not to "
                             f"{', '.join(sorted(wanted))}")
    if args.count is not None and args.count < 1:
        raise ValueError(f"--count must be at least 1, got {args.count}")
    args.repeats = DEFAULT_REPEATS if args.repeats is None else args.repeats
    if args.repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {args.repeats}")
    args.peer_sampling_regex = PEER_SAMPLING_REGEX if args.peer_sampling_regex is None else args.peer_sampling_regex
    args.seed = 0 if args.seed is None else args.seed
    if "theory" in wanted:
        result["benchmarks"] = run_benchmarks(args.repeats)
        tables.append(format_rows(result["benchmarks"]))
    if "sampling" in wanted:
        result["sampling"] = run_sampler_benchmarks(args.repeats)
        tables.append(format_sampler_rows(result["sampling"]))
    if "overhead" in wanted:
        from sltlab.verification.bench.overhead import format_overhead_rows, run_overhead_benchmarks

        result["overhead"] = run_overhead_benchmarks(args.repeats, compile_step=args.compile)
        tables.append(format_overhead_rows(result["overhead"]))
    if "coverage" in wanted:
        from sltlab.verification.bench.coverage import coverage_rows, format_coverage

        coverage = coverage_rows(progress=not args.json and sys.stderr.isatty())
        result.update(coverage)
        tables.append(format_coverage(coverage))
    if "grid" in wanted:
        from sltlab.verification.bench.grid import draw_grid, format_grid, grid_rows, grid_summary

        rows = grid_rows(draw_grid(_count(args, 40), args.seed), dask=args.dask, threads=args.threads,
                         progress=not args.json and sys.stderr.isatty() and args.dask is None)
        result["grid"] = {"rows": rows, "summary": grid_summary(rows), "seed": args.seed}
        tables.append(format_grid(rows, result["grid"]["summary"]))
    if "estimand" in wanted:
        from sltlab.verification.bench.estimand import estimand_rows, estimand_summary, format_estimand
        from sltlab.verification.bench.grid import draw_grid

        rows = estimand_rows(draw_grid(_count(args, 40), args.seed), dask=args.dask, threads=args.threads)
        result["estimand"] = {"rows": rows, "summary": estimand_summary(rows), "seed": args.seed}
        tables.append(format_estimand(rows, result["estimand"]["summary"]))
    if "along" in wanted:
        from sltlab.verification.bench.along import along_row, format_along

        result["along"] = along_row(args.repeats, checkpoints=50 if args.checkpoints is None else args.checkpoints)
        tables.append(format_along(result["along"]))
    if "curve" in wanted:
        from sltlab.verification.bench.curve import curve_row, format_curve

        result["curve"] = curve_row(args.repeats, checkpoints=60 if args.checkpoints is None else args.checkpoints)
        tables.append(format_curve(result["curve"]))
    if "ladder" in wanted:
        from sltlab.verification.bench.ladder import format_ladders, ladder_rows

        result["ladder"] = ladder_rows(args.repeats)
        tables.append(format_ladders(result["ladder"]))
    if "restrictions" in wanted:
        from sltlab.verification.bench.restrictions import format_restrictions, restrictions_row

        result["restrictions"] = restrictions_row(args.repeats)
        tables.append(format_restrictions(result["restrictions"]))
    if "calibration" in wanted:
        from sltlab.verification.bench.calibration import calibration_rows, format_calibration

        result["calibration"] = calibration_rows(args.repeats)
        tables.append(format_calibration(result["calibration"]))
    if "spread" in wanted:
        from sltlab.verification.bench.spread import format_spread, spread_rows

        result["spread"] = spread_rows(count=_count(args, 9),
                                       seeds=(args.seed, args.seed + 1),
                                       progress=not args.json and sys.stderr.isatty())
        tables.append(format_spread(result["spread"]))
    if "module" in wanted:
        from sltlab.verification.bench.module_accuracy import format_module_accuracy, module_accuracy_rows

        result["module"] = module_accuracy_rows(count=_count(args, 3), seeds=(args.seed, args.seed + 1),
                                                progress=not args.json and sys.stderr.isatty())
        tables.append(format_module_accuracy(result["module"]))
    if "along-accuracy" in wanted:
        from sltlab.verification.bench.along_accuracy import along_accuracy_rows, format_along_accuracy

        result["along-accuracy"] = along_accuracy_rows(count=_count(args, 3), seeds=(args.seed, args.seed + 1),
                                                       progress=not args.json and sys.stderr.isatty())
        tables.append(format_along_accuracy(result["along-accuracy"]))
    if "restricted-accuracy" in wanted:
        from sltlab.verification.bench.restricted_accuracy import (format_restricted_accuracy,
                                                                   restricted_accuracy_rows)

        result["restricted-accuracy"] = restricted_accuracy_rows(count=_count(args, 3),
                                                                 seeds=(args.seed, args.seed + 1),
                                                                 progress=not args.json and sys.stderr.isatty())
        tables.append(format_restricted_accuracy(result["restricted-accuracy"]))
    if "head-accuracy" in wanted:
        from sltlab.verification.bench.head_accuracy import format_head_accuracy, head_accuracy_rows

        result["head-accuracy"] = head_accuracy_rows(count=_count(args, 4), seeds=(args.seed, args.seed + 1),
                                                     progress=not args.json and sys.stderr.isatty())
        tables.append(format_head_accuracy(result["head-accuracy"]))
    if "fallback" in wanted:
        from sltlab.verification.bench.fallback import NETWORKS, fallback_rows, format_fallback, random_mlps

        networks = NETWORKS if args.count is None else random_mlps(args.count, args.seed)
        result["fallback"] = fallback_rows(networks, progress=not args.json and sys.stderr.isatty())
        tables.append(format_fallback(result["fallback"]))
    if "peer" in wanted:
        from sltlab.verification.bench.peer import format_peer, peer_row

        result["peer"] = peer_row(args.repeats, args.threads,
                                  None if args.peer_seconds is None else tuple(args.peer_seconds),
                                  peer_command=args.peer_command,
                                  peer_sampling_regex=args.peer_sampling_regex)
        tables.append(format_peer(result["peer"]))
    if "stages" in wanted:
        from sltlab.verification.bench.stages import format_stages, stage_rows

        result["stages"] = stage_rows(_count(args, 40))
        tables.append(format_stages(result["stages"]))
    if "accuracy" in wanted:
        from sltlab.verification.bench import accuracy

        progress = not args.json and sys.stderr.isatty()
        dln = accuracy.dln_rows(progress)
        result["accuracy"] = {"dln": dln, "dln_summary": accuracy.dln_summary(dln),
                              "potentials": accuracy.potential_rows(progress),
                              "regular": accuracy.regular_row(progress)}
        tables.append(accuracy.format_accuracy(*result["accuracy"].values()))
    return Result(result, "\n\n".join(tables), exit_code=int(missed(result)))


def missed(result) -> bool:
    """Whether any target in ``result`` (a ``meets_target`` or ``meets_targets`` at any depth) is
    missed; a target not measured (None) is no verdict."""
    if isinstance(result, dict):
        return any(value is False for key, value in result.items() if key in ("meets_target", "meets_targets")) or any(
            missed(value) for value in result.values())
    return isinstance(result, (list, tuple)) and any(missed(value) for value in result)


def _count(args, default: int) -> int:
    """``--count``, or the group's own default when it is not given."""
    return default if args.count is None else args.count
