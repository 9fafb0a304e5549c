"""Verification problems: a model's batched loss, its true parameter, its data and its exact
learning coefficient, for every family the suites cover (deep linear networks, polynomial
potentials, reduced-rank regression, regular models, normal crossings under a prior, the tanh
network as a data model). Each family's sampler defaults are in :mod:`sltlab.verification.defaults`."""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import sympy
import torch

from sltlab import theory
from sltlab.models.deep_linear import (DeepLinearNetwork, balanced_factorization, regression_data,
                                       sufficient_statistics, teacher_matrix)
from sltlab.models.counts import whole
from sltlab.models.deep_linear_losses import FullDataLoss
from sltlab.models.potential import Potential
from sltlab.models.restricted import LayerRestrictedLoss
from sltlab.models.tanh_network import TanhNetwork, null_regression_data
from sltlab.theory import LearningCoefficient


MAX_ROWS = 100_000   # dln_problem draws the data's sufficient statistics directly above this many rows
MAX_SEED = 2 ** 63 - 1   # the largest seed torch.Generator.manual_seed takes
MAX_N = 2 ** 62   # rows are counted in torch's 64-bit integers
# The largest deep linear problem built here: every chain holds several copies of the parameters,
# and the data's statistics an input width squared (10⁴: 400 MB in float32)
MAX_WIDTH, MAX_PARAMETERS = 10 ** 4, 10 ** 8
# The loss's terms grow as s² with the teacher's largest singular value s, so float64 holds the gaps
# nβ·(L_n(w) − L_n(w*)) that λ̂ averages to about nβ·s²·2⁻⁵³, which must stay below this (float32's
# 2⁻²⁴ in its place gives 863 for [3,2,3] at s = 10⁴, n = 1,000, where a chain's gaps were off by 579)
RESOLVED_GAP = 0.01


class Problem(NamedTuple):
    name: str
    loss: Any
    true_parameter: torch.Tensor
    data: tuple[torch.Tensor, ...]
    n: int
    exact: LearningCoefficient | None
    exact_unavailable: str | None     # why there is no exact value (a Newton refusal)
    expression: sympy.Expr | None = None   # the potential, for the finite-n truth
    teacher_singular_values: tuple[float, ...] | None = None   # a deep linear teacher's, to say which modes n resolves


def dln_problem(widths: Sequence[int], rank: int, *, n: int, seed: int,
                singular_values: Sequence[float] | None = None, per_sample: bool = False) -> Problem:
    """Teacher of the given rank, Gaussian data, and a balanced (deepest) true parameter.

    By default the loss is L_n from the data's sufficient statistics (exact full-batch
    gradients at a cost independent of n); above ``MAX_ROWS`` rows the statistics are drawn
    directly, from their exact distribution (:func:`sltlab.models.sufficient_statistics`), so
    any n costs the same. ``per_sample`` keeps the n rows instead, for minibatches or the
    singular fluctuation, which needs every sample's likelihood.
    """
    exact, n, values = checked_dln_inputs(widths, rank, n, singular_values)
    seed = whole("seed", seed, 0)
    if seed > MAX_SEED:   # torch's generator takes at most 64 bits, and a float seed had failed inside it
        raise ValueError(f"seed must be at most 2**63 − 1, got {seed}")
    if not isinstance(per_sample, bool):
        raise ValueError(f"per_sample must be True or False, got {per_sample!r}")
    generator = torch.Generator().manual_seed(seed)
    network = DeepLinearNetwork(widths)
    target = teacher_matrix(widths[0], widths[-1], rank, singular_values, generator=generator)
    true_parameter = balanced_factorization(network, target, rank, generator=generator)
    name = f"deep linear {list(widths)}, rank {rank}"
    if n > MAX_ROWS and not per_sample:
        sxx, sxy, syy = sufficient_statistics(target, n, generator=generator)
        return Problem(f"{name} (statistics of n rows drawn exactly)",
                       FullDataLoss.from_statistics(network, sxx, sxy, syy, n), true_parameter, (), n, exact, None,
                       teacher_singular_values=values)
    x, y = regression_data(target, n, generator=generator)
    if per_sample:
        return Problem(name, network, true_parameter, (x, y), n, exact, None, teacher_singular_values=values)
    return Problem(name, FullDataLoss(network, x, y), true_parameter, (), n, exact, None,
                   teacher_singular_values=values)


