"""Contracts an estimate checks once, at its boundary, so that bad input is a one-line
``ValueError`` naming what is wrong rather than a confident wrong number."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sltlab.estimators.posterior import batch_rows, row_chunks
from sltlab.estimators.streamed import StreamedRows


def check_data(data: tuple[Tensor, ...] | StreamedRows) -> None:
    """Every data tensor has the same number of rows, and floating data are finite (streamed
    rows are checked as they are read)."""
    if isinstance(data, StreamedRows):
        return
    rows = {len(t) for t in data}
    if len(rows) > 1:
        raise ValueError(f"the data tensors have different numbers of rows: {[len(t) for t in data]}")
    for index, tensor in enumerate(data):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"data tensor {index} has values that are not finite (NaN or inf)")


def check_loss_shape(loss, position: Tensor, full: Any) -> None:
    """``loss`` must give one loss per chain and sample: [C, b] for C = 2 chains at ``position``
    on the first few rows of the data ([2, 1] for a population loss without data). A loss that
    averages over the samples, or over the chains, is refused."""
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
        else:
            remedy = "average over samples inside the estimate, not in the loss"
        raise ValueError(f"the loss must return per-sample losses of shape [C, b] (here [2, {rows}] for 2 chains on "
                         f"{rows} rows), got {shape}: {remedy}")
