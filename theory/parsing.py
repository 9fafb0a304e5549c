"""The one parser of potentials K(w) that every part of sltlab reads: the Newton polyhedron,
the samplers' batched potentials, the finite-temperature truth and the volume check.

Variables are ordered naturally (w2 before w10), so a coordinate means the same thing to the
theory and to a sampler.
"""

from __future__ import annotations

import ast
import keyword
import re
from typing import Iterable, Sequence

import sympy
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations


def natural_order(symbols: Iterable[sympy.Symbol]) -> tuple[sympy.Symbol, ...]:
    """``symbols`` sorted by name with runs of digits compared as numbers: w1, w2, …, w10."""
    symbols = list(symbols) if hasattr(symbols, "__iter__") else None
    if symbols is None or not all(isinstance(symbol, sympy.Symbol) for symbol in symbols):
        raise ValueError("natural_order sorts sympy symbols")

    def key(symbol: sympy.Symbol) -> list:
        return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", symbol.name)]

    return tuple(sorted(symbols, key=key))


_ARITHMETIC = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.UAdd,
               ast.USub, ast.expr_context)


def check_arithmetic(text: str) -> None:
    """Refuse, before sympy reads it, text that is not arithmetic: sympy's parser evaluates the
    text as Python (``parse_expr`` runs ``eval``), so ``__import__('os').system(...)`` would run.
    Allowed are numbers, names not starting with ``_``, + − * / ** (or ^) and calls of sympy's
    own functions (``sin``, ``exp``, ``sqrt``, …) without keywords; anything else is a one-line
    ``ValueError``."""
    if len(text) > MAX_TEXT:
        raise ValueError(f"the potential {shown(text)} has {len(text):,} characters, more than the {MAX_TEXT:,} read")
    try:
        tree = ast.parse(text.translate(TYPESET).replace("^", "**").strip(), mode="eval")
    except SyntaxError:
        odd = next((c for c in text if not c.isascii() and not c.isidentifier() and c not in TYPESET_SIGNS), None)
        said = f"it holds {odd!r} (U+{ord(odd):04X}), which is no number, name or sign read" if odd else "SyntaxError"
        raise ValueError(f"cannot parse the potential {shown(text)}: {said}") from None
    except (RecursionError, MemoryError):
        raise ValueError(f"cannot parse the potential {shown(text)}: it nests too deeply for Python's parser (a sum "
                         "of about 3,000 terms, or as many signs or brackets in a row)") from None
    for node in ast.walk(tree):
        allowed = (isinstance(node, _ARITHMETIC)
                   or (isinstance(node, ast.Constant) and type(node.value) in (int, float))
                   or (isinstance(node, ast.Name) and not node.id.startswith("_"))
                   or (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords
                       and _is_sympy_function(node.func.id)))
        if not allowed:
            found = ast.unparse(node) if isinstance(node, ast.expr) else type(node).__name__
            called = node.func.id if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else None
            if called and not node.keywords and not _is_sympy_function(called):
                sympys = f" (sympy's is {called.capitalize()})" if _is_sympy_function(called.capitalize()) else ""
                found += f", and {called} is not one of sympy's functions{sympys}"
            raise ValueError(f"the potential {shown(text)} may hold only numbers, variables, + − * / ** ^ and sympy's "
                             f"functions; it has {found}")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            _check_exponent(node.right, text)


def shown(text: str) -> str:
    """``text`` quoted for a one-line message, :func:`abbreviated`."""
    return repr(abbreviated(text))


def abbreviated(text: str) -> str:
    """``text`` for a one-line message: its first and last 60 characters when longer than 150."""
    return text if len(text) <= 150 else f"{text[:60]} … {text[-60:]}"


TYPESET_SIGNS = "−×·"   # typeset minus and times, read as - and * (the messages list − among the signs)
TYPESET = str.maketrans({"−": "-", "×": "*", "·": "*"})
MAX_TEXT = 50_000   # characters of a potential's text: a sum of 2,900 squares has 20,000 and takes 10 s to parse
MAX_POWER = 1000   # the largest exponent taken: 9**9**9 alone has 370 million digits, which sympy would compute


