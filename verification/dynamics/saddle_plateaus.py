"""The plateaus of a saddle-to-saddle run and the LLC at each, split into sampler error and
estimand bias.

A plateau is a stretch of constant numerical rank of the end-to-end matrix. At its resting
checkpoint λ̂ is estimated against the relabelled problem (targets = the checkpoint's own
outputs), where the checkpoint is an exact minimum whose learning coefficient is Aoyagi's λ_k
(Aoyagi 2024, Neural Networks 172, Thm 1). Beside it stands the finite-n truth nβ·E[ΔL] at the
same centre, nβ and γ from blocked Gibbs sampling
(:func:`sltlab.verification.reference.dln_gibbs.reference_llc`), so that a miss of λ_k reads as
sampler error (λ̂ against that truth) or estimand bias (that truth against λ_k), and the same
estimate against the real data as a negative control (there the checkpoint is a saddle).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from typing import Any, NamedTuple, Sequence

import torch

from sltlab import theory
from sltlab.estimators.problems import STACKS_OWN_LOSSES, estimate_llc_of_problems
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.result import LLCResult
from sltlab.estimators.llc import default_nbeta
from sltlab.estimators.gate import ESS_MIN, RHAT_MAX
from sltlab.estimators.notices import LocalizationWarning
from sltlab.models.deep_linear import DeepLinearNetwork
from sltlab.models.deep_linear_losses import FullDataLoss, StackedFullDataLoss
from sltlab.models.training import TrainingRun
from sltlab.verification.dynamics.saddle_exchange import exchange_llcs
from sltlab.verification.mode_resolution import ABSENT_SDS, LEARNED_SDS
from sltlab.verification.reference.dln_gibbs import reference_llc

TARGET_RELATIVE_ERROR = 0.10   # every plateau's λ̂ within 10 % of λ_k
# Blocked Gibbs for the finite-n truth: 8 chains of 2,000 sweeps after 500; about 30 s on a
# 204-parameter network on one shared core, with an SE near 0.2 % of the truth.
TRUTH_SWEEPS = dict(chains=8, sweeps=2000, burnin=500)
# Both of the study's MALA samplers cool the first half of their warm-up from nβ/10 to nβ
# (:func:`sltlab.estimators.adapt.annealing_stages`). Chains started at w* alone read the plateaus
# of the depth-5 [8,6,6,6,6,8] 3–9 % below their finite-n truths (1–5 % cooled from nβ/10); cooled
# from nβ/100, the teacher-rank plateau of [10,4,4,4,10] read 38 % above its truth (chains that
# hot left the minimum and did not all come back). From nβ/10 every plateau of [10,4,4,4,10],
# [10,5,5,10], [10,5,10] and [12,6,6,6,12] read within 2 % of its truth.
SADDLE_ANNEAL = 10.0
# The plateaus sampled by MALA whose chains fail the mixing gate go on from where they ended,
# doubling their draws, at most this often: on [10,5,5,10] the plateaus of rank 0 and 1 read R-hat
# 1.06 and 1.08 at 5,000 draws, 1.03 and 1.06 at 10,000 and 1.02 and 1.05 at 20,000 (single runs).
# Confirmed on a fresh draw, [7,8,11,11] and [11,5,4,7]: 4 of their 10 plateaus went on, three of
# them to 20,000 draws, and all then passed; [12,6,6,6,12]'s rank 0 still read 1.051 at 20,000.
PLATEAU_EXTENSIONS = 2


class Plateau(NamedTuple):
    """A maximal stretch of checkpoints with one numerical rank, and where it rests."""

    rank: int
    first: int        # index of its first checkpoint
    last: int         # index of its last checkpoint
    resting: int      # index of the checkpoint it rests at (:func:`detect_plateaus`)


def rank_margin(singular_values: torch.Tensor, ranks: Sequence[int], nbeta: float) -> list[float]:
    """At each checkpoint, how well its numerical rank k is resolved at nβ:
    min(σ_k·√nβ / ``LEARNED_SDS``, ``ABSENT_SDS`` / (σ_{k+1}·√nβ)) of the end-to-end singular values
    σ, at least 1 where the rank is resolved (∞ where there is no such σ). The finite-n LLC of a
    rank-k relabelled problem approaches Aoyagi's λ_k only as the k-th mode stands clear of the
    posterior's scale 1/√nβ and the next stays within it: a mode a few SDs from zero is neither
    counted nor left out."""
    root = math.sqrt(nbeta)
    margins = []
    for sigma, rank in zip(singular_values.tolist(), ranks):
        learned = math.inf if rank == 0 else sigma[rank - 1] * root / LEARNED_SDS
        absent = math.inf if rank >= len(sigma) or sigma[rank] <= 0 else ABSENT_SDS / (sigma[rank] * root)
        margins.append(min(learned, absent))
    return margins


def detect_plateaus(ranks: Sequence[int], gradient_norms: Sequence[float], *,
                    margins: Sequence[float] | None = None, min_checkpoints: int = 2) -> tuple[Plateau, ...]:
    """Split a run into stretches of constant numerical rank.

    Stretches shorter than ``min_checkpoints`` (a rank passing through during a transition)
    are dropped and the neighbours they separated merged when they share a rank. Each plateau
    rests at its checkpoint of smallest ‖∇L_n‖: the closest approach to the saddle (or, on the
    last stretch, to the minimum); with ``margins`` (:func:`rank_margin`), at the smallest ‖∇L_n‖
    among its checkpoints whose rank is resolved, or at its best resolved checkpoint where none is.
    Where modes follow each other quickly the quietest checkpoint is often the first, where the
    new mode has only just crossed the rank threshold, or the last, where the next has begun.
    """
    if len(ranks) != len(gradient_norms) or not len(ranks):
        raise ValueError("need one gradient norm per rank, and at least one checkpoint")
    if min_checkpoints < 1:
        raise ValueError(f"min_checkpoints must be at least 1, got {min_checkpoints}")
    runs: list[list[int]] = []   # [rank, first, last]
    for index, rank in enumerate(int(r) for r in ranks):
        if runs and runs[-1][0] == rank:
            runs[-1][2] = index
        else:
            runs.append([rank, index, index])
    kept: list[list[int]] = []
    for rank, first, last in runs:
        if last - first + 1 < min_checkpoints:
            continue
        if kept and kept[-1][0] == rank:
            kept[-1][2] = last
        else:
            kept.append([rank, first, last])
    if margins is not None and len(margins) != len(ranks):
        raise ValueError("need one margin per rank")
    return tuple(Plateau(rank, first, last, _resting(range(first, last + 1), gradient_norms, margins))
                 for rank, first, last in kept)


def _resting(stretch: range, gradient_norms: Sequence[float], margins: Sequence[float] | None) -> int:
    """The checkpoint of ``stretch`` with the smallest gradient norm among those whose rank is
    resolved (all without ``margins``); the best resolved where none is."""
    resolved = [i for i in stretch if margins is None or margins[i] >= 1]
    if not resolved:
        return max(stretch, key=lambda i: margins[i])
    return min(resolved, key=lambda i: float(gradient_norms[i]))


def rises_one_per_stage(plateaus: Sequence[Plateau]) -> bool:
    """True when the plateaus' ranks are 0, 1, 2, … in order: one mode learned per stage."""
    return [p.rank for p in plateaus] == list(range(len(plateaus)))


