"""Problems of the families the verification suites cover beyond deep linear networks and
polynomial potentials (:mod:`verification.llc_runs`): reduced-rank regression, regular models,
normal crossings under a prior, and the tanh network as a data model."""

from __future__ import annotations

from typing import Sequence

import sympy
import torch

import theory
from models.potential import Potential
from models.tanh_network import TanhNetwork, null_regression_data
from verification.llc_runs import Problem, dln_problem


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
    potential = Potential(expression, [s.name for s in symbols])
    name = f"normal crossing k = {list(k)}, prior exponents h = {list(h)}"
    return Problem(name, potential, torch.zeros(len(k), dtype=torch.float64), (), n, exact, None, str(expression))


def tanh_problem(hidden: int, *, n: int, seed: int) -> Problem:
    """Regression on data from the true function f = 0 with the network Σ a_h tanh(b_h x);
    the true parameter is w0 = 0 (Aoyagi & Watanabe 2005)."""
    exact = theory.tanh_network(hidden)
    x, y = null_regression_data(n, generator=torch.Generator().manual_seed(seed))
    network = TanhNetwork(hidden)
    return Problem(f"tanh network, {hidden} hidden units, true f = 0", network,
                   torch.zeros(network.dim, dtype=torch.float64), (x, y), n, exact, None)
