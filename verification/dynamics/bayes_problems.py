"""The two problems of the Bayesian phase-transition study, each as a population loss, its
phases with their exact λ, a classifier of posterior draws, and starting points in two phases.

**Toy model of superposition** (Elhage et al. 2022; Chen, Lau, Mendel, Wei & Murfet 2023):
L is the closed-form population loss, so the posterior at sample size n is
exp(−n·L(w))·N(w; 0, I), n a free parameter. A draw is a k-gon when exactly k columns have
norm above ``alive`` (0.5: alive columns of the k-gons sit at 1.17–1.55, and a silent dead
column cannot pass 0.3) and the angular gaps between them all lie within ½ and 3/2 of 2π/k;
anything else is "other". The phases of one k (dead biases of either sign) form one class.
A second reading counts the vertices of the convex hull of the c columns: it needs no
threshold, and a column counts only once it leaves the polygon of the others, so it calls a
6-gon later than the norm does (a sixth column in the gap of a regular 5-gon of length r is a
vertex from r·cos(π/5) ≈ 0.81·r on).

**Deep linear networks** learning y = Bx + N(0, I), x ~ N(0, I), with L(P) = ½‖P − B‖²_F
(:class:`sltlab.models.deep_linear.PopulationLoss`). A draw belongs to the rank-k phase when
P = W_L⋯W_1 is nearest, in Frobenius norm, to the truncation B_k (Eckart & Young 1936):
‖P − B_k‖² = const − Σ_{i≤k} s_i(2p_i − s_i) with p_i = u_iᵀP v_i the component of P on the
teacher's i-th mode, so k maximises Σ_{i≤k} s_i(p_i − f·s_i) with f = ½. No tolerance to set:
the classifier compares P with the phases themselves. Both classifiers are also run at a
looser and a stricter setting (alive 0.35 and 0.65; f = 0.35 and 0.65) to show how much the
observed crossover depends on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np
import sympy
import torch
from torch import Tensor

from sltlab import theory
from sltlab.models.deep_linear import DeepLinearNetwork, balanced_factorization, teacher_matrix
from sltlab.models.deep_linear_losses import PopulationLoss
from sltlab.models.tms import ToyModelOfSuperposition
from sltlab.theory.free_energy import N_MAX, N_MIN, Phase, dln_phases, preferred_at, transitions
from sltlab.theory.tms import kgon, tms_phases
from sltlab.theory.tms_laplace import laplace_phases
from sltlab.verification.suite.problems import check_dln_size

ALIVE = {"label": 0.5, "label_loose": 0.35, "label_strict": 0.65}        # TMS: column norm
NEAREST = {"label": 0.5, "label_loose": 0.35, "label_strict": 0.65}      # DLN: f

MAX_SAMPLED_ROWS = 10 ** 6   # rows drawn for each data set of --data sampled (the default n_max is 2,000)
MAX_CHAINS = 10 ** 5   # rungs × ladders: the defaults' 288–320 chains take minutes; this many, days
MAX_CHAIN_STEPS = 10 ** 9   # (warmup + draws·thin)·leapfrog steps per chain, as many gradients


@dataclass(frozen=True)
class BayesSetup:
    """One study: the model, the ladder of n, and the replica-exchange run.

    ``rungs`` sample sizes from ``n_min`` to ``n_max`` (geometric), ``ladders`` independent
    ladders (half started in each of two phases), ``warmup`` HMC steps that tune each rung's
    step size, then ``draws`` recorded every ``thin`` steps. ``data`` "population" samples
    exp(−n·L(w)) with L the population loss; "sampled" the posterior of a drawn data set of n
    rows, one set per pair of ladders started in the two phases, n rounded to whole rows
    (:mod:`sltlab.verification.dynamics.bayes_sampled`).
    """

    model: str
    features: int = 6
    widths: tuple[int, ...] = ()
    singular_values: tuple[str, ...] = ()
    n_min: float = 40.0
    n_max: float = 2000.0
    rungs: int = 20
    ladders: int = 16
    warmup: int = 1000
    draws: int = 1500
    thin: int = 2
    leapfrog_steps: int = 8
    seed: int = 0
    data: str = "population"

    def validate(self) -> None:
        if self.model not in ("tms", "dln"):
            raise ValueError(f"model must be tms or dln, got {self.model!r}")
        if self.model == "tms" and not 5 <= self.features <= 12:
            raise ValueError(f"the toy model study takes 5 to 12 features (k-gons with k ≤ 4 sit on a ReLU kink, so "
                             f"fewer have no phase to compare), got {self.features}")
        if self.model == "dln":
            dln_phases(self.widths, self.singular_values)   # raises ValueError on bad widths or values
            check_dln_size(self.widths)
        if not (N_MIN <= self.n_min < self.n_max <= N_MAX):
            raise ValueError(f"need {N_MIN:g} ≤ n_min < n_max ≤ {N_MAX:g} (the range the critical n is solved in), "
                             f"got {self.n_min:g} and {self.n_max:g}")
        if self.rungs < 3 or self.ladders < 4 or self.ladders % 2:
            raise ValueError(f"need at least 3 rungs and an even number of ladders ≥ 4, got {self.rungs} and "
                             f"{self.ladders}")
        if self.rungs * self.ladders > MAX_CHAINS:
            raise ValueError(f"{self.rungs} rungs × {self.ladders} ladders = {self.rungs * self.ladders:,} chains, "
                             f"more than the {MAX_CHAINS:,} one study runs")
        if (self.warmup + self.draws * self.thin) * self.leapfrog_steps > MAX_CHAIN_STEPS:
            raise ValueError(f"(warmup + draws·thin)·leapfrog steps = "
                             f"{(self.warmup + self.draws * self.thin) * self.leapfrog_steps:.3g} gradients per chain, "
                             f"more than the {MAX_CHAIN_STEPS:.0e} one study runs")
        if self.data not in ("population", "sampled"):
            raise ValueError(f"data must be population or sampled, got {self.data!r}")
        if self.data == "sampled" and self.n_max > MAX_SAMPLED_ROWS:
            raise ValueError(f"--data sampled draws n_max rows for each data set: at most {MAX_SAMPLED_ROWS:,}, got "
                             f"{self.n_max:g}")
        if self.data == "sampled" and len(set(np.round(np.geomspace(self.n_min, self.n_max, self.rungs)))) < self.rungs:
            raise ValueError(f"{self.rungs} rungs between n = {self.n_min:g} and {self.n_max:g} do not have a whole "
                             "number of rows each: use fewer rungs or a wider range")
        if self.warmup < 10 or self.draws < 10 or self.thin < 1 or self.leapfrog_steps < 1 or self.seed < 0:
            raise ValueError("need warmup ≥ 10, draws ≥ 10, thin ≥ 1, leapfrog steps ≥ 1 and seed ≥ 0")


class Problem(NamedTuple):
    """What the study needs of a model (module docstring)."""

    title: str
    loss: Callable[[Tensor, Any], Tensor]
    dim: int
    classes: dict[str, tuple[Phase, ...]]            # class name → its phases
    laplace_classes: dict[str, tuple[Phase, ...]] | None
    labels: dict[str, int]                           # class name → classifier label
    record: Callable[[Tensor], dict[str, Tensor]]    # positions [C, d] → labels [C] per classifier
    starts: tuple[str, str]                          # the two classes the ladders start in
    start: Callable[[str, torch.Generator], Tensor]  # a random point [d] of a class
    theory: dict[str, Any]
    unit_variance_scale: float   # n' = this·n: the same posterior under a unit-variance Gaussian likelihood


def build_problem(setup: BayesSetup) -> Problem:
    setup.validate()
    return _tms(setup) if setup.model == "tms" else _dln(setup)


def _end_classes(classes: dict, setup: BayesSetup) -> tuple[str, str]:
    """The classes of least F at n_min and at n_max: the ladders start half in each."""
    first, last = preferred_at(classes, setup.n_min), preferred_at(classes, setup.n_max)
    if first == last:
        outside = ", ".join(f"{t.before} → {t.after} at n = {t.critical_n:.4g}" for t in transitions(classes))
        raise ValueError(f"no predicted transition between n = {setup.n_min:g} and {setup.n_max:g} ({first} is "
                         f"preferred at both; " + (f"predicted: {outside}; move --n-min or --n-max" if outside else
                                                   "none predicted for 3 ≤ n ≤ 10¹²") + ")")
    return first, last


def _tms(setup: BayesSetup) -> Problem:
    features = setup.features
    phases, points = tms_phases(features)
    by_name = {point.name: point for point in points}
    classes: dict[str, list[Phase]] = {}
    for phase in phases:
        classes.setdefault(f"{by_name[phase.name].k}-gon", []).append(phase)
    laplace: dict[str, list[Phase]] = {}
    for phase in laplace_phases(points):
        laplace.setdefault(f"{by_name[phase.name].k}-gon", []).append(phase)
    model = ToyModelOfSuperposition(features)

    def record(position: Tensor) -> dict[str, Tensor]:
        labels = {name: classify_tms(model, position, alive) for name, alive in ALIVE.items()}
        return {**labels, "label_hull": hull_vertices(model.split(position)[0])}

    def start(name: str, generator: torch.Generator) -> Tensor:
        base = torch.tensor(kgon(features, int(name.split("-")[0])).parameter, dtype=torch.float64)
        return random_symmetry(model, base, generator)

    return Problem(f"toy model of superposition, c = {features}", model, model.dim,
                   {k: tuple(v) for k, v in classes.items()}, {k: tuple(v) for k, v in laplace.items()},
                   {name: int(name.split("-")[0]) for name in classes}, record,
                   _end_classes(classes, setup), start,
                   {"points": [point.as_dict() for point in points], "phases": [p.as_dict() for p in phases]},
                   2.0)   # L is the mean squared error: exp(−n·L) = exp(−Σ‖x − f(x)‖²/2) at n' = 2n


def classify_tms(model: ToyModelOfSuperposition, position: Tensor, alive: float) -> Tensor:
    """k for a draw that is a k-gon (module docstring), −1 for any other, [C]."""
    columns, _ = model.split(position)
    living = columns.norm(dim=-1) > alive
    count = living.sum(-1)
    angles = torch.where(living, torch.atan2(columns[..., 1], columns[..., 0]), torch.full_like(columns[..., 0], 10.0))
    ordered, _ = angles.sort(-1)
    index = torch.arange(model.features, device=position.device)
    inside = index < count.unsqueeze(-1)
    last = index == (count - 1).unsqueeze(-1)
    gaps = torch.where(last, ordered[..., :1] + 2 * math.pi - ordered, ordered.roll(-1, -1) - ordered)
    ideal = (2 * math.pi / count.clamp_min(1)).unsqueeze(-1)
    regular = torch.where(inside, (gaps > 0.5 * ideal) & (gaps < 1.5 * ideal), torch.ones_like(inside)).all(-1)
    return torch.where(regular & (count > 0), count, torch.full_like(count, -1))


def hull_vertices(points: Tensor) -> Tensor:
    """The number of vertices of the convex hull of ``points`` [..., c, 2], [...]: a point is a
    vertex unless it lies strictly inside a triangle of three others (Carathéodory's theorem in
    the plane; points on an edge, a set of measure zero, count as vertices)."""
    count = points.shape[-2]
    triangles = torch.combinations(torch.arange(count, device=points.device), 3)          # [T, 3]
    corners = points[..., triangles, :]                                                    # [..., T, 3, 2]
    edges = (corners.roll(-1, -2) - corners).unsqueeze(-4)                                 # [..., 1, T, 3, 2]
    offsets = points.unsqueeze(-2).unsqueeze(-2) - corners.unsqueeze(-4)                   # [..., c, T, 3, 2]
    sides = edges[..., 0] * offsets[..., 1] - edges[..., 1] * offsets[..., 0]
    inside = (sides > 0).all(-1) | (sides < 0).all(-1)                                     # [..., c, T]
    own = (triangles.unsqueeze(0) == torch.arange(count, device=points.device)[:, None, None]).any(-1)
    return count - (inside & ~own).any(-1).sum(-1)


def random_symmetry(model: ToyModelOfSuperposition, position: Tensor, generator: torch.Generator) -> Tensor:
    """``position`` [d] under a random permutation of the features and a random element of
    O(2): the same loss, another copy of the phase."""
    columns, bias = model.split(position)
    order = torch.randperm(model.features, generator=generator)
    angle = float(torch.rand(1, generator=generator, dtype=torch.float64)) * 2 * math.pi
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]],
                            dtype=position.dtype)
    if float(torch.rand(1, generator=generator)) < 0.5:
        rotation = rotation @ torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=position.dtype)
    return model.join(columns[order] @ rotation.T, bias[order])


def _dln(setup: BayesSetup) -> Problem:
    widths = tuple(setup.widths)
    phases = dln_phases(widths, setup.singular_values)
    values = sorted((float(sympy.Rational(s)) for s in setup.singular_values), reverse=True)   # as validated
    network = DeepLinearNetwork(widths)
    generator = torch.Generator().manual_seed(setup.seed)
    teacher = teacher_matrix(widths[0], widths[-1], len(values), values, generator=generator)
    left, singular, right = torch.linalg.svd(teacher)
    modes = len(phases) - 1
    truncations = [(left[:, :k] * singular[:k]) @ right[:k] for k in range(modes + 1)]

    def record(position: Tensor) -> dict[str, Tensor]:
        product = network.product(position)
        components = torch.einsum("oi,coj,ij->ci", left[:, :modes], product, right[:modes])
        return {name: nearest_rank(components, singular[:modes], f) for name, f in NEAREST.items()}

    def start(name: str, generator: torch.Generator) -> Tensor:
        rank = int(name.split()[-1])
        return balanced_factorization(network, truncations[rank], rank, generator=generator)

    classes = {phase.name: (phase,) for phase in phases}
    return Problem(f"deep linear network {list(widths)}, teacher singular values {', '.join(setup.singular_values)}",
                   PopulationLoss(network, teacher), network.dim, classes, None,
                   {phase.name: k for k, phase in enumerate(phases)}, record, _end_classes(classes, setup), start,
                   {"phases": [p.as_dict() for p in phases],
                    "staircase": [str(theory.deep_linear(widths, k).lam) for k in range(len(phases))]},
                   1.0)   # L = ½‖P − B‖² is already the unit-variance Gaussian's


def nearest_rank(components: Tensor, singular: Tensor, fraction: float) -> Tensor:
    """argmax_k Σ_{i≤k} s_i(p_i − f·s_i) over k = 0 … K, [C] (module docstring)."""
    gains = torch.cumsum(singular * (components - fraction * singular), dim=-1)
    scores = torch.cat([torch.zeros_like(gains[..., :1]), gains], dim=-1)
    return scores.argmax(-1)
