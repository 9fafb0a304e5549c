"""The exact finite-temperature LLC of a deep linear network, by blocked Gibbs sampling.

The estimand of every LLC estimator at finite nβ and γ is
λ(nβ, γ) = nβ·E[L_n(w) − L_n(w*)] under p(w) ∝ exp(−nβ·L_n(w) − (γ/2)·‖w − w*‖²)
(Lau, Furman, Wang, Murfet & Wei 2023, Def. 3.1). For a deep linear network the loss is
quadratic in any one layer with the others held, so each layer's conditional is Gaussian and
is drawn exactly, with no step size and no discretisation bias. With P = A·W_s·B, A = W_L⋯W_{s+1}
and B = W_{s−1}⋯W_1, and L_n(P) = ½tr(P Σxx Pᵀ) − tr(P Σxy) + const,

    −log p(W_s) = (nβ/2)·⟨W_s, M·W_s·N⟩ − ⟨W_s, nβ·AᵀΣyx Bᵀ + γ·C_s⟩ + (γ/2)‖W_s‖² + const,

M = AᵀA, N = B Σxx Bᵀ: a Gaussian of precision nβ·(N ⊗ M) + γ·I, diagonal in the eigenbases
of M and N (precision nβ·μ_i·ν_j + γ per entry), so one draw costs two symmetric
eigendecompositions. Layers are swept forward then back. Gibbs moves one layer at a time and
so crawls along the orbits W_{j−1} → G·W_{j−1}, W_j → W_j·G⁻¹ that leave the product, and the
loss, unchanged; a Metropolis move along them (G = exp(S), S Gaussian, accepted on the prior
term and the Jacobian det(G)^{h_{j−1} − h_{j+1}}) crosses them. The draws are independent of
every sampler in ``sltlab.estimators``: they are a reference, not an estimator.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from sltlab.estimators.elasticity import Elasticity, gamma_elasticity
from sltlab.estimators.llc import LLCEstimate, llc_from_gaps
from sltlab.models.counts import finite, shown, whole
from sltlab.models.deep_linear_losses import FullDataLoss

GAUGE_ACCEPTANCE = 0.4   # the gauge move's step adapts towards this acceptance during burn-in


def _layer_draw(weights: list[Tensor], layer: int, loss: FullDataLoss, centre: list[Tensor], nbeta: float,
                gamma: float, generator: torch.Generator) -> Tensor:
    """One exact draw of W_layer from its Gaussian conditional (module docstring)."""
    above = None
    for weight in weights[layer + 1:]:
        above = weight if above is None else weight @ above
    below = None
    for weight in weights[:layer]:
        below = weight if below is None else weight @ below
    sxx, syx = loss.sxx.to(weights[0]), loss.sxy.T.to(weights[0])
    linear = syx if above is None else above.transpose(-1, -2) @ syx
    covariance = sxx if below is None else below @ sxx @ below.transpose(-1, -2)
    if below is not None:
        linear = linear @ below.transpose(-1, -2)
    out_values, out_basis = (torch.ones(weights[layer].shape[:-1], dtype=sxx.dtype), None) if above is None else \
        torch.linalg.eigh(above.transpose(-1, -2) @ above)
    in_values, in_basis = torch.linalg.eigh(covariance)
    shift = nbeta * linear + gamma * centre[layer]
    rotated = shift if out_basis is None else out_basis.transpose(-1, -2) @ shift
    rotated = rotated @ in_basis
    precision = nbeta * out_values.clamp_min(0).unsqueeze(-1) * in_values.clamp_min(0).unsqueeze(-2) + gamma
    noise = torch.randn(weights[layer].shape, generator=generator, dtype=rotated.dtype)
    draw = (rotated / precision + noise / precision.sqrt()) @ in_basis.transpose(-1, -2)
    return draw if out_basis is None else out_basis @ draw


def _gauge_move(weights: list[Tensor], hidden: int, centre: list[Tensor], gamma: float, scale: float,
                generator: torch.Generator) -> float:
    """Metropolis move along the orbit of hidden layer ``hidden`` (between W_{hidden−1} and
    W_hidden); returns the mean acceptance probability."""
    lower, upper = weights[hidden - 1], weights[hidden]
    width = lower.shape[-2]
    step = scale * torch.randn(len(lower), width, width, generator=generator, dtype=lower.dtype)
    new_lower, new_upper = torch.linalg.matrix_exp(step) @ lower, upper @ torch.linalg.matrix_exp(-step)
    prior = ((new_lower - centre[hidden - 1]).square().sum((-1, -2))
             + (new_upper - centre[hidden]).square().sum((-1, -2))
             - (lower - centre[hidden - 1]).square().sum((-1, -2)) - (upper - centre[hidden]).square().sum((-1, -2)))
    jacobian = step.diagonal(dim1=-2, dim2=-1).sum(-1) * (lower.shape[-1] - upper.shape[-2])
    log_ratio = -0.5 * gamma * prior + jacobian
    accept = torch.log(torch.rand(len(lower), generator=generator, dtype=lower.dtype)) < log_ratio
    weights[hidden - 1] = torch.where(accept.view(-1, 1, 1), new_lower, lower)
    weights[hidden] = torch.where(accept.view(-1, 1, 1), new_upper, upper)
    return float(log_ratio.clamp(max=0).exp().mean())


def _check_point(loss: FullDataLoss, centre: Tensor, nbeta: float, gamma: float) -> None:
    """A one-line ValueError, before any draw, unless nβ and γ are positive finite numbers and the
    centre is a finite point [d] of the loss's network."""
    if not (_positive_finite(nbeta) and _positive_finite(gamma)):
        raise ValueError(f"need nβ > 0, γ > 0, both finite numbers; got nβ = {shown(nbeta)}, γ = {shown(gamma)}")
    dim = loss.network.dim
    if not isinstance(centre, Tensor) or tuple(centre.shape) != (dim,):
        got = f"shape {list(centre.shape)}" if isinstance(centre, Tensor) else shown(centre)
        raise ValueError(f"need a centre of the network's {dim} parameters, a tensor [{dim}]; got {got}")
    if not bool(torch.isfinite(centre).all()):
        raise ValueError(f"need a centre of finite numbers; got {int((~torch.isfinite(centre)).sum())} NaN or ±inf "
                         f"among its {dim}")


