"""The settings of one LLC estimate, importable without torch (the command line builds its
parser from them before anything heavy is loaded)."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace

import torch

SAMPLER_NAMES = ("sgld", "rmsprop_sgld", "sgnht", "mala", "hmc", "slice")
# Samplers whose step is no fixed graph: HMC's trajectory length is drawn per step and the slice
# sampler's stepping out and shrinkage loop until the chains decide, so torch.compile would trace
# the step anew at every length (past its limit of recompilations, eager again) or break the graph
# at every decision, with a screenful of its warnings and no time saved.
UNCOMPILED_SAMPLERS = ("hmc", "slice")
LOCALIZATIONS = ("empirical_minimum", "true_parameter")
METRICS = ("identity", "hessian", "auto")   # MALA's constant metric (sltlab.estimators.metric)
FLOAT32_MAX = torch.finfo(torch.float32).max
SMALLEST_NORMAL = {name: torch.finfo(getattr(torch, name)).tiny for name in ("float32", "float64")}
MAX_STEPS = 10**10   # steps per chain in one run: about three hours at a microsecond each
MAX_ROUNDS = 20      # reruns, or extensions of unmixed chains (each doubles the draws: 2²⁰ times at most)
MAX_METRIC_PARAMETERS = 1024         # a dense metric costs four [C, d]·[d, d] products per step; beyond, the identity
# hmc counts trajectories of π/(4√γ) each (sltlab.estimators.hmc_tuning), not steps: chosen over
# a default of another sampler, or run as a fallback, it takes these counts (and no cooling).
HMC_TRAJECTORIES = dict(draws=300, burnin=50, thin=1, anneal=1.0, cooled_share=1.0)
# Each sampler a fallback may be, with the counts of its run.
FALLBACK_COUNTS = {"hmc": HMC_TRAJECTORIES}
FALLBACK_SAMPLERS = tuple(FALLBACK_COUNTS)


# The kind of every setting (a bool is not taken for a number), and those that may be None.
FIELD_KINDS = {**{name: (numbers.Integral, "an integer") for name in ("chains", "draws", "burnin", "thin",
                                                                     "batch_size", "seed", "reruns",
                                                                     "extend_unmixed")},
               **{name: (numbers.Real, "a number") for name in ("step_size", "localization", "nbeta", "anneal",
                                                                "cooled_share", "fallback_budget")},
               **{name: (bool, "True or False") for name in ("functional_variance", "compile_step")},
               **{name: (str, "a name") for name in ("sampler", "localize_at", "device", "dtype", "fallback",
                                                     "metric")}}
OPTIONAL = frozenset({"burnin", "step_size", "nbeta", "batch_size", "fallback", "fallback_budget"})


def require_flags(**flags) -> None:
    """A one-line ``ValueError`` for each keyword that is not True or False (a string such as "no"
    would otherwise be read as True)."""
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")


def require_config(config) -> None:
    """A one-line ``ValueError`` unless ``config`` is a valid :class:`LLCConfig`."""
    if not isinstance(config, LLCConfig):
        raise ValueError(f"config must be an LLCConfig, got {type(config).__name__}")
    config.validate()


@dataclass(frozen=True)
class LLCConfig:
    """Sampler settings; ``None`` means "resolve a default", and the result holds the values
    actually used. ``localization`` is γ; ``localize_at`` says where w* is."""

    sampler: str = "sgld"
    chains: int = 8
    draws: int = 1000
    burnin: int | None = None          # default: draws // 4, longer for SGLD where its chains from w* would lag
    thin: int = 1
    step_size: float | None = None     # default: the sampler's own step-size rule
    localization: float = 1.0
    nbeta: float | None = None         # default: n / log n
    batch_size: int | None = None      # default: all n rows
    localize_at: str = "empirical_minimum"
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"
    functional_variance: bool = False  # also estimate ν̂, from about 200 full-data passes
    compile_step: bool = False         # run the sampling step through torch.compile (seconds to compile first)
    reruns: int = 0                    # while the chains fail the mixing gate, run again (at most this often)
    extend_unmixed: int = 0            # then, while they fail it on R-hat or ESS, go on for as many draws as they
                                       # hold, every draw kept (at most this often; a single estimate only while
                                       # the rounds left could bring them through)
    anneal: float = 1.0                # MALA's warm-up cools from nβ/anneal to nβ over its first half (1: off)
    cooled_share: float = 1.0          # ... for this share of the chains; the others start at w* at nβ
    fallback: str | None = None        # when the chains still fail the mixing gate, estimate anew with this sampler
    fallback_budget: float | None = None   # ... only when its warm-up and draws would take at most this many
                                           # times the gradient evaluations of the first run (None: whatever)
    metric: str = "identity"           # MALA's constant metric: the identity, (nβ + γ)·P⁻¹ from the Hessian at w*
                                       # ("hessian"), or that where its Gaussian holds at w* and it should relax
                                       # λ̂ faster than the identity ("auto")

    def __post_init__(self) -> None:
        """NumPy's integers and floats, which pass for numbers, stored as Python's (torch's seeding
        takes no NumPy integer)."""
        for name, (kind, _) in FIELD_KINDS.items():
            value = getattr(self, name)
            if kind in (numbers.Integral, numbers.Real) and isinstance(value, kind) and not isinstance(
                    value, (bool, int, float)):
                object.__setattr__(self, name, int(value) if kind is numbers.Integral else float(value))

    @property
    def burnin_steps(self) -> int:
        """The burn-in, resolved: ``burnin`` when given, else a quarter of the draws (which a single
        SGLD estimate lengthens where the lag predicted at w* needs it:
        :func:`~sltlab.estimators.start_spread.burn_in_for_lag`)."""
        return self.draws // 4 if self.burnin is None else self.burnin

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first setting of the wrong kind or out of range."""
        for name, (kind, what) in FIELD_KINDS.items():
            value = getattr(self, name)
            if not (value is None and name in OPTIONAL) and not (isinstance(value, kind) and (
                    kind is bool or not isinstance(value, bool))):
                raise ValueError(f"{name} must be {what}{' or None' if name in OPTIONAL else ''}, got {value!r}")
        if self.sampler not in SAMPLER_NAMES:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose from {', '.join(SAMPLER_NAMES)}")
        if self.localize_at not in LOCALIZATIONS:
            raise ValueError(f"localize_at must be one of {', '.join(LOCALIZATIONS)}, got {self.localize_at!r}")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        for name in ("chains", "draws", "thin"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        positive = {"step size": self.step_size, "nbeta": self.nbeta, "batch size": self.batch_size}
        for name, value in positive.items():
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be positive and finite, got {value}")
        if self.step_size is not None and self.step_size < SMALLEST_NORMAL.get(self.dtype, 0.0):
            raise ValueError(f"step size = {self.step_size:g} lies below {self.dtype}'s smallest normal number "
                             f"({SMALLEST_NORMAL[self.dtype]:.3g}): the sampler's arithmetic with it underflows and no "
                             "chain moves; leave it out to have it chosen")
        for name, value in (("nβ", self.nbeta), ("step size", self.step_size), ("localization γ", self.localization)):
            if value is not None and self.dtype == "float32" and value > FLOAT32_MAX:
                raise ValueError(f"{name} = {value:g} exceeds float32's range ({FLOAT32_MAX:.3g}): use "
                                 "dtype='float64' (--dtype float64)")
        if not 0 <= self.seed < 2 ** 32:   # torch's CPU generator keeps 32 bits: 2**32 would repeat seed 0
            raise ValueError(f"seed must be between 0 and 2**32 − 1, got {self.seed}")
        if self.nbeta is not None and not self.nbeta > 1:
            raise ValueError(f"nβ must exceed 1 (nβ = n·β; at or below 1 the posterior is the prior), got {self.nbeta}")
        if not (self.localization >= 0 and math.isfinite(self.localization)):
            raise ValueError(f"localization γ must be finite and ≥ 0, got {self.localization}")
        if self.sampler == "rmsprop_sgld" and self.localization == 0:
            raise ValueError("rmsprop_sgld needs a localization γ > 0: it floors the preconditioner's curvature at γ")
        if self.sampler == "hmc" and self.localization == 0:
            raise ValueError("hmc needs a localization γ > 0: its trajectory time is π/(4√γ)")
        if self.compile_step and self.sampler in UNCOMPILED_SAMPLERS:
            raise ValueError(f"compile_step (--compile) applies to a step of fixed shape; {self.sampler}'s is not "
                             "one (its loops depend on the draws), so torch.compile would retrace it, not speed it")
        if not (self.anneal >= 1 and math.isfinite(self.anneal)):
            raise ValueError(f"anneal must be a finite factor ≥ 1, got {self.anneal}")
        if not 0 < self.cooled_share <= 1:
            raise ValueError(f"cooled_share must be a share of the chains in (0, 1], got {self.cooled_share}")
        for name in ("reruns", "extend_unmixed"):
            if not 0 <= getattr(self, name) <= MAX_ROUNDS:
                raise ValueError(f"{name} must be from 0 to {MAX_ROUNDS}, got {getattr(self, name)}")
        if self.burnin is not None and self.burnin < 0:
            raise ValueError(f"burnin must be ≥ 0, got {self.burnin}")
        if (self.burnin or 0) + self.draws * self.thin > MAX_STEPS:
            raise ValueError(f"burnin + draws·thin = {(self.burnin or 0) + self.draws * self.thin:.3g} steps per "
                             f"chain, more than the {MAX_STEPS:.0e} a run may take (hours even at microseconds a step)")
        if self.fallback is not None:
            if self.fallback not in FALLBACK_SAMPLERS or self.fallback == self.sampler:
                raise ValueError(f"fallback must be one of {', '.join(FALLBACK_SAMPLERS)} and differ from the "
                                 f"sampler, got {self.fallback!r} after {self.sampler}")
            try:
                self.fallback_config().validate()
            except ValueError as error:
                raise ValueError(f"the fallback sampler, {self.fallback}, cannot run with these settings ({error}); "
                                 "fallback=None (--fallback none) runs without it") from None
        if self.fallback_budget is not None and not (self.fallback_budget > 0 and math.isfinite(self.fallback_budget)):
            raise ValueError(f"fallback_budget must be a positive multiple of the first run's gradient evaluations, "
                             f"got {self.fallback_budget}")

    def fallback_config(self) -> LLCConfig:
        """The settings of the fallback run: the same nβ, γ, centre, chains and seed, the fallback
        sampler with its own counts and its step chosen anew, and no fallback of its own; its
        chains do not go on (their budget counts their warm-up and draws), and its step is compiled
        only where the first run's was and the fallback's step has a fixed shape."""
        return replace(self, sampler=self.fallback, step_size=None, fallback=None, fallback_budget=None,
                       extend_unmixed=0, metric="identity",
                       compile_step=self.compile_step and self.fallback not in UNCOMPILED_SAMPLERS,
                       **FALLBACK_COUNTS[self.fallback])
