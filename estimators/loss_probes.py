"""Checks, before any sampling, that a module and loss give each row a loss of its own: the
posterior exp(−nβ·L_n(w))·φ(w) needs L_n(w) = (1/n)·Σ_i ℓ_i(w), a function of w and of row i
alone (Watanabe 2009, §1.2; Lau, Furman, Wang, Murfet & Wei 2023, eq. 5). Two ways a module
breaks that without failing, each a one-line ``ValueError`` naming the likely cause:

- the losses on the same rows at the same weights differ between two evaluations: the forward
  or the loss draws random numbers even in eval mode (``F.dropout`` without
  ``training=self.training``, noise from ``torch.randn``) or keeps state between calls, and the
  sampler would see a noisy L_n;
- a row's loss differs between the first rows evaluated together and each half of them alone:
  the module normalises over the batch (x − x.mean(0)), reads the rows as one sequence (an RNN
  given [b, features], whose later rows depend on the earlier ones: hence both halves), or the
  loss compares rows with one another (in-batch negatives), so L_n depends on how the rows are
  batched, which every full-data pass and minibatch does its own way.

Both compare at float rounding's scale: a relative 10⁻⁵, or 10⁻⁶ of the largest loss. On a random
draw of 40 modules that do neither (seed 9800, drawn after the tolerance: MLPs with and without
LayerNorm in float32 and float64, 1-d CNNs, transformer layers with dropout in eval mode), none
was refused.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sltlab.estimators.functional import FunctionalModel


def refuse_unreproducible_losses(adapter: FunctionalModel, head: tuple) -> None:
    """Both checks (module docstring) on the first rows ``head`` at the module's current values;
    quiet when the module or loss fails on them (the estimate's own checks then say why)."""
    first, second = adapter.outputs(head, losses=True), adapter.outputs(head, losses=True)
    if first is None or second is None or first.shape != second.shape:
        return
    gap = _gap(first, second)
    if gap is not None:
        raise ValueError(f"the loss on the same rows at the same weights differed between two evaluations (by up to "
                         f"{gap:.3g}): the module's forward or the loss draws random numbers even in eval mode "
                         "(F.dropout without training=self.training, noise from torch.randn) or keeps state between "
                         "calls, so the posterior is no function of the weights and λ̂ would be wrong; make them "
                         "deterministic in eval mode (F.dropout(x, p, training=self.training))")
    half = len(first) // 2
    for part in (slice(0, half), slice(half, len(first))) if half else ():
        alone = adapter.outputs(tuple(column[part] for column in head), losses=True)
        gap = None if alone is None or alone.shape != first[part].shape else _gap(first[part], alone)
        if gap is not None:
            raise ValueError(f"the loss of a row depends on the other rows evaluated with it (by up to {gap:.3g} "
                             f"between rows {part.start}–{part.stop - 1} alone and among the first {len(first)}): the "
                             "module normalises over the batch (x − x.mean(0)), reads the rows as one sequence, or the "
                             "loss compares rows with one another, so L_n is no sum of per-row losses and λ̂ would "
                             "depend on how the rows are batched; compute each row's output and loss from that row "
                             "alone")


def _gap(first: Tensor, second: Tensor) -> float | None:
    """The largest difference of two evaluations of the same losses, or None within rounding
    (NaN where both are NaN is no difference)."""
    scale = float(first.nan_to_num(0.0, 0.0, 0.0).abs().max())
    if torch.allclose(first, second, rtol=1e-5, atol=1e-6 * max(scale, 1.0), equal_nan=True):
        return None
    infinite = float("inf")
    return float((first - second).nan_to_num(infinite, infinite, infinite).abs().max())
