"""Modular addition (a + b) mod p: the network, the seeded train/test split of all p² pairs, and
full-batch AdamW training with checkpoints, the setting in which networks grok.

Grokking: with weight decay, a network first memorises its training pairs (train accuracy 1,
test accuracy at chance) and only much later generalises (Power, Burda, Edwards, Babuschkin &
Misra 2022, arXiv:2201.02177); on modular addition the generalising circuit is a Fourier
algorithm that weight decay favours over the memorising one (Nanda, Chan, Lieberum, Smith &
Steinhardt 2023, ICLR, §4–5). The network here is a small MLP (shared embedding, one ReLU
layer) that groks in seconds on a CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from sltlab.models.counts import whole
from sltlab.models.progress import progress_bar


class ModularAdditionNetwork(nn.Module):
    """Shared Embedding(p, e); operand a through Linear(e → h), operand b through another
    Linear(e → h); the two summed, ReLU, then Linear(h → p, no bias) to logits.

    At p = 53, e = 32, h = 64 it has 9,312 parameters. Weights are drawn from ``generator``
    with PyTorch's default laws (N(0, 1) embeddings; U(±1/√fan_in) for linear layers); the
    global random state is neither seeded nor consumed.
    """

    def __init__(self, modulus: int, *, embedding_dim: int = 32, hidden: int = 64,
                 generator: torch.Generator):
        super().__init__()
        modulus = whole("the modulus", modulus, 2)
        embedding_dim, hidden = whole("the embedding width", embedding_dim, 1), whole("the hidden width", hidden, 1)
        if not isinstance(generator, torch.Generator):   # None would draw from, and move, the global random state
            raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        # Built on the meta device, so that PyTorch's own initialisation draws nothing from the
        # global generator; the storage is then allocated and filled from ``generator``.
        self.embedding = nn.Embedding(modulus, embedding_dim, device="meta")
        self.left = nn.Linear(embedding_dim, hidden, device="meta")
        self.right = nn.Linear(embedding_dim, hidden, device="meta")
        self.unembed = nn.Linear(hidden, modulus, bias=False, device="meta")
        self.to_empty(device="cpu")
        with torch.no_grad():
            nn.init.normal_(self.embedding.weight, generator=generator)
            for layer in (self.left, self.right, self.unembed):
                bound = 1.0 / math.sqrt(layer.in_features)
                for parameter in layer.parameters():
                    nn.init.uniform_(parameter, -bound, bound, generator=generator)

    def forward(self, pairs: Tensor) -> Tensor:
        """Logits [b, p] for integer pairs [b, 2]."""
        embedded = self.embedding(pairs)
        return self.unembed(torch.relu(self.left(embedded[..., 0, :]) + self.right(embedded[..., 1, :])))


class ModularSplit(NamedTuple):
    """All p² pairs (a, b) with labels (a + b) mod p, split at random into train and test."""

    train_pairs: Tensor    # [n_train, 2] long
    train_labels: Tensor   # [n_train] long
    test_pairs: Tensor
    test_labels: Tensor


def modular_addition_split(modulus: int, train_fraction: float, *, generator: torch.Generator) -> ModularSplit:
    """A seeded random ``train_fraction`` of the p² pairs for training, the rest for testing."""
    modulus = whole("the modulus", modulus, 2)
    if not 0 < train_fraction < 1:
        raise ValueError(f"need 0 < train fraction < 1, got {train_fraction}")
    a, b = torch.meshgrid(torch.arange(modulus), torch.arange(modulus), indexing="ij")
    pairs = torch.stack([a.reshape(-1), b.reshape(-1)], dim=-1)
    labels = (pairs[:, 0] + pairs[:, 1]) % modulus
    order = torch.randperm(len(pairs), generator=generator)
    cut = round(train_fraction * len(pairs))
    if not 0 < cut < len(pairs):
        raise ValueError(f"train fraction {train_fraction} leaves an empty train or test set at p = {modulus}")
    train, test = order[:cut], order[cut:]
    return ModularSplit(pairs[train], labels[train], pairs[test], labels[test])


@dataclass(frozen=True)
class AdamWConfig:
    """Full-batch AdamW (Loshchilov & Hutter 2019) on the cross-entropy of the training pairs."""

    learning_rate: float = 3e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    steps: int = 10_000


class ModularRun(NamedTuple):
    """Checkpoints of one run; row t of every array belongs to ``steps[t]``."""

    steps: Tensor            # [T]
    positions: Tensor        # [T, d] flat parameters, in named_parameters() order
    train_loss: Tensor       # [T] mean cross-entropy
    test_loss: Tensor
    train_accuracy: Tensor
    test_accuracy: Tensor


def train_modular(network: ModularAdditionNetwork, split: ModularSplit, config: AdamWConfig,
                  checkpoint_steps: list[int], *, progress: bool = False) -> ModularRun:
    """Train ``network`` in place with full-batch AdamW, recording the listed steps (each in
    0..``config.steps``; the parameters *before* that many updates).

    Raises
    ------
    ValueError
        On a checkpoint outside 0..steps, or when the training loss stops being finite.
    """
    if not (config.learning_rate > 0 and config.weight_decay >= 0 and config.steps >= 1):
        raise ValueError(f"need learning rate > 0, weight decay ≥ 0 and steps ≥ 1, got {config}")
    wanted = sorted(set(int(s) for s in checkpoint_steps))
    if not wanted or wanted[0] < 0 or wanted[-1] > config.steps:
        raise ValueError(f"checkpoints must lie in 0..{config.steps}")
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay, betas=config.betas)
    records = []
    bar = progress_bar(config.steps, "AdamW", enabled=progress)
    marks = set(wanted)
    for step in range(config.steps + 1):
        if step in marks:
            records.append((step, *_evaluate(network, split)))
        if step == config.steps:
            break
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(network(split.train_pairs), split.train_labels)
        if not torch.isfinite(loss):
            raise ValueError(f"the training loss stopped being finite at step {step}")
        loss.backward()
        optimizer.step()
        if bar is not None and (step + 1) % 100 == 0:
            bar.update(100)
    if bar is not None:
        bar.close()
    steps, positions, *metrics = zip(*records)
    return ModularRun(torch.tensor(steps), torch.stack(positions),
                      *(torch.tensor(values, dtype=torch.float64) for values in metrics))


def _evaluate(network: ModularAdditionNetwork, split: ModularSplit) -> tuple[Tensor, float, float, float, float]:
    with torch.no_grad():
        position = torch.cat([p.detach().reshape(-1) for p in network.parameters()]).clone()
        values = []
        for pairs, labels in ((split.train_pairs, split.train_labels), (split.test_pairs, split.test_labels)):
            logits = network(pairs)
            values.append((float(nn.functional.cross_entropy(logits, labels)),
                           float((logits.argmax(-1) == labels).double().mean())))
    (train_loss, train_accuracy), (test_loss, test_accuracy) = values
    return position, train_loss, test_loss, train_accuracy, test_accuracy
