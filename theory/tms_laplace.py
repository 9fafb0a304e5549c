"""The whole O(1) term of a k-gon's free energy by Laplace's method around its manifold of
minimisers, under a standard Gaussian prior: what ½‖w*‖² leaves out.

At a Morse–Bott minimum (:mod:`sltlab.theory.tms`) the posterior mass of a phase is, to
leading order (Laplace's method on a manifold of minimisers; e.g. Watanabe 2009, §1.4 for the
regular case and Bott 1954 for the normal form),

    Z ≈ Σ_copies ∫_M φ(m) (2π/n)^{r/2} det′(∇²L)^{−1/2} dm · e^{−nL*},

r = rank ∇²L = 2λ and det′ the product of its nonzero eigenvalues. For a k-gon, M is made of
copies of the rotation orbit (circles of length 2π‖W‖_F; there are 2·c!/(P!·N!·2k) of them:
the assignments of features to the polygon and its P positive and N negative dead columns,
modulo the dihedral group of the polygon, for both components of O(2)) times, for each dead
column with negative bias, the region S of (W_j, b_j) where it stays silent on every input:
b_j < 0, ‖W_j‖² ≤ −b_j and W_j·W_i ≤ min(−β, −b_j) for every alive column i. So

    F_n = nL* + λ·log n + c,   c = −log[copies · 2π‖W‖_F · (2π)^{(r − d_a)/2} e^{−½‖w_a‖²}
                                        · det′^{−1/2} · P(S)^N],

w_a the coordinates that are not negative dead columns (d_a of them) and P(S) the prior mass of
S, by quadrature (an integral over b of the Gaussian mass of a disk cut by the polygon's
half-planes, in polar coordinates; 1e-6 accurate). What it still leaves out: the soft edge of S
at finite n (the loss rises as a cubic across it), the interaction between two negative dead
columns (taken as independent), and the O(n^{−1/2}) corrections of Laplace's method.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import numpy as np
import sympy
from scipy.integrate import quad

from sltlab.theory.free_energy import Phase
from sltlab.theory.tms import KGon
from sltlab.theory.tms_loss import tms_hessian, unpack

ANGLES = 20_000   # polar grid of the silent region's Gaussian mass


class LaplaceConstant(NamedTuple):
    """c of a Morse–Bott k-gon and the factors it is made of."""

    value: float
    copies: int
    orbit_length: float
    log_det: float             # log det′ ∇²L
    silent_mass: float | None  # P(S) of one negative dead column, None without one

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


def laplace_constant(point: KGon) -> LaplaceConstant:
    """c for a k-gon that is a minimum (module docstring). Raises ValueError otherwise, or when
    the alive bias is not negative (then no dead column is silent)."""
    if point.coefficient is None:
        raise ValueError(f"the {point.name} is not a minimum ({point.kind}): Laplace's method does not apply")
    if point.negative_dead and not point.bias < 0:
        raise ValueError(f"the {point.name} has alive bias {point.bias:.3g} ≥ 0: a negative dead column is not silent")
    features, theta = point.features, np.array(point.parameter)
    eigenvalues = np.linalg.eigvalsh(tms_hessian(theta, features))
    nonzero = eigenvalues[np.abs(eigenvalues) > point.zero_threshold]
    weights, _ = unpack(theta, features)
    copies = 2 * math.factorial(features) // (math.factorial(point.positive_dead) * math.factorial(point.negative_dead)
                                              * 2 * point.k)
    orbit = 2 * math.pi * float(np.linalg.norm(weights))
    rank, free = len(nonzero), 3 * (features - point.negative_dead)
    log_det = float(np.log(nonzero).sum())
    silent = _silent_mass(point.length, point.bias, point.k) if point.negative_dead else None
    log_mass = (math.log(copies) + math.log(orbit) + 0.5 * (rank - free) * math.log(2 * math.pi)
                - point.half_norm_squared - 0.5 * log_det + point.negative_dead * math.log(silent or 1.0))
    return LaplaceConstant(-log_mass, copies, orbit, log_det, silent)


def _silent_mass(length: float, bias: float, k: int) -> float:
    """P(S) under N(0, I₃) for a dead column beside a regular k-gon of the given length and
    (negative) bias: ∫_{b<0} N(b) · (1/2π)∫ (1 − exp(−R_b(θ)²/2)) dθ db, with R_b(θ) the
    distance to the edge of {‖W‖² ≤ −b, W·W_i ≤ min(−β, −b)} in direction θ."""
    theta = np.linspace(0, 2 * np.pi, ANGLES, endpoint=False)
    cosines = np.cos(theta[:, None] - 2 * np.pi * np.arange(k)[None, :] / k).max(1)   # > 0 for k ≥ 3

    def disk_mass(b: float) -> float:
        radius = np.minimum(math.sqrt(-b), min(-bias, -b) / (length * cosines))
        return float(np.mean(1 - np.exp(-radius ** 2 / 2)))

    value, _ = quad(lambda b: math.exp(-b * b / 2) / math.sqrt(2 * math.pi) * disk_mass(b), -np.inf, 0,
                    epsabs=1e-9, limit=200)
    return value


def laplace_phases(points: Sequence[KGon]) -> tuple[Phase, ...]:
    """The k-gon phases among ``points`` (the second half of :func:`sltlab.theory.tms.tms_phases`)
    with c the Laplace constant instead of ½‖w*‖² (those whose constant cannot be computed are
    left out)."""
    phases = []
    for point in points:
        if point.coefficient is None or (point.negative_dead and not point.bias < 0):
            continue
        constant = laplace_constant(point).value
        phases.append(Phase(point.name, sympy.Float(point.loss, 15), point.coefficient.lam, 1,
                            sympy.Float(constant, 15)))
    return tuple(phases)
