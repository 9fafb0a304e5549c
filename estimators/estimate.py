"""One LLC estimate from a batched loss, a true parameter and data: localise, choose the step
size, sample, and report the estimate with everything needed to judge it.

The function knows nothing of the model (DESIGN.md): ``loss(position [C, d], batch)`` gives
per-sample losses [C, b], ``data`` is a tuple of tensors with n rows (empty for a population
potential, with ``n`` then given explicitly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial
import numpy as np
import torch
from torch import Tensor

from estimators.adapt import adapt_step_size
from estimators.llc import LLCEstimate, default_nbeta, llc_from_trace
from estimators.localize import Localization, at_true_parameter, empirical_minimum
from estimators.mala import mala
from estimators.options import LOCALIZATIONS, SAMPLER_NAMES
from estimators.posterior import LocalPosterior
from estimators.sampling import Batches, Trace, run_chains
from estimators.sgld import rmsprop_preconditioner, rmsprop_sgld, sgld
from estimators.sgnht import sgnht
from estimators.step_size import curvature_probe, default_step_size, top_hessian_eigenvalue
from estimators.thermodynamics import ChainMean, singular_fluctuation

MALA_TARGET_ACCEPTANCE = 0.8   # see estimators.adapt
STEP_SCALE = 0.1   # the c of estimators.step_size.default_step_size
SAMPLERS = dict(zip(SAMPLER_NAMES, (sgld, rmsprop_sgld, sgnht, mala)))


@dataclass(frozen=True)
class LLCConfig:
    """Sampler settings; ``None`` means "resolve a default", and the result holds the values
    actually used. ``localization`` is γ; ``localize_at`` says where w* is."""

    sampler: str = "sgld"
    chains: int = 8
    draws: int = 1000
    burnin: int | None = None          # default: draws // 4
    thin: int = 1
    step_size: float | None = None     # default: estimators.step_size / MALA adaptation
    localization: float = 1.0
    nbeta: float | None = None         # default: n / log n
    batch_size: int | None = None      # default: all n rows
    localize_at: str = "empirical_minimum"
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"
    functional_variance: bool = False  # also estimate ν̂, from about 200 full-data passes

    @property
    def burnin_steps(self) -> int:
        """The burn-in, resolved: ``burnin`` when given, else a quarter of the draws."""
        return self.draws // 4 if self.burnin is None else self.burnin

    def validate(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose from {', '.join(SAMPLERS)}")
        if self.localize_at not in LOCALIZATIONS:
            raise ValueError(f"--localization-at must be one of {', '.join(LOCALIZATIONS)}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        for name in ("chains", "draws", "thin"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        positive = {"step size": self.step_size, "nbeta": self.nbeta, "batch size": self.batch_size}
        for name, value in positive.items():
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be positive, got {value}")
        if not (self.localization >= 0 and math.isfinite(self.localization)):
            raise ValueError(f"localization γ must be ≥ 0, got {self.localization}")
        if self.burnin is not None and self.burnin < 0:
            raise ValueError(f"burnin must be ≥ 0, got {self.burnin}")


@dataclass(frozen=True)
class LLCResult:
    estimate: LLCEstimate
    config: LLCConfig                 # every default resolved
    localization: Localization
    trace: Trace
    step_size_rule: str
    loss_reference: str               # how L_n(w*) entered the estimate
    acceptance: float | None          # MALA only
    fluctuation: ChainMean | None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but no CUDA device is available")
    return torch.device(name)


def estimate_llc(loss, true_parameter: Tensor, data: tuple[Tensor, ...], config: LLCConfig, *,
                 n: int | None = None, localization: Localization | None = None,
                 progress: bool = False) -> LLCResult:
    """λ̂ at the empirical minimum near ``true_parameter`` (or at it), with diagnostics.
    A ``localization`` found earlier (e.g. by a calibration sweep) is reused as it is."""
    config.validate()
    n = len(data[0]) if data else n
    if n is None or n < 2:
        raise ValueError("the data set size n must be at least 2")
    device, dtype = resolve_device(config.device), getattr(torch, config.dtype)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    wide = tuple(t.to(device=device, dtype=torch.float64 if t.is_floating_point() else t.dtype) for t in data)
    full = tuple(t.unsqueeze(0) for t in wide) if wide else None
    start = true_parameter.to(device=device, dtype=torch.float64)
    if localization is None:
        localize = empirical_minimum if config.localize_at == "empirical_minimum" else at_true_parameter
        localization = localize(loss, start, full)
    else:
        localization = localization._replace(center=localization.center.to(device=device, dtype=torch.float64))
    resolved = replace(config, device=str(device), nbeta=config.nbeta or default_nbeta(n),
                       batch_size=min(config.batch_size or n, n) if data else None,
                       burnin=config.burnin_steps)
    cast = tuple(t.to(dtype) if t.is_floating_point() else t for t in wide)
    batches = Batches(cast, resolved.batch_size or 1)
    posterior = LocalPosterior(loss, resolved.nbeta, resolved.localization, localization.center.to(dtype))
    automatic = resolved.step_size is None
    resolved, rule = _resolve_step_size(resolved, posterior, batches, generator)
    run = partial(run_chains, posterior=posterior, batches=batches, chains=resolved.chains, generator=generator,
                  divergence_threshold=_divergence_threshold(true_parameter.numel()), progress=progress)
    warmup = None
    if resolved.sampler == "rmsprop_sgld" and automatic and resolved.burnin > 1:
        warmup, resolved, rule = _precondition(resolved, posterior, batches, generator, run)
    options = {"adapt_steps": max(1, resolved.burnin)} if resolved.sampler == "rmsprop_sgld" else {}
    sampler = SAMPLERS[resolved.sampler](posterior, step_size=resolved.step_size, **options)
    trace = run(sampler, draws=resolved.draws, burnin=0 if warmup else resolved.burnin, thin=resolved.thin,
                full_data_every=max(1, resolved.draws // 200) if resolved.functional_variance and data else None,
                initial_state=None if warmup is None else warmup.final_state)
    if warmup is not None:  # chains that diverged while adapting stay diverged
        trace = trace._replace(diverged=trace.diverged | warmup.diverged, steps=warmup.steps + trace.steps,
                               divergence_step=np.where(warmup.diverged, warmup.divergence_step,
                                                        trace.divergence_step + warmup.steps * (trace.divergence_step >= 0)),
                               seconds=warmup.seconds + trace.seconds)
    estimate = llc_from_trace(trace, resolved.nbeta)
    reference = ("full-data L_n(w*), every step on the full data" if resolved.sampler == "mala" or batches.is_full
                 else "paired minibatch differences L_b(w) − L_b(w*)")
    acceptance = float(trace.fields["acceptance"][~trace.diverged].mean()) if (
        "acceptance" in trace.fields and not trace.diverged.all()) else None
    fluctuation = singular_fluctuation(trace, resolved.nbeta / n) if trace.functional_variance is not None else None
    return LLCResult(estimate, resolved, localization, trace, rule, reference, acceptance, fluctuation)


def _precondition(config: LLCConfig, posterior: LocalPosterior, batches: Batches, generator, run):
    """RMSProp in two phases: adapt the preconditioner G over the burn-in with the pilot step,
    then hold G fixed and set ε = c/λ_max, λ_max the top eigenvalue of the preconditioned
    curvature G^{1/2}·(nβ·H·(1 + nβ/b))·G^{1/2} + γ·G at the chains' positions: a diagonal G
    can amplify a dense stiff direction far beyond what ε·√k suggests."""
    pilot = rmsprop_sgld(posterior, step_size=config.step_size, adapt_steps=config.burnin)
    warmup = run(pilot, draws=1, burnin=config.burnin - 1, thin=1)
    state = warmup.final_state
    scale = rmsprop_preconditioner(state, posterior.localization)
    alive = torch.as_tensor(~warmup.diverged, device=scale.device)
    if not bool(alive.any()):
        return warmup, config, f"every chain diverged while adapting the preconditioner (pilot step {config.step_size:.3g})"
    top = top_hessian_eigenvalue(posterior.loss, state.position[alive], batches.full(), generator=generator,
                                 preconditioner=scale[alive])
    # The same rule as the plain step, with the localisation's curvature scaled by G too.
    step_size = default_step_size(config.nbeta, posterior.localization * float(scale[alive].max()), top,
                                  batch_size=None if batches.is_full else batches.batch_size, n=batches.n,
                                  scale=STEP_SCALE)
    stiffness = STEP_SCALE / step_size
    rule = (f"c/λ_max with c = {STEP_SCALE} and λ_max = {stiffness:.4g} the top eigenvalue of the RMSProp-"
            f"preconditioned curvature at the chains after {config.burnin} adapting burn-in steps "
            f"(pilot step {config.step_size:.3g}); the preconditioner is then held fixed")
    return warmup, replace(config, step_size=step_size), rule


def _divergence_threshold(dim: int) -> float:
    """nβ·(L_b(w) − L_b(w*)) is about λ ≤ d/2 in expectation; 10⁴·(d + 1) is a blow-up."""
    return 1e4 * (dim + 1)


def _resolve_step_size(config: LLCConfig, posterior: LocalPosterior, batches: Batches,
                       generator: torch.Generator) -> tuple[LLCConfig, str]:
    if config.step_size is not None:
        return config, "given"
    if config.sampler == "mala":
        warmup = adapt_step_size(posterior, batches, target_acceptance=MALA_TARGET_ACCEPTANCE, chains=config.chains,
                                 warmup_steps=max(200, config.burnin or 0), generator=generator)
        rule = (f"dual averaging to MALA acceptance {MALA_TARGET_ACCEPTANCE} over {warmup.warmup_steps} warm-up steps "
                f"(reached {warmup.achieved_acceptance:.2f})")
        return replace(config, step_size=warmup.step_size), rule
    # At a singular centre the Hessian can vanish (a deep network at rank 0): measure it also
    # at a probe point on the edge of the typical set, where the chains will be.
    probe = curvature_probe(posterior.loss, posterior.center, batches.full(), config.nbeta, generator=generator)
    top = top_hessian_eigenvalue(posterior.loss, torch.stack([posterior.center, probe]), batches.full(),
                                 generator=generator)
    full = batches.is_full
    langevin = default_step_size(config.nbeta, config.localization, top, scale=STEP_SCALE,
                                 batch_size=None if full else batches.batch_size, n=batches.n)
    # SGNHT moves √ε per step where SGLD moves ε (w += h·p, p ~ N(0, 1)); RMSProp divides the
    # gradient by its root mean square ≈ √(curvature), so its ε is c/√(stiffness).
    step_size = {"sgld": langevin, "sgnht": math.sqrt(langevin),
                 "rmsprop_sgld": math.sqrt(STEP_SCALE * langevin)}[config.sampler]
    rule = (f"c/(nβ·h_max·(1 + nβ/b) + γ) with c = {STEP_SCALE}, h_max = {top:.4g} the top Hessian eigenvalue "
            f"of L_n at w* and at a probe point" + ("" if full else f", b = {batches.batch_size}")
            + {"sgld": "", "sgnht": ", square-rooted for SGNHT", "rmsprop_sgld": ", as c/√(…) for RMSProp"}[config.sampler])
    return replace(config, step_size=step_size), rule
