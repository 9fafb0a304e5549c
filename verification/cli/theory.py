"""``sltlab theory``: exact learning coefficients λ and m of every model family, the deep
linear staircase, and the catalogue report against published values."""

from __future__ import annotations

from argparse import ArgumentTypeError
from fractions import Fraction
from typing import Any

import sympy

from sltlab import theory
from sltlab.theory import LearningCoefficient
from sltlab.verification.cli.bayes import add_theory_transition_commands
from sltlab.verification.cli.command import Result, exact_number, folder, refusal, subcommand
from sltlab.verification.cli.estimate import answering_command


def fraction(text: str) -> sympy.Rational:
    """argparse type for an exact rational such as ``2``, ``1/2``, ``0.25`` or ``1e-3``."""
    try:
        return sympy.Rational(Fraction(exact_number(text)))
    except (ValueError, ZeroDivisionError):
        raise ArgumentTypeError(f"invalid fraction: {text!r}") from None


def add_theory_commands(commands) -> None:
    theory_parser = commands.add_parser("theory", help="exact learning coefficients λ and m",
                                        description="Exact learning coefficients λ and m.")
    models = theory_parser.add_subparsers(dest="model", required=True, metavar="MODEL")
    subcommand(models, "dln", "deep linear network (Aoyagi 2024)", _theory_dln,
               ("--widths", dict(type=int, nargs="+", required=True, metavar="H",
                                 help="widths [input, hidden..., output]")),
               ("--rank", dict(type=int, required=True, help="rank r of the true product")))
    subcommand(models, "restricted", "one layer of a deep linear network at a balanced rank-r true parameter, "
               "the other layers frozen", _theory_restricted,
               ("--widths", dict(type=int, nargs="+", required=True, metavar="H",
                                 help="widths [input, hidden..., output]")),
               ("--rank", dict(type=int, required=True, help="rank r of the true product")),
               ("--layer", dict(type=int, required=True, metavar="L",
                                help="the free layer, 1 (next to the input) to the number of layers")))
    subcommand(models, "rrr", "reduced-rank regression (Aoyagi & Watanabe 2005)", _theory_rrr,
               ("--widths", dict(type=int, nargs=3, required=True, metavar=("M", "H", "N"),
                                 help="input, hidden and output widths")),
               ("--rank", dict(type=int, required=True, help="true rank r")))
    subcommand(models, "nc", "normal crossing K = Π w_i^(2k_i), prior Π |w_i|^h_i", _theory_nc,
               ("--k", dict(type=int, nargs="+", required=True, help="half-exponents k_i")),
               ("--h", dict(type=fraction, nargs="+", help="prior exponents h_i (default 0)")))
    subcommand(models, "poly", "Newton polyhedron of a polynomial potential K(w)", _theory_poly,
               ("potential", dict(help='K(w) as a sympy expression, e.g. "w1**2*w2**2"')),
               ("--vars", dict(nargs="+", metavar="NAME", help="variables (default: all symbols)")),
               ("--prior", dict(type=fraction, nargs="+", metavar="H",
                                help="prior exponents, one per variable (default 0)")))
    subcommand(models, "tanh", "one-hidden-layer tanh network at f = 0", _theory_tanh,
               ("--hidden", dict(type=int, required=True, metavar="H", help="hidden units")))
    subcommand(models, "regular", "regular model: λ = d/2", _theory_regular,
               ("--dim", dict(type=int, required=True, metavar="D", help="number of parameters")))
    subcommand(models, "staircase", "deep linear network λ_k for every rank k", _theory_staircase,
               ("--widths", dict(type=int, nargs="+", required=True, metavar="H",
                                 help="widths [input, hidden..., output]")))
    add_theory_transition_commands(models)
    subcommand(models, "report", "report of every known case against published values",
               _theory_report,
               ("--out", dict(type=folder, required=True, metavar="DIR", help="output folder")))


def _theory_dln(args) -> Result:
    return _coefficient(theory.deep_linear(args.widths, args.rank))


def _theory_restricted(args) -> Result:
    return _coefficient(theory.restricted_deep_linear_balanced(args.widths, args.rank, args.layer))


def _theory_rrr(args) -> Result:
    return _coefficient(theory.reduced_rank(*args.widths, args.rank))


def _theory_nc(args) -> Result:
    return _coefficient(theory.normal_crossing(args.k, args.h))


def _theory_poly(args) -> Result:
    """The Newton-polyhedron λ, or its refusal (exit 3) naming the volume fit (or, past its
    variables, the sampler's estimate), which answers a degenerate potential under a flat prior."""
    try:
        return _coefficient(theory.newton(args.potential, variables=args.vars, prior=args.prior))
    except theory.DegenerateError as error:
        flat_prior = args.prior is None or not any(args.prior)
        return refusal(str(error), answering_command(args.potential, args.vars) if flat_prior else None)


def _theory_tanh(args) -> Result:
    return _coefficient(theory.tanh_network(args.hidden))


def _theory_regular(args) -> Result:
    return _coefficient(theory.regular(args.dim))


def _coefficient(lc: LearningCoefficient) -> Result:
    """One coefficient as its ``as_dict()`` and as a few aligned lines."""
    parameters = ", ".join(f"{key}={_plain(value)}" for key, value in lc.parameters.items())
    fields = [
        ("λ", _exact_and_decimal(lc.lam)),
        ("m", str(lc.multiplicity)),
        ("d", str(lc.dim)),
        ("λ/(d/2)", f"{lc.regular_ratio:.4f}"),
        ("formula", lc.derivation.formula),
        ("case", lc.derivation.case),
        ("source", lc.derivation.source),
    ]
    lines = [f"{lc.model}  {parameters}"] + [f"  {label:<9}{value}" for label, value in fields]
    return Result(lc.as_dict(), "\n".join(lines))


def _exact_and_decimal(lam: sympy.Rational) -> str:
    if lam.q == 1:
        return str(lam)
    decimal = f"{float(lam):.6g}"
    return f"{lam} {'=' if sympy.Rational(decimal) == lam else '≈'} {decimal}"


def _plain(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    return str(value)


def _theory_staircase(args) -> Result:
    staircase = theory.dln_staircase(args.widths)
    widths = list(staircase[0].parameters["widths"])
    dim = staircase[0].dim
    header = f"{'rank':>4}  {'λ':>8}  {'decimal':>9}  {'m':>2}  {'λ/(d/2)':>7}"
    lines = [f"deep linear staircase, widths {widths}, d = {dim} (d/2 = {sympy.Rational(dim, 2)})",
             header]
    for lc in staircase:
        lines.append(f"{lc.parameters['rank']:>4}  {str(lc.lam):>8}  {lc.lam_float:>9.6g}  "
                     f"{lc.multiplicity:>2}  {lc.regular_ratio:>7.4f}")
    return Result({"widths": widths, "dim": dim, "staircase": [lc.as_dict() for lc in staircase]},
                  "\n".join(lines))


def _theory_report(args) -> Result:
    from sltlab.verification.catalogue.report import write_theory_report

    report = write_theory_report(args.out)
    paths = {name: str(path) for name, path in report.paths.items()}
    verdict = "all checks pass" if report.failures == 0 else f"{report.failures} checks FAIL"
    text = "\n".join([f"wrote {path}" for path in paths.values()] + [f"theory report: {verdict}"])
    return Result({"written": paths, "failures": report.failures}, text, exit_code=int(report.failures > 0))
