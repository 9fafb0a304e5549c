"""Chains that have not mixed, sampled on: after a batched run of several groups of chains (the
checkpoints of a training run), the groups whose chains fail the mixing gate — R-hat above
``RHAT_MAX`` or ESS under ``ESS_MIN`` (rank-normalised split R-hat and bulk ESS, Vehtari,
Gelman, Simpson, Carpenter & Bürkner 2021, §4.3, where running the chains longer is the remedy
named), or the two sides of a start that cooled only some chains apart
(:func:`~sltlab.estimators.llc.sides_z`) — go on from where their chains ended, for as many draws
again, until they pass or the rounds are spent.

Every draw is kept, the first run's included, so a group's result is that of one longer run of
its own chains: only where that run stops depends on the gate. Only the groups that fail pay
for the longer run, and each one's notes say at which lengths it failed and why. A group still
failing when the rounds are spent is reported as failing, with its warning. A single estimate's
own remedies (``LLCConfig.reruns``, ``LLCConfig.fallback``) are not applied to a batched run, and
:func:`remedies_not_applied` says so in each result's notes.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Callable, Sequence

from sltlab.estimators.cooled_share import cooling_not_applied
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.result import LLCResult
from sltlab.estimators.gate import gate_reading, unmixed
from sltlab.estimators.notices import caller_stacklevel

# go_on(indices, their results so far, draws): those groups' results after ``draws`` more draws
# from where their chains ended (at the step each ran at), read from both runs joined
GoOn = Callable[[Sequence[int], Sequence[LLCResult], int], list[LLCResult]]


def sample_on_unmixed(first_run: Callable[[], list[LLCResult]], go_on: GoOn, rounds: int) -> list[LLCResult]:
    """``first_run()``'s results, where unmixed sampled on through ``go_on`` up to ``rounds``
    times, each time doubling the draws. The warnings of results that were sampled on are
    replaced by those of their longer runs; every other warning is issued as it came."""
    if rounds == 0:
        return first_run()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = first_run()
        seen = list(results)
        for _ in range(rounds):
            failing = [index for index, result in enumerate(results) if unmixed(result)]
            if not failing:
                break
            draws = results[failing[0]].config.draws   # every failing group has failed every round so far
            longer = go_on(failing, [results[index] for index in failing], draws)
            seen += longer
            for index, result in zip(failing, longer):
                before = results[index]
                note = (f"its chains failed the mixing gate at {draws} draws ({gate_reading(before.estimate)}) and "
                        f"went on to {result.config.draws}")
                results[index] = replace(result, notes=before.notes + (note,))
    own = {message for result in seen for message in result.warnings}
    category = {str(caught_warning.message): caught_warning.category for caught_warning in caught}
    stacklevel = caller_stacklevel()
    for caught_warning in caught:
        if str(caught_warning.message) not in own:
            warnings.warn(caught_warning.message, stacklevel=stacklevel)
    for result in results:
        for message in result.warnings:
            warnings.warn(message, category[message], stacklevel=stacklevel)
    return results


def remedies_not_applied(results: list[LLCResult], resolved: LLCConfig, why: str,
                         instead: str = "") -> list[LLCResult]:
    """``results``, each with a note that the single estimate's remedies for chains that fail the
    mixing gate, ``resolved.fallback`` and ``resolved.reruns`` (when set), were not applied, and
    ``why``; ``instead`` names what the caller offers in their place, where it offers something.
    A cooling asked for (``anneal``) where no MALA warm-up ran (a step given) is noted too, and the
    results' settings then read ``anneal = 1``, as a single estimate's do."""
    cooling, _ = cooling_not_applied(resolved, warmed_up=resolved.step_size is None)   # a given step: no warm-up
    if cooling is not None:
        results = [replace(result, config=cooling_not_applied(result.config, False)[1]) for result in results]
    notes = () if cooling is None else (cooling,)
    notes += () if resolved.fallback is None else (
        f"fallback {resolved.fallback} was not applied: {why}, so chains that fail the mixing gate are "
        "reported as they are",)
    notes += () if not resolved.reruns else (
        f"reruns = {resolved.reruns} was not applied: {why}" + (f" ({instead})" if instead else ""),)
    return [replace(result, notes=result.notes + notes) for result in results] if notes else results
