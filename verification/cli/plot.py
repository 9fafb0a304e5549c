"""``sltlab plot``: theory figures (the deep linear staircase, the width × rank phase diagram, the
free energies of phases over n)."""

from __future__ import annotations

from pathlib import Path

from sltlab.verification.cli.bayes import add_transition_plot_command
from sltlab.verification.cli.command import Result, subcommand


def add_plot_commands(commands) -> None:
    plot_parser = commands.add_parser("plot", help="theory figures", description="Theory figures.")
    figures = plot_parser.add_subparsers(dest="figure", required=True, metavar="FIGURE")
    subcommand(figures, "staircase", "λ_k over the teacher rank k", _plot_staircase,
               ("--widths", dict(type=int, nargs="+", required=True, metavar="H",
                                 help="widths [input, hidden..., output]")),
               ("--out", dict(type=Path, required=True, metavar="FILE", help="figure file (.png)")))
    subcommand(figures, "phase", "λ/(d/2) over hidden width × teacher rank", _plot_phase,
               ("--depth", dict(type=int, required=True, metavar="L",
                                help="number of weight matrices (L - 1 hidden layers)")),
               ("--io", dict(type=int, required=True, metavar="N", help="input and output width")),
               ("--max-width", dict(type=int, required=True, metavar="W",
                                    help="largest hidden width shown")),
               ("--out", dict(type=Path, required=True, metavar="FILE", help="figure file (.png)")))
    add_transition_plot_command(figures)


def _plot_staircase(args) -> Result:
    from sltlab.verification.catalogue.figures import plot_staircase

    return _written(plot_staircase(args.widths, args.out))


def _plot_phase(args) -> Result:
    from sltlab.verification.catalogue.figures import plot_phase

    return _written(plot_phase(args.depth, args.io, args.max_width, args.out))


def _written(path: Path) -> Result:
    return Result({"written": {"figure": str(path)}}, f"wrote {path}")
