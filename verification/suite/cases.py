"""The one registry of verification cases that ``sltlab verify`` and the tests read.

A case names its exact learning coefficient (through its problem builder), its sampler
settings, whether the step size is calibrated (``"auto"``: every registered case; the exact samplers
the registry uses skip the sweep and say so), its
accuracy tolerance, its tags and its seed. Suites are tag selections; ``random_dln_cases``
draws deep linear networks for ``--random N --seed S``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from sltlab.estimators.config import LLCConfig
from sltlab.verification.defaults import DLN_DEFAULTS, POTENTIAL_DEFAULTS
from sltlab.verification.suite.problems import (Problem, dln_problem, normal_crossing_problem, potential_problem,
                                                reduced_rank_problem, regular_problem, restricted_dln_problem,
                                                tanh_problem)

SUITES = ("smoke", "dln", "toy", "full")
FAMILIES = ("dln", "restricted_dln", "reduced_rank", "regular", "normal_crossing", "newton", "tanh")
MAX_RANDOM_CASES = 10_000   # at a minute or more each, a week of cases; drawn all at once before the first runs


@dataclass(frozen=True)
class Tolerance:
    """Accuracy gate: λ − band − bias·λ − k·SE ≤ λ̂ ≤ λ + bias·λ + k·SE, with band the
    finite-n shortfall (m − 1)/log nβ that multiplicity predicts (Watanabe 2009, Thm. 6.1) and ``bias``
    the declared relative bias budget of the sampler. Where the finite-n truth nβ·E[ΔL] is
    computed (quadrature for potentials in 1–2 variables, blocked Gibbs for linear networks) λ̂ is
    judged against that truth instead (:mod:`sltlab.verification.suite.gates`)."""

    k: float = 3.0
    bias: float = 0.05


@dataclass(frozen=True)
class Case:
    """One verification case. ``arguments`` are the family builder's keyword arguments."""

    id: str
    family: str
    arguments: tuple[tuple[str, Any], ...]
    config: LLCConfig
    n: int
    tolerance: Tolerance
    tags: frozenset[str]
    seed: int = 0
    step: str = "auto"    # "auto": calibrated by a step-size sweep; "rule": the step-size rule alone

    def problem(self) -> Problem:
        build = _BUILDERS[self.family]
        return build(n=self.n, seed=self.seed, **dict(self.arguments))


_BUILDERS = {
    "dln": lambda widths, rank, n, seed: dln_problem(widths, rank, n=n, seed=seed),
    "restricted_dln": lambda widths, rank, layer, n, seed: restricted_dln_problem(widths, rank, layer, n=n, seed=seed),
    "reduced_rank": lambda widths, rank, n, seed: reduced_rank_problem(widths, rank, n=n, seed=seed),
    "regular": lambda inputs, outputs, n, seed: regular_problem(inputs, outputs, n=n, seed=seed),
    "normal_crossing": lambda k, h, n, seed: normal_crossing_problem(k, h, n=n),
    "newton": lambda expression, n, seed: potential_problem(expression, n=n),
    "tanh": lambda hidden, n, seed: tanh_problem(hidden, n=n, seed=seed),
}

# Sampler settings per family, never per case: MALA on exact full-data gradients for linear
# networks, slice sampling for potentials and the tanh network (sltlab.verification.defaults);
# both are exact, so neither is swept.
DLN_SUITE = DLN_DEFAULTS.config
DLN_SMOKE = replace(DLN_SUITE, draws=2000, burnin=5000)
EXACT_SUITE = POTENTIAL_DEFAULTS.config
EXACT_SMOKE = replace(EXACT_SUITE, chains=32, draws=1000)
# The declared bias budget: every family samples exactly, and is judged against an exact finite-n
# truth where one is computed (quadrature for potentials, blocked Gibbs for linear networks), so
# 1 % of it covers what is left (finite runs, float32 energies); the distance to λ is reported.
EXACT_TOLERANCE = Tolerance(k=3.0, bias=0.01)


