"""The ``sltlab`` command line: one module per subcommand.

Exit codes: 0 success; 1 a verification gate failed or a run failed (every chain diverged, no
stable step, out of memory), with one line on stderr; 2 bad input (one line on stderr); 3 a
refusal, which is an answer: the method cannot give a correct value for this input (the Newton
polyhedron of a degenerate potential), and one line on stdout says why and names the command
that answers instead (``--json``: ``{"refused": ..., "answered_by": ...}``); 141 when the reader of
stdout went away (``sltlab … | head``), as for any Unix tool. Never a
traceback, unless ``SLTLAB_DEBUG`` is set. ``--json`` prints exactly one JSON object on
stdout and nothing else. Warnings about an estimate are part of its result, not printed
twice. Heavy modules (torch, matplotlib) are imported by the handlers only, so
``sltlab theory`` starts fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Sequence

from sltlab.estimators.notices import EstimateWarning, LongRunWarning

from sltlab.verification.cli.bench import add_bench_command
from sltlab.verification.cli.command import PROG, Parser, UsageError
from sltlab.verification.cli.dynamics import add_dynamics_commands
from sltlab.verification.cli.estimate import add_estimate_commands
from sltlab.verification.cli.plot import add_plot_commands
from sltlab.verification.cli.theory import add_theory_commands
from sltlab.verification.cli.verify import add_verify_command
from sltlab.verification.threads import threads_restored


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sltlab`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    parser, words = build_parser(), sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(words)
        with warnings.catch_warnings(), threads_restored():
            warnings.simplefilter("ignore", EstimateWarning)
            warnings.simplefilter("ignore", LongRunWarning)   # the commands show their own progress
            result = args.handler(args)
    except SystemExit as exit_request:  # --help
        return int(exit_request.code or 0)
    except KeyboardInterrupt:
        return _failed("interrupted", 130)
    except FileExistsError as error:   # what mkdir(exist_ok=True) raises where a file has the folder's name
        return _failed(f"error: {error.filename} is a file, not a folder to write into", 2)
    except UsageError as error:   # argparse reads a potential like "-w1**2" as an option
        dashed = [word for word in words if word[:1] == "-" and "*" in word]
        hint = f" (a potential that starts with '-' goes after '--': -- '{dashed[0]}')" if dashed else ""
        return _failed(f"error: {error}{hint}", 2)
    except OSError as error:   # the operating system's words, without Python's "[Errno 2]"
        said = f"{error.strerror}: {error.filename}" if error.strerror and error.filename else error.strerror or error
        return _failed(f"error: {said}", 2)
    except ValueError as error:
        return _failed(f"error: {_in_the_options_words(str(error), words)}", 2)
    except Exception as error:   # a run that failed: one line, never a traceback
        if os.environ.get("SLTLAB_DEBUG"):
            raise
        return _failed(f"failed ({type(error).__name__}): {error}", 1)
    try:
        text = json.dumps(result.json_object, allow_nan=False) if args.json else result.text
    except ValueError as error:   # JSON has no inf or NaN: a result holding one is a failed run, said in one line
        return _failed(f"failed: the result holds a number JSON cannot carry ({error})", 1)
    try:
        print(text, flush=True)
    except BrokenPipeError:   # the reader went away (`sltlab … | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE
    return result.exit_code


BROKEN_PIPE = 141   # 128 + SIGPIPE, the status of a Unix tool whose reader closed the pipe


def _in_the_options_words(message: str, argv: Sequence[str]) -> str:
    """A refusal that names a setting by its Python name (``cooled_share must be …``, as the
    settings and functions say it) named by the option the user typed instead (``--cooled-share``)."""
    name, _, rest = message.partition(" must ")
    option = "--" + name.replace("_", "-")
    if rest and name.isidentifier() and any(word == option or word.startswith(option + "=") for word in argv):
        return f"{option} must {rest}"
    return message


def _failed(message: str, code: int) -> int:
    print(f"{PROG}: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def build_parser() -> argparse.ArgumentParser:
    """The full ``sltlab`` argument parser."""
    parser = Parser(prog=PROG, description="Singular learning theory lab.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_theory_commands(commands)
    add_plot_commands(commands)
    add_estimate_commands(commands)
    add_verify_command(commands)
    add_dynamics_commands(commands)
    add_bench_command(commands)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