def relabelled_loss(network: DeepLinearNetwork, x: torch.Tensor, position: torch.Tensor) -> FullDataLoss:
    """L_n of the problem whose targets are the network's own outputs y = f_w(x) at ``position``
    [d], on the same inputs: ``position`` is an exact minimum of it, with no noise."""
    with torch.no_grad():
        targets = network.forward(position.unsqueeze(0), x)[0]
    return FullDataLoss(network, x, targets)


def stacked_relabelled(losses: Sequence[FullDataLoss], chains: int) -> StackedFullDataLoss:
    """The checkpoints' relabelled losses side by side, ``chains`` consecutive chain rows each."""
    return StackedFullDataLoss(losses, torch.arange(len(losses)).repeat_interleave(chains))


def sampled_plateaus(plateaus: Sequence[Plateau], run: TrainingRun, network: DeepLinearNetwork, x: torch.Tensor,
                     n: int, sampler: LLCConfig, progress: bool, *,
                     extensions: int = PLATEAU_EXTENSIONS) -> list[dict[str, Any]]:
    """λ̂ at every plateau's resting checkpoint (relabelled problem) by ``sampler``
    (:func:`sltlab.estimators.problems.estimate_llc_of_problems`: with MALA all plateaus in one
    batched run, each warming up its own step; another sampler takes one plateau at a time); the
    plateaus whose chains fail the mixing gate go on from where they ended, up to ``extensions``
    times, each time doubling their draws, and their notes say so."""
    positions = [run.positions[plateau.resting] for plateau in plateaus]
    losses = [relabelled_loss(network, x, position) for position in positions]
    together = sampler.sampler in STACKS_OWN_LOSSES
    per_run, stack = (len(losses), stacked_relabelled) if together else (1, lambda own, chains: own[0])
    results = []
    for first in range(0, len(losses), per_run):
        results += estimate_llc_of_problems(losses[first:first + per_run], positions[first:first + per_run], (),
                                            replace(sampler, extend_unmixed=extensions), stack=stack, n=n,
                                            progress=progress)
    return [{**_summary(result), "notes": list(result.notes)} for result in results]