def _case(family: str, tags: str, config: LLCConfig, n: int, tolerance: Tolerance, step: str = "auto",
          **arguments) -> Case:
    label = ",".join(f"{key}={_compact(value)}" for key, value in arguments.items())
    short = "smoke:" if "smoke" in tags.split() else ""    # the same problem with a shorter run
    return Case(f"{short}{family}[{label}]", family, tuple(arguments.items()), config, n, tolerance,
                frozenset(tags.split()), step=step)


def _compact(value) -> str:
    return "-".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value).replace(" ", "")


def _dln(widths, rank, tags="dln full", config=DLN_SUITE, n=DLN_DEFAULTS.n, step="auto") -> Case:
    return _case("dln", tags, config, n, EXACT_TOLERANCE, step, widths=tuple(widths), rank=rank)


def _newton(expression, tags="toy full", config=EXACT_SUITE) -> Case:
    return _case("newton", tags, config, POTENTIAL_DEFAULTS.n, EXACT_TOLERANCE, expression=expression)


CASES: tuple[Case, ...] = (
    # smoke: every family, small and short, under three minutes on two cores in all
    _dln([4, 3, 3, 4], 1, tags="smoke", config=DLN_SMOKE),
    _case("restricted_dln", "smoke", DLN_SMOKE, DLN_DEFAULTS.n, EXACT_TOLERANCE, widths=(4, 3, 3, 4), rank=1, layer=2),
    _case("reduced_rank", "smoke", DLN_SMOKE, DLN_DEFAULTS.n, EXACT_TOLERANCE, widths=(5, 3, 4), rank=2),
    _case("regular", "smoke", DLN_SMOKE, DLN_DEFAULTS.n, EXACT_TOLERANCE, inputs=4, outputs=3),
    _case("normal_crossing", "smoke", EXACT_SMOKE, POTENTIAL_DEFAULTS.n, EXACT_TOLERANCE, k=(1, 1), h=(1, 0)),
    _newton("w1**4 + w2**2", tags="smoke", config=EXACT_SMOKE),
    _case("tanh", "smoke", EXACT_SMOKE, 2000, EXACT_TOLERANCE, hidden=1),
    # deep linear networks: depth 1 to 6, ranks 0 to full, bottlenecks and equal widths, 10² to 10⁵ parameters
    _dln([10, 10], 10), _dln([10, 10, 10], 10), _dln([10, 10, 10, 10], 2), _dln([10, 10, 10, 10], 5),
    _dln([10, 5, 5, 10], 0), _dln([10, 5, 5, 10], 3), _dln([12, 6, 6, 12], 4), _dln([8, 8, 8, 8, 8, 8], 3),
    _dln([6, 6, 6, 6, 6, 6, 6], 2), _dln([20, 20, 20], 5), _dln([30, 10, 30], 4), _dln([40, 20, 40, 40], 10),
    _dln([50, 50, 50], 10), _dln([50, 50, 50, 50, 50], 20), _dln([160, 160, 160, 160, 160], 40, tags="dln full slow"),
    # the shapes people train: hidden layers wider than both ends, narrow bottlenecks between wide
    # layers, depth 8, and rank 0 in depth (where the old default erred by 20–90 %)
    _dln([5, 25, 25, 5], 2), _dln([8, 40, 8], 3), _dln([4, 20, 20, 20, 20, 4], 2), _dln([30, 3, 30], 2),
    _dln([24, 24, 4, 24, 24], 3), _dln([40, 40, 2, 40, 40], 1), _dln([12, 12, 1, 9, 4, 8], 1),
    _dln([6] * 9, 2), _dln([6, 6, 6, 6, 6], 0),
    # one layer alone, the others frozen: λ = rank(A_l)·rank(B_l)/2 with an exact finite-n truth
    *(_case("restricted_dln", "dln full", DLN_SUITE, DLN_DEFAULTS.n, EXACT_TOLERANCE, widths=widths, rank=rank,
            layer=layer) for widths, rank, layers in (((10, 5, 5, 10), 2, (1, 2, 3)), ((6, 4, 4, 4, 6), 2, (2,)),
                                                      ((8, 6, 6, 6, 6, 8), 3, (1, 3, 5))) for layer in layers),
    # the other families at full length
    _case("reduced_rank", "toy full", DLN_SUITE, DLN_DEFAULTS.n, EXACT_TOLERANCE, widths=(6, 4, 5), rank=1),
    _case("regular", "toy full", DLN_SUITE, DLN_DEFAULTS.n, EXACT_TOLERANCE, inputs=10, outputs=10),
    *(_newton(expression) for expression in (
        "w1**4", "w1**4 + w2**2", "w1**6 + w2**4", "(w1**2 + w2**2)**2", "w1**2 + w1**2*w2**2", "w1**2*w2**2",
        "w1**2*w2**4 + w1**4*w2**2")),
    *(_case("normal_crossing", "toy full", EXACT_SUITE, POTENTIAL_DEFAULTS.n, EXACT_TOLERANCE, k=k, h=h)
      for k, h in (((1, 1), (1, 0)), ((2,), (2,)), ((2, 2), (1, 0)), ((2, 1), (3, 1)))),
    *(_case("tanh", "toy full", EXACT_SUITE, 2000, EXACT_TOLERANCE, hidden=hidden) for hidden in (1, 2, 3)),
)


