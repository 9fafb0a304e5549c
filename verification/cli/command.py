"""Pieces every ``sltlab`` subcommand shares: its result and how it is declared."""

from __future__ import annotations

import argparse
import math
import re
import shlex
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

PROG = "sltlab"


class UsageError(ValueError):
    """Bad command-line usage, reported like any other bad input."""


# What argparse reads as a negative number rather than an option: its own integers and decimals, and
# fractions (``--prior -1/2 0``, ``--h -1/3``), exponents (``-1e-3``) and ``-inf``/``-nan``, which it
# would otherwise take for an option of their own (``--singular-values -1e-3`` had read "expected at
# least one argument").
NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-\d+/\d+$|^-(inf|infinity|nan)$", re.IGNORECASE)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises on bad usage instead of printing usage and exiting, takes
    options only as spelled (no abbreviations: ``--h`` is not ``--help``) and reads a negative
    fraction as a number (``NEGATIVE_NUMBER``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})
        self._negative_number_matcher = NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class Result(NamedTuple):
    """What a subcommand produced: a JSON-ready object and its readable rendering."""

    json_object: dict[str, Any]
    text: str
    exit_code: int = 0  # 1 when a verification gate failed (or every chain diverged), 3 a refusal


def seed(text: str) -> int:
    """A seed as the command line takes it (argparse's ``type``): an integer from 0 to 2**32 − 1,
    what torch's CPU generator keeps whole (``LLCConfig`` takes the same range)."""
    value = int(text)   # a ValueError: argparse says "invalid seed value"
    if not 0 <= value < 2 ** 32:
        raise argparse.ArgumentTypeError(f"a seed is an integer from 0 to 2**32 − 1, got {text}")
    return value


def number(text: str) -> float:
    """A real number as the command line takes it (argparse's ``type``): a decimal (``0.4``,
    ``1e-3``) or a fraction (``2/5``), as ``theory`` commands take their exact values."""
    try:   # a fraction's text only through Fraction: 1e10000000 read as one would be built digit by digit
        value = float(Fraction(text.strip())) if "/" in text else float(text)
        if not math.isfinite(value):
            raise ValueError(text)
        return value
    except (ValueError, ZeroDivisionError, OverflowError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number (a decimal such as 0.4, or a fraction "
                                         "such as 2/5)") from None


MAX_DECIMAL_EXPONENT = 400   # beyond 1e±400 a decimal read exactly is built digit by digit (values are at most 1e100)


def exact_number(text: str) -> str:
    """An exact decimal or fraction's text as the command line takes it (argparse's ``type``), as
    given, once its exponent is within ±``MAX_DECIMAL_EXPONENT``: 1e-10000000, read exactly,
    had taken minutes before any check of its size."""
    exponent = re.search(r"[eE]\s*[+-]?\s*0*(\d+)\s*$", text)
    if exponent and (len(exponent.group(1)) > 3 or int(exponent.group(1)) > MAX_DECIMAL_EXPONENT):
        raise argparse.ArgumentTypeError(f"{text!r} has an exponent beyond ±{MAX_DECIMAL_EXPONENT} (the values are at "
                                         "most 1e100)")
    return text


def folder(text: str) -> Path:
    """An output folder as the command line takes it (argparse's ``type``): not the empty string,
    which would write into the current folder unasked."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an output folder is a path, not ''")
    return Path(text)


REFUSED = 3   # the exit code of a refusal: this method cannot give a correct value for this input


def refusal(reason: str, answered_by: str | None) -> Result:
    """A method's refusal as an answer: one line saying why and naming the command that answers
    the question instead (``answered_by``, None where no command does), exit code 3."""
    reason = " ".join(reason.split())
    text = f"refused: {reason}" + ("" if answered_by is None else f"; answered by: {answered_by}")
    return Result({"refused": reason, "answered_by": answered_by}, text, exit_code=REFUSED)


def shell_word(text: str) -> str:
    """``text`` quoted for a POSIX shell, in double quotes where that is safe (for reading)."""
    return f'"{text}"' if not set(text) & set('"$`\\!') else shlex.quote(text)


def subcommand(group, name: str, summary: str, handler, *arguments) -> None:
    """Declare ``name`` in ``group`` with its arguments, ``--json`` and its handler."""
    parser = group.add_parser(name, help=summary, description=sentence(summary))
    for flag, options in arguments:
        parser.add_argument(flag, **options)
    parser.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    parser.set_defaults(handler=handler)


def sentence(summary: str) -> str:
    """``summary`` as a sentence: a leading lower-case Latin letter capitalised and a full stop
    added. A summary that opens with a symbol (λ, ν̂) keeps it: a symbol's case is its name."""
    first = summary[:1]
    opening = first.upper() if first.isascii() else first
    return opening + summary[1:] + "."
