"""Regular k-gon critical points of the toy model of superposition with two hidden dimensions,
their losses, and their learning coefficients where they are minima.

A k-gon (Chen, Lau, Mendel, Wei & Murfet 2023, §4): k columns of W of one length l at angles
2πj/k with one bias β, and c − k dead columns W_j = 0 whose bias is positive, b = 1/(2c) (the
minimiser of ∫(μ − b)² + (c − 1)b², their whole contribution), or negative (any b < 0: the
column then never fires). (l, β) minimise the loss over that family; by symmetry the point is
then a critical point of the full loss, which is checked (‖∇L‖ is reported).

**The learning coefficient.** If the loss is analytic at w*, w* is a local minimum, and the
Hessian's kernel is exactly the tangent space of a manifold of minimisers through w*, then the
Morse–Bott lemma (Bott 1954; Banyaga & Hurtubise 2004) gives coordinates in which
L − L* = y₁² + … + y_r², r = rank ∇²L, with the other d − r coordinates free; so λ = r/2, m = 1
(Watanabe 2009, §2.4: a normal crossing with r squared coordinates). Here the manifold is
known: the rotations W ↦ RW (one dimension, when some column is alive) and, for each dead
column with negative bias, its W_j and b_j (three dimensions: the column stays silent on a
neighbourhood, so L is constant there). L is constant along it, so its tangent lies in the
kernel; the check is that rank ∇²L = d − (1 + 3·#negative dead columns) exactly. The Hessian is
computed in closed form (:mod:`sltlab.theory.tms_loss`) in float64; an eigenvalue counts as zero
when |e| ≤ 1e-8·max|e|, and the largest |e| counted as zero and the smallest counted as nonzero
are reported so that the gap can be read (below 1e-15 against above 2e-4 for every k ≥ 5 of
c ≤ 8). With a negative eigenvalue the point is a saddle and gets no λ; on a ReLU kink the
loss is not analytic and the point is refused with the pair that sits on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import sympy

from sltlab.theory.coefficient import Derivation, LearningCoefficient, require_int
from sltlab.theory.free_energy import Phase
from sltlab.theory.tms_loss import kinks, pack, tms_gradient, tms_hessian, tms_loss

SOURCE = "Chen, Lau, Mendel, Wei & Murfet 2023 (arXiv:2310.06301), §4; Morse–Bott lemma; Watanabe 2009, §2.4"
ZERO_EIGENVALUE = 1e-8          # relative to the largest |eigenvalue|
NEGATIVE_DEAD_BIAS = -0.5       # the representative negative bias of a dead column (any b < 0 is the same point)


@dataclass(frozen=True)
class KGon:
    """A regular k-gon critical point, what kind of point it is, and its λ where it is a minimum.

    ``half_norm_squared`` is ½‖w‖² at the point of its minimising family nearest the origin
    (negative dead biases → 0⁻): the prior's contribution −log φ(w*) to the free energy under a
    standard Gaussian prior, up to the normalisation common to every phase. ``kind`` is
    "minimum", "saddle" or "refused"; ``coefficient`` is None unless it is a minimum.
    """

    features: int
    k: int
    positive_dead: int
    negative_dead: int
    length: float
    bias: float
    dead_bias: float
    loss: float
    half_norm_squared: float
    gradient_norm: float
    eigenvalues: tuple[float, ...]
    rank: int
    negative_eigenvalues: int
    kind: str
    reason: str
    coefficient: LearningCoefficient | None
    parameter: tuple[float, ...]

    @property
    def name(self) -> str:
        dead = []
        if self.positive_dead:
            dead.append(f"{self.positive_dead} dead +")
        if self.negative_dead:
            dead.append(f"{self.negative_dead} dead −")
        return f"{self.k}-gon" + (f" ({', '.join(dead)})" if dead else "")

    def as_dict(self) -> dict[str, Any]:
        nonzero = [abs(e) for e in self.eigenvalues if abs(e) > self.zero_threshold]
        zero = [abs(e) for e in self.eigenvalues if abs(e) <= self.zero_threshold]
        return {
            "model": "tms", "name": self.name, "features": self.features, "k": self.k,
            "positive_dead": self.positive_dead, "negative_dead": self.negative_dead,
            "length": self.length, "bias": self.bias, "positive_dead_bias": 1 / (2 * self.features),
            "loss": self.loss, "half_norm_squared": self.half_norm_squared, "gradient_norm": self.gradient_norm,
            "dim": 3 * self.features, "hessian_rank": self.rank, "negative_eigenvalues": self.negative_eigenvalues,
            "largest_zero_eigenvalue": max(zero, default=0.0),
            "smallest_nonzero_eigenvalue": min(nonzero, default=None),
            "kind": self.kind, "reason": self.reason,
            "lambda": None if self.coefficient is None else str(self.coefficient.lam),
            "lambda_float": None if self.coefficient is None else self.coefficient.lam_float,
            "multiplicity": None if self.coefficient is None else self.coefficient.multiplicity,
        }

    @property
    def zero_threshold(self) -> float:
        return ZERO_EIGENVALUE * max(abs(e) for e in self.eigenvalues)


def kgon_parameter(features: int, k: int, positive_dead: int, length: float, bias: float) -> np.ndarray:
    """θ of the k-gon: columns 1..k alive at angles 2πj/k, then the positive dead columns
    (bias 1/(2c)), then the negative ones (bias :data:`NEGATIVE_DEAD_BIAS`)."""
    angles = 2 * np.pi * np.arange(k) / k
    weights = np.zeros((2, features))
    weights[:, :k] = length * np.stack([np.cos(angles), np.sin(angles)])
    biases = np.full(features, NEGATIVE_DEAD_BIAS)
    biases[:k] = bias
    biases[k:k + positive_dead] = 1 / (2 * features)
    return pack(weights, biases)


def kgon(features: int, k: int, positive_dead: int = 0) -> KGon:
    """The regular k-gon of a c-feature toy model with ``positive_dead`` of its c − k dead
    columns at bias 1/(2c) and the rest negative; its loss, ½‖w*‖², kind and λ (module
    docstring).

    Raises
    ------
    ValueError
        Unless 2 ≤ c ≤ ``MAX_FEATURES``, 1 ≤ k ≤ c and 0 ≤ positive_dead ≤ c − k.
    """
    features = _features(features)
    k = require_int("k", k, 1)
    positive_dead = require_int("positive_dead", positive_dead, 0)
    if k > features:
        raise ValueError(f"a {k}-gon needs at least {k} features, got {features}")
    if positive_dead > features - k:
        raise ValueError(f"a {k}-gon of {features} features has {features - k} dead columns, "
                         f"not {positive_dead} with positive bias")
    length, bias = _optimal_length_and_bias(features, k, positive_dead)
    theta = kgon_parameter(features, k, positive_dead, length, bias)
    eigenvalues = np.linalg.eigvalsh(tms_hessian(theta, features))
    threshold = ZERO_EIGENVALUE * np.abs(eigenvalues).max()
    rank = int((np.abs(eigenvalues) > threshold).sum())
    negative = int((eigenvalues < -threshold).sum())
    negative_dead = features - k - positive_dead
    expected_kernel = 1 + 3 * negative_dead
    on_kinks = kinks(theta, features)
    coefficient = None
    if on_kinks:
        kind, reason = "refused", (f"the loss is not analytic here ({len(on_kinks)} pre-activations on a ReLU kink, "
                                   f"e.g. {on_kinks[0]}), so λ is not rank/2")
    elif negative:
        kind, reason = "saddle", (f"{negative} negative Hessian eigenvalues (smallest {eigenvalues[0]:.3g}): a saddle, "
                                  f"not a minimum, so it has no learning coefficient as one")
    elif 3 * features - rank != expected_kernel:
        kind, reason = "refused", (f"the Hessian kernel has dimension {3 * features - rank}, not the {expected_kernel} "
                                   f"of the known manifold of minimisers: the quadratic part does not determine λ")
    else:
        kind, reason = "minimum", (f"Morse–Bott: rank ∇²L = {rank} = d − {expected_kernel} (rotation + 3 per negative "
                                   f"dead column), so λ = {rank}/2, m = 1")
        coefficient = LearningCoefficient(
            lam=sympy.Rational(rank, 2), multiplicity=1, dim=3 * features, model="tms",
            parameters={"features": features, "k": k, "positive_dead": positive_dead},
            derivation=Derivation("λ = rank(∇²L)/2 at a Morse–Bott minimum", reason, SOURCE))
    half_norm = 0.5 * (k * (length ** 2 + bias ** 2) + positive_dead / (2 * features) ** 2)
    return KGon(features, k, positive_dead, negative_dead, length, bias, NEGATIVE_DEAD_BIAS,
                tms_loss(theta, features), half_norm, float(np.linalg.norm(tms_gradient(theta, features))),
                tuple(float(e) for e in eigenvalues), rank, negative, kind, reason, coefficient,
                tuple(float(t) for t in theta))


def _optimal_length_and_bias(features: int, k: int, positive_dead: int) -> tuple[float, float]:
    """Minimise L over (l, β) — θ is affine in them — from the best point of a grid, with the
    exact reduced gradient and Hessian (trust region, then Newton steps), to machine precision."""
    from scipy.optimize import minimize   # here, not at the top: ``import sltlab.theory`` stays fast

    base = kgon_parameter(features, k, positive_dead, 0.0, 0.0)
    directions = np.stack([kgon_parameter(features, k, positive_dead, 1.0, 0.0) - base,
                           kgon_parameter(features, k, positive_dead, 0.0, 1.0) - base], axis=1)

    def at(p):
        return base + directions @ p

    def gradient(p):
        return directions.T @ tms_gradient(at(p), features)

    def hessian(p):
        return directions.T @ tms_hessian(at(p), features) @ directions

    grid = [np.array([length, bias]) for length in np.linspace(0.2, 2.5, 24) for bias in np.linspace(-1.5, 0.5, 21)]
    start = min(grid, key=lambda p: tms_loss(at(p), features))
    point = minimize(lambda p: tms_loss(at(p), features), start, method="trust-exact", jac=gradient, hess=hessian,
                     options={"gtol": 1e-12}).x
    for _ in range(3):   # Newton polish: the trust region stops near 1e-10
        point = point - np.linalg.lstsq(hessian(point), gradient(point), rcond=None)[0]
    length, bias = (float(v) for v in point)
    if not (length > 0 and math.isfinite(bias)):
        raise ValueError(f"no {k}-gon critical point with a positive length was found")
    return length, bias


def tms_phases(features: int, *, each: Callable[[int, int], None] | None = None
               ) -> tuple[tuple[Phase, ...], tuple[KGon, ...]]:
    """The k-gon minima of a c-feature toy model as phases, with every k-gon looked at.

    For each k the dead columns are taken all negative or all positive (a mix is a saddle:
    :func:`kgon` reports it so); points that are saddles or refused (the k ≤ 4 gons, whose
    optimal bias 0 sits on a ReLU kink) are returned but are not phases. A phase's constant is
    ½‖w*‖² (:class:`KGon`). ``each(done, total)``, when given, is called after every point
    (a progress bar: all k-gons of c = 64 take about 20 s).
    """
    features = _features(features)
    looked_at = [(k, positive) for k in range(1, features + 1) for positive in sorted({0, features - k})]
    points = []
    for k, positive in looked_at:
        points.append(kgon(features, k, positive))
        if each is not None:
            each(len(points), len(looked_at))
    points = tuple(points)
    phases = tuple(Phase(point.name, sympy.Float(point.loss, 15), point.coefficient.lam, 1,
                         sympy.Float(point.half_norm_squared, 15))
                   for point in points if point.coefficient is not None)
    return phases, points


MAX_FEATURES = 64   # the exact Hessian is [3c, 3c] at every k-gon: all k-gons of c = 64 take about 20 s


def _features(features) -> int:
    """c as an int from 2 to ``MAX_FEATURES``, or a one-line ValueError."""
    features = require_int("features", features, 2)
    if features > MAX_FEATURES:
        raise ValueError(f"features must be at most {MAX_FEATURES} (each k-gon's exact Hessian is 3c × 3c, and all "
                         f"k-gons of c = 64 take about 20 s), got {features}")
    return features
