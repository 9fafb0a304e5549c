"""The population loss of the toy model of superposition in the high-sparsity limit, in closed
form, with its exact gradient and Hessian (numpy, float64).

Model (Elhage et al. 2022, "Toy models of superposition"): c features, two hidden dimensions,
f(x) = ReLU(WᵀW x + b) with W ∈ R^{2×c}, b ∈ R^c. In the high-sparsity limit exactly one
feature is active, x = μ·e_i with i uniform on {1, …, c} and μ ~ U[0, 1], and the loss is
the squared error (Chen, Lau, Mendel, Wei & Murfet 2023, "Dynamical versus Bayesian phase
transitions in a toy model of superposition", §3):

    L(W, b) = (1/c) Σ_i ∫₀¹ [ (μ − ReLU(μ‖W_i‖² + b_i))² + Σ_{j≠i} ReLU(μ W_j·W_i + b_j)² ] dμ.

Every term is φ(a, b) = ∫₀¹ g(μ, ReLU(μa + b)) dμ of one pair (a = W_j·W_i, b = b_j), whose
integrand is a polynomial in μ on the interval where μa + b > 0. Its ends are 0, 1 or
μ₀ = −b/a, so φ has four analytic branches; they are derived here with sympy from the
integral itself, and φ is analytic at (a, b) unless b = 0 or a + b = 0 (a ReLU kink at an
end of [0, 1]), which :func:`kinks` reports.

Parameters are one flat vector θ = (W_1, …, W_c, b) of length 3c: column i of W is
θ[2i], θ[2i + 1], and the biases come last.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import numpy as np
import sympy

# Pre-activations within this of a kink (b = 0 or a + b = 0) count as on it.
KINK_TOLERANCE = 1e-9


def unpack(theta: np.ndarray, features: int) -> tuple[np.ndarray, np.ndarray]:
    """θ [3c] → (W [2, c], b [c])."""
    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape != (3 * features,):
        raise ValueError(f"a toy model with {features} features has {3 * features} parameters, got {theta.shape}")
    return theta[:2 * features].reshape(features, 2).T, theta[2 * features:]


def pack(weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(W [2, c], b [c]) → θ [3c]."""
    return np.concatenate([np.asarray(weights, dtype=np.float64).T.reshape(-1), np.asarray(bias, dtype=np.float64)])


@cache
def _branches():
    """For the off-diagonal (ReLU(z)²) and diagonal ((μ − ReLU(z))²) integrands, z = μa + b,
    each branch's φ and its first and second derivatives in (a, b) as numpy functions."""
    a, b, mu = sympy.symbols("a b mu", real=True)
    z, root = mu * a + b, -b / a
    ends = {"all": (0, 1), "upper": (root, 1), "lower": (0, root)}
    table = {}
    for kind, integrand, rest in (("off", z ** 2, 0), ("diag", z ** 2 - 2 * mu * z, sympy.Rational(1, 3))):
        for branch, (lo, hi) in ends.items():
            phi = rest + sympy.integrate(integrand, (mu, lo, hi))
            gradient = [sympy.diff(phi, v) for v in (a, b)]
            hessian = [sympy.diff(phi, u, v) for u, v in ((a, a), (a, b), (b, b))]
            table[kind, branch] = sympy.lambdify((a, b), [phi, *gradient, *hessian], "numpy")
    return table


class PairTerms(NamedTuple):
    """φ and its derivatives for every (input i, output j) pair, each [c, c] indexed [i, j]."""

    value: np.ndarray
    d_a: np.ndarray
    d_b: np.ndarray
    d_aa: np.ndarray
    d_ab: np.ndarray
    d_bb: np.ndarray


def pair_terms(weights: np.ndarray, bias: np.ndarray) -> PairTerms:
    """Evaluate every pair's branch of φ at (a, b) = (W_j·W_i, b_j)."""
    gram = weights.T @ weights
    features = len(bias)
    pre_a, pre_b = gram.T, np.broadcast_to(bias, (features, features))   # [i, j]: a = W_j·W_i, b = b_j
    out = np.zeros((6, features, features))
    out[0][np.diag_indices(features)] = 1 / 3      # an inactive diagonal term is ∫ μ² = 1/3
    table = _branches()
    everywhere = (pre_b >= 0) & (pre_a + pre_b >= 0)
    upper = (pre_b < 0) & (pre_a + pre_b > 0)
    lower = (pre_b > 0) & (pre_a + pre_b < 0)
    diagonal = np.eye(features, dtype=bool)
    for branch, mask in (("all", everywhere), ("upper", upper), ("lower", lower)):
        for kind, which in (("off", ~diagonal), ("diag", diagonal)):
            chosen = mask & which
            if chosen.any():
                values = table[kind, branch](pre_a[chosen], pre_b[chosen])
                for slot, value in enumerate(values):
                    out[slot][chosen] = value
    return PairTerms(*out)


