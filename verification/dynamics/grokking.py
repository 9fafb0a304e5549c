"""Grokking on modular addition, with the LLC along every seed's training run and a
sensitivity check of its shape over several sampler settings.

A network trained with weight decay on a fraction of the pairs (a, b) ↦ (a + b) mod p first
memorises them and generalises much later (Power et al. 2022, arXiv:2201.02177; Nanda et al.
2023, ICLR). The local learning coefficient (Lau, Furman, Wang, Murfet & Wei 2023, Def. 3.1),
estimated at every checkpoint on the training data only, is expected to rise through
memorisation and fall through grokking, tracking the test loss it never sees. Every seed's
curve has its step calibrated at its memorisation checkpoint
(:mod:`~sltlab.verification.dynamics.grokking_along`), with its mixing at every checkpoint and
its stages; the targets are each seed's Spearman correlation with its test loss and every
checkpoint's R-hat. Its absolute value depends on the sampler settings (none of them is checked
against an exact λ here), so the first seed's curve is also reported under several fixed
settings, its shape and Spearman correlation under each, never a single number."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from scipy.stats import spearmanr

from sltlab.estimators.batched import estimate_llc_at_centers
from sltlab.estimators.config import LLCConfig
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.sampling import progress_bar
from sltlab.estimators.functional import FunctionalModel
from sltlab.estimators.sample_losses import cross_entropy
from sltlab.estimators.gate import RHAT_MAX
from sltlab.models.modular import (AdamWConfig, ModularAdditionNetwork, ModularRun, ModularSplit,
                            modular_addition_split, train_modular)
from sltlab.verification.dynamics.cache import cached_json, cached_tensors
from sltlab.verification.dynamics.grokking_along import (CURVE_CONFIG, CURVE_EXTENSIONS, curve_mixing, curve_stages,
                                                         held_by_gamma, seed_curve)

TARGET_SPEARMAN = 0.9   # for every seed's calibrated curve (reported for the sensitivity check's settings)
MAX_MODULUS = 1000   # 10⁶ pairs, held and trained on at once: --modulus 100000 had failed allocating 80 GB


@dataclass(frozen=True)
class GrokkingSetup:
    """The task, the network, full-batch AdamW and when to checkpoint.

    Checkpoints fall every ``early_every`` steps up to ``early_until`` (memorisation is fast)
    and every ``checkpoint_every`` steps after. Memorisation is the first checkpoint with train
    accuracy ≥ ``memorised_accuracy``, grokking the first with test accuracy ≥
    ``grokked_accuracy``. ``seeds`` are trained to count how many grok; the LLC is measured
    along the first of them.
    """

    modulus: int = 53
    train_fraction: float = 0.4
    embedding_dim: int = 32
    hidden: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1.0
    steps: int = 10_000
    early_every: int = 25
    early_until: int = 400
    checkpoint_every: int = 250
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    memorised_accuracy: float = 0.99
    grokked_accuracy: float = 0.95

    def validate(self) -> None:
        if not 2 <= self.modulus <= MAX_MODULUS or not 0 < self.train_fraction < 1:
            raise ValueError(f"need 2 ≤ modulus ≤ {MAX_MODULUS:,} (every one of its modulus² pairs is held at once) "
                             f"and 0 < train fraction < 1, got {self.modulus}, {self.train_fraction}")
        if min(self.embedding_dim, self.hidden, self.steps, self.early_every, self.checkpoint_every) < 1:
            raise ValueError("widths, steps and checkpoint intervals must be positive")
        if not (0 < self.learning_rate < math.inf and 0 <= self.weight_decay < math.inf):
            raise ValueError(f"need a finite learning rate > 0 and weight decay ≥ 0, got {self.learning_rate}, "
                             f"{self.weight_decay}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"need at least one seed, each once, got {list(self.seeds)}")

    def checkpoint_steps(self) -> list[int]:
        early = range(0, min(self.early_until, self.steps), self.early_every)
        return sorted(set(early) | set(range(0, self.steps + 1, self.checkpoint_every)) | {self.steps})


class SamplerSetting(NamedTuple):
    name: str
    config: LLCConfig


# Batches of 128 training pairs, 4 chains × 200 draws, at the checkpoint itself (w* = the
# checkpoint; nβ = n/log n of the training pairs). The first setting uses the automatic
# RMSProp-SGLD step rule; the two plain-SGLD ones are hand-chosen settings measured on this
# network (the second is known to be unconverged at 200 draws: it tests whether the shape
# survives).
SENSITIVITY_SETTINGS = (
    SamplerSetting("rmsprop-sgld, automatic step, γ = 100",
                   LLCConfig(sampler="rmsprop_sgld", chains=4, draws=200, localization=100.0, batch_size=128,
                             localize_at="true_parameter")),
    SamplerSetting("sgld, step 1e-3, γ = 100",
                   LLCConfig(sampler="sgld", chains=4, draws=200, step_size=1e-3, localization=100.0,
                             batch_size=128, localize_at="true_parameter")),
    SamplerSetting("sgld, step 3e-4, γ = 10",
                   LLCConfig(sampler="sgld", chains=4, draws=200, step_size=3e-4, localization=10.0,
                             batch_size=128, localize_at="true_parameter")),
)


def build_task(setup: GrokkingSetup, seed: int) -> tuple[ModularAdditionNetwork, ModularSplit]:
    """The seeded network and split: one generator draws the weights, then the split."""
    generator = torch.Generator().manual_seed(seed)
    network = ModularAdditionNetwork(setup.modulus, embedding_dim=setup.embedding_dim, hidden=setup.hidden,
                                     generator=generator)
    return network, modular_addition_split(setup.modulus, setup.train_fraction, generator=generator)


def train_seed(setup: GrokkingSetup, seed: int, *, cache: Path | None = None,
               progress: bool = False) -> tuple[ModularRun, ModularAdditionNetwork, ModularSplit]:
    """The checkpointed run of one seed (from ``cache`` when there)."""
    setup.validate()
    network, split = build_task(setup, seed)
    optimizer = AdamWConfig(learning_rate=setup.learning_rate, weight_decay=setup.weight_decay, steps=setup.steps)

    def train() -> dict[str, torch.Tensor]:
        return train_modular(network, split, optimizer, setup.checkpoint_steps(), progress=progress)._asdict()

    if cache is None:
        return ModularRun(**train()), network, split
    tensors, _ = cached_tensors(cache, "grokking-run", {**_training_key(setup), "seed": seed}, train)
    return ModularRun(**tensors), network, split


def first_step_reaching(steps: torch.Tensor, values: torch.Tensor, threshold: float) -> int | None:
    """The first step whose value is ≥ ``threshold``, or None if none is."""
    reached = (values >= threshold).nonzero()
    return int(steps[reached[0, 0]]) if len(reached) else None


def llc_along_run(run: ModularRun, network: ModularAdditionNetwork, split: ModularSplit,
                  config: LLCConfig, *, progress: bool = False, label: str = "LLC") -> dict[str, Any]:
    """λ̂ ± SE at every checkpoint of ``run``, on the training pairs only. With a given step size
    every checkpoint is sampled in one batched run of K·C chains, each checkpoint's C at its own
    centre (:func:`~sltlab.estimators.batched.estimate_llc_at_centers`); an automatic step is
    each checkpoint's own rule, so those checkpoints are estimated one after the other."""
    model = FunctionalModel(network, cross_entropy)
    data = (split.train_pairs, split.train_labels)
    if config.step_size is not None:
        results = estimate_llc_at_centers(model, list(run.positions), data, config, progress=progress)
    else:
        results = []
        bar = progress_bar(len(run.steps), label, enabled=progress, unit="checkpoint")
        for position in run.positions:
            results.append(estimate_llc_from_loss(model, position, data, config, compare_with_minimum=False))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    return {"llc_mean": [result.estimate.mean for result in results],
            "llc_se": [result.estimate.standard_error for result in results],
            "rhat": [result.estimate.rhat for result in results],
            "diverged_chains": [len(result.estimate.diverged_chains) for result in results],
            "step_size": [result.config.step_size for result in results],
            "sampling_seconds": sum(result.trace.seconds for result in results),
            "nbeta": results[-1].config.nbeta}


