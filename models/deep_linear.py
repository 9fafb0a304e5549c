"""Deep linear networks f(x) = W_L ⋯ W_1 x batched over chains, teachers of given rank, and
Gaussian regression data generated in code.

Parameters live in one flat tensor ``position`` of shape [C, d] (C chains, d parameters); the
network views it as L weight stacks [C, H_{s+1}, H_s]. Chains never interact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from sltlab.models.counts import finite, finite_matrix, whole


# From this many numbers in the flat gradient [C, d] on, the layers' products are written into
# its views rather than joined after: on this CPU joining four layers took 7,965 µs against
# 7,270 at 8 × 360,000 numbers and 252 against 264 at 8 × 10,000, where writing into a view
# costs more per product than the join saves.
WRITE_IN_PLACE_MIN = 2**18


def _check_widths(widths: Sequence[int]) -> tuple[int, ...]:
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
        raise ValueError(f"widths must list at least two positive integers, got {widths!r}")
    widths = tuple(whole("every width", h, 1) for h in widths)
    if len(widths) < 2:
        raise ValueError(f"widths must list at least two positive integers, got {list(widths)}")
    return widths


@dataclass(frozen=True)
class DeepLinearNetwork:
    """Bias-free deep linear network with widths [input, hidden..., output].

    Calling it on ``(position, (x, y))`` gives the per-sample Gaussian negative
    log-likelihood ½‖y − f(x)‖² + (H_out/2)·log 2π (unit noise variance) with shape [C, b].
    ``position`` is [C, d] and ``x`` is [C, b, H_in] or [b, H_in]; either side may have a
    leading 1 that broadcasts.
    """

    widths: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "widths", _check_widths(self.widths))

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        """(out, in) of each weight matrix W_1 … W_L."""
        return tuple(zip(self.widths[1:], self.widths[:-1]))

    @property
    def dim(self) -> int:
        return sum(out * inp for out, inp in self.shapes)

    def weights(self, position: Tensor) -> list[Tensor]:
        """Views of ``position`` [C, d] as weight stacks [C, out, in], W_1 first."""
        if position.shape[-1] != self.dim:
            raise ValueError(f"position has {position.shape[-1]} parameters, the network has {self.dim}")
        sizes = [out * inp for out, inp in self.shapes]
        return [block.reshape(*position.shape[:-1], out, inp)
                for block, (out, inp) in zip(position.split_with_sizes(sizes, -1), self.shapes)]

    def _check_rows(self, x: Tensor | None, y: Tensor | None = None) -> None:
        """Unless x is [·, b, H_in] and y [·, b, H_out] (None: unchecked), a one-line ValueError; no sync."""
        for rows, name, kind, width in ((x, "x", "input", self.widths[0]), (y, "y", "output", self.widths[-1])):
            if rows is not None and (rows.dim() < 2 or rows.shape[-1] != width):
                given = f"rows of width {rows.shape[-1]}, " if rows.dim() >= 2 else ""
                raise ValueError(f"{name} must be rows of the network's {kind} width {width}, [b, {width}] or "
                                 f"[C, b, {width}], got {given}shape {list(rows.shape)}")

    def as_module(self, position: Tensor, dtype: torch.dtype = torch.float64) -> torch.nn.Sequential:
        """The network at ``position`` [d] as ``nn.Sequential`` of bias-free ``Linear`` layers
        (layer l is ``"{l-1}.weight"``), the form a researcher's own network takes."""
        module = torch.nn.Sequential(*[torch.nn.Linear(inp, out, bias=False, dtype=dtype) for out, inp in self.shapes])
        with torch.no_grad():
            for layer, weight in zip(module, self.weights(position.reshape(1, -1))):
                layer.weight.copy_(weight[0])
        return module

    def flatten(self, weights: Sequence[Tensor]) -> Tensor:
        """Inverse of :meth:`weights`: matrices (with any leading dims) into one flat tensor."""
        return torch.cat([w.reshape(*w.shape[:-2], -1) for w in weights], dim=-1)

    @property
    def product_multiplications(self) -> int:
        """Multiplications that form W_L ⋯ W_1 from the first layer up: Σ_{s≥1} H_{s+1}H_s·H_in."""
        return sum(out * inp * self.widths[0] for out, inp in self.shapes[1:])

    def product_first(self, rows: int) -> bool:
        """Whether ``rows`` rows are multiplied more cheaply by W_L ⋯ W_1, formed first
        (:attr:`product_multiplications` + b·H_out·H_in multiplications), than layer by layer (b·d)."""
        return self.product_multiplications + rows * self.widths[-1] * self.widths[0] < rows * self.dim

    def forward(self, position: Tensor, x: Tensor) -> Tensor:
        """f(x) for every chain: [C, b, H_out], in the cheaper order (:meth:`product_first`): the
        same map either way, with other rounding."""
        self._check_rows(x)
        weights = self.weights(position)
        if self.product_first(x.shape[-2]):
            return _columns(self.partial_products(weights)[-1], x).transpose(-1, -2)
        for weight in weights:
            x = _columns(weight, x).transpose(-1, -2)
        return x

    def product(self, position: Tensor) -> Tensor:
        """End-to-end matrix W_L ⋯ W_1, [C, H_out, H_in]."""
        return self.partial_products(self.weights(position))[-1]

    @staticmethod
    def partial_products(weights: Sequence[Tensor]) -> list[Tensor]:
        """W_1, W_2 W_1, …, W_L ⋯ W_1: the product of the first l layers for l = 1 … L."""
        products = [weights[0]]
        for weight in weights[1:]:
            products.append(_matmul(weight, products[-1]))
        return products

    def pullback(self, weights: Sequence[Tensor], products: Sequence[Tensor], outer: Tensor) -> Tensor:
        """The gradient [C, d] with respect to the weights of a function of P = W_L ⋯ W_1 whose
        gradient with respect to P is ``outer`` [C, H_out, H_in]: ∂/∂W_l = (W_L ⋯ W_{l+1})ᵀ·outer·
        (W_{l−1} ⋯ W_1)ᵀ (the chain rule for a matrix product), accumulated from the last layer
        down as backpropagation does, with ``products`` from :meth:`partial_products`."""
        gradient, blocks = self._gradient_blocks(outer, outer.shape[:-2])
        upstream, gradients = outer, [outer] * len(weights)
        for layer in range(len(weights) - 1, 0, -1):
            gradients[layer] = _matmul(upstream, products[layer - 1].transpose(-1, -2), into=blocks[layer])
            upstream = _matmul(weights[layer].transpose(-1, -2), upstream, into=blocks[0] if layer == 1 else None)
        gradients[0] = upstream
        return self._joined(gradient, gradients)

    def _gradient_blocks(self, like: Tensor, leading: Sequence[int]) -> tuple[Tensor | None, list]:
        """A flat gradient [*leading, d] and its views as weight stacks, for the layers' gradients
        to be written into, when it has at least ``WRITE_IN_PLACE_MIN`` numbers; otherwise (None,
        no views), and the layers' gradients are joined after (:meth:`_joined`)."""
        if math.prod(leading) * self.dim < WRITE_IN_PLACE_MIN:
            return None, [None] * len(self.shapes)
        gradient = like.new_empty(*leading, self.dim)
        return gradient, self.weights(gradient)

    def _joined(self, gradient: Tensor | None, gradients: Sequence[Tensor]) -> Tensor:
        """The flat gradient: written in place already, or the layers' gradients joined."""
        return self.flatten(gradients) if gradient is None else gradient

    def __call__(self, position: Tensor, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        self._check_rows(None, y)
        return self._per_sample(self.forward(position, x).transpose(-1, -2) - y.transpose(-1, -2))

    def _per_sample(self, residual_columns: Tensor) -> Tensor:
        """½‖f(x) − y‖² + (H_out/2)·log 2π per row, [C, b], from the residuals as columns [C, H_out, b]."""
        return 0.5 * residual_columns.square().sum(-2) + 0.5 * self.widths[-1] * math.log(2 * math.pi)

    def mean_loss_and_gradient(self, position: Tensor, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """L_b [C] and ∇L_b [C, d] by the chain rule written out, without an autograd graph, which
        on small networks costs more than the arithmetic. With R = f(X) − Y over the b rows:
        product first (:meth:`product_first`), ∂L_b/∂P = RᵀX/b pulled back through the layers
        (:meth:`pullback`); layer by layer, backpropagation: δ_L = R/b, ∂L_b/∂W_l = δ_lᵀ·a_{l−1},
        δ_{l−1} = δ_l·W_l with a_l the activations (Rumelhart, Hinton & Williams 1986)."""
        x, y = batch
        self._check_rows(x, y)
        weights, rows = self.weights(position), x.shape[-2]
        if self.product_first(rows):
            products = self.partial_products(weights)
            residual = _columns(products[-1], x).sub_(y.transpose(-1, -2))          # Rᵀ, [C, H_out, b]
            gradient = self.pullback(weights, products, _matmul(residual, x).div_(rows))
        else:
            activations = [x]                                                     # a_l as rows, [C, b, H_l]
            for weight in weights[:-1]:
                activations.append(_columns(weight, activations[-1]).transpose(-1, -2))
            residual = _columns(weights[-1], activations[-1]).sub_(y.transpose(-1, -2))
            delta, gradients = residual / rows, [None] * len(weights)               # δ_lᵀ, [C, H_l, b]
            leading = torch.broadcast_shapes(position.shape[:-1], x.shape[:-2])
            gradient, blocks = self._gradient_blocks(position, leading)
            for layer in range(len(weights) - 1, -1, -1):
                gradients[layer] = _matmul(delta, activations[layer], into=blocks[layer])
                if layer:
                    delta = _matmul(weights[layer].transpose(-1, -2), delta)
            gradient = self._joined(gradient, gradients)
        if gradient.shape != position.shape:   # rows of several chains against one shared position
            gradient = gradient.sum_to_size(position.shape)
        return self._per_sample(residual).mean(-1), gradient


def _columns(matrix: Tensor, rows: Tensor) -> Tensor:
    """M·xᵀ, [C, out, b], for weights M [C or 1, out, in] and rows x [C or 1, b, in] or [b, in]:
    the outputs as columns. On this CPU's small-matrix kernels M·xᵀ took a fifth of the time of
    x·Mᵀ (12 against 58 µs for 16 stacks of 100 rows by 10 × 10). One matrix against several
    chains' rows is one product with all their rows side by side."""
    if matrix.dim() == 3 and matrix.shape[0] == 1 and rows.dim() == 3 and rows.shape[0] > 1:
        flat = torch.matmul(matrix[0], rows.reshape(-1, rows.shape[-1]).transpose(0, 1))   # [out, C·b]
        return flat.reshape(matrix.shape[1], rows.shape[0], rows.shape[1]).transpose(0, 1)
    return _matmul(matrix, rows.transpose(-1, -2))


def _matmul(left: Tensor, right: Tensor, *, into: Tensor | None = None) -> Tensor:
    """``torch.matmul``, through ``torch.bmm`` directly when both are stacks of the same number
    of matrices: the same kernel and numbers without matmul's broadcasting overhead, which on
    small networks costs more than the product. With ``into`` (a view of the flat gradient) the
    product is written there: bmm writes it in place, which at d = 10⁶ saves gathering the
    layers' gradients into one tensor (5 of about 130 ms a step)."""
    if left.dim() == right.dim() == 3 and left.shape[0] == right.shape[0]:
        return torch.bmm(left, right, out=into)
    product = torch.matmul(left, right)
    return product if into is None else into.copy_(product)


def teacher_matrix(n_in: int, n_out: int, rank: int, singular_values: Sequence[float] | None = None,
                   *, generator: torch.Generator, dtype=torch.float64) -> Tensor:
    """T = U diag(s) Vᵀ of the given rank with random orthonormal U, V (Haar, via QR).

    ``singular_values`` default to all ones.
    """
    if not 0 <= rank <= min(n_in, n_out):
        raise ValueError(f"rank must lie in 0..{min(n_in, n_out)}, got {rank}")
    values = torch.ones(rank, dtype=dtype) if singular_values is None else torch.as_tensor(
        singular_values, dtype=dtype)
    if values.shape != (rank,) or not bool(((values > 0) & torch.isfinite(values)).all()):
        raise ValueError(f"need {rank} positive finite singular value{'s' if rank != 1 else ''}, "
                         f"got {list(values.tolist())}")
    u = orthonormal_frame(n_out, rank, generator, dtype)
    v = orthonormal_frame(n_in, rank, generator, dtype)
    return (u * values) @ v.T


def balanced_factorization(network: DeepLinearNetwork, target: Tensor, rank: int, *,
                           generator: torch.Generator) -> Tensor:
    """A deepest true parameter [d] for ``target`` of rank r (Aoyagi 2024: local λ = global λ).

    With T = U S Vᵀ (top r singular triples): W_1 = Q_2 S^{1/L} Vᵀ, W_s = Q_{s+1} S^{1/L} Q_sᵀ,
    W_L = U S^{1/L} Q_Lᵀ, each Q_s a random H_s × r matrix with orthonormal columns. Every layer
    then has rank exactly r and the layers are aligned (Aoyagi 2024, local = global λ).
    """
    depth, rank, (n_in, n_out) = len(network.shapes), whole("rank", rank, 0), (network.widths[0], network.widths[-1])
    if tuple(finite_matrix("target", target).shape) != (n_out, n_in):
        raise ValueError(f"target must be [out, in] = [{n_out}, {n_in}] for widths {list(network.widths)}, "
                         f"got shape {list(target.shape)}")
    if rank > min(network.widths):
        raise ValueError(f"rank {rank} exceeds the narrowest width {min(network.widths)}")
    u, s, vh = torch.linalg.svd(target.to(torch.float64))
    tolerance = max(n_in, n_out) * torch.finfo(target.dtype).eps * float(s[0])   # numerical rank, as numpy's
    held = int((s > tolerance).sum())   # above it the layers would have zero singular values: not of rank r
    if rank > held:
        raise ValueError(f"rank {rank} exceeds the target's rank {held} (its singular values above {tolerance:.3g}): "
                         f"ask for at most {held}")
    root = torch.diag(s[:rank] ** (1.0 / depth))
    frames = ([vh[:rank].T]
              + [orthonormal_frame(h, rank, generator, torch.float64) for h in network.widths[1:-1]]
              + [u[:, :rank]])
    weights = [frames[s + 1] @ root @ frames[s].T for s in range(depth)]
    return network.flatten(weights)


def regression_data(target: Tensor, n: int, *, generator: torch.Generator,
                    noise_std: float = 1.0) -> tuple[Tensor, Tensor]:
    """n samples x ~ N(0, I), y = T x + noise_std·N(0, I)."""
    n = whole("n", n, 1)
    (n_out, n_in), noise_std = finite_matrix("target", target).shape, finite("noise_std", noise_std, positive=False)
    x = torch.randn(n, n_in, generator=generator, dtype=target.dtype)
    noise = torch.randn(n, n_out, generator=generator, dtype=target.dtype)
    return x, x @ target.T + noise_std * noise


def sufficient_statistics(target: Tensor, n: int, *, generator: torch.Generator,
                          noise_std: float = 1.0) -> tuple[Tensor, Tensor, float]:
    """Σxx = XᵀX/n, Σxy = XᵀY/n and tr(YᵀY)/n of n rows x ~ N(0, I), y = T x + σ·N(0, I), drawn
    exactly without the rows, at a cost independent of n: XᵀX ~ Wishart(n, I) by Bartlett's
    decomposition (XᵀX = L Lᵀ, L lower triangular, L_ii² ~ χ²(n − i) for i = 0, 1, …, L_ij ~ N(0, 1)
    below the diagonal; Bartlett 1933), XᵀE = (XᵀX)^{1/2} Z with Z standard normal [in, out] (given
    X, the columns of XᵀE are N(0, XᵀX)), and ‖E‖² = ‖Z‖² + χ²((n − in)·out), the part of E
    outside X's column space being independent of it."""
    (n_out, n_in), noise_std = finite_matrix("target", target).shape, finite("noise_std", noise_std, positive=False)
    n = whole("n", n, 1)
    if n <= n_in:
        raise ValueError(f"drawing the statistics needs n > {n_in} (the input width), got {n}")
    chi2 = np.random.default_rng(int(torch.randint(2 ** 62, (1,), generator=generator)))
    lower = torch.tril(torch.randn(n_in, n_in, generator=generator, dtype=target.dtype), -1)
    lower = lower + torch.diag(torch.as_tensor(chi2.chisquare(n - np.arange(n_in)), dtype=target.dtype).sqrt())
    xtx = lower @ lower.T
    values, vectors = torch.linalg.eigh(xtx)
    z = torch.randn(n_in, n_out, generator=generator, dtype=target.dtype)
    xte = (vectors * values.clamp_min(0).sqrt()) @ vectors.T @ z
    ete = float(z.square().sum()) + float(chi2.chisquare((n - n_in) * n_out))
    xty = xtx @ target.T + noise_std * xte
    yty = float((target @ xtx * target).sum()) + 2 * noise_std * float((target.T * xte).sum()) + noise_std ** 2 * ete
    return xtx / n, xty / n, yty / n


def orthonormal_frame(rows: int, cols: int, generator: torch.Generator, dtype) -> Tensor:
    """A Haar-random rows × cols matrix with orthonormal columns (QR of a Gaussian matrix with
    the signs of R's diagonal fixed, Mezzadri 2007)."""
    gaussian = torch.randn(rows, max(cols, 1), generator=generator, dtype=dtype)
    q, r = torch.linalg.qr(gaussian)
    return (q * torch.sign(torch.diagonal(r)))[:, :cols]