def tms_loss(theta: np.ndarray, features: int) -> float:
    """L(W, b) in closed form (module docstring; Chen et al. 2023, §3)."""
    weights, bias = unpack(theta, features)
    return float(pair_terms(weights, bias).value.sum() / features)


def tms_gradient(theta: np.ndarray, features: int) -> np.ndarray:
    """∇L: ∂L/∂W = (1/c)·W(A + Aᵀ) with A[i, j] = ∂φ/∂a of pair (i, j), ∂L/∂b_j = (1/c)Σ_i ∂φ/∂b."""
    weights, bias = unpack(theta, features)
    terms = pair_terms(weights, bias)
    return pack(weights @ (terms.d_a + terms.d_a.T), terms.d_b.sum(0)) / features


def tms_hessian(theta: np.ndarray, features: int) -> np.ndarray:
    """∇²L [3c, 3c] by the chain rule through a_ij = W_j·W_i:
    Σ_pairs φ_aa ∇a∇aᵀ + φ_ab(∇a e_bᵀ + e_b∇aᵀ) + φ_bb e_b e_bᵀ + φ_a ∇²a, divided by c.

    Summed over the pairs in closed form, with ∂a_ij/∂W_p = δ_pj W_i + δ_pi W_j and S = φ_aa + φ_aaᵀ:
    the block of columns (p, q) is δ_pq·W diag(S[:, p]) Wᵀ + S[p, q]·W_q W_pᵀ + (φ_a + φ_aᵀ)[p, q]·I,
    the column p against bias j is δ_pj·Σ_i φ_ab[i, j] W_i + φ_ab[p, j] W_j, and the biases' block is
    diagonal, Σ_i φ_bb[i, j]."""
    weights, bias = unpack(theta, features)
    terms = pair_terms(weights, bias)
    c = features
    symmetric = terms.d_aa + terms.d_aa.T
    columns = np.einsum("qp,aq,bp->paqb", symmetric, weights, weights)
    columns[np.arange(c), :, np.arange(c), :] += np.einsum("ip,ai,bi->pab", symmetric, weights, weights)
    columns += np.einsum("pq,ab->paqb", terms.d_a + terms.d_a.T, np.eye(2))
    against_bias = np.einsum("pj,aj->paj", terms.d_ab, weights)
    against_bias[np.arange(c), :, np.arange(c)] += np.einsum("ij,ai->ja", terms.d_ab, weights)
    hessian = np.zeros((3 * c, 3 * c))
    hessian[:2 * c, :2 * c] = columns.reshape(2 * c, 2 * c)
    hessian[:2 * c, 2 * c:] = against_bias.reshape(2 * c, c)
    hessian[2 * c:, :2 * c] = hessian[:2 * c, 2 * c:].T
    hessian[2 * c:, 2 * c:] = np.diag(terms.d_bb.sum(0))
    return hessian / features


def kinks(theta: np.ndarray, features: int, tolerance: float = KINK_TOLERANCE) -> list[str]:
    """Pairs whose pre-activation μa + b vanishes at μ = 0 or μ = 1 (b = 0 or a + b = 0): there
    the loss is not analytic, and λ is not rank(H)/2. One line per pair, empty when none."""
    weights, bias = unpack(theta, features)
    gram = weights.T @ weights
    found = []
    for i in range(features):
        for j in range(features):
            a, b = gram[j, i], bias[j]
            if abs(b) <= tolerance or abs(a + b) <= tolerance:
                where = "μ = 0 (b = 0)" if abs(b) <= tolerance else "μ = 1 (a + b = 0)"
                found.append(f"input {i + 1} → output {j + 1}: μ·{a:.6g} + {b:.6g} vanishes at {where}")
    return found
