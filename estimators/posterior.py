"""The localised tempered posterior that every sampler targets.

p(w) ∝ exp{−nβ·L_n(w) − (γ/2)‖w − w*‖²}  (Lau, Furman, Wang, Murfet & Wei 2023, eq. 7).
``loss`` is any batched per-sample loss: ``loss(position [C, d], batch)`` returns [C, b]; the
posterior knows nothing else of the model. A loss that also offers
``loss.mean_loss_and_gradient(position, batch) -> (L_b [C], ∇L_b [C, d])`` (the chain rule
written out, as the deep linear network's losses do) has its gradient taken from there instead
of from autograd, which on small models costs more than the arithmetic; the gradient must be a
fresh tensor, which :func:`potential` scales in place.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, NamedTuple, Sequence

import torch
from torch import Tensor

from sltlab.estimators.streamed import StreamedRows

Loss = Callable[[Tensor, Any], Tensor]


class LocalPosterior(NamedTuple):
    """Everything a kernel needs: the loss, nβ, the localisation γ and its centre w*. The centre
    is one [d] for every chain, or one per chain, [C, d]; nβ one number, or one per chain, [C]
    (the posteriors of C settings run as one batch; every formula acts row by row, so each chain
    sees only its own)."""

    loss: Loss
    nbeta: float | Tensor
    localization: float
    center: Tensor
    metric: Any = None   # a constant dense metric MALA samples with (sltlab.estimators.metric.Metric), or None


def chain_centers(center: Tensor, chains: int) -> Tensor:
    """The centre of every chain, [C, d], from a shared [d] centre or per-chain [C, d] ones."""
    if center.dim() == 1:
        return center.unsqueeze(0).expand(chains, -1)
    if center.dim() != 2 or center.shape[0] != chains:
        raise ValueError(f"a centre of shape {tuple(center.shape)} is neither [d] nor one per chain [{chains}, d]")
    return center


class Potential(NamedTuple):
    """The potential U(w) = nβ·L_b(w) + (γ/2)‖w − w*‖² at a batch, and what it was built from."""

    mean_loss: Tensor         # L_b(w), [C]
    energy: Tensor | None     # U(w), [C]; only computed when asked for (MALA)
    gradient: Tensor          # ∇U(w), [C, d]


FULL_PASS_ROWS = 4096   # rows evaluated at once, per chain, in a pass over more rows than this


def row_chunks(batch: Any, rows: int | None = None) -> Sequence:
    """A batch of tensors [C or 1, b, ...] as consecutive slices of at most ``rows`` rows
    (default ``FULL_PASS_ROWS``) along the batch dimension; streamed rows as the slices they
    are read in; anything else (no data, a dict, that many rows or fewer) whole."""
    rows = rows or FULL_PASS_ROWS
    if isinstance(batch, StreamedRows):
        return batch.slices(rows)
    if not (isinstance(batch, tuple) and batch and all(isinstance(t, Tensor) and t.dim() >= 2 for t in batch)):
        return [batch]
    size = batch[0].shape[1]
    if size <= rows or any(t.shape[1] != size for t in batch):
        return [batch]
    return [tuple(t[:, start:start + rows] for t in batch) for start in range(0, size, rows)]


def batch_rows(batch: Any) -> int:
    """The rows of a batch of tensors [C or 1, b, ...] (b), or of streamed rows (n)."""
    return len(batch) if isinstance(batch, StreamedRows) else batch[0].shape[1]


def mean_loss(loss: Loss, position: Tensor, batch: Any) -> Tensor:
    """Mean per-sample loss over the batch, [C], in slices of rows (:func:`row_chunks`): a
    per-sample loss does not depend on the other rows, so only rounding differs."""
    chunks = row_chunks(batch)
    if len(chunks) == 1:
        return loss(position, chunks[0]).mean(-1)
    return sum(loss(position, chunk).sum(-1) for chunk in chunks) / batch_rows(batch)


def no_gradient(listed: str = "") -> str:
    """Why a loss without a gradient in the sampled parameters (``listed``: them, named) cannot be sampled."""
    return (f"the loss carries no gradient in the sampled parameters{listed}: they do not reach it, or a .detach(), "
            "torch.no_grad() or .numpy() in the module's forward or the loss cuts the graph")


def mean_loss_and_gradient(loss: Loss, position: Tensor, batch: Any) -> tuple[Tensor, Tensor]:
    """:func:`mean_loss` and its gradient in ``position`` [C, d], one slice of rows at a time
    (:func:`row_chunks`), so a full-data pass never holds more than ``FULL_PASS_ROWS`` rows: from
    the loss's own ``mean_loss_and_gradient`` where it offers one, otherwise by autograd."""
    chunks = row_chunks(batch)
    closed_form = getattr(loss, "mean_loss_and_gradient", None)
    total, gradient = None, None
    with torch.enable_grad():
        for chunk in chunks:
            if closed_form is not None:
                part, piece = closed_form(position.detach(), chunk)
            else:
                leaf = position.detach().requires_grad_(True)
                part = loss(leaf, chunk).mean(-1)
                if not part.requires_grad:
                    raise ValueError(no_gradient())
                (piece,) = torch.autograd.grad(part.sum(), leaf)
                part = part.detach()
            if len(chunks) > 1:   # each slice's mean, weighted by its share of the rows
                share = chunk[0].shape[1] / batch_rows(batch)
                part, piece = part * share, piece * share
            total = part if total is None else total.add_(part)
            gradient = piece if gradient is None else gradient.add_(piece)
    return total, gradient


