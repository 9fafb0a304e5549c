"""Free energies of phases and the sample sizes at which the Bayesian posterior switches between
them.

The free energy of a phase — the posterior mass of a neighbourhood of its minimisers, −log of
it — expands as (Watanabe 2009, Thm 6.7 and Main Formula II; Watanabe 2018, §4; applied to
phases by Chen, Lau, Mendel, Wei & Murfet 2023, §5)

    F_n(phase) = n·L(phase) + λ·log n − (m − 1)·log log n + c + o(1),

with L the population loss at the phase (the same constant dropped from every phase), λ and m
its learning coefficient and multiplicity, and c an O(1) term. For a standard Gaussian prior
the term of c that differs most between phases is −log φ(w*) = ½‖w*‖² + const, taken here at
the point of the phase's minimising set nearest the origin (where the prior density is
largest); the rest of c (the volume and curvature factors of the minimising set) is not
modelled. The posterior prefers the phase of least F_n; two phases trade places where
n·ΔL + Δλ·log n − Δ(m − 1)·log log n + Δc = 0.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Sequence, Union

import numpy as np
import sympy

from sltlab.theory.coefficient import require_exponents
from sltlab.theory.deep_linear import deep_linear, validate_widths

N_MIN, N_MAX = 3.0, 1e12    # log log n is defined and positive from n = 3
GRID = np.geomspace(N_MIN, N_MAX, 6001)


@dataclass(frozen=True)
class Phase:
    """A phase: its loss, learning coefficient and O(1) term, exact where the inputs are."""

    name: str
    loss: sympy.Expr          # L at the phase (per sample)
    lam: sympy.Rational
    multiplicity: int
    constant: sympy.Expr      # c: ½‖w*‖² under a standard Gaussian prior (module docstring)

    def __post_init__(self):
        try:
            numbers = [float(self.loss), float(self.lam), float(self.constant)]
        except (TypeError, ValueError, OverflowError):   # OverflowError: an integer beyond float's range
            raise ValueError(f"phase {self.name!r}: its loss, λ and constant must be numbers in float's range") \
                from None
        if not all(np.isfinite(numbers)) or float(self.lam) < 0:
            raise ValueError(f"phase {self.name!r}: its loss, λ and constant must be finite and λ ≥ 0, got "
                             f"{numbers[0]:g}, {numbers[1]:g} and {numbers[2]:g}")
        try:
            multiplicity = None if isinstance(self.multiplicity, bool) else operator.index(self.multiplicity)
        except TypeError:
            multiplicity = None
        if multiplicity is None or multiplicity < 1:
            raise ValueError(f"phase {self.name!r}: its multiplicity must be an integer ≥ 1, got {self.multiplicity!r}")
        object.__setattr__(self, "multiplicity", int(multiplicity))   # a plain int, as JSON takes it

    def free_energy(self, n, *, with_constant: bool = True) -> sympy.Expr:
        """F_n = n·L + λ·log n − (m − 1)·log log n (+ c), exact (a sympy expression); n a number ≥ 3,
        or a symbol."""
        try:
            n = sympy.sympify(n)
            if not isinstance(n, sympy.Symbol):
                sample_sizes(float(n))   # a number: one that is no real number ≥ 3 is refused
        except (TypeError, sympy.SympifyError):
            raise ValueError(f"n must be a number ≥ 3 or a symbol, got {n!r}") from None
        value = n * self.loss + self.lam * sympy.log(n) - (self.multiplicity - 1) * sympy.log(sympy.log(n))
        return value + self.constant if with_constant else value

    def free_energy_float(self, n: np.ndarray, *, with_constant: bool = True,
                          relative_to: Phase | None = None) -> np.ndarray:
        """F_n at every n of an array (n ≥ 3), in float64; with ``relative_to``, F_n less that
        phase's, from the two phases' differences of L, λ, m and c taken exactly before rounding
        (so that terms they share, a learned mode's share of c or a discarded one's of L, cancel
        exactly however large they are: in float64 a shared c of 10¹⁷ leaves no trace of a
        difference of 1)."""
        if not isinstance(with_constant, bool):   # every free energy below is this one's: a string would read true
            raise ValueError(f"with_constant must be True or False, got {with_constant!r}")
        n = sample_sizes(n)
        loss, lam, multiplicity, constant = _terms(self, relative_to)
        value = n * loss + lam * np.log(n) - multiplicity * np.log(np.log(n))
        return value + constant if with_constant else value

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "loss": str(self.loss), "loss_float": float(self.loss), "lambda": str(self.lam),
                "lambda_float": float(self.lam), "multiplicity": self.multiplicity, "constant": str(self.constant),
                "constant_float": float(self.constant)}


PhaseClass = Union[Phase, Sequence[Phase]]


def sample_sizes(n) -> np.ndarray:
    """``n`` as float64 sample sizes, or a one-line ValueError where one is not a finite n ≥ 3."""
    sizes = np.asarray(n, dtype=np.float64)
    if not bool(np.isfinite(sizes).all()):
        raise ValueError(f"free energies are evaluated at finite sample sizes, got {float(np.max(sizes)):g}")
    if not bool((sizes >= N_MIN).all()):
        raise ValueError(f"free energies are evaluated at sample sizes n ≥ 3 (log log n), got n down to "
                         f"{float(np.min(sizes)):g}")
    return sizes


def _terms(phase: Phase, reference: Phase | None) -> tuple[float, float, int, float]:
    """L, λ, m − 1 and c of ``phase`` as floats, less those of ``reference`` (exactly, then rounded)."""
    if reference is None:
        return float(phase.loss), float(phase.lam), phase.multiplicity - 1, float(phase.constant)
    return (float(phase.loss - reference.loss), float(phase.lam - reference.lam),
            phase.multiplicity - reference.multiplicity, float(phase.constant - reference.constant))


def class_free_energy(phases: PhaseClass, n: np.ndarray, *, with_constant: bool = True,
                      relative_to: Phase | None = None) -> np.ndarray:
    """−log Σ exp(−F_n) over a class of phases counted as one (e.g. a k-gon whatever the sign of
    its dead biases); a single phase is its own class. F_n needs log log n: n ≥ 3. With
    ``relative_to``, less that phase's F_n (:meth:`Phase.free_energy_float`): every comparison
    of classes below is made so, against one phase."""
    phases = _members(phases)
    energies = np.stack([p.free_energy_float(n, with_constant=with_constant, relative_to=relative_to) for p in phases])
    lowest = energies.min(0)
    return lowest - np.log(np.exp(-(energies - lowest)).sum(0))


def critical_n(before: PhaseClass, after: PhaseClass, *, with_constant: bool = True) -> float | None:
    """The n beyond which ``after`` stays preferred to ``before`` (each a phase or a class of
    phases): the largest root of F_n(after) − F_n(before) in [3, 10¹²] at which it turns
    negative (brentq to 1e-12 relative). None when ``after`` is preferred from n = 3 on, or
    not yet at 10¹²."""
    difference = _gap(before, after, GRID, with_constant)
    if difference[-1] > 0 or (difference <= 0).all():
        return None
    last_positive = int(np.flatnonzero(difference > 0)[-1])
    return _crossing(before, after, GRID[last_positive], GRID[last_positive + 1], with_constant)


def _gap(before: PhaseClass, after: PhaseClass, n: np.ndarray, with_constant: bool) -> np.ndarray:
    """F_n(after) − F_n(before), both taken relative to one phase of ``before``."""
    reference = _members(before)[0]
    return (class_free_energy(after, n, with_constant=with_constant, relative_to=reference)
            - class_free_energy(before, n, with_constant=with_constant, relative_to=reference))


def _crossing(before: PhaseClass, after: PhaseClass, low: float, high: float, with_constant: bool) -> float:
    from scipy.optimize import brentq   # here, not at the top: ``import sltlab.theory`` stays fast

    return float(brentq(lambda n: float(_gap(before, after, np.array([n]), with_constant)[0]), low, high,
                        xtol=1e-12, rtol=1e-12))


class Transition(NamedTuple):
    """A switch of the preferred phase as n grows, with and without the O(1) term c."""

    before: str
    after: str
    critical_n: float
    critical_n_without_constant: float | None   # the same pair's crossing with c dropped

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


def transitions(phases: Sequence[Phase] | Mapping[str, PhaseClass], *, with_constant: bool = True
                ) -> tuple[Transition, ...]:
    """Every switch of the phase (or, given a mapping of names to classes of phases, the class)
    of least F_n on 3 ≤ n ≤ 10¹², in order of n."""
    classes = _classes(phases)
    names = list(classes)
    best = _least(classes, GRID, with_constant)
    found = []
    for index in np.flatnonzero(best[1:] != best[:-1]):
        before, after = names[best[index]], names[best[index + 1]]
        at = _crossing(classes[before], classes[after], GRID[index], GRID[index + 1], with_constant)
        found.append(Transition(before, after, at, _nearest_crossing(classes[before], classes[after], at)
                                if with_constant else at))
    return tuple(found)


def _nearest_crossing(before: PhaseClass, after: PhaseClass, near: float) -> float | None:
    """The crossing of F_n(after) − F_n(before) without the O(1) term at which ``after`` becomes
    preferred nearest ``near`` in log n (the same switch with c dropped); None where there is none."""
    difference = _gap(before, after, GRID, with_constant=False)
    turns = np.flatnonzero((difference[:-1] > 0) & (difference[1:] <= 0))
    if not turns.size:
        return None
    index = int(turns[np.argmin(np.abs(np.log(GRID[turns]) - np.log(near)))])
    return _crossing(before, after, GRID[index], GRID[index + 1], with_constant=False)


def preferred_at(phases: Sequence[Phase] | Mapping[str, PhaseClass], n: float, *, with_constant: bool = True) -> str:
    """The name of the phase (or class) of least F_n at ``n``."""
    classes = _classes(phases)
    return list(classes)[int(_least(classes, np.array([float(n)]), with_constant)[0])]


def predicted_occupancy(phases: Sequence[Phase] | Mapping[str, PhaseClass], n: np.ndarray, *,
                        with_constant: bool = True) -> np.ndarray:
    """Posterior share of each phase (or class), exp(−F_n)/Σ exp(−F_n) over those given (as if
    they held all the mass), [phases, len(n)]."""
    sizes = np.asarray(n, dtype=np.float64)
    classes, flat = _classes(phases), sizes.reshape(-1)
    energies = _against_the_least(classes, flat, _least(classes, flat, with_constant), with_constant)
    weights = np.exp(-energies)
    return (weights / weights.sum(0)).reshape(len(weights), *sizes.shape)


def _least(classes: Mapping[str, PhaseClass], n: np.ndarray, with_constant: bool) -> np.ndarray:
    """The index of the class of least F_n at each n: every comparison is of two classes
    (:func:`_gap`), so terms they share cancel exactly; the first class wins ties, as argmin would."""
    values = list(classes.values())
    least = np.zeros(len(n), dtype=int)
    for challenger in range(1, len(values)):
        for holder in np.unique(least):
            held = np.flatnonzero(least == holder)
            least[held[_gap(values[holder], values[challenger], n[held], with_constant) < 0]] = challenger
    return least


def _against_the_least(classes: Mapping[str, PhaseClass], n: np.ndarray, least: np.ndarray, with_constant: bool
                       ) -> np.ndarray:
    """Every class's F_n less that of the class of ``least`` F_n at each n (:func:`_least`),
    [classes, len(n)], each a difference of two classes (:func:`_gap`)."""
    values = list(classes.values())
    energies = np.empty((len(values), len(n)))
    for holder in np.unique(least):
        held = least == holder
        for index, members in enumerate(values):
            energies[index, held] = _gap(values[holder], members, n[held], with_constant)
    return energies


def _members(phases: PhaseClass) -> tuple[Phase, ...]:
    """The phases of a class (a Phase or a non-empty list of them), or a one-line ValueError."""
    members = (phases,) if isinstance(phases, Phase) else tuple(phases) if isinstance(phases, Sequence) else ()
    if not members or not all(isinstance(phase, Phase) for phase in members):
        raise ValueError("a class of phases is a Phase or a non-empty list of them")
    return members


def _classes(phases: Sequence[Phase] | Mapping[str, PhaseClass]) -> dict[str, PhaseClass]:
    if not isinstance(phases, (Mapping, Sequence)) or isinstance(phases, str) or not all(
            isinstance(member, Phase) or (isinstance(phases, Mapping) and isinstance(member, Sequence) and member
                                          and all(isinstance(p, Phase) for p in member))
            for member in (phases.values() if isinstance(phases, Mapping) else phases)):   # classes need names
        raise ValueError(f"phases must be Phase objects, or a mapping of names to them or to lists of them, got "
                         f"{type(phases).__name__}")
    classes = dict(phases) if isinstance(phases, Mapping) else {phase.name: phase for phase in phases}
    if not classes or (not isinstance(phases, Mapping) and len(classes) != len(phases)):
        raise ValueError("need at least one phase, with distinct names")
    return classes


MAX_SINGULAR_VALUE = 1e100


def dln_phases(widths: Sequence[int], singular_values: Sequence) -> tuple[Phase, ...]:
    """The rank-k phases of a deep linear network (or reduced-rank regression) learning a
    teacher y = Bx + N(0, I), x ~ N(0, I), with the given singular values.

    Phase k is the rank-k truncation B_k of B (Eckart & Young 1936), k = 0 … min(rank B, min
    widths): L = ½·Σ_{i>k} s_i² above the best loss (L(P) = ½‖P − B‖²_F + const), λ and m =
    :func:`sltlab.theory.deep_linear` (widths, k) (Aoyagi 2024), and c = ½ min ‖w‖² over the
    factorisations of B_k through the L layers, (L/2)·Σ_{i≤k} s_i^{2/L}, attained by the
    balanced factorisation (the variational form of the Schatten-2/L quasi-norm: Srebro,
    Rennie & Jaakkola 2005 for L = 2; Shang, Liu & Cheng 2016 for L ≥ 2).
    """
    widths = validate_widths(widths)
    values = sorted(require_exponents("singular values", singular_values, allow_fraction=True,
                                      positive_because="a zero is no mode of the teacher: leave it out"), reverse=True)
    if not values:
        raise ValueError("need at least one singular value")
    if values[0] > MAX_SINGULAR_VALUE:
        raise ValueError(f"singular values must be at most {MAX_SINGULAR_VALUE:g}: n·s²/2 up to n = 10¹² is evaluated "
                         f"in floating point, got {float(values[0]):g}")
    if len(values) > min(widths[0], widths[-1]):
        raise ValueError(f"a teacher of {widths[-1]} outputs and {widths[0]} inputs has at most "
                         f"{min(widths[0], widths[-1])} singular values, got {len(values)}")
    depth = len(widths) - 1
    phases = []
    for k in range(min(len(values), min(widths)) + 1):
        coefficient = deep_linear(widths, k)
        loss = sympy.Rational(1, 2) * sum((s ** 2 for s in values[k:]), sympy.Integer(0))
        constant = sympy.Rational(depth, 2) * sum((s ** sympy.Rational(2, depth) for s in values[:k]),
                                                  sympy.Integer(0))
        phases.append(Phase(f"rank {k}", loss, coefficient.lam, coefficient.multiplicity, constant))
    return tuple(phases)
