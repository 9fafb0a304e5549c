"""One LLC estimate from a batched loss, a true parameter and data: localise, choose the step
size, sample, and report the estimate with everything needed to judge it
(:mod:`sltlab.estimators.result`). (An ``nn.Module``
with its data comes through :func:`sltlab.estimators.module.estimate_llc`, built on this.)

The function knows nothing of the model: ``loss(position [C, d], batch)`` gives per-sample
losses [C, b], ``data`` is a tuple of tensors with n rows (empty for a population potential,
with ``n`` then given explicitly). Each sampler's step-size rule and warm-up live with it
(:mod:`sltlab.estimators.samplers`).
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import replace
from functools import partial
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import Tensor

from sltlab.estimators.cooled_share import cooling_not_applied
from sltlab.estimators.checks import check_data, check_loss_shape, check_memory, check_position
from sltlab.estimators.config import LLCConfig, require_config, require_flags
from sltlab.estimators.device import resolve_device
from sltlab.estimators.hmc_tuning import OverBudget, fallback_over_budget
from sltlab.estimators.going_on import extend_until_mixed, rerun_until_mixed
from sltlab.estimators.llc import default_nbeta, llc_from_trace
from sltlab.estimators.gate import gate_reading, mixing_concern
from sltlab.estimators.localize import Localization, empirical_minimum, localizer, off_critical_concern
from sltlab.estimators.metric import with_metric
from sltlab.estimators.notices import LocalizationWarning, caller_stacklevel
from sltlab.estimators.posterior import LocalPosterior, compiled
from sltlab.estimators.samplers import SAMPLERS
from sltlab.estimators.result import LLCResult, result_of_trace
from sltlab.estimators.sampling import Batches, Trace, after_warm_up, announce_phase, run_chains
from sltlab.estimators.preconditioned_lag import PreconditionedModes, settling_steps
from sltlab.estimators.start_spread import Spectrum, burn_in_at_center
from sltlab.estimators.streamed import StreamedRows, on_device, row_count


class RunInputs(NamedTuple):
    """What an estimate derives from its data and settings before it localises and samples."""

    n: int
    device: torch.device
    dtype: torch.dtype                # the sampling precision
    generator: torch.Generator        # the run's one generator, seeded by ``config.seed``
    full: tuple[Tensor, ...] | StreamedRows | None   # the data in float64 with a leading 1, for localising
    resolved: LLCConfig               # every default resolved but the step size
    batches: Batches                  # the data in the sampling precision, drawn as the config says


def run_inputs(data: tuple[Tensor, ...] | StreamedRows, config: LLCConfig, n: int | None) -> RunInputs:
    """Check the settings and the data (one-line ``ValueError``s) and resolve what they imply:
    n (the rows, or ``n`` for a population potential), the device, nβ = n/log n unless set,
    the minibatch size and the burn-in; an exact sampler (MALA, HMC, slice) must see the full data."""
    require_config(config)
    if torch.is_inference_mode_enabled():
        raise ValueError("sampling needs gradients, which torch.inference_mode() turns off: estimate outside it "
                         "(torch.no_grad() is fine)")
    check_data(data)
    n = None if n is None else whole_rows(n)
    rows = row_count(data)
    if rows and n is not None and n != rows:   # had been ignored: nβ = rows/log rows, whatever n said
        raise ValueError(f"n = {n:,} but the data hold {rows:,} rows: n is the number of rows given (leave it out), "
                         "or give data=() with a loss that needs no rows")
    n = rows or n
    if n is None or n < 2:
        raise ValueError("the data set size n must be at least 2")
    device, dtype = resolve_device(config.device), getattr(torch, config.dtype)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    wide = on_device(data, device, torch.float64)
    resolved = replace(config, device=str(device), nbeta=config.nbeta or default_nbeta(n),
                       batch_size=min(config.batch_size or n, n) if data else None, burnin=config.burnin_steps)
    batches = Batches(on_device(wide, device, dtype), resolved.batch_size or 1)
    fallback = resolved.fallback
    exact = [*([resolved.sampler] if SAMPLERS[resolved.sampler].exact else []),
             *([f"the fallback {fallback}"] if fallback and SAMPLERS[fallback].exact else [])]
    if exact and not batches.is_full:
        raise ValueError(f"{' and '.join(exact)} compare{'s' if len(exact) == 1 else ''} energies on the full data: "
                         "leave out the batch size, or choose sgld, rmsprop_sgld or sgnht, with no fallback, for "
                         "minibatches")
    full = Batches(wide, n).full()
    return RunInputs(n, device, dtype, generator, full, resolved, batches)


def whole_rows(n) -> int:
    """The data set size ``n`` as an int: a whole number in any type (50, 50.0, a NumPy or 0-d torch
    number); a flag, a fraction or no number is a one-line ``ValueError``."""
    value = n.item() if isinstance(n, Tensor) and n.numel() == 1 else n
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not (
            isinstance(value, numbers.Integral) or (math.isfinite(value) and value == int(value))):
        raise ValueError(f"n is the data set's size, a whole number of rows, got {n!r}")
    return int(value)


def whole_batches_note(config: LLCConfig, n: int) -> tuple[str, ...]:
    """Where ``config.batch_size`` is more rows than the data's ``n`` (which :func:`run_inputs` cuts
    it to), a note saying so; else none."""
    if config.batch_size is None or config.batch_size <= n:
        return ()
    return (f"batch_size = {config.batch_size:,} is more rows than the data hold: every batch is all {n:,}",)


def estimate_llc_from_loss(loss, true_parameter: Tensor, data: tuple[Tensor, ...], config: LLCConfig, *,
                           n: int | None = None, localization: Localization | None = None,
                           progress: bool = False, compare_with_minimum: bool = True,
                           step_rule: str = "given") -> LLCResult:
    """λ̂ at the empirical minimum near ``true_parameter`` (or at it), with diagnostics.
    A ``localization`` found earlier (e.g. by a calibration sweep) is reused as it is;
    ``step_rule`` says how ``config``'s step size was chosen where it has one (a sweep's is no
    step the user gave, which SGLD's bias concern weighs apart).

    Inputs are checked once here (one-line ``ValueError``s). Dropped chains, a centre that
    moved far or did not converge, and chains that fail the mixing gate raise
    :class:`DivergenceWarning`, :class:`LocalizationWarning` and :class:`MixingWarning` and are
    listed in ``LLCResult.warnings``. With ``config.fallback``, chains that still fail the mixing
    gate after their reruns are replaced by a run of the fallback sampler from w* (at the same
    centre, nβ and γ), whose chains the result then reports; a note gives the first run's reading.
    With ``config.fallback_budget`` it runs only while its warm-up and draws would take at most that
    many times the first run's gradient evaluations, or a note says what they would have taken
    (:func:`~sltlab.estimators.hmc_tuning.fallback_over_budget`). A centre given as it is that is
    no critical point raises :class:`LocalizationWarning` with λ̂'s gap to the minimum nearby
    (:func:`~sltlab.estimators.localize.off_critical_concern`) unless ``compare_with_minimum`` is
    False: at a checkpoint of a training run, whose λ̂ is read as it is, and in a calibration pilot.
    """
    require_flags(progress=progress, compare_with_minimum=compare_with_minimum)
    n, device, dtype, generator, full, resolved, batches = run_inputs(data, config, n)
    check_position(true_parameter, "the true parameter")
    start = true_parameter.to(device=device, dtype=torch.float64)
    check_loss_shape(loss, start, full)
    check_memory(resolved.chains, start.numel(), resolved.draws, dtype, device)
    if localization is None:
        localize = localizer(config.localize_at)
        announce_phase("localising: L-BFGS on the full data from the given parameter" if localize is empirical_minimum
                       else "centring at the given parameter", enabled=progress)
        localization = localize(loss, start, full)
    else:
        localization = localization._replace(center=localization.center.to(device=device, dtype=torch.float64))
    posterior = LocalPosterior(loss, resolved.nbeta, resolved.localization, localization.center.to(dtype))
    sample = partial(_sample, posterior=posterior, batches=batches, generator=generator, data=data, progress=progress,
                     step_rule=step_rule)
    trace, resolved, rule, notes, first_steps, spectrum, warm_up_step, modes = sample(
        resolved, burn_in_from_lag=config.burnin is None)
    notes = whole_batches_note(config, n) + notes
    first = None if resolved.fallback is None else llc_from_trace(trace, resolved.nbeta)
    failed = first is not None and mixing_concern(first) is not None
    over_budget = fallback_over_budget(resolved, first_steps) if failed else None
    if over_budget is not None:
        notes += (over_budget,)
    elif failed:
        first_run = f"{trace.steps:,} steps and {trace.seconds:.3g} s of sampling"
        first_mean = "none kept" if first.mean is None else f"{first.mean:.6g}"
        announce_phase(f"{resolved.sampler}'s chains failed the mixing gate: estimating anew with {resolved.fallback}",
                       enabled=progress)
        try:
            trace, fallback, rule, fallback_notes, _, spectrum, warm_up_step, modes = sample(
                resolved.fallback_config(), budget=partial(fallback_over_budget, resolved, first_steps))
        except OverBudget as stopped:
            notes += (str(stopped),)
        else:
            notes += (f"{resolved.sampler}'s chains failed the mixing gate after {first_run} "
                      f"({gate_reading(first)}; λ̂ = {first_mean}), so λ̂ was estimated anew from w* by "
                      f"{resolved.fallback} with its own step and counts, its chains judged by the same gate",
                      *fallback_notes)
            resolved = fallback
    result = result_of_trace(trace, posterior, batches, resolved, localization, rule, generator, n, spectrum=spectrum,
                             warm_up_step=warm_up_step, modes=modes)
    off_critical = off_critical_concern(result, loss, full) if compare_with_minimum else None
    if off_critical is not None:
        warnings.warn(off_critical, LocalizationWarning, stacklevel=caller_stacklevel())
        result = replace(result, warnings=result.warnings + (off_critical,))
    return replace(result, notes=result.notes + notes) if notes else result


class Sampled(NamedTuple):
    """A finished run: its trace, the config resolved, the step's rule in words, notes on settings
    not applied and on reruns or going on, and the steps it had taken before it went on."""

    trace: Trace
    config: LLCConfig
    rule: str
    notes: tuple[str, ...]
    first_steps: int
    spectrum: Spectrum | None   # of the Hessian at w*, where SGLD's burn-in was set from the predicted lag
    warm_up_step: float         # the step the burn-in ran at (RMSProp-SGLD's pilot, where its warm-up set the run's)
    modes: PreconditionedModes | None   # RMSProp-SGLD's lag model, where its settling steps were set from it


def _sample(config: LLCConfig, *, posterior: LocalPosterior, batches: Batches, generator: torch.Generator,
            data: tuple[Tensor, ...], progress: bool, budget: Callable[..., str | None] | None = None,
            burn_in_from_lag: bool = False, step_rule: str = "given") -> Sampled:
    """Choose the step (unless given), warm up, sample, rerun and go on as ``config`` says
    (:mod:`sltlab.estimators.going_on`). A ``budget`` goes to the warm-up, which stops the run
    when it says so (:class:`OverBudget`). With ``burn_in_from_lag`` SGLD's burn-in is lengthened
    where the chains from w* would still lag after it (:func:`burn_in_at_center`)."""
    kind = SAMPLERS[config.sampler]
    automatic, rule, resolved = config.step_size is None, step_rule, config
    posterior, resolved, metric_note, metric_words = with_metric(
        config, posterior, batches.full(), torch.Generator(posterior.center.device).manual_seed(config.seed),
        announce=partial(announce_phase, enabled=progress))
    if automatic:
        announce_phase(f"choosing {resolved.sampler}'s step size", enabled=progress)
        step_size, rule = kind.step_size_rule(posterior, batches, resolved, generator)
        resolved = replace(resolved, step_size=step_size)
    warm_up_step = resolved.step_size   # RMSProp-SGLD's burn-in runs at it where its warm-up then sets another
    run = partial(run_chains, posterior=posterior, batches=batches, chains=resolved.chains, generator=generator,
                  progress=progress)
    warmup = None
    if automatic and kind.warm_up is not None and (resolved.burnin > 1 or not kind.warm_up_is_burn_in):
        warm_up = kind.warm_up if budget is None else partial(kind.warm_up, budget=budget)
        warmup, resolved, rule = warm_up(resolved, posterior, batches, generator, run)
    cooling, resolved = cooling_not_applied(resolved, warmed_up=warmup is not None)   # the result says what was used
    notes = tuple(note for note in (metric_note, cooling) if note is not None)
    rule += metric_words
    kernel = kind.kernel(posterior, resolved)
    run = partial(run, compiled(kernel) if resolved.compile_step else kernel, draws=resolved.draws, thin=resolved.thin,
                  full_data_every=max(1, resolved.draws // 200) if resolved.functional_variance and data else None)
    spectrum = None
    if burn_in_from_lag and resolved.sampler == "sgld":
        burnin, lag_note, spectrum = burn_in_at_center(posterior, batches, resolved, resolved.step_size)
        resolved, notes = replace(resolved, burnin=burnin), notes + ((lag_note,) if lag_note else ())
    settling, modes = 0, None   # RMSProp-SGLD's steps at the run's step after adapting, where its chains would lag
    if burn_in_from_lag and resolved.sampler == "rmsprop_sgld" and warmup is not None:
        settling, lag_note, modes = settling_steps(posterior, batches, warmup.final_state,
                                            torch.as_tensor(~warmup.diverged, device=posterior.center.device),
                                            resolved.seed, warm_up_step=warm_up_step, burnin=resolved.burnin,
                                            step=resolved.step_size, draws=resolved.draws, thin=resolved.thin)
        notes += (lag_note,) if lag_note else ()
    burnin = settling if warmup is not None and kind.warm_up_is_burn_in else resolved.burnin
    trace = run(burnin=burnin, initial_state=None if warmup is None else warmup.final_state)
    if warmup is not None:
        trace = after_warm_up(warmup, trace)
    trace, rerun_note = rerun_until_mixed(trace, run, resolved)
    first_steps = trace.steps
    trace, extension_note = extend_until_mixed(trace, run, resolved)
    resolved = replace(resolved, draws=trace.fields["loss"].shape[1]) if extension_note else resolved
    notes += tuple(note for note in (rerun_note, extension_note) if note is not None)
    return Sampled(trace, resolved, rule, notes, first_steps, spectrum, warm_up_step, modes)