def _positive_finite(value) -> bool:
    """Whether ``value`` is a finite number above 0 (as :func:`sltlab.models.counts.finite` reads it)."""
    try:
        return finite("", value, positive=True) > 0
    except ValueError:
        return False


def gibbs_draws(loss: FullDataLoss, centre: Tensor, nbeta: float, gamma: float, *, chains: int = 8,
                sweeps: int = 4000, burnin: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """nβ·(L_n(w) − L_n(w*)) and ‖w − w*‖ per chain and sweep, each [chains, sweeps], from chains
    started at w*."""
    _check_point(loss, centre, nbeta, gamma)
    chains, sweeps, burnin = whole("chains", chains, 1), whole("sweeps", sweeps, 1), whole("burnin", burnin, 0)
    generator = torch.Generator().manual_seed(seed)
    network = loss.network
    centre = centre.detach().to(torch.float64)
    centre_layers = network.weights(centre.unsqueeze(0))
    weights = [w.expand(chains, -1, -1).clone() for w in centre_layers]
    centre_loss = float(loss(centre.unsqueeze(0)))
    depth = len(weights)
    order = list(range(depth)) + list(range(depth - 2, 0, -1))
    scales = [0.3 / math.sqrt(width) for width in network.widths]
    tries = [0] * len(scales)
    gaps, distances = [], []
    for sweep in range(burnin + sweeps):
        for layer in order:
            weights[layer] = _layer_draw(weights, layer, loss, centre_layers, nbeta, gamma, generator)
        for hidden in range(1, depth):
            rate = _gauge_move(weights, hidden, centre_layers, gamma, scales[hidden], generator)
            if sweep < burnin:   # Robbins–Monro on log scale, frozen after burn-in
                tries[hidden] += 1
                scales[hidden] *= math.exp((rate - GAUGE_ACCEPTANCE) / math.sqrt(tries[hidden] + 10))
        if sweep >= burnin:
            position = network.flatten(weights)
            gaps.append(nbeta * (loss(position).squeeze(-1) - centre_loss))
            distances.append(torch.linalg.vector_norm(position - centre, dim=-1))
    return torch.stack(gaps, -1).numpy(), torch.stack(distances, -1).numpy()


def reference_llc(loss: FullDataLoss, centre: Tensor, nbeta: float, gamma: float, **options) -> LLCEstimate:
    """λ(nβ, γ) at ``centre`` with its Monte Carlo SE, R-hat and ESS over the Gibbs chains."""
    return reference_llc_and_elasticity(loss, centre, nbeta, gamma, **options)[0]


def reference_llc_and_elasticity(loss: FullDataLoss, centre: Tensor, nbeta: float, gamma: float,
                                 **options) -> tuple[LLCEstimate, Elasticity | None]:
    """:func:`reference_llc` and, from the same draws, λ's elasticity in γ
    (:func:`sltlab.estimators.elasticity.gamma_elasticity`) over the chains it keeps."""
    gaps, distances = gibbs_draws(loss, centre, nbeta, gamma, **options)
    estimate = llc_from_gaps(gaps, nbeta)
    kept = np.array([value is not None for value in estimate.per_chain])
    return estimate, gamma_elasticity(gaps, distances, gamma, kept, estimate.standard_error)
