"""Learning coefficients of one layer of a deep linear network, every other layer frozen.

Model f(x) = W_L ⋯ W_1 x with widths H_1 (input), …, H_{L+1} (output); layer l (numbered 1..L,
W_1 next to the input) is the H_{l+1} × H_l matrix W_l. At a true parameter W* (one whose
product is the teacher T), freeze every layer but W_l and write A_l = W_L ⋯ W_{l+1} (the identity
on the outputs when l = L) and B_l = W_{l−1} ⋯ W_1 (the identity on the inputs when l = 1).
Under Gaussian regression with unit noise and input covariance Σ of full rank, the average
log-loss is

    K(W_l) = ½ E‖(A_l W_l B_l − T) x‖² = ½ ‖A_l (W_l − W_l*) B_l Σ^{1/2}‖²_F,

because A_l W_l* B_l = T. This is a quadratic form in ΔW = W_l − W_l* with matrix
(B_l Σ B_lᵀ) ⊗ (A_lᵀ A_l), whose rank is rank(A_l)·rank(B_l Σ B_lᵀ) = rank(A_l)·rank(B_l)
(the rank of a Kronecker product is the product of the ranks; Σ is positive definite). A
quadratic form of rank k ≥ 1 is, after a linear change of coordinates, w_1² + … + w_k²: its
zeta function ∫ K^z φ dw has its largest pole at z = −k/2, of order 1 (Watanabe 2009, §1.4 and
Thm 6.1 — the regular model in k coordinates, the other d − k directions leave K unchanged).
So the restricted learning coefficient is

    λ_l = rank(A_l)·rank(B_l)/2,   m = 1,

and λ_l = 0 when a frozen product vanishes: K is then identically 0 and the loss does not
depend on W_l (no log n term in the free energy). The derivation holds at every true
parameter, not only at the deepest ones.

At a balanced rank-r true parameter (:func:`sltlab.models.balanced_factorization`: every layer
of rank exactly r, aligned, so every product of consecutive layers has rank r) this gives
r²/2 for a hidden layer, r·H_1/2 for the first layer and H_{L+1}·r/2 for the last; a network of
one layer (A and B both identities) is regular, λ = H_1·H_2/2.
"""

from __future__ import annotations

import warnings

from typing import Sequence

import sympy

from sltlab.theory.coefficient import Derivation, LearningCoefficient, require_int
from sltlab.theory.deep_linear import validate_widths

SOURCE = "quadratic form (B_l Σ B_lᵀ) ⊗ (A_lᵀ A_l) of rank rank(A_l)·rank(B_l); Watanabe (2009) §1.4"


def _validate_layer(widths: tuple[int, ...], layer: int) -> int:
    layer = require_int("layer", layer, 1)
    depth = len(widths) - 1
    if layer > depth:
        raise ValueError(f"layer {layer} does not exist: widths {list(widths)} have layers 1..{depth}")
    return layer


def _frozen_rank(name: str, rank: int | None, identity_width: int | None, bound: int) -> int:
    """The rank of a frozen product: the identity's width at the boundary, else a given rank ≤ bound."""
    if identity_width is not None:
        if rank is not None and rank != identity_width:
            raise ValueError(f"{name} is the identity of width {identity_width} for this layer, got rank {rank}")
        return identity_width
    if rank is None:
        raise ValueError(f"{name} is needed for this layer (the product of the frozen layers on that side)")
    rank = require_int(name, rank, 0)
    if rank > bound:
        raise ValueError(f"{name} {rank} exceeds {bound}, the narrowest width that product passes through")
    return rank


