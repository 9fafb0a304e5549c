"""Full-batch gradient descent on deep linear networks from a small balanced initialisation,
with checkpoints: the setting of saddle-to-saddle dynamics.

From a small balanced start W_{s+1}ᵀW_{s+1} = W_s W_sᵀ, gradient descent on a teacher with
well-separated singular values learns one mode at a time: long plateaus near saddles where the
end-to-end matrix has rank k, separated by sharp drops where mode k + 1 is picked up (Saxe,
McClelland & Ganguli 2014, ICLR, §2 and eq. 9; Saxe, McClelland & Ganguli 2019, PNAS; Jacot,
Ged, Şimşek, Hongler & Gabriel 2021, "Saddle-to-saddle dynamics in deep linear networks",
arXiv:2106.15933, Thm 1). Gradient flow conserves W_{s+1}ᵀW_{s+1} − W_s W_sᵀ (Arora, Cohen &
Hazan 2018, Thm 1), so a balanced start stays close to balanced.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from sltlab.models.deep_linear import DeepLinearNetwork, orthonormal_frame
from sltlab.models.deep_linear_losses import FullDataLoss
from sltlab.models.progress import progress_bar


class TrainingRun(NamedTuple):
    """Checkpoints of one run; row t of every array belongs to ``steps[t]``."""

    steps: Tensor            # [T] gradient steps taken at each checkpoint (0 = the start)
    positions: Tensor        # [T, d] parameters
    losses: Tensor           # [T] L_n on the training data
    gradient_norms: Tensor   # [T] ‖∇L_n‖
    singular_values: Tensor  # [T, min(H_in, H_out)] of the end-to-end matrix, descending


def balanced_initialization(network: DeepLinearNetwork, scale: float, *, generator: torch.Generator,
                            dtype=torch.float64, aligned_to: Tensor | None = None) -> Tensor:
    """W_s = scale·Q_{s+1}Q_sᵀ with Q_s random H_s × m orthonormal frames, m the narrowest width.

    Every layer has its m singular values equal to ``scale``, and W_{s+1}ᵀW_{s+1} =
    scale²·Q_{s+1}Q_{s+1}ᵀ = W_s W_sᵀ holds exactly (balanced, Arora et al. 2018, Def. 1); the
    end-to-end matrix is scale^L times a random partial isometry.

    With ``aligned_to`` = A [H_out, H_in] the outer frames are A's top m singular vectors (Q_0 =
    V_m, Q_L = U_m; the hidden frames stay random), so the end-to-end matrix is scale^L·U_m V_mᵀ:
    every mode starts along one of A's with overlap s_k ≥ 0 (:func:`mode_overlaps`), the
    decoupled start of Saxe, McClelland & Ganguli 2014 (§2), from which no mode can point against
    its teacher direction. The random numbers drawn are the same either way.

    Returns
    -------
    Tensor
        The flat position [d].
    """
    if not scale > 0:
        raise ValueError(f"the initialisation scale must be positive, got {scale}")
    rank = min(network.widths)
    frames = [orthonormal_frame(width, rank, generator, dtype) for width in network.widths]
    if aligned_to is not None:
        u, _, vh = torch.linalg.svd(aligned_to.to(dtype))
        frames[0], frames[-1] = vh[:rank].T, u[:, :rank]
    return network.flatten([scale * frames[s + 1] @ frames[s].T for s in range(len(network.shapes))])


def numerical_rank(singular_values: Tensor, tolerance: float) -> Tensor:
    """Number of singular values above ``tolerance`` (absolute), along the last dimension."""
    if not tolerance > 0:
        raise ValueError(f"the rank tolerance must be positive, got {tolerance}")
    return (singular_values > tolerance).sum(-1)


def train_deep_linear(network: DeepLinearNetwork, x: Tensor, y: Tensor, start: Tensor, *,
                      learning_rate: float, steps: int, checkpoint_every: int,
                      until_rank: tuple[int, float] | None = None, progress: bool = False) -> TrainingRun:
    """Full-batch gradient descent w ← w − η·∇L_n(w) from ``start`` [d].

    L_n is the mean Gaussian negative log-likelihood over the n rows, computed exactly from
    the sufficient statistics (:class:`models.deep_linear.FullDataLoss`). A checkpoint is
    taken at step 0 and every ``checkpoint_every`` steps, and at the last step.

    With ``until_rank = (rank, tolerance)`` training stops early: once a checkpoint at step t
    has at least ``rank`` singular values above ``tolerance``, it goes on to step ⌈1.5·t⌉ (a
    last plateau to rest on: the final third of the run) and stops there;
    ``steps`` stays the budget.

    Raises
    ------
    ValueError
        On non-positive settings, or when the loss stops being finite (learning rate too
        large for the data).
    """
    if not (learning_rate > 0 and steps >= 1 and checkpoint_every >= 1):
        raise ValueError(f"need learning rate > 0, steps ≥ 1 and checkpoint_every ≥ 1, got "
                         f"{learning_rate}, {steps} and {checkpoint_every}")
    loss = FullDataLoss(network, x, y)
    position = start.detach().to(x.dtype).clone().unsqueeze(0)
    records: list[tuple[int, Tensor, float, float, Tensor]] = []
    bar = progress_bar(steps, "gradient descent", enabled=progress)
    last = steps
    for step in range(steps + 1):
        if step > last:
            break
        with torch.enable_grad():
            leaf = position.requires_grad_(True)
            value = loss(leaf).sum()
            (gradient,) = torch.autograd.grad(value, leaf)
        if not torch.isfinite(value):
            raise ValueError(f"the training loss stopped being finite at step {step}: "
                             f"learning rate {learning_rate} is too large")
        if step % checkpoint_every == 0 or step == last:
            with torch.no_grad():
                singular = torch.linalg.svdvals(network.product(position)[0])
            records.append((step, position.detach()[0].clone(), float(value.detach()), float(gradient.norm()),
                            singular))
            if until_rank is not None and last == steps and int((singular > until_rank[1]).sum()) >= until_rank[0]:
                last = min(steps, -(-3 * step // 2))
        position = (position.detach() - learning_rate * gradient).detach()
        if bar is not None and step % 100 == 0 and step:
            bar.update(100)
    if bar is not None:
        bar.close()
    steps_taken, positions, losses, norms, singular = zip(*records)
    return TrainingRun(torch.tensor(steps_taken), torch.stack(positions), torch.tensor(losses, dtype=torch.float64),
                       torch.tensor(norms, dtype=torch.float64), torch.stack(singular))


def mode_overlaps(network: DeepLinearNetwork, position: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Strength σ_k and overlap u_kᵀ·T̂·v_k of every mode of the end-to-end matrix at ``position``
    [d], with T̂ = ``target`` [H_out, H_in] (the teacher as the data show it:
    :func:`least_squares_fit`).

    Along a balanced path a mode's strength p moves as dp/dt ≈ L·p^{2−2/L}·(o − p), o its
    overlap (Saxe, McClelland & Ganguli 2014, eq. 9, for aligned modes; Arora, Cohen & Hazan
    2018, Thm 1): a mode with o < 0 shrinks instead of escaping, and grows only after its
    singular vectors have turned through zero overlap, at a rate that shrinks with p. The
    overlap is the same whichever signs the singular vectors are given.

    Returns
    -------
    tuple of Tensor
        Strengths and overlaps [min(H_in, H_out)], strongest mode first.
    """
    u, strengths, vh = torch.linalg.svd(network.product(position.unsqueeze(0))[0])
    count = strengths.shape[0]
    return strengths, torch.einsum("ik,ij,kj->k", u[:, :count], target.to(u.dtype), vh[:count])


def least_squares_fit(x: Tensor, y: Tensor) -> Tensor:
    """The matrix T̂ [H_out, H_in] minimising Σ‖y_i − T̂x_i‖² over the rows of ``x`` and ``y``."""
    return torch.linalg.lstsq(x, y).solution.T