def exchanged_plateaus(plateaus: Sequence[Plateau], run: TrainingRun, network: DeepLinearNetwork, x: torch.Tensor,
                       n: int, sampler: LLCConfig, progress: bool) -> list[dict[str, Any]]:
    """λ̂ at every plateau's resting checkpoint (relabelled problem) by replica exchange at
    ``sampler``'s nβ and γ, all plateaus in one run
    (:func:`sltlab.verification.dynamics.saddle_exchange.exchange_llcs`)."""
    positions = [run.positions[plateau.resting] for plateau in plateaus]
    return exchange_llcs([relabelled_loss(network, x, position) for position in positions], positions,
                         sampler.nbeta or default_nbeta(n), sampler.localization, seed=sampler.seed,
                         progress=progress)


def fails_mixing_gate(row: dict[str, Any]) -> bool:
    """Whether a plateau's estimate (its ``rhat`` and ``ess``) fails the mixing gate: R-hat above
    ``RHAT_MAX`` or ESS under ``ESS_MIN``, or either unread."""
    return row["rhat"] is None or row["rhat"] > RHAT_MAX or row["ess"] is None or row["ess"] < ESS_MIN


def exchange_unmixed(plateaus: Sequence[Plateau], estimated: Sequence[dict[str, Any]], run: TrainingRun,
                     network: DeepLinearNetwork, x: torch.Tensor, n: int, sampler: LLCConfig,
                     progress: bool) -> list[dict[str, Any]]:
    """``estimated`` (:func:`sampled_plateaus`) with every plateau whose chains still fail the
    mixing gate estimated again by replica exchange (:func:`exchanged_plateaus`, all of them in
    one run), MALA's reading kept in ``mala_unmixed`` and named in the notes.

    Chosen on [3,3,10] (random draw ``default_rng(20261211)``), whose quick rank-1 plateau MALA
    read 14 % above its finite-n truth at R-hat 1.59 after 20,000 draws and replica exchange
    0.0 % above it (R-hat 1.12); exchange then passed the gate at every plateau of [10,2,10],
    [8,3,8], [4,3,4] and, from the aligned start, [10,5,10], within 1.1 % of each truth, where
    MALA failed it at one to three plateaus each (R-hat 1.07–1.16). On a draw made after
    (``default_rng(20261212)``) it answered four plateaus: one MALA read 27 % above its truth
    (R-hat 2.62) came to +1.3 %, and the other three stayed within 1.7 % (one passing the gate,
    one reading a worse R-hat than MALA's 1.054)."""
    failing = [index for index, row in enumerate(estimated) if fails_mixing_gate(row)]
    answered = list(estimated)
    if not failing:
        return answered
    for index, exchanged in zip(failing, exchanged_plateaus([plateaus[i] for i in failing], run, network, x, n,
                                                            sampler, progress)):
        mala = {name: estimated[index][name] for name in ("llc_mean", "llc_se", "rhat", "ess", "draws")}
        read = ("diverged" if mala["llc_mean"] is None else f"λ̂ {mala['llc_mean']:.3f} ± {mala['llc_se'] or 0:.3f}, "
                f"R-hat {mala['rhat'] or math.nan:.3f}, ESS {mala['ess'] or 0:.0f}")
        note = (f"MALA's chains still failed the mixing gate at {mala['draws']:,} draws "
                f"({read}); replica exchange answered")
        answered[index] = {**exchanged, "mala_unmixed": mala, "notes": [*estimated[index]["notes"], note]}
    return answered