def restricted_deep_linear(widths: Sequence[int], layer: int, *, rank_above: int | None = None,
                           rank_below: int | None = None) -> LearningCoefficient:
    """λ and m of layer ``layer`` alone, every other layer frozen at a true parameter.

    Parameters
    ----------
    widths : sequence of int
        [H_1 (input), H_2, …, H_{L+1} (output)], each ≥ 1.
    layer : int
        l in 1..L; W_l is the H_{l+1} × H_l matrix (W_1 next to the input).
    rank_above : int, optional
        rank(A_l) of A_l = W_L ⋯ W_{l+1}, at most min(H_{l+1}, …, H_{L+1}). Omitted for the last
        layer, where A_l is the identity on the outputs (rank H_{L+1}).
    rank_below : int, optional
        rank(B_l) of B_l = W_{l−1} ⋯ W_1, at most min(H_1, …, H_l). Omitted for the first layer,
        where B_l is the identity on the inputs (rank H_1).

    Notes
    -----
    λ_l = rank(A_l)·rank(B_l)/2, m = 1 (0 when a frozen product vanishes); d = H_{l+1}·H_l.
    See the module docstring for the proof.
    """
    widths = validate_widths(widths)
    layer = _validate_layer(widths, layer)
    depth = len(widths) - 1
    above = _frozen_rank("rank_above", rank_above, widths[-1] if layer == depth else None, min(widths[layer:]))
    below = _frozen_rank("rank_below", rank_below, widths[0] if layer == 1 else None, min(widths[:layer]))
    case = (f"layer {layer} of {depth} ({widths[layer]} × {widths[layer - 1]}): rank(A_l) = {above}"
            f"{' (identity on the outputs)' if layer == depth else ''}, rank(B_l) = {below}"
            f"{' (identity on the inputs)' if layer == 1 else ''}"
            + ("; a frozen product vanishes, the loss does not depend on this layer" if above * below == 0 else ""))
    return LearningCoefficient(
        lam=sympy.Rational(above * below, 2),
        multiplicity=1,
        dim=widths[layer] * widths[layer - 1],
        model="restricted_deep_linear",
        parameters={"widths": widths, "layer": layer, "rank_above": above, "rank_below": below},
        derivation=Derivation("restricted deep linear network: λ = rank(A_l)·rank(B_l)/2, m = 1", case, SOURCE),
    )


def restricted_deep_linear_at(weights: Sequence, layer: int) -> LearningCoefficient:
    """:func:`restricted_deep_linear` at the true parameter given by its matrices, ranks exact.

    ``weights`` are W_1, …, W_L, each anything ``sympy.Matrix`` accepts (nested lists of
    integers or rationals); the products' ranks are computed in exact arithmetic, so floating
    point matrices are refused.
    """
    if isinstance(weights, (str, bytes)) or not hasattr(weights, "__iter__"):
        raise ValueError(f"weights must list the matrices W_1, …, W_L, got {type(weights).__name__}")
    try:
        with warnings.catch_warnings():   # sympy warns of entries that are no expressions (a list nested too deep)
            warnings.simplefilter("error")
            matrices = [sympy.Matrix(w) for w in weights]
    except (TypeError, ValueError, sympy.SympifyError, Warning):
        raise ValueError("every weight must be a matrix: a nested list of integers or rationals") from None
    if not matrices:
        raise ValueError("weights must list at least one matrix W_1")
    if any(not getattr(entry, "is_Rational", False) for matrix in matrices for entry in matrix):
        raise ValueError("every weight entry must be an exact integer or rational (ranks are computed exactly)")
    for s, (lower, upper) in enumerate(zip(matrices, matrices[1:]), start=1):
        if upper.cols != lower.rows:
            raise ValueError(f"W_{s + 1} has {upper.cols} columns but W_{s} has {lower.rows} rows")
    widths = [matrices[0].cols] + [matrix.rows for matrix in matrices]
    layer = _validate_layer(validate_widths(widths), layer)
    above = sympy.eye(widths[layer])
    for matrix in matrices[layer:]:
        above = matrix * above
    below = sympy.eye(widths[0])
    for matrix in matrices[:layer - 1]:
        below = matrix * below
    return restricted_deep_linear(widths, layer, rank_above=None if layer == len(matrices) else above.rank(),
                                  rank_below=None if layer == 1 else below.rank())


def restricted_deep_linear_balanced(widths: Sequence[int], rank: int, layer: int) -> LearningCoefficient:
    """:func:`restricted_deep_linear` at a balanced rank-r true parameter.

    Every layer has rank exactly r and the layers are aligned
    (:func:`sltlab.models.balanced_factorization`), so each frozen product that is not an
    identity has rank r: λ = r²/2 for a hidden layer, r·H_1/2 for the first, H_{L+1}·r/2 for the
    last, 0 at r = 0 (except a one-layer network, which is regular: H_1·H_2/2).
    """
    widths = validate_widths(widths, rank)
    layer = _validate_layer(widths, layer)
    depth = len(widths) - 1
    return restricted_deep_linear(widths, layer, rank_above=None if layer == depth else rank,
                                  rank_below=None if layer == 1 else rank)
