"""The samplers by name: each with its kernel at a config's step, its own step-size rule, and
the warm-up phase it runs before sampling when its step was chosen automatically."""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from sltlab.estimators.adapt import mala_pilot_step, mala_warm_up
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.hmc_tuning import hmc_from_config, hmc_pilot_step, hmc_warm_up
from sltlab.estimators.mala import mala
from sltlab.estimators.posterior import LocalPosterior, Sampler
from sltlab.estimators.rmsprop_sgld import adapt_preconditioner, rmsprop_from_config, rmsprop_pilot_step_size
from sltlab.estimators.sampling import Batches
from sltlab.estimators.sgld import sgld
from sltlab.estimators.sgnht import sgnht, sgnht_step_size
from sltlab.estimators.slice import slice_sampler, slice_width
from sltlab.estimators.step_size import langevin_step_size


class SamplerKind(NamedTuple):
    """How an estimate builds and tunes one sampler: ``kernel(posterior, config)``,
    ``step_size_rule(posterior, batches, config, generator) -> (ε, rule in words)``, and an
    optional ``warm_up(config, posterior, batches, generator, run) -> (trace, config, rule)``
    run before sampling when the step was chosen by the rule, from whose end the run continues:
    in place of the burn-in when ``warm_up_is_burn_in``, else before it. An ``exact`` sampler
    compares energies on the full data, so its target is exact at any step: it needs the full
    batch, and a calibration runs no sweep for it."""

    kernel: Callable[[LocalPosterior, LLCConfig], Sampler]
    step_size_rule: Callable[[LocalPosterior, Batches, LLCConfig, torch.Generator], tuple[float, str]]
    warm_up: Callable | None = None
    warm_up_is_burn_in: bool = True
    exact: bool = False


def _sgld_step_size(posterior: LocalPosterior, batches: Batches, config: LLCConfig,
                    generator: torch.Generator) -> tuple[float, str]:
    return langevin_step_size(posterior, batches, generator)


SAMPLERS: dict[str, SamplerKind] = {
    "sgld": SamplerKind(lambda posterior, config: sgld(posterior, step_size=config.step_size), _sgld_step_size),
    "rmsprop_sgld": SamplerKind(rmsprop_from_config, rmsprop_pilot_step_size, adapt_preconditioner),
    "sgnht": SamplerKind(lambda posterior, config: sgnht(posterior, step_size=config.step_size), sgnht_step_size),
    "mala": SamplerKind(lambda posterior, config: mala(posterior, step_size=config.step_size), mala_pilot_step,
                        mala_warm_up, warm_up_is_burn_in=False, exact=True),
    "hmc": SamplerKind(hmc_from_config, hmc_pilot_step, hmc_warm_up, exact=True),
    "slice": SamplerKind(lambda posterior, config: slice_sampler(posterior, width=config.step_size), slice_width,
                         exact=True),
}