def _spearman(first: list[float], second: list[float]) -> float | None:
    """Spearman's ρ of two equally long lists; None under three points."""
    return float(spearmanr(first, second).statistic) if len(first) > 2 else None


def shape_summary(steps: list[int], llc: list[float | None], test_loss: list[float],
                  memorised: int | None, grokked: int | None, train_loss: list[float] | None = None) -> dict[str, Any]:
    """Spearman correlation of λ̂ with the test loss, and whether λ̂ rises through memorisation
    (λ̂ at the memorisation step above λ̂ at step 0) and falls through grokking (λ̂ at the grok
    step below λ̂ at the memorisation step).

    Beside the target's correlation over the whole run stand two diagnostics that split it where
    it is won or lost, never a substitute for it: ρ from λ̂'s peak to the test loss's peak (the
    test loss can go on rising after memorisation, as the network grows confident in wrong
    answers) and ρ from the test loss's peak on (grokking); and, given the ``train_loss``, ρ of λ̂
    with the training loss from λ̂'s peak on (what λ̂ follows once it falls)."""
    kept = [i for i, value in enumerate(llc) if value is not None]
    rho = _spearman([llc[i] for i in kept], [test_loss[i] for i in kept])
    at = {step: llc[i] for i, step in enumerate(steps)}
    rises = falls = None
    if memorised is not None and None not in (at.get(0), at.get(memorised)):
        rises = at[memorised] > at[0]
        if grokked is not None and at.get(grokked) is not None:
            falls = at[grokked] < at[memorised]
    llc_peak = max(kept, key=lambda i: llc[i]) if kept else None
    test_peak = max(range(len(test_loss)), key=lambda i: test_loss[i])
    rising_test = [i for i in kept if llc_peak is not None and llc_peak <= i <= test_peak]
    grokking = [i for i in kept if i >= test_peak]
    return {"spearman_with_test_loss": rho,
            "spearman_above_target": rho is not None and rho > TARGET_SPEARMAN,
            "rises_through_memorisation": rises, "falls_through_grokking": falls,
            "peak_step": steps[llc_peak] if kept else None, "test_loss_peak_step": steps[test_peak],
            "spearman_llc_peak_to_test_peak": _spearman([llc[i] for i in rising_test],
                                                        [test_loss[i] for i in rising_test]),
            "spearman_from_test_peak": _spearman([llc[i] for i in grokking], [test_loss[i] for i in grokking]),
            "spearman_with_train_loss_from_llc_peak": None if train_loss is None else _spearman(
                [llc[i] for i in kept if i >= llc_peak], [train_loss[i] for i in kept if i >= llc_peak])}