def negative_controls(plateaus: Sequence[Plateau], run: TrainingRun, real_loss: FullDataLoss, n: int,
                      sampler: LLCConfig) -> list[LLCResult]:
    """``sampler``'s estimate at every plateau's resting checkpoint against the real teacher data,
    where the checkpoint is a saddle (module docstring): all plateaus in one run, each warming
    up or choosing its own step (:func:`sltlab.estimators.problems.estimate_llc_of_problems`)."""
    if not plateaus:
        return []
    with warnings.catch_warnings():   # a saddle is no minimum: a negative λ̂ is the control's point, in its row
        warnings.simplefilter("ignore", LocalizationWarning)
        return estimate_llc_of_problems([real_loss] * len(plateaus), [run.positions[p.resting] for p in plateaus],
                                        (), sampler, stack=lambda losses, chains: losses[0], n=n)


def plateau_row(plateau: Plateau, run: TrainingRun, network: DeepLinearNetwork, x: torch.Tensor,
                control: LLCResult, widths: Sequence[int], n: int, sampler: LLCConfig, *,
                estimated: dict[str, Any]) -> dict[str, Any]:
    """λ̂ at the plateau's resting checkpoint, ``estimated`` (:func:`sampled_plateaus`, or
    :func:`exchanged_plateaus`, whose estimates hold the ladder's ``exchange``), beside λ_k and
    the finite-n truth (module docstring), with its negative ``control`` (:func:`negative_controls`)."""
    position = run.positions[plateau.resting]
    exact = theory.deep_linear(list(widths), plateau.rank)
    loss = relabelled_loss(network, x, position)
    nbeta = sampler.nbeta or default_nbeta(n)
    truth = reference_llc(loss, position, nbeta, sampler.localization, **TRUTH_SWEEPS)
    mean = estimated["llc_mean"]
    relative = None if mean is None else (mean - exact.lam_float) / exact.lam_float
    return {
        "rank": plateau.rank,
        "first_step": int(run.steps[plateau.first]), "last_step": int(run.steps[plateau.last]),
        "checkpoint_step": int(run.steps[plateau.resting]),
        "gradient_norm": float(run.gradient_norms[plateau.resting]),
        "resolution": resolution_at(run.singular_values[plateau.resting], plateau.rank, nbeta),
        "lambda_exact": str(exact.lam), "lambda_exact_float": exact.lam_float,
        "multiplicity_exact": exact.multiplicity,
        "sampler": "replica exchange" if "exchange" in estimated else sampler.sampler,
        **estimated,
        "rel_error": relative,
        "within_target": relative is not None and abs(relative) <= TARGET_RELATIVE_ERROR,
        "finite_n_truth": {"method": "blocked Gibbs at the same centre, nβ and γ", "mean": truth.mean,
                           "se": truth.standard_error, "rhat": truth.rhat},
        "sampler_error": None if mean is None else (mean - truth.mean) / truth.mean,
        "estimand_bias": (truth.mean - exact.lam_float) / exact.lam_float,
        "negative_control_real_data": {
            "note": "the same estimator against the real teacher data, where the checkpoint is a saddle, not "
                    "a minimum: not an LLC, reported only to show why the relabelling is needed",
            **_summary(control), "warnings": list(control.warnings)},
    }


def resolution_at(singular_values: torch.Tensor, rank: int, nbeta: float) -> dict[str, Any]:
    """The resting checkpoint's k-th and (k+1)-th end-to-end singular values in posterior
    standard deviations 1/√nβ (None where there is none), and whether its rank is resolved
    (:func:`rank_margin`)."""
    root, sigma = math.sqrt(nbeta), singular_values.tolist()
    return {"learned_mode_sds": None if rank == 0 else sigma[rank - 1] * root,
            "next_mode_sds": None if rank >= len(sigma) else sigma[rank] * root,
            "resolved": rank_margin(singular_values.unsqueeze(0), [rank], nbeta)[0] >= 1,
            "learned_at_least_sds": LEARNED_SDS, "next_at_most_sds": ABSENT_SDS}


def _summary(result: LLCResult) -> dict[str, Any]:
    estimate = result.estimate
    return {"llc_mean": estimate.mean, "llc_se": estimate.standard_error, "rhat": estimate.rhat,
            "ess": estimate.ess, "diverged_chains": estimate.diverged_chains, "draws": result.config.draws,
            "step_size": result.config.step_size, "step_size_rule": result.step_size_rule,
            "sampling_seconds": result.trace.seconds}