def _check_exponent(node: ast.expr, text: str) -> None:
    """An exponent must be a number, or + − * / of numbers, of size at most ``MAX_POWER``."""
    numeric = all(isinstance(part, (ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop))
                  and not isinstance(part, ast.Pow) for part in ast.walk(node))
    try:
        value = eval(compile(ast.Expression(node), "<exponent>", "eval"), {"__builtins__": {}}) if numeric else None
    except ZeroDivisionError:
        value = None
    if value is None or not abs(value) <= MAX_POWER:
        raise ValueError(f"the potential {shown(text)} raises to {ast.unparse(node)}: an exponent must be a number (or "
                         f"+ − * / of numbers) of size at most {MAX_POWER}")


def _is_sympy_function(name: str) -> bool:
    value = getattr(sympy, name, None)
    return value is sympy.sqrt or (isinstance(value, type) and issubclass(value, sympy.Function))


def parse_expression(K, variables: Sequence | None = None) -> tuple[sympy.Expr, tuple[sympy.Symbol, ...]]:
    """K as a sympy expression (``^`` is a power, as in ``**``) and its coordinates, in order.

    Parameters
    ----------
    K : str or sympy expression
        The potential, e.g. ``"w1**2*w2**2"``.
    variables : sequence of str or sympy.Symbol, optional
        The coordinates in order (default: K's symbols in :func:`natural_order`). Variables
        K does not involve are allowed: they are free directions.

    Raises
    ------
    ValueError
        In one line, when K cannot be parsed, is not an expression, is zero, has no variables,
        names two different symbols alike, or uses a symbol that is not among ``variables``.
    """
    if isinstance(K, str):
        check_arithmetic(K)
        try:
            expression = parse_expr(K.translate(TYPESET), transformations=standard_transformations + (convert_xor,))
        except Exception as error:  # the parser raises many kinds of error on malformed text
            named = sorted({name for name in re.findall(r"([A-Za-z_]\w*)(?!\w|\s*\()", K) if keyword.iskeyword(name)
                            or name in vars(sympy)})   # gamma, beta, S, N, not called as functions
            reserved = (f" ({', '.join(named)}: a name sympy or Python keeps for itself, not a variable; call the "
                        "variables w1, w2, …)") if named else ""
            raise ValueError(f"cannot parse the potential {shown(K)}: {type(error).__name__}{reserved}") from None
    elif isinstance(K, sympy.Basic):
        expression = K
    else:
        raise ValueError(f"K must be a sympy expression or a string, got {type(K).__name__}")
    if not isinstance(expression, sympy.Expr):
        raise ValueError(f"K must be an expression, got {expression!r}")
    if expression == 0:
        raise ValueError("K is identically zero")
    if expression.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):
        raise ValueError(f"K = {expression} has a coefficient that is not a finite number")
    if variables is None:
        symbols = natural_order(expression.free_symbols)
    else:
        if isinstance(variables, (str, set, frozenset)) or not hasattr(variables, "__iter__"):
            raise ValueError(f"variables must be a list of names, in order, got {variables!r}")
        symbols = tuple(sympy.Symbol(v) if isinstance(v, str) else v for v in variables)
        if not all(isinstance(s, sympy.Symbol) for s in symbols) or len(set(symbols)) != len(symbols):
            raise ValueError(f"variables must be distinct names, got {list(variables)!r}")
        stray = expression.free_symbols - set(symbols)
        if stray:
            raise ValueError(f"K involves {sorted(map(str, stray))}, which are not among the variables")
    if not symbols:
        raise ValueError(f"K = {expression} has no variables")
    names = [str(symbol) for symbol in symbols]
    if len(set(names)) != len(names):   # sympy tells Symbol("w1") from Symbol("w1", real=True); a reader cannot
        raise ValueError(f"K has two different symbols of one name among {names}: name each variable once")
    return expression, symbols