@functools.lru_cache(maxsize=256)
def constant(value: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``value`` as a 0-dimensional tensor of ``dtype`` on ``device``, made once. Multiplying a
    tensor by a Python number converts the number to a tensor at every call, which on small
    models costs more than the multiplication (about 4 µs of 7 on [8, 300] on this CPU)."""
    return torch.tensor(value, dtype=dtype, device=device)


def potential(posterior: LocalPosterior, position: Tensor, batch: Any, *, energy: bool = False) -> Potential:
    """∇U (and U when ``energy``) for every chain. Chains are independent, so the gradient of
    the sum of the chains' potentials is each chain's own gradient. The arithmetic on [C, d]
    tensors is done in place on the fresh gradient: on large models each extra
    temporary costs a page-faulted allocation as large as the parameters."""
    batch_loss, gradient = mean_loss_and_gradient(posterior.loss, position, batch)
    gamma = posterior.localization
    nbeta = posterior.nbeta
    per_chain = isinstance(nbeta, Tensor)
    gradient = gradient.mul_(nbeta.unsqueeze(-1) if per_chain else constant(nbeta, gradient.dtype, gradient.device))
    value = None
    if energy:
        offset = position - posterior.center
        squared_distance = torch.linalg.vector_norm(offset, dim=-1).square_()
        half_gamma = constant(0.5 * gamma, squared_distance.dtype, squared_distance.device)
        squared_distance.mul_(half_gamma)   # (γ/2)‖w − w*‖² + nβ·L
        value = (squared_distance.add_(batch_loss * nbeta) if per_chain
                 else squared_distance.add_(batch_loss, alpha=nbeta))
        if gamma:
            gradient.add_(offset, alpha=gamma)
    elif gamma:
        gradient.add_(position, alpha=gamma).sub_(posterior.center, alpha=gamma)
    return Potential(batch_loss, value, gradient)


class Sampler(NamedTuple):
    """A kernel as pure functions over batched chains (as in BlackJAX):

    ``init(position, batch) -> state``, ``noise(state, generator) -> noise`` (every random
    number a step needs, drawn outside the kernel) and ``step(state, batch, noise) -> (state,
    info)``. ``info["loss"]`` is L_b at the position the step started from; a state's first
    field is always ``position`` [C, d] and every field has the chain dimension first.
    """

    name: str
    init: Callable[[Tensor, Any], NamedTuple]
    noise: Callable[[NamedTuple, torch.Generator], Any]
    step: Callable[[NamedTuple, Any, Any], tuple[NamedTuple, dict[str, Tensor]]]


def common_noise(sampler: Sampler, groups: int) -> Sampler:
    """``sampler`` with each of ``groups`` blocks of consecutive chains driven by the same random
    numbers (common random numbers: Glasserman & Yao 1992, IEEE Trans. Autom. Control 37(6)), so
    that differences between the blocks' estimates carry less noise; every block draws what it
    would draw alone. Minibatch rows, drawn per chain by the driver, are not shared."""
    if groups == 1:
        return sampler

    def noise(state: NamedTuple, generator: torch.Generator) -> Any:
        rows = len(state.position) // groups
        first = type(state)(*(field[:rows] if isinstance(field, Tensor) and field.dim() > 0 else field
                              for field in state))
        return _tiled(sampler.noise(first, generator), groups)

    return sampler._replace(noise=noise)


def _tiled(noise: Any, groups: int) -> Any:
    """Per-chain noise repeated for ``groups`` blocks; numbers shared by all chains stay as they are."""
    if isinstance(noise, Tensor) and noise.dim() > 0:
        return noise.repeat(groups, *[1] * (noise.dim() - 1))
    return tuple(_tiled(part, groups) for part in noise) if isinstance(noise, tuple) else noise

def compiled(sampler: Sampler) -> Sampler:
    """``sampler`` with its step run through ``torch.compile`` (static shapes): the step is a pure
    function of tensors, so the many small operations of one step are fused into few kernels.
    Compiling takes seconds to a minute on the first call; on a CPU it paid off on long runs of
    deep linear networks (MALA 1.4–2× fewer µs per step at d = 300 to 10⁴, ``sltlab bench
    --only overhead --compile``). The numbers agree with the eager step up to rounding, so a
    Metropolis decision at the margin can differ and traces are equal in law, not bit for bit.
    Earlier compilations are forgotten first: every kernel's step shares one code object, and
    past torch's limit of recompilations per code object it would run eager without a word."""
    with warnings.catch_warnings():   # torch's compiler warns at import of a deprecation inside torch itself
        warnings.simplefilter("ignore", DeprecationWarning)
        import torch._inductor.compile_fx  # noqa: F401
    torch._dynamo.reset()
    step = torch.compile(sampler.step, dynamic=False)

    def quiet_step(state, batch, noise):
        with warnings.catch_warnings():   # tracing :func:`constant` through its cache is exact: it is pure
            warnings.filterwarnings("ignore", "Dynamo detected a call to a `functools.lru_cache`", UserWarning)
            return step(state, batch, noise)

    return sampler._replace(step=quiet_step)


def gaussian_noise(state: NamedTuple, generator: torch.Generator) -> Tensor:
    """Standard normal noise shaped like the chains' positions."""
    position = state.position
    return torch.randn(position.shape, generator=generator, dtype=position.dtype, device=position.device)


def metropolis_noise(state: NamedTuple, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """A Metropolis-adjusted kernel's randomness: :func:`gaussian_noise` for the proposal and
    one uniform per chain for the accept/reject."""
    gaussian, position = gaussian_noise(state, generator), state.position   # drawn first, as before
    return gaussian, torch.rand(position.shape[:1], generator=generator, dtype=position.dtype, device=position.device)


def check_step_size(step_size: float) -> float:
    step_size = float(step_size)
    if not step_size > 0 or step_size == float("inf"):
        raise ValueError(f"step size must be a positive number, got {step_size}")
    return step_size


def check_step_sizes(step_sizes: Tensor) -> Tensor:
    """One step size per chain, [C], every one positive and finite."""
    if step_sizes.dim() != 1 or not bool(((step_sizes > 0) & torch.isfinite(step_sizes)).all()):
        raise ValueError(f"per-chain step sizes must be a vector of positive numbers, got {step_sizes}")
    return step_sizes