def suite(name: str) -> tuple[Case, ...]:
    """The cases of a named suite: ``full`` is every case, the others are tag selections."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; choose from {', '.join(SUITES)}")
    return CASES if name == "full" else tuple(case for case in CASES if name in case.tags)


def random_dln_cases(count: int, seed: int, *, max_depth: int = 6, max_width: int = 12) -> tuple[Case, ...]:
    """``count`` deep linear networks drawn with ``seed``, a third of each shape in turn: plain
    (every width 1 to ``max_width``), wide hidden layers (ends 2 to ``max_width``/2, hidden layers
    two to four times the wider end) and a bottleneck (one layer of width 1 to 3 between layers of
    ``max_width``/2 to 2·``max_width``); depth 1 to ``max_depth`` weight matrices (at least 2 for the
    last two shapes), rank 0 to the narrowest width; the data seed is the draw's index."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_RANDOM_CASES:
        raise ValueError(f"--random takes a whole number of cases from 1 to {MAX_RANDOM_CASES:,}, got {count!r}")
    for name, value in (("max_depth", max_depth), ("max_width", max_width), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "seed" else 2):
            raise ValueError(f"random deep linear networks need a whole {name}"   # seed None: other cases each call
                             f"{'' if name == 'seed' else ' of at least 2'}, got {value!r}")
    draw = random.Random(seed)
    shapes = (_plain_widths, _wide_hidden_widths, _bottleneck_widths)
    cases = []
    for index in range(count):
        widths = shapes[index % len(shapes)](draw, draw.randint(1 if index % len(shapes) == 0 else 2, max_depth),
                                             max_width)
        rank = draw.randint(0, min(widths))
        base = _dln(widths, rank, tags="random")
        cases.append(replace(base, id=f"random-{seed}-{index}:{base.id}", seed=index))
    return tuple(cases)


def _plain_widths(draw: random.Random, depth: int, max_width: int) -> list[int]:
    return [draw.randint(1, max_width) for _ in range(depth + 1)]


def _wide_hidden_widths(draw: random.Random, depth: int, max_width: int) -> list[int]:
    ends = [draw.randint(2, max(2, max_width // 2)) for _ in range(2)]
    hidden = [max(ends) * draw.randint(2, 4) for _ in range(depth - 1)]
    return [ends[0], *hidden, ends[1]]


def _bottleneck_widths(draw: random.Random, depth: int, max_width: int) -> list[int]:
    widths = [draw.randint(max(1, max_width // 2), 2 * max_width) for _ in range(depth + 1)]
    widths[draw.randint(1, depth - 1)] = draw.randint(1, 3)
    return widths
