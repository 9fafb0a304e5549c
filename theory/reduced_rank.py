"""Learning coefficients of reduced-rank regression y = BAx (Aoyagi & Watanabe 2005).

Written independently of :mod:`theory.deep_linear` so that each checks the other: a deep
linear network with three widths [M, H, N] is reduced-rank regression.

Source: M. Aoyagi and S. Watanabe, "Stochastic complexities of reduced rank regression in
Bayesian estimation", Neural Networks 18 (2005) 924–933, Main Theorem.
"""

from __future__ import annotations

import sympy

from sltlab.theory.coefficient import Derivation, LearningCoefficient, require_int

SOURCE = "Aoyagi & Watanabe, Neural Networks 18 (2005) 924-933, Main Theorem"


def reduced_rank(input_dim: int, hidden_dim: int, output_dim: int, rank: int) -> LearningCoefficient:
    """λ and m of reduced-rank regression with M inputs, H hidden units, N outputs, true rank r
    (Aoyagi & Watanabe 2005, Main Theorem).

    Parameters
    ----------
    input_dim, hidden_dim, output_dim : int
        M, H, N, each ≥ 1.
    rank : int
        True rank r, 0 ≤ r ≤ min(M, H, N).

    Notes
    -----
    If N + r ≤ M + H, M + r ≤ N + H and H + r ≤ M + N (the generic case):
    λ = [2(H + r)(M + N) − (M − N)² − (H + r)² + δ]/8 with δ = 0, m = 1 when M + H + N + r is
    even, and δ = 1, m = 2 when it is odd. Otherwise λ = (HM − Hr + Nr)/2 if M + H < N + r,
    (HN − Hr + Mr)/2 if N + H < M + r, and MN/2 if M + N < H + r, each with m = 1.
    """
    m = require_int("input_dim", input_dim, 1)
    h = require_int("hidden_dim", hidden_dim, 1)
    n = require_int("output_dim", output_dim, 1)
    r = require_int("rank", rank, 0)
    if r > min(m, h, n):
        raise ValueError(f"rank {r} exceeds min(M, H, N) = {min(m, h, n)}")

    if m + h < n + r:
        lam, mult, case = sympy.Rational(h * m - h * r + n * r, 2), 1, "M + H < N + r"
    elif n + h < m + r:
        lam, mult, case = sympy.Rational(h * n - h * r + m * r, 2), 1, "N + H < M + r"
    elif m + n < h + r:
        lam, mult, case = sympy.Rational(m * n, 2), 1, "M + N < H + r"
    else:
        odd = (m + h + n + r) % 2
        numerator = 2 * (h + r) * (m + n) - (m - n) ** 2 - (h + r) ** 2 + odd
        lam, mult = sympy.Rational(numerator, 8), 1 + odd
        case = f"generic case, M + H + N + r {'odd' if odd else 'even'}"
    return LearningCoefficient(
        lam=lam,
        multiplicity=mult,
        dim=h * (m + n),
        model="reduced_rank",
        parameters={"input_dim": m, "hidden_dim": h, "output_dim": n, "rank": r},
        derivation=Derivation("reduced-rank regression formula", f"{case} (M={m}, H={h}, N={n}, r={r})", SOURCE),
    )
