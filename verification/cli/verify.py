"""``sltlab verify``: run a verification suite and write its report (exit 1 when a gate fails)."""

from __future__ import annotations

import sys

from sltlab.verification.cli.command import Result, folder, seed, subcommand
from sltlab.verification.scale_out import check_dask
from sltlab.verification.threads import threads_option, use_threads


def add_verify_command(commands) -> None:
    subcommand(commands, "verify", "run a verification suite of estimates against exact λ, with gates and a report",
               _verify,
               ("--suite", dict(choices=["smoke", "dln", "toy", "full"], help="named suite (default smoke)")),
               ("--random", dict(type=int, metavar="N", help="instead, N random deep linear networks")),
               ("--seed", dict(type=seed, help="seed of --random (default 0)")),
               ("--out", dict(type=folder, default="reports/verify", help="output folder (default reports/verify)")),
               ("--resume", dict(action="store_true", help="skip the cases already in OUT/results.jsonl")),
               ("--dask", dict(metavar="ADDRESS", help="run the cases on Dask: 'local' starts a LocalCluster, "
                                                       "tcp://host:port joins a running scheduler")),
               ("--only", dict(metavar="TEXT", help="keep the cases whose id contains TEXT")),
               ("--quiet", dict(action="store_true", help="no progress on stderr (a bar on a terminal, otherwise "
                                                         "one line per finished case)")),
               threads_option())


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _verify(args) -> Result:
    from sltlab.verification.suite.cases import random_dln_cases, suite
    from sltlab.verification.suite.runner import run_suite, writing_to
    from sltlab.verification.suite.report import write_report

    threads = use_threads(args.threads, at_most_cores=args.dask in (None, "local"))
    if args.random is not None and args.suite is not None:
        raise ValueError("choose either --suite or --random, not both")
    if args.seed is not None and args.random is None:
        raise ValueError("--seed draws the networks of --random; a suite's cases are fixed")
    args.seed = 0 if args.seed is None else args.seed
    check_dask(args.dask)   # the scheduler asked here, before the output folder is made and held
    cases = random_dln_cases(args.random, args.seed) if args.random is not None else suite(args.suite or "smoke")
    title = f"sltlab verify: random suite of {args.random} (seed {args.seed})" if args.random is not None \
        else f"sltlab verify: suite {args.suite or 'smoke'}"
    if args.only == "":
        raise ValueError("--only '' keeps every case: give part of a case id, or leave --only out")
    if args.only:
        every, cases = len(cases), tuple(case for case in cases if args.only in case.id)
        if not cases:
            raise ValueError(f"no case id contains {args.only!r}")
        title += f", the {len(cases)} of {every} cases whose id contains {args.only!r}"
    out = args.out
    ids = {case.id for case in cases}
    silent, terminal = args.json or args.quiet, sys.stderr.isatty()
    with writing_to(out):   # held until the report is written: a resume in between would write its own
        recorded = run_suite(cases, out, resume=args.resume, dask=args.dask, threads=threads, reach=False,
                             progress=not silent and terminal, announce=None if silent or terminal else _to_stderr)
        lines = [line for line in recorded if line["id"] in ids]
        facts = write_report(lines, out, title, outside=[line["id"] for line in recorded if line["id"] not in ids])
    text = (out / "report.md").read_text() + f"\nWritten to {out}/: results.jsonl, report.md, report.json, figures.\n"
    return Result({"summary": facts, "out": str(out), "torch_threads": threads, "cases": [
        {key: value for key, value in line.items() if key != "trace"} for line in lines]}, text,
        exit_code=int(bool(facts["failed"])))
