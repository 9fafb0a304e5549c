"""Does the one call return the right number on nonlinear networks nobody tuned it on?
``sltlab bench --only head-accuracy``.

Every other accuracy bench judges linear networks, whose λ is known. A nonlinear network's λ is
not, but its last layer's is: restricted to the head of f(x) = W·h(x) + b, every other layer frozen,
the unit-variance Gaussian loss L_n = (1/n)·Σ ½‖y − W·h(x) − b‖² is quadratic in θ = (W, b), with
gradient g and Hessian H = I_out ⊗ Σ̃ at the centre, Σ̃ = (1/n)·Σ h̃h̃ᵀ the second moments of the
features with a 1 appended (h̃ = (h(x), 1)). The localised posterior exp(−nβ·L_n − γ‖θ − θ*‖²/2) is
then Gaussian, with precision P = nβ·H + γ·I and mean offset μ = −nβ·P⁻¹g, and the finite-n LLC is
exactly

    nβ·E[L_n(θ) − L_n(θ*)] = nβ·(gᵀμ + ½·μᵀHμ) + ½·tr(nβ·H·P⁻¹),

which at a restricted critical point (g = 0) is ½·Σ nβσ/(nβσ + γ) over H's eigenvalues σ. The
loss is a quadratic form of rank out·rank(Σ̃) in θ, regular in the span of the features, so
λ = out·rank(Σ̃)/2 with m = 1 (Watanabe 2009, §1.4): dead ReLU units and collinear features lower
the rank, and the directions they leave flat are held by γ alone, where each adds nothing to the
truth and must add nothing to λ̂.

The networks are drawn at random (:func:`random_head_networks`), nobody having chosen a setting on
them: in turn an MLP of the fallback bench's draw (2–6 inputs, one to three hidden layers of width
4–32, tanh or ReLU, 1–3 outputs, 500–2,000 rows, 1,000 Adam steps), a CNN (a convolution of 2–4
filters on 6×6 images, tanh, ReLU or GELU, 1–3 outputs, 2,000 rows, 1,000 steps) and a transformer
encoder (sequences of five 3-vectors embedded to width 8–16, one ``TransformerEncoderLayer`` with
LayerNorm, the mean over positions, 1–3 outputs, 1,000 rows, 300 steps), each trained by Adam on
every row at once. LayerNorm makes its features sum to a constant up to its affine weights, one
flat direction of the head's loss that λ must not count.
Each estimate goes through :func:`sltlab.estimators.estimate_llc` with
``restrict_to`` the head's weight and bias, under the module bench's settings, and is judged as
the module bench judges one (:func:`~sltlab.verification.bench.module_accuracy.judged_against`)
against the truth above at its own centre, nβ and γ, computed in float64 by autograd on the
module's own loss: a miss is |λ̂ − t| > 3·SE + ``BIAS_BUDGET``·t, silent when it passes the mixing
gate and raises no estimate warning, and the target is that the defaults have none.
"""

from __future__ import annotations

import copy
import random
from dataclasses import asdict
from functools import partial
from typing import Callable

import torch
from torch import nn
from torch.func import functional_call

from sltlab.estimators.module import MODULE_DEFAULTS
from sltlab.verification.bench.fallback import random_mlps, train_full_batch
from sltlab.verification.bench.module_accuracy import (BIAS_BUDGET, CONFIGS, format_judged, judged_against,
                                                        judged_networks, defaults_meet_target, warned_estimate)

CNN_ROWS = 2_000
ENCODER_ROWS = 1_000
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}
RANK_TOLERANCE = 1e-9   # of the largest eigenvalue of H: below it a direction counts as flat


def random_head_networks(count: int, seed: int) -> dict[str, Callable[[], tuple[nn.Module, tuple, str]]]:
    """``count`` trained networks drawn with ``seed``, in turn an MLP of the fallback bench's
    random draw (:func:`~sltlab.verification.bench.fallback.random_mlps`), a CNN
    (:func:`_random_cnn`) and a transformer encoder (:func:`_random_encoder`), by name, each built
    on call as (module whose last ``Linear`` is its head, (x, y), loss)."""
    if count < 1:
        raise ValueError(f"--count must be at least 1 for a random draw of networks, got {count}")
    mlps = iter(random_mlps((count + 2) // 3, seed).items())
    draw, networks = random.Random(seed), []
    for index in range(count):
        if index % 3 == 0:
            networks.append(next(mlps))
            continue
        outputs, activation, torch_seed = draw.randint(1, 3), draw.choice(sorted(ACTIVATIONS)), seed * 100 + 50 + index
        if index % 3 == 1:
            channels = draw.randint(2, 4)
            name, rows = f"CNN 1×6×6 → {channels}×3×3 conv, {activation} → {outputs}", CNN_ROWS
            build = partial(_random_cnn, channels, outputs, ACTIVATIONS[activation], torch_seed)
        else:
            width = draw.choice([8, 12, 16])
            name, rows = f"encoder 5×3 → {width}, 2 heads, {activation} → {outputs}", ENCODER_ROWS
            build = partial(_random_encoder, width, outputs, activation, torch_seed)
        networks.append((f"{name}, n = {rows:,} (seed {seed}, draw {index})", build))
    return dict(networks)


def _random_cnn(channels: int, outputs: int, activation: type[nn.Module], torch_seed: int) -> tuple:
    """A convolution of ``channels`` 3×3 filters on 6×6 images, ``activation`` and a ``Linear``
    head, trained for 1,000 full-batch Adam steps on y = sin(x·T/6) + N(0, 0.1²), x ~ N(0, I),
    T Gaussian [36, outputs], everything drawn from ``torch_seed`` in this order."""
    torch.manual_seed(torch_seed)
    x = torch.randn(CNN_ROWS, 1, 6, 6)
    y = torch.sin(x.flatten(1) @ torch.randn(36, outputs) / 6) + 0.1 * torch.randn(CNN_ROWS, outputs)
    cnn = nn.Sequential(nn.Conv2d(1, channels, 3), activation(), nn.Flatten(), nn.Linear(channels * 16, outputs))
    train_full_batch(cnn, lambda: nn.functional.mse_loss(cnn(x), y), steps=1000)
    return cnn, (x, y), "mse"


class PooledEncoder(nn.Module):
    """Sequences of 3-vectors embedded to ``width``, one ``TransformerEncoderLayer`` (2 heads,
    LayerNorm, no dropout), the mean over positions and a ``Linear`` head."""

    def __init__(self, width: int, outputs: int, activation: str):
        super().__init__()
        self.embed = nn.Linear(3, width)
        self.encoder = nn.TransformerEncoderLayer(width, 2, dim_feedforward=2 * width, dropout=0.0,
                                                  activation=activation if activation != "tanh" else torch.tanh,
                                                  batch_first=True)
        self.head = nn.Linear(width, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x)).mean(1))


