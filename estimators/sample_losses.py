"""Per-sample losses of a module's outputs against its targets: the negative log-likelihoods
:func:`sltlab.estimators.estimate_llc` names (``"mse"``/``"gaussian_nll"``, ``"cross_entropy"``,
``"binary_cross_entropy"``),
and the checks of their targets made once, on the data, before any sampling."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

SampleLoss = Callable[[Tensor, Any], Tensor]   # (output [b, ...], target [b, ...] or the batch) -> [b]


def gaussian_nll(output: Tensor, target: Tensor) -> Tensor:
    """½‖y − f(x)‖² + (k/2)·log 2π per sample: unit-variance Gaussian regression. Outputs and
    targets must have one shape: outputs [b, 1] against targets [b] would broadcast to [b, b]."""
    _check_tensor_output(output, "mse")
    if output.shape != target.shape:
        halves = output.dim() == target.dim() and output.shape[-1] == 2 * target.shape[-1]
        raise ValueError(f"loss 'mse' (or 'gaussian_nll', of unit variance) compares outputs of shape "
                         f"{row_shape(output.shape)} with targets of shape {row_shape(target.shape)} (b rows): they "
                         "must have the same shape (e.g. targets y[:, None] for outputs [b, 1])" + (
                             "; outputs of a mean and a variance take a callable loss, with "
                             "F.gaussian_nll_loss(mean, y, var, reduction='none') summed over each row" if halves
                             else ""))
    target = target if target.is_floating_point() else target.to(output.dtype)   # labels or counts, noted as such
    residual = (target - output).reshape(len(output), -1)
    return 0.5 * residual.square().sum(-1) + 0.5 * residual.shape[-1] * math.log(2 * math.pi)


def cross_entropy(output: Tensor, target: Tensor) -> Tensor:
    """−log softmax(f(x))_y per sample: categorical likelihood, of class indices (integer
    targets with one dimension fewer than the outputs) or class probabilities (floating-point
    targets shaped like the outputs), the classes along dimension 1 as torch takes them. Outputs
    of a sequence or an image, [b, C, d₁, …], give a loss per position, summed over the positions:
    −log p(y | x) of a sample whose positions the model predicts independently given x, as
    :func:`gaussian_nll` sums over the outputs; a position whose index is −100 (torch's
    ``ignore_index``, padding) adds nothing (:func:`check_class_indices`)."""
    _check_tensor_output(output, "cross_entropy")
    if output.dim() > 1 and output.shape[1] == 1:
        raise ValueError(f"loss 'cross_entropy' takes one logit per class along dimension 1, and the outputs of shape "
                         f"{row_shape(output.shape)} give one class, whose cross-entropy is 0 at every weight; a "
                         "binary classifier of one logit takes loss='binary_cross_entropy'")
    index_shape = output.shape[:1] + output.shape[2:]
    integers = not (target.is_floating_point() or target.is_complex() or target.dtype == torch.bool)
    if integers and target.shape == index_shape:
        losses = nn.functional.cross_entropy(output, target.long(), reduction="none")   # torch takes int64 indices
    elif target.is_floating_point() and target.shape == output.shape:
        losses = nn.functional.cross_entropy(output, target, reduction="none")
    else:
        kind = "floating-point" if target.is_floating_point() else str(target.dtype).split(".")[-1]
        raise ValueError(f"loss 'cross_entropy' takes class indices (integers) of shape {row_shape(index_shape)} or "
                         f"class probabilities (floats) of shape {row_shape(output.shape)} for outputs of shape "
                         f"{row_shape(output.shape)} (b rows, the classes along dimension 1: a sequence's outputs "
                         f"[b, T, C] go in as [b, C, T]); got {kind} targets of shape {row_shape(target.shape)}")
    return _per_sample(losses)


def binary_cross_entropy(output: Tensor, target: Tensor) -> Tensor:
    """−[y·log σ(f) + (1 − y)·log(1 − σ(f))] per sample, summed over the outputs: the Bernoulli
    likelihood of one logit per output (a binary classifier's [b] or [b, 1], or k independent
    labels [b, k]) against targets of the same shape, labels 0/1 (integers, booleans or floats)
    or probabilities in [0, 1] (:func:`check_binary_targets`)."""
    _check_tensor_output(output, "binary_cross_entropy")
    if output.shape != target.shape:
        raise ValueError(f"loss 'binary_cross_entropy' compares logits of shape {row_shape(output.shape)} with "
                         f"targets of shape {row_shape(target.shape)} (b rows): they must have the same shape (e.g. "
                         "targets y[:, None] for logits [b, 1])")
    losses = nn.functional.binary_cross_entropy_with_logits(output, target.to(output.dtype), reduction="none")
    return _per_sample(losses)


def sigmoid_note(output: Tensor | None) -> tuple[str, ...]:
    """A note when every binary logit on the first rows lies in [0, 1], as the probabilities of a
    module ending in a sigmoid do: the loss would apply a second sigmoid. Only a note, since the
    logits of a classifier that leans one way everywhere can lie there too."""
    if not isinstance(output, Tensor) or not output.is_floating_point() or output.numel() == 0:
        return ()
    if not bool(((output >= 0) & (output <= 1)).all()):
        return ()
    return (f"the module's outputs on the first {len(output)} rows all lie in [0, 1]: loss 'binary_cross_entropy' "
            "takes logits, so if they are probabilities (a final sigmoid) it applies a second sigmoid and λ̂ is of "
            "another likelihood; leave the sigmoid out of the module",)


def refuse_final_sigmoid(module: nn.Module) -> None:
    """Refuse a module that certainly ends in a sigmoid, an ``nn.Sequential`` whose last layer is
    ``nn.Sigmoid``, for loss 'binary_cross_entropy', which takes logits: it would score the sigmoid
    of probabilities, another likelihood (a linear classifier of 4 inputs so squashed, at its
    empirical minimum on 300 rows, read λ̂ = 3·10⁻⁵ with a note, against 1.67 from its logits).
    Other modules whose outputs all lie in [0, 1] get :func:`sigmoid_note`."""
    if isinstance(module, nn.Sequential) and len(module) and isinstance(module[-1], nn.Sigmoid):
        raise ValueError("loss 'binary_cross_entropy' takes logits, and the module ends in nn.Sigmoid, to whose "
                         "probabilities it would apply a second sigmoid; leave the sigmoid out of the module "
                         "(module[:-1]), or give a callable loss")


def class_axis_note(output: Tensor | None) -> tuple[str, ...]:
    """A note when the outputs of a sequence ([b, C, …, d]) have as many classes along dimension 1
    as positions along the last: torch's [b, C, T] and a language model's [b, T, C] are then the
    same shape, and loss 'cross_entropy' reads the classes along dimension 1 either way."""
    if not isinstance(output, Tensor) or output.dim() < 3 or output.shape[1] != output.shape[-1]:
        return ()
    return (f"the outputs' shape {row_shape(output.shape)} has as many entries along dimension 1 as along the last: "
            f"loss 'cross_entropy' reads the {output.shape[1]} classes along dimension 1, as torch does; if the "
            "module gives a sequence's outputs as [b, T, C] (a language model's), give them as [b, C, T] "
            "(outputs.transpose(1, 2)), or λ̂ is of another likelihood",)


def check_binary_targets(target: Tensor) -> None:
    """Refuse binary cross-entropy targets outside [0, 1]: with y > 1 or y < 0 the loss is
    unbounded below in the logit, so it has no minimum and λ̂ no meaning (labels −1/+1 are the
    usual slip)."""
    if target.numel() == 0 or target.is_complex():
        return
    values = target.double()
    if bool((values < 0).any()) or bool((values > 1).any()):
        raise ValueError(f"loss 'binary_cross_entropy' takes targets in [0, 1] (labels 0/1 or probabilities); got "
                         f"values from {float(values.min()):.3g} to {float(values.max()):.3g} (labels −1/+1 go in as "
                         "(y + 1)/2)")


def _per_sample(losses: Tensor) -> Tensor:
    """Losses [b, …] summed over each sample's positions or outputs, [b]; one per sample as they
    are (the sampling loop's common case) without a further kernel."""
    return losses if losses.dim() == 1 else losses.flatten(1).sum(1)


def _probabilities(values: Tensor) -> bool:
    """Whether every row of ``values`` [b, k, …] is a distribution over dimension 1: non-negative
    and summing to 1 within 1e-4 (so no entry above 1 either)."""
    return not bool((values < 0).any()) and bool(((values.double().sum(1) - 1).abs() <= 1e-4).all())


IGNORE_INDEX = -100   # torch's cross_entropy leaves target positions holding it out of the loss


def check_class_indices(target: Tensor, ignore_index: int = IGNORE_INDEX,
                        loss: str = "loss 'cross_entropy'") -> tuple[str, ...]:
    """Refuse class indices that would leave rows out of L_n while they count in n, or fail deep
    inside torch's kernel. A row whose class index is the loss's ``ignore_index`` (−100, or the
    one an ``nn.CrossEntropyLoss`` was given) would have no loss at all, and other negative indices
    fail in the kernel. In sequence targets [b, T…] the ignore index marks positions to skip
    (padding), as language-model data use it: a row keeps the loss of its other positions, and a
    note says how many were skipped; a row that holds it at every position is refused.
    Floating-point targets pass."""
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool or target.numel() == 0:
        return ()
    ignored = target == ignore_index
    skipped = ignored if target.dim() > 1 else torch.zeros_like(ignored)
    if ignore_index >= 0 and target.dim() == 1 and bool(ignored.any()):
        raise ValueError(f"{loss}: {int(ignored.sum())} of {len(target)} rows have class {ignore_index}, the loss's "
                         "ignore_index, so they would have no loss and still count in n: leave them out of the data, "
                         "or give an ignore_index no class has")
    negative = (target < 0) & ~skipped
    if bool(negative.any()):
        raise ValueError(f"{loss} takes class indices 0 … C − 1; the targets hold "
                         f"{int(target[negative].min())} ({int(negative.sum())} negative of {target.numel()})"
                         + (f", and {ignore_index} only in sequence targets, where it skips a position"
                            if target.dim() == 1 and bool(ignored.any()) else ""))
    if not bool(skipped.any()):
        return ()
    empty = int(skipped.reshape(len(target), -1).all(1).sum())
    if empty:
        raise ValueError(f"{loss}: {empty} of {len(target)} rows hold {ignore_index} (the loss's ignore_index) at "
                         "every target position, so they would have no loss and still count in n: leave them out "
                         "of the data")
    return (f"{int(skipped.sum())} of {target.numel()} target positions hold {ignore_index}, the loss's ignore_index "
            "(padding): each row's loss sums over its other positions",)


def check_logits(output: Tensor | None) -> None:
    """Refuse cross-entropy outputs that are probabilities already, every row in [0, 1] and
    summing to 1 over the classes (dimension 1), as a module ending in a softmax gives: the loss
    applies its own softmax to the logits it takes, so it would score the softmax of probabilities,
    not the categorical likelihood of the module's own probabilities, and λ̂ would be that other
    likelihood's. Logits that add to 1 on every row by chance do not occur; log-probabilities (a
    final LogSoftmax) pass, since log softmax leaves them as they are."""
    if not isinstance(output, Tensor) or not output.is_floating_point() or output.dim() < 2 or output.shape[1] < 2:
        return
    if _probabilities(output):
        raise ValueError(f"loss 'cross_entropy' takes logits, and the module's outputs on the first {len(output)} rows "
                         "are probabilities (in [0, 1], each row summing to 1 over dimension 1: a final softmax), to "
                         "which it would apply a second softmax; leave the softmax out of the module, end it with "
                         "LogSoftmax, or give a callable loss")


def class_targets_note(target: Tensor, loss: str) -> tuple[str, ...]:
    """A note when Gaussian-regression targets look like a classifier's, one-hot labels or class
    probabilities (at least two columns, every row non-negative and summing to 1): the loss then
    fits them as real numbers, and λ̂ is that regression's, not the classifier's likelihood's.
    Integer or boolean targets (class indices or labels, as often as counts) get a note too."""
    if target.numel() and not (target.is_floating_point() or target.is_complex()):
        kinds = len(target.unique())
        return (f"the targets are {str(target.dtype)[6:]} ({kinds} distinct value{'s' * (kinds != 1)}): loss {loss!r} "
                "fits them as real numbers, so λ̂ is of that Gaussian likelihood; if they are class indices or "
                "labels, a classifier's needs loss='cross_entropy' (or 'binary_cross_entropy' for 0/1 labels)",)
    if not target.is_floating_point() or target.dim() != 2 or target.shape[1] < 2 or target.numel() == 0:
        return ()
    if not _probabilities(target):
        return ()
    return (f"the targets look like a classifier's (every row non-negative and summing to 1): loss {loss!r} fits "
            "them as regression targets, so λ̂ is of that Gaussian likelihood; a classifier's needs "
            "loss='cross_entropy' (logits against class indices or probabilities)",)


def check_class_probabilities(target: Tensor) -> None:
    """Refuse floating-point cross-entropy targets that are not class probabilities, each row
    non-negative and summing to 1 over the classes (dimension 1): with a negative entry
    −Σ_k y_k·log softmax(f)_k is unbounded below in f, so the loss has no minimum and λ̂ no
    meaning; rows of another sum rescale the likelihood, and so nβ, row by row. Integer targets
    (class indices) pass."""
    if not target.is_floating_point() or target.dim() < 2 or target.numel() == 0:
        return
    if not _probabilities(target):
        worst = float((target.double().sum(1) - 1).abs().max())
        raise ValueError(f"loss 'cross_entropy' takes floating-point targets as class probabilities (non-negative, "
                         f"each row summing to 1 over dimension 1); got entries down to {float(target.min()):.3g} and "
                         f"row sums off 1 by up to {worst:.3g} (for class indices give integer targets)")


def row_shape(shape: Sequence[int]) -> str:
    """A per-sample shape with its rows as b: [b, 1]."""
    return "[" + ", ".join(["b", *map(str, shape[1:])]) + "]"


def _check_tensor_output(output: Any, loss: str) -> None:
    """A one-line ``ValueError`` for outputs that are no tensor, naming where a callable loss would
    find the tensor: a dict's (or a model-output object's) keys, a tuple's first entry."""
    if not isinstance(output, Tensor):
        keys = list(output.keys()) if hasattr(output, "keys") else []
        where = ""
        if keys:
            where = f", which can read outputs[{keys[0]!r}]"
            if len(keys) > 1:
                where += f" (the keys: {', '.join(map(str, keys))})"
        elif isinstance(output, (tuple, list)) and output:
            where = ", which can read outputs[0]"
        raise ValueError(f"the module returned a {type(output).__name__}, not a tensor: loss {loss!r} needs the "
                         f"outputs as one tensor; pass a callable loss (outputs, batch) -> per-sample losses instead"
                         f"{where}")


LOSSES = {"mse": gaussian_nll, "gaussian_nll": gaussian_nll, "cross_entropy": cross_entropy,   # by their names
          "binary_cross_entropy": binary_cross_entropy}
