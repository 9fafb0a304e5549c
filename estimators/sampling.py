"""The loop that drives a sampler over batched chains and records (chain, draw) traces.

Every recorded draw stores L_b(w) and L_b(w*) on the same minibatch, so the LLC can be
estimated from paired differences (a separately estimated L_n(w*) shifts λ̂ by tens of
percent while the spread across chains hides it). Estimators are pure
functions of the returned :class:`Trace`.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from typing import Any, NamedTuple

import numpy as np
import torch
from scipy.special import chdtri
from torch import Tensor

from sltlab.estimators.notices import PROJECT_AFTER_SECONDS, LongRunWarning, caller_stacklevel, long_run_left
from sltlab.estimators.row_losses import RunningVariance, center_row_losses, full_data_losses
from sltlab.estimators.posterior import FULL_PASS_ROWS, LocalPosterior, Sampler, chain_centers, mean_loss
from sltlab.estimators.streamed import StreamedRows, row_count


class Batches(NamedTuple):
    """Data of n rows, as tensors or as :class:`StreamedRows` read on demand, drawn as
    per-chain minibatches of ``batch_size`` rows (with replacement). No data (a population
    potential) gives batch ``None``."""

    data: tuple[Tensor, ...] | StreamedRows
    batch_size: int

    @property
    def n(self) -> int:
        return row_count(self.data)

    @property
    def streamed(self) -> bool:
        return isinstance(self.data, StreamedRows)

    @property
    def is_full(self) -> bool:
        return not self.n or self.batch_size >= self.n

    def full(self) -> Any:
        """The whole data set, with a leading 1 that broadcasts over chains (streamed rows as
        they are: every full-data pass reads them slice by slice, :func:`row_chunks`)."""
        if self.streamed:
            return self.data
        return tuple(t.unsqueeze(0) for t in self.data) if self.data else None

    def chunks(self, rows: int | None = None):
        """The whole data set in consecutive slices of at most ``rows`` rows (default
        ``FULL_PASS_ROWS``), each with the leading 1 of :meth:`full`."""
        rows = rows or FULL_PASS_ROWS
        if self.streamed:
            yield from self.data.slices(rows)
            return
        for start in range(0, self.n, rows):
            yield tuple(t[start:start + rows].unsqueeze(0) for t in self.data)

    def subsample(self, rows: int, generator: torch.Generator) -> Any:
        """``rows`` distinct rows drawn at random, with the leading 1 of :meth:`full`; the whole
        data set (nothing drawn) when it has no more rows than that."""
        if self.n <= rows:
            return self.full()
        chosen = torch.randperm(self.n, generator=generator, device=generator.device)[:rows]
        return tuple(t.unsqueeze(0) for t in self._rows(chosen))

    def draw(self, chains: int, generator: torch.Generator) -> Any:
        return self.at(self.draw_indices(chains, generator))

    def draw_indices(self, chains: int, generator: torch.Generator) -> Tensor | None:
        """The rows of each chain's minibatch, [chains, batch_size]; None on the full data."""
        if self.is_full:
            return None
        return torch.randint(self.n, (chains, self.batch_size), generator=generator, device=generator.device)

    def at(self, indices: Tensor | None) -> Any:
        """The minibatches of rows ``indices`` [chains, b]; the full data for None."""
        if indices is None:
            return self.full()
        chains, size = indices.shape
        return tuple(t.reshape(chains, size, *t.shape[1:]) for t in self._rows(indices.reshape(-1)))

    def _rows(self, indices: Tensor) -> tuple[Tensor, ...]:
        if self.streamed:
            return self.data.read(indices)
        # index_select gathers the same rows as t[rows] in half the time or less on the CPU
        return tuple(t.index_select(0, indices) for t in self.data)


class Trace(NamedTuple):
    """What a run recorded. ``fields`` maps a name to a [C, draws] array: ``loss`` (L_b(w)),
    ``center_loss`` (L_b(w*) on the same batch), ``distance`` (‖w − w*‖ at the same w) and
    whatever the sampler reports.
    ``functional_variance`` is Σ_i Var_w[ℓ_i(w)] per chain over the draws at which the full
    data were evaluated, or None when not requested."""

    fields: dict[str, np.ndarray]
    diverged: np.ndarray               # [C] bool
    divergence_step: np.ndarray        # [C] step at which each chain diverged, −1 if never
    functional_variance: np.ndarray | None
    steps: int
    seconds: float
    final_state: Any = None            # the sampler state after the last step
    cooled: np.ndarray | None = None   # [C] bool: the chains MALA's warm-up cooled from nβ/anneal, where only some did


