"""Several weight-restricted LLCs of one module as one batched run.

The LLC restricted to a set of weights samples those weights with every other one frozen at the
centre (devinterp's weight-restricted LLC; the exact value on deep linear networks is
:func:`sltlab.theory.restricted`). K restrictions of one module are K groups of C chains over
all of its parameters, each chain confined by a mask to its restriction's coordinates
(:func:`~sltlab.estimators.sgld.sgld` with ``mask``): a coordinate outside the restriction has
zero drift and zero noise, so it stays at w* and the chain samples exactly the restricted
posterior. Each restriction is localised and given its step (the rule, on its own restricted
loss) as it would be alone; only the sampling is shared.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import torch
from torch import Tensor, nn

from sltlab.estimators.batched import (EXTEND_INSTEAD, Group, chains_per_run, estimate_llc_in_groups_until_mixed,
                                       sampled_together)
from sltlab.estimators.checks import check_loss_shape, check_memory
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.estimate import run_inputs
from sltlab.estimators.result import LLCResult
from sltlab.estimators.functional import FunctionalModel
from sltlab.estimators.localize import localizer
from sltlab.estimators.notices import named_warnings
from sltlab.estimators.posterior import LocalPosterior
from sltlab.estimators.sample_on import remedies_not_applied
from sltlab.estimators.samplers import SAMPLERS
from sltlab.estimators.sampling import announce_phase
from sltlab.estimators.shared_burn_in import longest_burn_in


def why_restrictions_not_batched(config: LLCConfig, restrictions: Sequence) -> str | None:
    """Why a list of restrictions runs one after the other, or None when it runs as one batch."""
    if len(restrictions) < 2:
        return "one restriction"
    unconfined = why_not_confined(config)   # the sampler first: the one call's defaults also hold a fallback
    if unconfined is not None or not (config.reruns or config.fallback):
        return unconfined
    return "reruns and a fallback act on each restriction's own chains"


def why_not_confined(config: LLCConfig) -> str | None:
    """Why chains cannot be confined to a restriction's parameters within one run (only SGLD's
    kernel takes a mask), or None."""
    if config.sampler != "sgld":
        return f"only sgld confines chains to a restriction's parameters in one run, not {config.sampler}"
    return None


def restriction_mask(full: FunctionalModel, restricted: FunctionalModel) -> Tensor:
    """[d] over the full adapter's position: 1 on the coordinates of the parameters
    ``restricted`` samples, 0 elsewhere."""
    chosen = set(restricted.names)
    return torch.cat([torch.full((size,), float(name in chosen), dtype=torch.float64)
                      for name, size in zip(full.names, full.sizes)])


def estimate_llc_restricted(full: FunctionalModel, adapters: Sequence[FunctionalModel], data, config: LLCConfig,
                            restriction, *, bases: Sequence[Tensor] | None = None,
                            progress: bool = False, rule: str = "given") -> list[LLCResult]:
    """One :class:`LLCResult` per restricted adapter, as one batched SGLD run over ``full``'s
    parameters (module docstring). ``adapters[k]`` samples ``restriction[k]`` (a list, one per
    adapter) or ``restriction`` (one for all: the checkpoints of a training run, ``bases[k]``
    each one's full parameter vector; default ``full``'s); ``rule`` says where ``config``'s step
    size, when it has one, came from. Each result names its own parameters
    and restriction, with its own loss notes. With ``config.extend_unmixed`` = k the restrictions whose
    chains fail the mixing gate go on, together, up to k times, doubling their draws each time."""
    initial_notes = full.notes
    inputs = run_inputs(data, config, None)
    _, device, dtype, generator, whole, resolved, batches = inputs
    what = "restriction" if bases is None else "checkpoint"   # what each group of chains is
    bases = [base.to(device=device, dtype=torch.float64) for base in (bases or [full.flatten()] * len(adapters))]
    check_loss_shape(full, bases[0], whole)
    check_memory(len(adapters) * config.chains, bases[0].numel(), config.draws, dtype, device,
                 at_once=chains_per_run(config.chains, bases[0].numel()))
    localize = localizer(config.localize_at)
    groups, posteriors = [], []
    for adapter, base in zip(adapters, bases):
        announce_phase(f"localising and choosing the step of {', '.join(adapter.names)}", enabled=progress)
        localization = localize(adapter, adapter.flatten().to(device=device, dtype=torch.float64), whole)
        mask = restriction_mask(full, adapter).to(device)
        center = base.clone()
        center[mask.bool()] = localization.center
        posterior = LocalPosterior(adapter, resolved.nbeta, resolved.localization, localization.center.to(dtype))
        step_size, its_rule = (SAMPLERS["sgld"].step_size_rule(posterior, batches, resolved, generator)
                               if resolved.step_size is None else (resolved.step_size, rule))
        posteriors.append(posterior)
        groups.append(Group(localization._replace(center=center), resolved.nbeta, step_size, its_rule, mask))
    lag_note = None
    if config.burnin is None:   # the groups share one run, so the longest burn-in one needs
        lengthened, lag_note = longest_burn_in(posteriors, [group.step_size for group in groups], batches, resolved,
                                               what)
        inputs = inputs._replace(resolved=lengthened)
    notes, full.notes = full.notes, ()   # each result carries its own restriction's notes instead,
    try:
        results = estimate_llc_in_groups_until_mixed(full, groups, inputs, data_given=True, progress=progress)
    finally:
        full.notes = notes + full.notes
    gained = full.notes[len(initial_notes):]   # what evaluating the whole module added (chain by chain)
    restrictions = restriction if isinstance(restriction, list) else [restriction] * len(adapters)
    results = [replace(result, notes=adapter.notes + tuple(note for note in gained if note not in result.notes)
                       + result.notes + ((lag_note,) if lag_note else ()), parameters=adapter.names,
                       restricted_to=restriction_label(chosen))
               for result, adapter, chosen in zip(results, adapters, restrictions)]
    return remedies_not_applied(results, resolved, "the restrictions share one batched run", EXTEND_INSTEAD)


def restriction_label(restriction) -> str | tuple[str, ...] | None:
    """A restriction as a result records it: None (all parameters), a pattern, or a tuple of them."""
    return restriction if restriction is None or isinstance(restriction, str) else tuple(restriction)


def estimates_of_restrictions(prepared, model: nn.Module, restrictions: Sequence, adapters: Sequence[FunctionalModel],
                              *, batched: bool, progress: bool | None) -> list[LLCResult]:
    """The estimates of two or more ``restrictions`` of ``model`` (``adapters``, one each) through the
    one call's ``prepared`` data, loss and settings: as one batched run where the sampler allows
    (:func:`why_restrictions_not_batched`), else one after the other; each result notes which, and
    each warning raised names the restriction it is about."""
    reason = why_restrictions_not_batched(prepared.config, restrictions) if batched else "batched=False"

    def named(index: int) -> str:
        return f"restriction {restriction_label(restrictions[index])!r}"

    if reason is not None:
        results = named_warnings(named, lambda: [prepared.estimate(adapter, restriction, progress=progress)
                                                 for restriction, adapter in zip(restrictions, adapters)])
        return [replace(result, notes=result.notes + (f"the restrictions sampled one after the other: {reason}",))
                for result in results]
    full, chains = prepared.adapter(model, traced=False), prepared.config.chains
    results = named_warnings(named, lambda: estimate_llc_restricted(full, adapters, prepared.rows.tensors,
                                                                    prepared.config, restrictions, progress=progress))
    together = sampled_together(len(adapters), "restrictions", chains, full.dim,
                                f"each restriction's {chains} moving only its parameters, the others frozen at w*")
    return [replace(result, notes=result.notes + prepared.notes + (together,)) for result in results]


def check_distinct(restrictions: Sequence, selected: Sequence[tuple[str, ...]]) -> None:
    """A one-line ``ValueError`` when two restrictions of one call select the same parameters
    (``selected``: the names each selects; the same pattern twice, or two patterns naming one
    set): each would be sampled anew for the same λ̂."""
    first: dict[tuple[str, ...], int] = {}
    for index, names in enumerate(selected):
        earlier = first.setdefault(names, index)
        if earlier != index:
            raise ValueError(f"restrict_to entries {earlier} ({restriction_label(restrictions[earlier])!r}) and "
                             f"{index} ({restriction_label(restrictions[index])!r}) select the same parameters "
                             f"({', '.join(names[:4])}{', …' if len(names) > 4 else ''}): give each once")
