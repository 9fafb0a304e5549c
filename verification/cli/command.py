"""Pieces every ``sltlab`` subcommand shares: its result and how it is declared."""

from __future__ import annotations

import argparse
from typing import Any, NamedTuple, NoReturn

PROG = "sltlab"


class UsageError(ValueError):
    """Bad command-line usage, reported like any other bad input."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises on bad usage instead of printing usage and exiting, and
    takes options only as spelled (no abbreviations: ``--h`` is not ``--help``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class Result(NamedTuple):
    """What a subcommand produced: a JSON-ready object and its readable rendering."""

    json_object: dict[str, Any]
    text: str
    exit_code: int = 0  # 1 when a verification gate failed (or every chain diverged)


def subcommand(group, name: str, summary: str, handler, *arguments) -> None:
    """Declare ``name`` in ``group`` with its arguments, ``--json`` and its handler."""
    parser = group.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
    for flag, options in arguments:
        parser.add_argument(flag, **options)
    parser.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    parser.set_defaults(handler=handler)
