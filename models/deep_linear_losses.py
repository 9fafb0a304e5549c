"""The losses of a deep linear network in closed form: the full-data loss from sufficient
statistics and the population loss, each with its exact gradient pulled back through the layers
(:meth:`sltlab.models.deep_linear.DeepLinearNetwork.pullback`), so samplers need no autograd.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from sltlab.models.deep_linear import DeepLinearNetwork


class FullDataLoss:
    """The mean Gaussian negative log-likelihood over all n rows, from sufficient statistics.

    For y = P x + noise, L_n(P) = ½[tr(P Σxx Pᵀ) − 2 tr(P Σxy) + tr Σyy] + (H_out/2)·log 2π with
    Σxx = XᵀX/n, Σxy = XᵀY/n, Σyy = YᵀY/n: exactly the mean of :class:`DeepLinearNetwork`'s
    per-sample losses, at a cost independent of n. Exact full-batch gradients then carry no
    minibatch noise. Calling it ignores the batch and returns L_n per chain as [C, 1].
    """

    def __init__(self, network: DeepLinearNetwork, x: Tensor, y: Tensor):
        if x.shape[-1] != network.widths[0] or y.shape[-1] != network.widths[-1] or len(x) != len(y):
            raise ValueError(f"data of shapes {tuple(x.shape)} and {tuple(y.shape)} do not fit widths "
                             f"{list(network.widths)}")
        self._keep(network, x.T @ x / len(x), x.T @ y / len(x), float((y * y).sum()) / len(x), len(x))

    @classmethod
    def from_statistics(cls, network: DeepLinearNetwork, sxx: Tensor, sxy: Tensor, syy: float,
                        n: int) -> FullDataLoss:
        """The same loss from Σxx [in, in], Σxy [in, out] and tr Σyy of n rows, e.g. drawn by
        :func:`sufficient_statistics` without the rows."""
        if tuple(sxx.shape) != (network.widths[0],) * 2 or tuple(sxy.shape) != (network.widths[0], network.widths[-1]):
            raise ValueError(f"statistics of shapes {tuple(sxx.shape)} and {tuple(sxy.shape)} do not fit widths "
                             f"{list(network.widths)}")
        loss = cls.__new__(cls)
        loss._keep(network, sxx, sxy, float(syy), int(n))
        return loss

    def _keep(self, network: DeepLinearNetwork, sxx: Tensor, sxy: Tensor, syy: float, n: int) -> None:
        self.network, self.n, self.sxx, self.sxy, self.syy = network, n, sxx, sxy, syy
        self.constant = 0.5 * network.widths[-1] * math.log(2 * math.pi)
        self._placed: dict = {}   # (device, dtype) -> (Σxx, Σxyᵀ, ½, ½tr Σyy + const) there, made once

    def _statistics(self, like: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Σxx, Σyx and the value's two constants as tensors like ``like``: a Python number in an
        operation is converted to a tensor at every call, which on small networks costs more
        than the arithmetic."""
        key = (like.device, like.dtype)
        if key not in self._placed:
            self._placed[key] = (self.sxx.to(like), self.sxy.T.contiguous().to(like),
                                 torch.tensor(0.5, dtype=like.dtype, device=like.device),
                                 torch.tensor(0.5 * self.syy + self.constant, dtype=like.dtype, device=like.device))
        return self._placed[key]

    @property
    def dim(self) -> int:
        return self.network.dim

    def __call__(self, position: Tensor, batch=None) -> Tensor:
        product = self.network.product(position)                       # [C, out, in]
        return self._value(product, self._outer(product)).unsqueeze(-1)

    def _outer(self, product: Tensor) -> Tensor:
        """∂L_n/∂P = P·Σxx − Σyx (Σxx is symmetric), [C, out, in]."""
        sxx, syx, _, _ = self._statistics(product)
        return torch.matmul(product, sxx).sub_(syx)

    def _value(self, product: Tensor, outer: Tensor) -> Tensor:
        """L_n per chain [C] from P and ∂L_n/∂P: ½⟨P, P·Σxx − 2Σyx⟩ + ½tr Σyy + (H_out/2)·log 2π."""
        _, syx, half, offset = self._statistics(product)
        return (product * (outer - syx)).sum((-1, -2)).mul_(half).add_(offset)

    def mean_loss_and_gradient(self, position: Tensor, batch=None) -> tuple[Tensor, Tensor]:
        """L_n [C] (the same numbers as calling the loss) and its exact gradient [C, d] without
        autograd: ∂L_n/∂P pulled back through the layers by :meth:`DeepLinearNetwork.pullback`."""
        weights = self.network.weights(position)
        products = self.network.partial_products(weights)
        outer = self._outer(products[-1])
        return self._value(products[-1], outer), self.network.pullback(weights, products, outer)