def checked_dln_inputs(widths: Sequence[int], rank: int, n: int, singular_values: Sequence[float] | None
                       ) -> tuple[LearningCoefficient, int, tuple[float, ...]]:
    """A deep linear problem's exact λ, its n and its teacher's singular values (ones unless given;
    largest first), every input checked before anything is built: widths and rank (by the theory),
    their size (:func:`check_dln_size`), n (a float n had become the problem's n; at most
    ``MAX_N``), the values themselves, and whether float64 resolves the teacher's loss
    (:func:`check_resolvable`). The estimates at several n check every n first with it."""
    exact = theory.deep_linear(list(widths), rank)
    n = whole("n", n, 1)
    check_dln_size(widths)
    if n > MAX_N:
        raise ValueError(f"n must be at most 2**62 (rows are counted in 64-bit integers), got {n:.3g}")
    try:
        values = (1.0,) * rank if singular_values is None else tuple(sorted(map(float, singular_values), reverse=True))
    except (TypeError, ValueError):
        raise ValueError(f"singular values must be numbers, got {list(singular_values)}") from None
    if len(values) != rank or not all(0 < value < math.inf for value in values):
        raise ValueError(f"need {rank} positive finite singular value{'s' if rank != 1 else ''}, got {list(values)}")
    check_resolvable(values, n)
    return exact, n, values


def check_dln_size(widths: Sequence[int]) -> None:
    """A one-line ``ValueError`` for widths (valid as theory's) too large to build a network and its
    data of here (``MAX_WIDTH``, ``MAX_PARAMETERS``), before anything is allocated."""
    parameters = sum(a * b for a, b in zip(widths, widths[1:]))
    if max(widths) > MAX_WIDTH or parameters > MAX_PARAMETERS:
        raise ValueError(f"widths {list(widths)} make {parameters:.3g} parameters: a deep linear network here takes "
                         f"widths up to {MAX_WIDTH:,} and at most {MAX_PARAMETERS:.0e} parameters (each chain holds "
                         "several copies of them)")


def check_resolvable(singular_values: Sequence[float], n: int) -> None:
    """A one-line ``ValueError`` for a teacher so strong that float64 cannot resolve its loss's gaps
    on n rows at the default nβ = n/log n (``RESOLVED_GAP``; s = 10³⁰⁰ had made the loss NaN, blamed
    on the model and data the user never gave)."""
    largest = max((abs(float(value)) for value in singular_values), default=0.0)
    bound = math.sqrt(RESOLVED_GAP * 2 ** 53 * math.log(max(n, 3)) / n)
    if largest > bound:
        raise ValueError(f"a teacher singular value of {largest:.3g} on n = {n:,} rows: float64 holds the gaps "
                         f"nβ·(L_n(w) − L_n(w*)) that λ̂ averages only to about nβ·s²·2⁻⁵³ (nβ = n/log n), more than "
                         f"{RESOLVED_GAP:g}; keep s at most {bound:.3g} there")


def potential_problem(expression: str, *, n: int, variables: Sequence[str] | None = None) -> Problem:
    """K(w) as a population loss at w* = 0; exact λ from the Newton polyhedron when valid."""
    parsed, symbols = theory.parse_expression(expression, variables)
    try:
        exact, refusal = theory.newton(parsed, variables=symbols), None
    except theory.DegenerateError as error:
        exact, refusal = None, " ".join(str(error).split())
    zero = torch.zeros(len(symbols), dtype=torch.float64)
    return Problem(f"potential K = {expression}", Potential(parsed, symbols), zero, (), n, exact, refusal, parsed)


