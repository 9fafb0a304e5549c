"""What an estimate returns: :class:`LLCResult`, λ̂ with everything needed to judge it, and
:func:`result_of_trace`, which reads it off a finished run and raises every concern the run gives
as its warning (divergence, localisation, precision, step size, mixing)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from sltlab.estimators.cooled_share import sides_of_the_start
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.inference import to_inference_data
from sltlab.estimators.elasticity import Elasticity, elasticity_concern, elasticity_of_trace
from sltlab.estimators.llc import MIN_ACCEPTANCE, LLCEstimate, llc_from_trace, rounding_concern
from sltlab.estimators.gate import MIXING_REMEDIES, STEP_REMEDY, mixing_concern
from sltlab.estimators.localize import Localization, localization_concerns, negative_estimate_concern
from sltlab.estimators.notices import (BurnInWarning, DivergenceWarning, LocalizationWarning, MixingWarning,
                                       PrecisionWarning, StepSizeWarning, caller_stacklevel)
from sltlab.estimators.posterior import LocalPosterior
from sltlab.estimators.result_text import result_summary, result_text
from sltlab.estimators.rounding import flat_by_rounding, rounded_gaps, rounded_steps
from sltlab.estimators.sampling import Batches, Trace
from sltlab.estimators.sgnht import sgnht_concern
from sltlab.estimators.slice import stalled_concern
from sltlab.estimators.preconditioned_lag import PreconditionedModes, rmsprop_lag_concern
from sltlab.estimators.start_spread import Spectrum, start_spread_concern
from sltlab.estimators.step_size import step_size_concern
from sltlab.estimators.thermodynamics import ChainMean, singular_fluctuation


@dataclass(frozen=True, repr=False)
class LLCResult:
    """An estimate with everything needed to judge it; ``mean``, ``standard_error``,
    ``per_chain``, ``rhat``, ``ess``, ``diverged`` and ``nbeta`` read through to it."""

    estimate: LLCEstimate
    config: LLCConfig                 # every default resolved
    localization: Localization
    trace: Trace
    step_size_rule: str
    loss_reference: str               # how L_n(w*) entered the estimate
    acceptance: float | None          # MALA only
    fluctuation: ChainMean | None
    notes: tuple[str, ...] = ()       # what the estimate changed about its inputs (e.g. eval mode)
    warnings: tuple[str, ...] = ()    # what the caller must know: dropped chains, a moved centre
    n: int | None = None              # the data set size behind nβ
    parameters: tuple[str, ...] = ()  # the module parameters sampled (an nn.Module's estimate), in order
    restricted_to: str | tuple[str, ...] | None = None   # the restriction that selected them; None: all
    elasticity: Elasticity | None = None   # d log λ̂/d log γ (:mod:`sltlab.estimators.elasticity`)

    @property
    def mean(self) -> float | None:
        return self.estimate.mean

    @property
    def standard_error(self) -> float | None:
        return self.estimate.standard_error

    @property
    def per_chain(self) -> list[float | None]:
        return self.estimate.per_chain

    @property
    def rhat(self) -> float | None:
        return self.estimate.rhat

    @property
    def ess(self) -> float | None:
        return self.estimate.ess

    @property
    def diverged(self) -> list[int]:
        """The chains dropped from λ̂ (``estimate.divergence`` says why)."""
        return self.estimate.diverged_chains

    @property
    def nbeta(self) -> float:
        return self.config.nbeta

    def summary(self) -> dict:
        """The short form (:func:`sltlab.estimators.result_text.result_summary`), JSON-ready."""
        return result_summary(self)

    def __repr__(self) -> str:
        return result_text(self)

    def to_inference_data(self):
        """The trace as ArviZ data (:func:`sltlab.estimators.inference.to_inference_data`)."""
        return to_inference_data(self)


def result_of_trace(trace: Trace, posterior: LocalPosterior, batches: Batches, resolved: LLCConfig,
                    localization: Localization, rule: str, generator: torch.Generator, n: int, *,
                    curvature: float | None = None, moving: torch.Tensor | None = None,
                    spectrum: Spectrum | None = None, warm_up_step: float | None = None,
                    modes: PreconditionedModes | None = None) -> LLCResult:
    """The :class:`LLCResult` of a finished run at one centre ([d]): λ̂ and its diagnostics,
    and every concern raised as its warning, attributed to the first caller outside sltlab.
    ``curvature``: h_max where the kept chains ended, when measured already (SGLD's concern);
    ``moving``: the coordinates the chains move ([d], nonzero where they do; all when None);
    ``spectrum``: SGLD's Hessian spectrum at w*, when measured before the run; ``warm_up_step``: the
    step RMSProp-SGLD's burn-in ran at, where its warm-up chose the run's (its pilot step); ``modes``:
    its lag model, when made before the run."""
    loss, device = posterior.loss, posterior.center.device
    estimate = llc_from_trace(trace, resolved.nbeta)
    reference = ("full-data L_n(w*), every step on the full data" if resolved.sampler == "mala" or batches.is_full
                 else "paired minibatch differences L_b(w) − L_b(w*)")
    acceptance = float(trace.fields["acceptance"][~trace.diverged].mean()) if (
        "acceptance" in trace.fields and not trace.diverged.all()) else None
    fluctuation = (singular_fluctuation(trace, resolved.nbeta / n, dropped=estimate.diverged_chains)
                   if trace.functional_variance is not None else None)
    moved = localization_concerns(localization, resolved.nbeta, resolved.localization,
                                  None if moving is None else int(moving.count_nonzero()))
    concerns = [(message, LocalizationWarning) for message in moved]
    negative = negative_estimate_concern(estimate.mean, estimate.standard_error, localization)
    concerns += [(negative, LocalizationWarning)] if negative else []
    rounding = (rounding_concern(estimate.mean, resolved.nbeta, localization.center_loss, resolved.dtype)
                or (flat_by_rounding(posterior, batches, trace, resolved.dtype, resolved.seed)
                    if estimate.flat and trace.final_state is not None else None)
                or rounded_gaps(posterior, batches, trace, estimate.mean, resolved.dtype, resolved.seed)
                or rounded_steps(posterior.center, resolved.step_size, resolved.sampler, resolved.dtype, moving))
    concerns += [(rounding, PrecisionWarning)] if rounding else []
    concerns += [(sgnht_concern(), StepSizeWarning)] if resolved.sampler == "sgnht" else []
    concerns += [(stalled, StepSizeWarning)] if (stalled := stalled_concern(trace, estimate.diverged_chains)) else []
    lag_note = None
    if resolved.sampler == "sgld" and trace.final_state is not None:   # the unadjusted Langevin step
        alive = torch.as_tensor(~trace.diverged, device=device)
        concern = step_size_concern(posterior, batches, resolved.step_size, trace.final_state.position[alive],
                                    generator, top=curvature, given=rule.startswith("given"))
        concerns += [(concern, StepSizeWarning)] if concern else []
        lagging, lag_note = start_spread_concern(posterior, batches, resolved.seed, resolved.step_size, trace.steps,
                                                 trace.fields["loss"].shape[1], resolved.thin, resolved.chains,
                                                 estimate.mean, estimate.standard_error, moving, spectrum)
        concerns += [(lagging, BurnInWarning)] if lagging else []
    if resolved.sampler == "rmsprop_sgld" and trace.final_state is not None:   # its held preconditioner
        lagging, lag_note = rmsprop_lag_concern(
            posterior, batches, trace.final_state, torch.as_tensor(~trace.diverged, device=device), resolved.seed,
            warm_up_step=warm_up_step or resolved.step_size, burnin=resolved.burnin, step=resolved.step_size,
            steps=trace.steps, draws=trace.fields["loss"].shape[1], thin=resolved.thin, mean=estimate.mean,
            standard_error=estimate.standard_error, modes=modes)
        concerns += [(lagging, BurnInWarning)] if lagging else []
    if acceptance is not None and acceptance < MIN_ACCEPTANCE:
        outcome = "λ̂ understates" if estimate.mean is not None else "there is no estimate"
        concerns.append((f"the Metropolis step accepted {acceptance:.1%} of its moves: the chains hardly left w*, so "
                         f"{outcome}; lower the step size (step_size=, --step-size) or leave it out to have it "
                         "tuned", StepSizeWarning))
    if estimate.diverged_chains:
        whys = [f"chain {chain} {why}" for chain, why in estimate.divergence.items()]   # each, not only the first
        concerns.append((f"{len(estimate.diverged_chains)} of {resolved.chains} chains dropped from λ̂ "
                         f"{estimate.diverged_chains}; {'; '.join(whys[:3])}"
                         + (f"; and {len(whys) - 3} more" if len(whys) > 3 else ""), DivergenceWarning))
    mixing = mixing_concern(estimate, MIXING_REMEDIES.get(resolved.sampler, STEP_REMEDY))
    mixing = mixing and mixing + sides_of_the_start(resolved.anneal, estimate.per_chain, trace.cooled)
    concerns += [(mixing, MixingWarning)] if mixing else []
    elasticity = elasticity_of_trace(trace, estimate, resolved.localization)
    concerns += [(held, LocalizationWarning)] if (held := elasticity_concern(elasticity, resolved.localization)) else []
    stacklevel = caller_stacklevel()
    for message, category in concerns:
        warnings.warn(message, category, stacklevel=stacklevel)
    flat = () if not estimate.flat else (f"no draw's loss differed from another while the chains moved up "
                                         f"to {trace.fields['distance'].max():.3g} from w*: where they went, the loss "
                                         f"equalled L_n(w*) to {resolved.dtype}'s precision, so λ̂ = 0",)
    return LLCResult(estimate, resolved, localization, trace, rule, reference, acceptance, fluctuation,
                     tuple(getattr(loss, "notes", ())) + flat + ((lag_note,) if lag_note else ())
                     + unfinite_note(trace),
                     tuple(message for message, _ in concerns), n, elasticity=elasticity)


def unfinite_note(trace: Trace) -> tuple[str, ...]:
    """A note where a Metropolis sampler rejected recorded proposals because the potential there was
    NaN or +inf: the posterior it samples is cut off where the model or loss fails (SGLD, which cannot
    reject, reports such chains as diverged instead)."""
    if "unfinite" not in trace.fields or trace.diverged.all():
        return ()
    unfinite = trace.fields["unfinite"][~trace.diverged]
    if not unfinite.any():
        return ()
    return (f"{int(unfinite.sum()):,} of the {unfinite.size:,} proposals recorded were rejected because the potential "
            "there was NaN or +inf (a loss that is not finite, or nβ times it beyond the dtype): the posterior "
            "sampled is cut off where the model or loss fails near w*, so λ̂ is that of the region where it is "
            "finite; check the outputs there",)