class StackedFullDataLoss(FullDataLoss):
    """Several :class:`FullDataLoss` of one network and one Σxx side by side: row c of the
    positions is scored by ``losses[assignment[c]]``, so chains at several checkpoints, each
    against its own targets, run as one batch. It takes exactly ``len(assignment)`` rows; each
    row's value and gradient are its own loss's, to rounding."""

    def __init__(self, losses: Sequence[FullDataLoss], assignment: Tensor):
        first = losses[0]
        if any(loss.network is not first.network or not torch.equal(loss.sxx, first.sxx) or loss.n != first.n
               for loss in losses):
            raise ValueError("stacked losses must share one network and one set of inputs")
        assignment = torch.as_tensor(assignment, dtype=torch.long)
        if assignment.dim() != 1 or int(assignment.min()) < 0 or int(assignment.max()) >= len(losses):
            raise ValueError(f"assignment must give each row one of the {len(losses)} losses")
        syy = torch.tensor([loss.syy for loss in losses], dtype=torch.float64)
        self._keep(first.network, first.sxx, torch.stack([loss.sxy for loss in losses])[assignment], 0.0, first.n)
        self.syy, self.rows = syy[assignment], len(assignment)

    def _statistics(self, like: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Σxx, each row's Σyx [C, out, in] and constants [C] (:meth:`FullDataLoss._statistics`)."""
        if like.shape[0] != self.rows:
            raise ValueError(f"this stacked loss scores exactly {self.rows} rows of positions, got {like.shape[0]}")
        key = (like.device, like.dtype)
        if key not in self._placed:
            self._placed[key] = (self.sxx.to(like), self.sxy.transpose(-1, -2).contiguous().to(like),
                                 torch.tensor(0.5, dtype=like.dtype, device=like.device),
                                 (0.5 * self.syy + self.constant).to(like))
        return self._placed[key]


class PopulationLoss:
    """The population loss of a deep linear network for y = B x + N(0, I), x ~ N(0, I):
    L(P) = ½‖P − B‖²_F per sample, P = W_L ⋯ W_1, with the constant (H_out/2)(1 + log 2π)
    dropped (it is the same for every parameter). Calling it ignores the batch and returns L
    per chain as [C, 1]."""

    def __init__(self, network: DeepLinearNetwork, teacher: Tensor):
        if tuple(teacher.shape) != (network.widths[-1], network.widths[0]):
            raise ValueError(f"a teacher of shape {tuple(teacher.shape)} does not fit widths {list(network.widths)}")
        self.network, self.teacher = network, teacher
        self._placed: dict = {}   # (device, dtype) -> the teacher there, copied once

    @property
    def dim(self) -> int:
        return self.network.dim

    def _teacher(self, like: Tensor) -> Tensor:
        key = (like.device, like.dtype)
        if key not in self._placed:
            self._placed[key] = self.teacher.to(like)
        return self._placed[key]

    def __call__(self, position: Tensor, batch=None) -> Tensor:
        product = self.network.product(position)
        return 0.5 * (product - self._teacher(product)).square().sum((-1, -2)).unsqueeze(-1)

    def mean_loss_and_gradient(self, position: Tensor, batch=None) -> tuple[Tensor, Tensor]:
        """L [C] and its exact gradient [C, d] without autograd: ∂L/∂P = P − B, pulled back
        through the layers by :meth:`DeepLinearNetwork.pullback`."""
        weights = self.network.weights(position)
        products = self.network.partial_products(weights)
        residual = products[-1] - self._teacher(products[-1])
        return 0.5 * residual.square().sum((-1, -2)), self.network.pullback(weights, products, residual)


class ChainwiseSquaredError:
    """E = Σ_j ½‖y_j − P x_j‖² over each chain's own rows, from that chain's sufficient statistics
    XᵀX [Q, in, in], XᵀY [Q, in, out] and Σ‖y‖² [Q]: E = ½tr(P XᵀX Pᵀ) − tr(P XᵀY) + ½Σ‖y‖², the
    negative log-likelihood of the rows under unit-variance Gaussian noise less its constant. Row
    q of the positions is scored on chain q's rows, or on chain ``chains[q]``'s when given."""

    def __init__(self, network: DeepLinearNetwork, xx: Tensor, xy: Tensor, yy: Tensor):
        widths = network.widths
        if xx.shape[1:] != (widths[0], widths[0]) or xy.shape[1:] != (widths[0], widths[-1]) or not (
                len(xx) == len(xy) == len(yy)):
            raise ValueError(f"statistics of shapes {tuple(xx.shape)}, {tuple(xy.shape)} and {tuple(yy.shape)} do "
                             f"not fit widths {list(widths)}")
        self.network, self.xx, self.yx, self.yy = network, xx, xy.transpose(-1, -2), yy

    def __call__(self, position: Tensor, chains: Tensor | None = None) -> Tensor:
        xx, yx, yy = (self.xx, self.yx, self.yy) if chains is None else (self.xx[chains], self.yx[chains],
                                                                          self.yy[chains])
        product = self.network.product(position)                          # [P, out, in]
        return (0.5 * (product @ xx.to(product) * product) - product * yx.to(product)).sum((-1, -2)) \
            + 0.5 * yy.to(product)