def restricted_dln_problem(widths: Sequence[int], rank: int, layer: int, *, n: int, seed: int) -> Problem:
    """Layer ``layer`` (1 = next to the input) of :func:`dln_problem`'s network alone, the other
    layers frozen at its balanced true parameter: λ = rank(A_l)·rank(B_l)/2, m = 1
    (:func:`sltlab.theory.restricted_deep_linear_balanced`)."""
    exact = theory.restricted_deep_linear_balanced(list(widths), rank, layer)   # validates first
    whole = dln_problem(widths, rank, n=n, seed=seed)
    loss = LayerRestrictedLoss(whole.loss, whole.true_parameter, layer)
    return Problem(f"layer {layer} of deep linear {list(widths)}, rank {rank}, the other layers frozen", loss,
                   loss.restrict(whole.true_parameter), (), n, exact, None)


def reduced_rank_problem(widths: Sequence[int], rank: int, *, n: int, seed: int) -> Problem:
    """y = BAx + noise with widths [M, H, N]: a two-layer linear network, with λ from Aoyagi &
    Watanabe's reduced-rank formula (written independently of the deep-linear one)."""
    if len(widths) != 3:
        raise ValueError(f"reduced-rank regression has widths [M, H, N], got {list(widths)}")
    problem = dln_problem(widths, rank, n=n, seed=seed)
    return problem._replace(name=f"reduced-rank regression {list(widths)}, rank {rank}",
                            exact=theory.reduced_rank(*widths, rank))


def regular_problem(inputs: int, outputs: int, *, n: int, seed: int) -> Problem:
    """Linear regression y = Wx + noise with W [outputs, inputs] of full rank: regular, λ = d/2."""
    problem = dln_problem([inputs, outputs], min(inputs, outputs), n=n, seed=seed)
    return problem._replace(name=f"regular: linear regression {inputs} → {outputs}",
                            exact=theory.regular(inputs * outputs))


def normal_crossing_problem(k: Sequence[int], h: Sequence[int], *, n: int) -> Problem:
    """K(w) = Π w_i^{2k_i} under the prior Π |w_i|^{h_i}, sampled in the coordinates
    u_i = sign(w_i)|w_i|^{h_i + 1}, in which the prior is flat: |w|^h dw = du/(h + 1), and K
    becomes Π |u_i|^{2k_i/(h_i + 1)}, whose λ with a flat prior is the same
    min (h_i + 1)/(2k_i) (Watanabe 2009, Thm 2.3; the change of variables of §2.4). Needs
    h_i ≤ 2k_i − 1, so that no exponent falls below 1."""
    exact = theory.normal_crossing(list(k), list(h))
    cusps = [i + 1 for i, (ki, hi) in enumerate(zip(k, h)) if ki > 0 and hi > 2 * ki - 1]
    if cusps:
        raise ValueError(f"prior exponents h_i > 2k_i − 1 at coordinates {cusps} give |u|^(2k/(h+1)) a cusp "
                         "with an infinite gradient at w* = 0, where Langevin samplers start")
    symbols = sympy.symbols(f"w1:{len(k) + 1}")
    factors = [u ** (2 * ki) if hi == 0 else sympy.Abs(u) ** sympy.Rational(2 * ki, hi + 1)
               for u, ki, hi in zip(symbols, k, h)]
    expression = sympy.Mul(*factors)
    name = f"normal crossing k = {list(k)}, prior exponents h = {list(h)}"
    return Problem(name, Potential(expression, symbols), torch.zeros(len(k), dtype=torch.float64), (), n, exact,
                   None, expression)


def tanh_problem(hidden: int, *, n: int, seed: int) -> Problem:
    """Regression on data from the true function f = 0 with the network Σ a_h tanh(b_h x);
    the true parameter is w0 = 0 (Aoyagi & Watanabe 2005)."""
    exact = theory.tanh_network(hidden)
    x, y = null_regression_data(n, generator=torch.Generator().manual_seed(seed))
    network = TanhNetwork(hidden)
    return Problem(f"tanh network, {hidden} hidden units, true f = 0", network,
                   torch.zeros(network.dim, dtype=torch.float64), (x, y), n, exact, None)
