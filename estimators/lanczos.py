"""The Lanczos recurrence on a symmetric operator, many start vectors as one batch, and the Gauss
quadrature of the operator's spectral measure that it gives.

From a unit start v₁ the recurrence H·v_j = β_{j−1}·v_{j−1} + α_j·v_j + β_j·v_{j+1} (Lanczos 1950)
builds the tridiagonal T_m = tridiag(β, α, β) of H in the Krylov space of v₁. With T_m = QΘQᵀ,
the nodes θ_k and weights τ_k = Q_{1k}² are the m-point Gauss rule of the measure
μ(x) = Σ_i (u_iᵀv₁)²·[h_i ≤ x] over H's eigenpairs (h_i, u_i): Σ_k τ_k·f(θ_k) = v₁ᵀf(H)v₁ exactly
for every polynomial f of degree below 2m (Golub & Meurant 1994, §3; Golub & Meurant, *Matrices,
Moments and Quadrature with Applications*, 2010, Thm. 6.2). With v₁ drawn uniformly on the unit
sphere of a k-dimensional space, E[v₁ᵀf(H)v₁] = tr f(H)/k, so k times the rule's mean over random
starts estimates tr f(H): stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017, SIAM J. Matrix
Anal. Appl. 38(4), eq. 3.5). Without reorthogonalisation the vectors lose orthogonality as Ritz
values converge, which repeats those values but leaves the quadrature accurate (Greenbaum 1989;
Knizhnerman 1996), so only three vectors per start are held.
"""

from __future__ import annotations

from itertools import islice
from typing import Callable, Iterator

import torch
from torch import Tensor


def lanczos_recurrence(product_with: Callable[[Tensor], Tensor], start: Tensor,
                       mask: Tensor | None = None) -> Iterator[tuple[Tensor, Tensor]]:
    """α_j and β_j [P] of the recurrence (module docstring) from each start [P, d] (nonzero; masked,
    then normalised here), one step per item, every start as one batch of ``product_with``
    ([P, d] ↦ H·v, each row by its own H). With ``mask`` [P, d] (1 on the coordinates kept) every
    vector stays in that subspace, which gives the operator restricted to it. Where a Krylov space
    is exhausted (β = 0) the later vectors are zero and add α = β = 0."""
    vector = start if mask is None else start * mask
    vector = vector / vector.norm(dim=-1, keepdim=True)
    previous = torch.zeros_like(vector)
    beta = torch.zeros(len(vector), dtype=vector.dtype, device=vector.device)
    while True:
        residual = product_with(vector) if mask is None else product_with(vector) * mask
        alpha = (residual * vector).sum(-1)
        residual = residual - alpha.unsqueeze(-1) * vector - beta.unsqueeze(-1) * previous
        beta = residual.norm(dim=-1)
        yield alpha, beta
        scale = torch.where(beta > 0, 1.0 / beta.clamp_min(torch.finfo(vector.dtype).tiny), torch.zeros_like(beta))
        previous, vector = vector, residual * scale.unsqueeze(-1)


def tridiagonal(alphas: list[Tensor], betas: list[Tensor]) -> Tensor:
    """T = tridiag(β, α, β) [P, m, m] of the first m = len(alphas) steps (the last β, which leads
    out of the Krylov space, is not in T)."""
    matrix = torch.diag_embed(torch.stack(alphas, -1))
    if len(alphas) > 1:
        off_diagonal = torch.stack(betas[:len(alphas) - 1], -1)
        matrix = matrix + torch.diag_embed(off_diagonal, 1) + torch.diag_embed(off_diagonal, -1)
    return matrix


def gauss_quadrature(product_with: Callable[[Tensor], Tensor], start: Tensor, steps: int,
                     mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The ``steps``-point Gauss rule of H's spectral measure at each start [P, d] (masked and
    normalised, v₁): nodes θ and weights τ [P, steps], in float64, with Σ_k τ_k·f(θ_k) = v₁ᵀf(H)v₁
    for polynomials f of degree below 2·steps (module docstring)."""
    if steps < 1:
        raise ValueError(f"need at least one Lanczos step, got {steps}")
    alphas, betas = map(list, zip(*islice(lanczos_recurrence(product_with, start, mask), steps)))
    nodes, vectors = torch.linalg.eigh(tridiagonal(alphas, betas).to(torch.float64))
    return nodes, vectors[..., 0, :].square()
