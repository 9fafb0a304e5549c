"""One of torch's loss modules with ``reduction='none'`` as a per-row loss, and the check of the
shapes it compares, made once on the first rows before any sampling.

Torch's losses that compare outputs and targets element by element (``ELEMENTWISE``) broadcast
two different shapes with no more than a ``UserWarning``: ``nn.MSELoss(reduction='none')`` on
outputs [b, 1] against targets [b] gives [b, b], every row's output against every row's target,
whose sum over a row is no loss of that row alone; on outputs [b, 1] against targets [b, 3] it
gives [b, 3], a likelihood of one output fitted to three targets. The first is refused by the
check that a row's loss is its own, which blamed the module; the second ran to a number
(``nn.Linear(2, 1)`` on 500 rows of a linear regression: λ̂ = 1.50, torch's warning the only
sign). Outputs and targets of different shapes are a one-line ``ValueError`` naming both.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import Tensor, nn

from sltlab.estimators.sample_losses import row_shape

# torch's loss modules whose targets have the outputs' shape, compared element by element
ELEMENTWISE = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss, nn.BCELoss, nn.BCEWithLogitsLoss, nn.KLDivLoss,
               nn.PoissonNLLLoss, nn.SoftMarginLoss, nn.MultiLabelSoftMarginLoss, nn.MultiLabelMarginLoss,
               nn.HingeEmbeddingLoss)


class SummedPerRow:
    """A torch loss module with reduction='none' as a per-row loss: its values summed over each
    row's other dimensions (outputs, sequence positions). Its floating buffers (class weights)
    follow the outputs' dtype and device, on a copy of it made once for each."""

    def __init__(self, loss: nn.Module):
        self.loss = loss
        self.copies: dict = {}

    def __call__(self, outputs: Tensor, targets: Tensor) -> Tensor:
        key = (outputs.dtype, outputs.device)
        if key not in self.copies:
            self.copies[key] = copy.deepcopy(self.loss).to(device=outputs.device, dtype=outputs.dtype)
        values = self.copies[key](outputs, targets)
        return values.flatten(1).sum(1) if values.dim() > 1 else values

    def refuse_mismatch(self, outputs: Tensor | None, head: Sequence[Tensor], targets: int | str,
                        fields: Sequence[str] | None) -> None:
        """A one-line ``ValueError`` when the loss compares element by element (``ELEMENTWISE``) and
        the module's ``outputs`` on the first rows ``head`` differ in shape from the ``targets``
        field there (``fields`` naming the columns of dict batches), whether torch would broadcast
        them or fail; quiet for the other losses, whose targets take shapes of their own (class
        indices), and where the module gives no tensor."""
        target = head[targets if fields is None else list(fields).index(targets)]
        if not isinstance(self.loss, ELEMENTWISE) or not isinstance(outputs, Tensor) or outputs.shape == target.shape:
            return
        try:
            broadcast = torch.broadcast_shapes(outputs.shape, target.shape)
            torch_would = (f"torch would broadcast them to {list(broadcast)} on the first {len(outputs)} rows, "
                           "with only a warning, and λ̂ would be of another loss")
        except RuntimeError:
            torch_would = "torch cannot compare them"
        raise ValueError(f"loss=nn.{type(self.loss).__name__}(reduction='none') compares the module's outputs of shape "
                         f"{row_shape(outputs.shape)} with targets of shape {row_shape(target.shape)} (b rows) element "
                         f"by element, so they must have the same shape ({torch_would}): give targets of the outputs' "
                         "shape (y[:, None] for outputs [b, 1]), or outputs of the targets'")