def grokking_study(setup: GrokkingSetup = GrokkingSetup(),
                   settings: tuple[SamplerSetting, ...] = SENSITIVITY_SETTINGS, *, curve: LLCConfig = CURVE_CONFIG,
                   extend_unmixed: int = CURVE_EXTENSIONS, cache: Path | None = None,
                   progress: bool = False) -> dict[str, Any]:
    """Train every seed; the LLC along every seed's run with ``curve``'s settings, a step
    calibrated at its memorisation checkpoint and unmixed checkpoints going on up to
    ``extend_unmixed`` times (:func:`~sltlab.verification.dynamics.grokking_along.seed_curve`),
    and along the first seed's run under every sampler setting of the sensitivity check; a
    JSON-ready result. With ``cache``, runs and LLC curves are reused when their settings match."""
    setup.validate()
    for config in (curve, *(setting.config for setting in settings)):
        config.validate()
    seeds, study_seed, study, sampled_afresh = [], setup.seeds[0], None, False
    for seed in setup.seeds:
        trained = train_seed(setup, seed, cache=cache, progress=progress)
        study = trained if seed == study_seed else study
        run = trained[0]
        memorised = first_step_reaching(run.steps, run.train_accuracy, setup.memorised_accuracy)
        grokked = first_step_reaching(run.steps, run.test_accuracy, setup.grokked_accuracy)

        def measure(trained=trained, memorised=memorised) -> dict[str, Any]:
            return seed_curve(*trained, curve, memorised, extend_unmixed=extend_unmixed, progress=progress)

        key = {"setup": _training_key(setup), "seed": seed, "curve": asdict(curve), "extend_unmixed": extend_unmixed}
        llc, loaded = (measure(), False) if cache is None else cached_json(cache, "grokking-curve", key, measure)
        sampled_afresh |= not loaded
        if "llc_mean" in llc:
            steps = run.steps.tolist()
            llc.update(shape_summary(steps, llc["llc_mean"], run.test_loss.tolist(), memorised, grokked,
                                     run.train_loss.tolist()),
                       **curve_mixing(llc["rhat"], llc["ess"]), **held_by_gamma(llc, curve.localization),
                       **curve_stages(steps, llc["llc_mean"], llc["llc_se"], memorised, grokked))
        seeds.append({"seed": seed, "memorisation_step": memorised, "grokking_step": grokked,
                      "final_train_accuracy": float(run.train_accuracy[-1]),
                      "final_test_accuracy": float(run.test_accuracy[-1]), "test_accuracy": run.test_accuracy.tolist(),
                      "test_loss": run.test_loss.tolist(), "curve": llc})
    run, network, split = study
    steps, test_loss = run.steps.tolist(), run.test_loss.tolist()
    curves = []
    for setting in settings:
        def measure(setting=setting) -> dict[str, Any]:
            return llc_along_run(run, network, split, setting.config, progress=progress, label=setting.name)

        key = {"setup": _training_key(setup), "seed": study_seed, "sampler": asdict(setting.config)}
        values, loaded = (measure(), False) if cache is None else cached_json(cache, "grokking-llc", key, measure)
        sampled_afresh |= not loaded
        shape = shape_summary(steps, values["llc_mean"], test_loss, seeds[0]["memorisation_step"],
                              seeds[0]["grokking_step"])
        curves.append({"name": setting.name, "config": asdict(setting.config), **values, **shape})
    grokked_seeds = sum(row["grokking_step"] is not None for row in seeds)
    measured = [row["curve"] for row in seeds]
    return {
        "setup": asdict(setup), "dim": sum(p.numel() for p in network.parameters()),
        "n_train": len(split.train_labels), "n_test": len(split.test_labels), "study_seed": study_seed,
        "steps": steps, "train_loss": run.train_loss.tolist(), "test_loss": test_loss,
        "train_accuracy": run.train_accuracy.tolist(), "test_accuracy": run.test_accuracy.tolist(),
        "seeds": seeds, "grokked_seeds": grokked_seeds, "all_seeds_grok": grokked_seeds == len(seeds),
        "curve_config": asdict(curve), "curve_extensions": extend_unmixed, "sensitivity": curves,
        "target_spearman": TARGET_SPEARMAN, "target_rhat": RHAT_MAX,
        "all_settings_above_target": all(row["spearman_above_target"] for row in curves),
        "every_seed_spearman_above_target": all(c.get("spearman_above_target", False) for c in measured),
        "every_checkpoint_rhat_within_target": all(c.get("rhat_within_target", False) for c in measured),
        "llc_from_cache": not sampled_afresh,
    }


def _training_key(setup: GrokkingSetup) -> dict[str, Any]:
    """The settings a run depends on (not the seed list or the accuracy thresholds)."""
    return {name: value for name, value in asdict(setup).items()
            if name not in ("seeds", "memorised_accuracy", "grokked_accuracy")}
