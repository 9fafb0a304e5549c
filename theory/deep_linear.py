"""Learning coefficients of deep linear networks (Aoyagi 2024).

Model f(x) = W_L ⋯ W_1 x with widths H_1 (input), …, H_{L+1} (output), whose true product has
rank r. The formula is Theorem 1 of M. Aoyagi, "Consideration on the learning efficiency of
multiple-layered neural networks with linear units", Neural Networks 172 (2024) 106132, in a
total form: the active set is the k smallest Δ_s = H_s − r with k the largest j in 2..L+1 for
which Δ_1 + … + Δ_j ≥ (j − 1)·Δ_j (sorted ascending). The printed definition has a strict
inequality and a wrong bound; this form is total and agrees with the two-layer theorem
(Aoyagi & Watanabe 2005), which :func:`sltlab.theory.reduced_rank` implements independently.
"""

from __future__ import annotations

from typing import Sequence

import sympy

from sltlab.theory.coefficient import Derivation, LearningCoefficient, require_int

SOURCE = "Aoyagi, Neural Networks 172 (2024) 106132, Thm 1"


MAX_LAYERS = 10_000   # 10⁵ widths took 28 s


def validate_widths(widths: Sequence[int], rank: int | None = None) -> tuple[int, ...]:
    """Check a widths list [input, hidden..., output] (and a rank), returning it as a tuple."""
    if isinstance(widths, (str, bytes, set, frozenset, dict)) or not hasattr(widths, "__iter__"):
        raise ValueError(f"widths must be a list of integers in order, got {widths!r}")
    widths = tuple(require_int("every width", w, 1) for w in widths)
    if len(widths) > MAX_LAYERS + 1:
        raise ValueError(f"a deep linear network here has at most {MAX_LAYERS:,} layers ({MAX_LAYERS + 1:,} widths; "
                         f"the formula's search grows with their square), got {len(widths) - 1:,}")
    if len(widths) < 2:
        raise ValueError(f"widths needs at least an input and an output width, got {list(widths)}")
    if rank is not None:
        rank = require_int("rank", rank, 0)
        if rank > min(widths):
            raise ValueError(f"rank {rank} exceeds the smallest width {min(widths)}")
    return widths


def deep_linear(widths: Sequence[int], rank: int) -> LearningCoefficient:
    """λ and m of a deep linear network at a true product of the given rank.

    Parameters
    ----------
    widths : sequence of int
        [H_1 (input), H_2, …, H_{L+1} (output)], each ≥ 1.
    rank : int
        Rank r of the true end-to-end matrix, 0 ≤ r ≤ min(widths).

    Notes
    -----
    With Δ_s = H_s − r sorted increasingly, the active set is the k smallest, k the largest
    j ≥ 2 with Δ_1 + … + Δ_j ≥ (j − 1)Δ_j; ℓ = k − 1, S their sum, a = S − (⌈S/ℓ⌉ − 1)ℓ, and

        λ = r(H_1 + H_{L+1} − r)/2 + a(ℓ − a)/(4ℓ) − (ℓ − 1)S²/(4ℓ) + ½ Σ_{i<j active} Δ_iΔ_j,
        m = a(ℓ − a) + 1            (Aoyagi 2024, Thm 1).
    """
    if rank is None:
        raise ValueError("rank must be an integer, got None")
    widths = validate_widths(widths, rank)
    rank = int(rank)
    deficits = sorted(h - rank for h in widths)
    k = max(j for j in range(2, len(deficits) + 1) if sum(deficits[:j]) >= (j - 1) * deficits[j - 1])
    active = deficits[:k]
    ell = k - 1
    total = sum(active)
    a = total - (-(-total // ell) - 1) * ell  # −(−S // ℓ) is ⌈S/ℓ⌉ in exact integers
    pair_sum = (total * total - sum(x * x for x in active)) // 2  # Σ_{i<j} Δ_iΔ_j
    lam = (sympy.Rational(rank * (widths[0] + widths[-1] - rank), 2)
           + sympy.Rational(a * (ell - a), 4 * ell)
           - sympy.Rational((ell - 1) * total * total, 4 * ell)
           + sympy.Rational(pair_sum, 2))
    case = (f"Δ = H − r sorted {deficits}; active set the {k} smallest {active} (ℓ = {ell}), "
            f"S = {total}, a = {a}")
    return LearningCoefficient(
        lam=lam,
        multiplicity=a * (ell - a) + 1,
        dim=sum(x * y for x, y in zip(widths, widths[1:])),
        model="deep_linear",
        parameters={"widths": widths, "rank": rank},
        derivation=Derivation("Aoyagi's formula for deep linear networks", case, SOURCE),
    )


MAX_STAIRCASE = 10_000   # the smallest width a staircase lists every rank of (10⁵ ranks take 2.6 s, 10⁹ hours)


def dln_staircase(widths: Sequence[int]) -> tuple[LearningCoefficient, ...]:
    """λ_k = deep_linear(widths, k) for every rank k = 0, …, min(widths).

    The plateau values predicted along saddle-to-saddle training (Saxe, McClelland & Ganguli
    2014; Jacot et al. 2021): at plateau k the network is a deepest rank-k minimum of the
    relabelled problem. At most ``MAX_STAIRCASE`` + 1 ranks are listed.
    """
    widths = validate_widths(widths)
    if min(widths) > MAX_STAIRCASE:
        raise ValueError(f"the staircase of {list(widths)} has {min(widths) + 1:,} ranks, more than the "
                         f"{MAX_STAIRCASE + 1:,} listed: ask deep_linear(widths, rank) for the ranks wanted")
    return tuple(deep_linear(widths, r) for r in range(min(widths) + 1))