def run_chains(sampler: Sampler, posterior: LocalPosterior, batches: Batches, *, chains: int,
               draws: int, burnin: int = 0, thin: int = 1, generator: torch.Generator,
               full_data_every: int | None = None, initial_state: Any = None, progress: bool = False) -> Trace:
    """Run ``chains`` chains from the centre (or from ``initial_state``, e.g. the end of an
    earlier run) for ``burnin + draws·thin`` steps. With per-chain centres ([C, d]) each chain
    starts at, records L_b(w*) at, is measured from and restarts at its own centre.

    A chain whose loss or position stops being finite, or that at a recorded draw is farther
    from the centre than the localising prior reaches (:func:`prior_reach`), is marked diverged
    and restarted at the centre, so that its state stays finite; estimators drop it (and, from
    the recorded draws, chains that left the basin or were stuck:
    :func:`sltlab.estimators.llc.llc_from_trace`).
    With ``full_data_every = k`` every k-th draw also evaluates all n per-sample losses, in
    chunks of ``FULL_PASS_ROWS`` rows (:func:`full_data_losses`), to accumulate the functional
    variance (Welford's algorithm, per chain and sample).
    """
    if chains < 1 or draws < 1 or burnin < 0 or thin < 1:
        raise ValueError(f"need chains ≥ 1, draws ≥ 1, burnin ≥ 0 and thin ≥ 1, "
                         f"got {chains}, {draws}, {burnin} and {thin}")
    # A shared centre stays one row [1, d], so that L_b(w*) on the full data is evaluated once.
    center = posterior.center.unsqueeze(0) if posterior.center.dim() == 1 else chain_centers(posterior.center, chains)
    start = center.expand(chains, -1).clone()
    fresh = sampler.init(start, batches.full())
    state = fresh if initial_state is None else initial_state
    steps = burnin + draws * thin
    records: dict[str, Tensor] = {}
    diverged = torch.zeros(chains, dtype=torch.bool, device=start.device)
    divergence_step = torch.full((chains,), -1, dtype=torch.long, device=start.device)
    variance = RunningVariance() if full_data_every else None
    reach = math.sqrt(prior_reach(posterior.localization, center.shape[-1]))   # as a distance
    # On the full data L_n(w*) is the same at every draw: evaluate it once, not in the loop.
    fixed_center_loss = mean_loss(posterior.loss, center, batches.full()) if batches.is_full else None
    table = center_row_losses(posterior.loss, center, batches, chains=chains, draws=draws)
    asynchronous = not host_reads_are_free(start.device)
    bar = progress_bar(steps, sampler.name, enabled=progress)
    clock, projected = time.perf_counter(), False
    for step_index in range(steps):
        indices = batches.draw_indices(chains, generator)
        batch = batches.at(indices)
        before = state.position   # where the step reads L_b(w): no sampler writes over its input
        state, info = sampler.step(state, batch, sampler.noise(state, generator))
        # A sum is non-finite exactly when some term is (or it overflows): one test for the loss
        # and every coordinate.
        sums = state.position.sum(-1).add_(info["loss"])
        far = None
        draw, recorded = divmod(step_index - burnin, thin)
        if step_index >= burnin and recorded == 0:
            center_loss = (fixed_center_loss if batches.is_full else table.mean_at(indices) if table is not None
                           else mean_loss(posterior.loss, center, batch))
            # ‖w − w*‖ where the step read L_b(w), and where it moved the chain; the norm's own kernel:
            # squaring and summing rows of 10⁶ took 2–10× longer
            info = dict(info, center_loss=center_loss.expand(chains),
                        distance=torch.linalg.vector_norm(before - center, dim=-1))
            far = torch.linalg.vector_norm(state.position - center, dim=-1) > reach
            for name, values in info.items():
                records.setdefault(name, torch.empty(chains, draws, dtype=values.dtype, device=values.device))
                records[name][:, draw] = values
            if variance is not None and draw % full_data_every == 0:
                with torch.no_grad():
                    variance.add(full_data_losses(posterior.loss, state.position, batches))
        # On an asynchronous device reading a value would stall the host every step, so there
        # the restart is masked into every step; on the CPU one number read says whether any
        # chain may have broken, and only then are the chains looked at one by one. Either way
        # the same numbers.
        if asynchronous or not math.isfinite(float(sums.sum())) or (far is not None and bool(far.any())):
            broken = ~torch.isfinite(sums) if far is None else ~torch.isfinite(sums) | far
            newly = broken & ~diverged
            divergence_step = torch.where(newly, step_index, divergence_step)
            diverged |= newly
            state = type(state)(*_where_chains(newly, fresh, state))
        if bar is not None and (step_index + 1) % 50 == 0:
            bar.update(50)
        elif step_index == 0:   # the first step carries one-off costs (compiling the step, warming caches)
            paced = time.perf_counter()
        elif bar is None and not projected and time.perf_counter() - paced > PROJECT_AFTER_SECONDS:
            projected = True
            say_a_long_run(time.perf_counter() - paced, step_index, steps - 1, chains, sampler.name, batches)
    if bar is not None:
        bar.update(steps % 50)
        bar.close()
    seconds = time.perf_counter() - clock
    fields = {name: values.double().cpu().numpy() for name, values in records.items()}
    return Trace(fields, diverged.cpu().numpy(), divergence_step.cpu().numpy(),
                 None if variance is None else variance.total().cpu().numpy(), steps, seconds, state)


