"""Learning coefficients of small models with closed forms: normal crossings, one-hidden-layer
tanh networks, and regular models.
"""

from __future__ import annotations

from math import isqrt
from typing import Sequence

import sympy

from sltlab.theory.coefficient import Derivation, LearningCoefficient, require_exponents, require_int


def normal_crossing(k: Sequence[int], h: Sequence | None = None) -> LearningCoefficient:
    """λ and m of K(w) = Π w_i^{2k_i} under a prior φ(w) ∝ Π |w_i|^{h_i} near 0.

    Parameters
    ----------
    k : sequence of int
        Half-exponents k_i ≥ 0, at least one positive (otherwise K ≡ 1 has no zero).
    h : sequence of non-negative rationals, optional
        Prior exponents (default 0: a prior positive at the origin).

    Notes
    -----
    λ = min_{i: k_i > 0} (h_i + 1)/(2k_i), m = the number of indices attaining the minimum
    (Watanabe 2009, *Algebraic Geometry and Statistical Learning Theory*, Thm 2.3 and §2.4).
    """
    k = require_exponents("k", k, allow_fraction=False)
    h = tuple(sympy.Integer(0) for _ in k) if h is None else require_exponents("h", h, allow_fraction=True)
    if not k:
        raise ValueError("k must have at least one entry")
    if len(h) != len(k):
        raise ValueError(f"h has {len(h)} entries but k has {len(k)}")
    if all(ki == 0 for ki in k):
        raise ValueError("every k_i is 0: K ≡ 1 has no zero at the origin")
    ratios = [(hi + 1) / (2 * ki) for ki, hi in zip(k, h) if ki > 0]
    lam = min(ratios)
    attaining = [i for i, (ki, hi) in enumerate(zip(k, h)) if ki > 0 and (hi + 1) / (2 * ki) == lam]
    return LearningCoefficient(
        lam=lam,
        multiplicity=len(attaining),
        dim=len(k),
        model="normal_crossing",
        parameters={"k": tuple(int(x) for x in k), "h": tuple(str(x) for x in h)},
        derivation=Derivation(
            "normal crossing: λ = min (h_i + 1)/(2k_i), m = number of minimisers",
            f"minimum attained at coordinates {[i + 1 for i in attaining]}",
            "Watanabe, Algebraic Geometry and Statistical Learning Theory (2009), Thm 2.3",
        ),
    )


def tanh_network(hidden: int) -> LearningCoefficient:
    """λ and m of f(x) = Σ_h a_h tanh(b_h x) (one input, one output, no biases) at true f = 0.

    Notes
    -----
    With i = ⌊√H⌋: λ = (H + i² + i)/(4i + 2), m = 2 if i² = H and 1 otherwise (Aoyagi &
    Watanabe, IEICE Trans. J88-D-II (2005) 2112-2124; Watanabe 2009, §7.6).
    """
    hidden = require_int("hidden", hidden, 1)
    i = isqrt(hidden)
    return LearningCoefficient(
        lam=sympy.Rational(hidden + i * i + i, 4 * i + 2),
        multiplicity=2 if i * i == hidden else 1,
        dim=2 * hidden,
        model="tanh_network",
        parameters={"hidden": hidden},
        derivation=Derivation(
            "one-hidden-layer tanh network at f = 0: λ = (H + i² + i)/(4i + 2), i = ⌊√H⌋",
            f"H = {hidden}, i = {i}" + (" (H a perfect square: m = 2)" if i * i == hidden else ""),
            "Aoyagi & Watanabe, IEICE Trans. J88-D-II (2005); Watanabe (2009) §7.6",
        ),
    )


def regular(d: int) -> LearningCoefficient:
    """λ = d/2, m = 1: a model whose Fisher information is positive definite at the truth, where
    the free energy is Schwarz's BIC, n·L_n + (d/2)·log n (Watanabe 2009, §1.4; Schwarz 1978)."""
    d = require_int("d", d, 1)
    return LearningCoefficient(
        lam=sympy.Rational(d, 2),
        multiplicity=1,
        dim=d,
        model="regular",
        parameters={"d": d},
        derivation=Derivation("regular model: λ = d/2, m = 1", f"d = {d}",
                              "Watanabe (2009), §1.4 / Schwarz BIC"),
    )
