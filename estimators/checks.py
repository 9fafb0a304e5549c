"""Contracts an estimate checks once, at its boundary, so that bad input is a one-line
``ValueError`` naming what is wrong rather than a confident wrong number."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sltlab.estimators.host_memory import host_available_memory
from sltlab.estimators.posterior import batch_rows, row_chunks
from sltlab.estimators.streamed import StreamedRows


def check_data(data: tuple[Tensor, ...] | StreamedRows) -> None:
    """Data are a tuple of tensors (none for a loss that reads no rows), every one with the same
    number of rows and holding values, and floating data are finite (streamed rows are checked as
    they are read)."""
    if isinstance(data, StreamedRows):
        return
    if isinstance(data, Tensor) or not isinstance(data, (tuple, list)):
        kind = "one tensor" if isinstance(data, Tensor) else "None" if data is None else f"a {type(data).__name__}"
        raise ValueError(f"data is {kind}: a batched loss takes a tuple of tensors, (x, y) or (x,), or () for a loss "
                         "that reads no rows (estimate_llc takes a DataLoader, a Dataset or a dict for a module)")
    for index, tensor in enumerate(data):
        if not isinstance(tensor, Tensor):
            raise ValueError(f"data entry {index} is a {type(tensor).__name__}, not a torch tensor "
                             "(torch.as_tensor(array) makes one)")
    rows = {len(t) for t in data}
    if len(rows) > 1:
        raise ValueError(f"the data tensors have different numbers of rows: {[len(t) for t in data]}")
    refuse_meta(data)
    for index, tensor in enumerate(data):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"data tensor {index} has values that are not finite (NaN or inf)")


def refuse_meta(data: tuple[Tensor, ...] | StreamedRows) -> None:
    """A one-line ``ValueError`` for data on the meta device: it holds shapes, no values."""
    for index, tensor in enumerate(() if isinstance(data, StreamedRows) else data):
        if tensor.is_meta:
            raise ValueError(f"data tensor {index} is on the meta device and holds no values: give the data itself")


def check_position(position: Any, what: str) -> None:
    """A one-line ``ValueError`` unless ``position`` is one real point [d] with values: a torch
    tensor of one dimension, d ≥ 1, of real numbers (integers are read as floats; a complex one's
    imaginary part would be dropped, a boolean is no position), off the meta device."""
    if not isinstance(position, Tensor):
        raise ValueError(f"{what} must be a torch tensor [d], got a {type(position).__name__}")
    if position.dim() != 1 or not position.numel():
        raise ValueError(f"{what} is one position, a tensor [d] with d ≥ 1, got {list(position.shape)}")
    if position.is_complex() or position.dtype == torch.bool:
        raise ValueError(f"{what} must hold real numbers, got {str(position.dtype).split('.')[-1]}")
    if position.is_meta:
        raise ValueError(f"{what} is on the meta device and holds no values: give the parameter itself")


def checked_centers(centers: Any) -> list[Tensor]:
    """Centres as a list of positions [d] (:func:`check_position`), from a list or a tensor [K, d]."""
    centers = list(centers.unbind()) if isinstance(centers, Tensor) and centers.dim() == 2 else centers
    if not isinstance(centers, (list, tuple)):
        raise ValueError(f"centers must be a list of parameter vectors [d] (or a tensor [K, d]), got {centers!r}"[:200])
    if not centers:
        raise ValueError("centers is empty: give at least one parameter vector")
    for index, center in enumerate(centers):
        check_position(center, f"centre {index}")
    return list(centers)


def check_loss_shape(loss, position: Tensor, full: Any) -> None:
    """``loss`` must give one loss per chain and sample: [C, b] for C = 2 chains at ``position``
    on the first few rows of the data ([2, 1] for a population loss without data). A loss that
    averages over the samples, or over the chains, is refused, and so is one whose rows' losses
    depend on the other rows evaluated with them (:func:`refuse_coupled_rows`)."""
    rows = 1 if full is None else min(4, batch_rows(full))
    probe = None if full is None else row_chunks(full, rows)[0]
    with torch.no_grad():
        output = loss(position.unsqueeze(0).expand(2, -1), probe)
    if not isinstance(output, Tensor) or tuple(output.shape) != (2, rows):
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        extra = isinstance(output, Tensor) and output.dim() > 2 and tuple(output.shape[:2]) == (2, rows)
        if extra:
            remedy = "reduce each sample's losses over its other dimensions (outputs, tokens) to one number"
        elif isinstance(output, Tensor) and tuple(output.shape) == (2,):   # one number per chain
            remedy = ("one number per chain: the loss averages or sums over the rows, as torch's losses do by "
                      "default (F.mse_loss, nn.CrossEntropyLoss()); give reduction='none' and leave the average to "
                      "the estimate")
        elif isinstance(output, Tensor) and tuple(output.shape) in ((rows,), (1, rows)):
            remedy = ("one row of losses for all chains: evaluate every chain's position (row c of position [C, d] "
                      "is chain c) and return a row of per-sample losses for each")
        elif isinstance(output, Tensor) and tuple(output.shape) == (rows, 2):
            remedy = "chains and samples are swapped: return [C, b], chains first"
        else:
            remedy = "average over samples inside the estimate, not in the loss"
        raise ValueError(f"the loss must return per-sample losses of shape [C, b] (here [2, {rows}] for 2 chains on "
                         f"{rows} rows), got {shape}: {remedy}")
    refuse_unfloating_losses(output)
    refuse_coupled_rows(loss, position, full)


COUPLING_ROWS = 64   # the first rows on which a row's loss is compared alone and among others


def refuse_coupled_rows(loss, position: Tensor, full: Any) -> None:
    """A one-line ``ValueError`` where, at ``position`` or at a seeded point near it, the losses of
    the first ``COUPLING_ROWS`` rows differ between two evaluations, or a row's loss differs between
    those rows together and each half alone: L_n is then no mean of per-row losses (Watanabe 2009,
    §1.2), and minibatches of another size see another one (a loss centring its inputs by the
    batch's own mean read λ̂ = 30.4 ± 0.5 in batches of 50, unwarned, for a regular model of 2
    parameters, 1.08 on the full data). The point near it finds a coupling the position itself
    hides (``x − x.mean()`` times weights that are 0 there). The module path checks the same before
    this (:mod:`~sltlab.estimators.loss_probes`)."""
    if full is None or batch_rows(full) < 2:
        return
    head = row_chunks(full, min(COUPLING_ROWS, batch_rows(full)))[0]
    nearby = torch.randn(position.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for point in (position, position + 0.1 * (1.0 + position.abs()) * nearby.to(position)):
        _refuse_coupled_at(loss, point, head)


def _refuse_coupled_at(loss, position: Tensor, head: tuple) -> None:
    """:func:`refuse_coupled_rows` at one point; quiet where the loss is not finite there."""
    half, at = len(head[0][0]) // 2, position.unsqueeze(0)
    with torch.no_grad():
        together = loss(at, head)[0]
        if not bool(torch.isfinite(together).all()):
            return
        if (gap := loss_gap(together, loss(at, head)[0])) is not None:
            raise ValueError(f"the loss on the same rows at the same parameter differed between two evaluations (by up "
                             f"to {gap:.3g}): it draws random numbers or keeps state between calls, so the posterior "
                             "is no function of the parameter; make it deterministic")
        for part in (slice(0, half), slice(half, len(together))):
            alone = loss(at, tuple(column[:, part] for column in head))[0]
            if alone.shape == together[part].shape and (gap := loss_gap(together[part], alone)) is not None:
                raise ValueError(f"the loss of a row depends on the other rows evaluated with it (by up to {gap:.3g} "
                                 f"between rows {part.start}–{part.stop - 1} alone and among the first "
                                 f"{len(together)}): it normalises over the batch (x − x.mean), or compares rows with "
                                 "one another, so L_n is no mean of per-row losses and λ̂ would depend on how the "
                                 "rows are batched; compute each row's loss from that row alone")


def loss_gap(first: Tensor, second: Tensor) -> float | None:
    """The largest difference of two evaluations of the same losses, or None within rounding (a
    relative 10⁻⁵, or 10⁻⁶ of the largest loss; NaN where both are NaN is no difference)."""
    scale = float(first.nan_to_num(0.0, 0.0, 0.0).abs().max())
    if torch.allclose(first, second, rtol=1e-5, atol=1e-6 * max(scale, 1.0), equal_nan=True):
        return None
    infinite = float("inf")
    return float((first - second).nan_to_num(infinite, infinite, infinite).abs().max())


def refuse_unfloating_losses(losses: Tensor) -> None:
    """A one-line ``ValueError`` for losses that are not real floating-point numbers."""
    if not losses.is_floating_point():
        raise ValueError(f"the loss must return real floating-point losses, got {str(losses.dtype).split('.')[-1]}: "
                         "an integer or boolean loss has no gradient (a .round(), .argmax() or comparison in it?)")


# The fewest [C, d] tensors any sampler holds at once: the position, its gradient, the noise and
# the next position (MALA and HMC hold more); and per recorded draw and chain, two float64 records.
STATE_TENSORS = 4
RECORD_BYTES = 16


def check_memory(chains: int, dim: int, draws: int, dtype: torch.dtype, device: torch.device,
                 at_once: int | None = None) -> None:
    """Refuse a run whose chains alone cannot fit: ``chains`` chains of ``dim`` parameters, of
    which ``at_once`` (all when None) are sampled together, hold at least ``STATE_TENSORS`` tensors
    [C, d] for the chains sampled together, the final state of each chain sampled before (at least
    its position), and the records of every chain, before any forward pass: a lower bound. Without
    this a run far too large is killed by the operating system (exit 137) rather than told why."""
    at_once = chains if at_once is None else min(at_once, chains)
    size = torch.finfo(dtype).bits // 8
    needed = (at_once * STATE_TENSORS + chains - at_once) * dim * size + chains * draws * RECORD_BYTES
    available = available_memory(device)
    if available is not None and needed > available:
        together = f" ({at_once:,} at a time)" if at_once < chains else ""
        raise ValueError(f"{chains:,} chains{together} of {dim:,} parameters and {draws:,} draws need at least "
                         f"{needed / 2 ** 30:.3g} GiB, and {available / 2 ** 30:.3g} GiB is available on {device}: "
                         f"use fewer chains or draws")


def available_memory(device: torch.device) -> int | None:
    """Bytes free for new tensors on ``device``: CUDA's free memory with what torch's caching
    allocator holds unused, or on the host what the operating system and the process's memory
    cgroups still allow (:func:`~sltlab.estimators.host_memory.host_available_memory`); None
    where neither can be read."""
    if device.type == "cuda":   # what the caching allocator holds unused is free to this process too
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return torch.cuda.mem_get_info(device)[0] + cached
    return host_available_memory()