def say_a_long_run(elapsed: float, done: int, steps: int, chains: int, sampler: str, batches: Batches) -> None:
    """A :class:`~sltlab.estimators.notices.LongRunWarning` when the ``steps - done`` steps left,
    at the pace of the ``done`` that took ``elapsed`` seconds, would take long
    (:func:`~sltlab.estimators.notices.long_run_left`): said once, where no progress bar shows it
    (the one call in Python is quiet unless asked), with the remedies: a bar, minibatches on the
    full data, one torch thread where torch runs several (the call leaves the caller's thread count
    as it is)."""
    left = long_run_left(elapsed, done, steps)
    if left is None:
        return
    full = batches.is_full and batches.n
    rows = (f"over all {batches.n:,} rows" if full else f"on {batches.batch_size:,} rows" if batches.n
            else "on a population loss")
    faster = "; a batch_size samples on minibatches (SGLD), faster per step" if full else ""
    threads = torch.get_num_threads()
    if threads > 1:
        faster += (f"; torch runs {threads} threads, and a small model can run many times faster on one "
                   "(torch.set_num_threads(1)), above all beside other jobs")
    warnings.warn(f"{sampler}'s run will take about {left / 60:.0f} more minutes ({steps - done:,} steps of {chains} "
                  f"chains at {elapsed / done:.3g} s each, {rows}): progress=True shows a bar{faster}",
                  LongRunWarning, stacklevel=caller_stacklevel())


def host_reads_are_free(device: torch.device) -> bool:
    """Whether reading a tensor's value on the host costs nothing beyond the read: true on the
    CPU, where operations run eagerly; on CUDA a read waits for every queued kernel."""
    return device.type == "cpu"


def prior_reach(localization: float, dim: int, tail: float = 1e-12) -> float:
    """The squared distance ‖w − w*‖² beyond which a chain has left the localised posterior.

    p(w) ∝ N(w; w*, I/γ)·exp(−nβ·(L_n(w) − L_n(w*))), and in the basin of w* the second factor
    is at most about 1, so γ‖w − w*‖² is dominated by a χ²_d variable; its upper ``tail``
    quantile, divided by γ, is then reached by a chain of the posterior with probability below
    ``tail`` per draw. Without localisation (γ = 0) there is no such bound: infinity.
    """
    return float(chdtri(dim, tail)) / localization if localization > 0 else float("inf")


def after_warm_up(warmup: Trace, trace: Trace) -> Trace:
    """``trace`` of a run that continued from the end of ``warmup``: chains that diverged while
    warming up stay diverged, steps, divergence steps and seconds count both phases, and the
    chains the warm-up cooled stay named."""
    divergence_step = np.where(warmup.diverged, warmup.divergence_step,
                               trace.divergence_step + warmup.steps * (trace.divergence_step >= 0))
    return trace._replace(diverged=trace.diverged | warmup.diverged, steps=warmup.steps + trace.steps,
                          divergence_step=divergence_step, seconds=warmup.seconds + trace.seconds,
                          cooled=warmup.cooled if trace.cooled is None else trace.cooled)


def joined(first: Trace, then: Trace) -> Trace:
    """One trace of chains that went on from the end of ``first`` for ``then``'s steps: the draws
    of both side by side, divergences, steps and seconds counted as :func:`after_warm_up` counts
    them, and ``then``'s final state. A functional variance cannot be joined from two runs'
    totals, so neither trace may hold one."""
    if first.functional_variance is not None or then.functional_variance is not None:
        raise ValueError("a run with the functional variance cannot be joined to its continuation")
    fields = {name: np.concatenate([first.fields[name], then.fields[name]], axis=1) for name in first.fields}
    return after_warm_up(first, then)._replace(fields=fields)


def _where_chains(mask: Tensor, replacement: Any, current: Any):
    """Field by field, ``replacement`` for the masked chains and ``current`` for the rest."""
    if current is None:
        return None
    if isinstance(current, Tensor):
        return torch.where(mask.view(-1, *[1] * (current.dim() - 1)), replacement, current)
    return type(current)(*(_where_chains(mask, r, c) for r, c in zip(replacement, current)))


def progress_bar(total: int, description: str, *, enabled: bool, unit: str = "step", leave: bool = False):
    """A tqdm bar when ``enabled`` (a terminal, not ``--json``), else None."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit=unit, leave=leave)


def announce_phase(text: str, *, enabled: bool) -> None:
    """One line on stderr naming the phase that starts (data, localisation, step choice), where a
    progress bar would otherwise leave the terminal silent; nothing when not ``enabled``."""
    if enabled:
        print(f"{text} …", file=sys.stderr, flush=True)