def _random_encoder(width: int, outputs: int, activation: str, torch_seed: int) -> tuple:
    """A :class:`PooledEncoder` trained for 300 full-batch Adam steps on sequences x of 5
    positions, x ~ N(0, I), y = sin(mean over positions of x·T) + N(0, 0.1²), T Gaussian [3,
    outputs], everything drawn from ``torch_seed`` in this order."""
    torch.manual_seed(torch_seed)
    x = torch.randn(ENCODER_ROWS, 5, 3)
    y = torch.sin(x.mean(1) @ torch.randn(3, outputs)) + 0.1 * torch.randn(ENCODER_ROWS, outputs)
    encoder = PooledEncoder(width, outputs, activation)
    train_full_batch(encoder, lambda: nn.functional.mse_loss(encoder(x), y), steps=300)
    return encoder, (x, y), "mse"


def head_names(network: nn.Module) -> tuple[str, str]:
    """The weight and bias of ``network``'s last ``Linear`` module, its head."""
    name = [name for name, module in network.named_modules() if isinstance(module, nn.Linear)][-1]
    return f"{name}.weight", f"{name}.bias"


def head_truth(network: nn.Module, data: tuple, names: tuple[str, ...], center: torch.Tensor, nbeta: float,
               gamma: float) -> tuple[float, float]:
    """The finite-n LLC of the head's Gaussian localised posterior at ``center`` (the parameters
    ``names`` flattened in turn) and λ = out·rank(Σ̃)/2, in float64: g and H by autograd of the
    module's mean loss, the expectation as in the module docstring."""
    network = copy.deepcopy(network).double().requires_grad_(False)
    x, y = (tensor.double() for tensor in data)
    shapes = [dict(network.named_parameters())[name].shape for name in names]

    def loss(flat: torch.Tensor) -> torch.Tensor:
        values = dict(zip(names, (part.reshape(shape) for part, shape in
                                  zip(flat.split([shape.numel() for shape in shapes]), shapes))))
        return 0.5 * ((functional_call(network, values, (x,)) - y) ** 2).sum(-1).mean()

    theta = center.detach().double()
    gradient, hessian = torch.func.grad(loss)(theta), torch.func.jacrev(torch.func.grad(loss))(theta)
    curvature, directions = torch.linalg.eigh(hessian)   # H = Q·diag(σ)·Qᵀ, so P = Q·diag(nβσ + γ)·Qᵀ
    along = directions.T @ gradient                        # g and μ in H's eigenbasis
    offset = -nbeta * along / (nbeta * curvature + gamma)
    truth = nbeta * (along @ offset + 0.5 * (curvature * offset ** 2).sum()) \
        + 0.5 * (nbeta * curvature / (nbeta * curvature + gamma)).sum()
    outputs = y.shape[-1]
    rank = int((curvature > RANK_TOLERANCE * curvature.max()).sum()) // outputs   # each σ of Σ̃ out times
    return float(truth), outputs * rank / 2


def head_accuracy_rows(count: int = 4, seeds: tuple[int, ...] = (0, 1), *, shorter: dict | None = None,
                       progress: bool = False) -> dict:
    """For each random draw (``seeds``) of ``count`` networks, the head's LLC under every setting
    of the module bench's ``CONFIGS`` against its exact truth; per draw and setting, how many
    passed the gate, missed, and missed silently. ``shorter`` overrides settings of every
    estimate (a quick check of the bench itself)."""
    def judge(built: tuple, name: str, settings: dict) -> list[tuple[str, dict]]:
        network, data, _ = built   # every one a regression: the truth is that of "mse"
        result, warned, seconds = warned_estimate(network, data, {"restrict_to": head_names(network), "loss": "mse",
                                                                  **settings, **(shorter or {})})
        truth, lam = head_truth(network, data, result.parameters, result.localization.center, result.nbeta,
                                result.config.localization)
        return [(name, judged_against(result, truth, 0.0, lam, warned, seconds))]

    draws = judged_networks(seeds, CONFIGS, judge, lambda seed: list(random_head_networks(count, seed).items()),
                            unit="estimate", progress=progress)
    return {"bias_budget": BIAS_BUDGET, "defaults": asdict(MODULE_DEFAULTS), "shorter": shorter or {}, "draws": draws,
            "meets_target": defaults_meet_target(draws, CONFIGS)}


def format_head_accuracy(result: dict) -> str:
    return format_judged(result, "estimate_llc restricted to the last layer of random trained MLPs, CNNs and "
                                 "transformer encoders",
                         against="the exact finite-n LLC of the head's Gaussian localised posterior")
