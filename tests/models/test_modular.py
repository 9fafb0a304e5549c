"""Modular addition: the network's size, the split, seeding without global state, and AdamW
checkpoints."""

import pytest
import torch

from sltlab.estimators.functional import FunctionalModel
from sltlab.estimators.sample_losses import cross_entropy
from sltlab.models.modular import AdamWConfig, ModularAdditionNetwork, modular_addition_split, train_modular




def test_the_recommended_network_has_9312_parameters_and_gives_logits_per_pair():
    network = ModularAdditionNetwork(53, generator=torch.Generator().manual_seed(0))
    assert sum(p.numel() for p in network.parameters()) == 9312
    assert network(torch.tensor([[1, 2], [52, 0]])).shape == (2, 53)


def test_the_split_covers_every_pair_once_with_the_sum_mod_p_as_label():
    split = modular_addition_split(11, 0.4, generator=torch.Generator().manual_seed(3))
    assert len(split.train_pairs) == round(0.4 * 121) and len(split.test_pairs) == 121 - len(split.train_pairs)
    pairs = torch.cat([split.train_pairs, split.test_pairs])
    assert len({tuple(p) for p in pairs.tolist()}) == 121
    labels = torch.cat([split.train_labels, split.test_labels])
    assert torch.equal(labels, (pairs[:, 0] + pairs[:, 1]) % 11)
    again = modular_addition_split(11, 0.4, generator=torch.Generator().manual_seed(3))
    other = modular_addition_split(11, 0.4, generator=torch.Generator().manual_seed(4))
    assert torch.equal(again.train_pairs, split.train_pairs) and not torch.equal(other.train_pairs, split.train_pairs)


def test_weights_come_from_the_generator_alone():
    state = torch.random.get_rng_state()
    first = ModularAdditionNetwork(7, generator=torch.Generator().manual_seed(5))
    assert torch.equal(torch.random.get_rng_state(), state)
    second = ModularAdditionNetwork(7, generator=torch.Generator().manual_seed(5))
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)


def test_adamw_checkpoints_the_listed_steps_and_fits_the_training_pairs():
    generator = torch.Generator().manual_seed(0)
    network = ModularAdditionNetwork(7, embedding_dim=8, hidden=16, generator=generator)
    split = modular_addition_split(7, 0.5, generator=generator)
    start = FunctionalModel(network, cross_entropy).flatten()
    run = train_modular(network, split, AdamWConfig(learning_rate=1e-2, weight_decay=0.1, steps=150), [150, 0, 50])
    assert run.steps.tolist() == [0, 50, 150]
    torch.testing.assert_close(run.positions[0], start)
    torch.testing.assert_close(run.positions[-1], FunctionalModel(network, cross_entropy).flatten())
    assert run.train_loss[-1] < 0.5 * run.train_loss[0] and run.train_accuracy[-1] > 0.9
    assert bool(((run.test_accuracy >= 0) & (run.test_accuracy <= 1)).all())


@pytest.mark.parametrize("kwargs, message", [
    (dict(modulus=1, train_fraction=0.5), "modulus"),
    (dict(modulus=7, train_fraction=1.0), "train fraction"),
    (dict(modulus=3, train_fraction=0.01), "empty"),
])
def test_bad_splits_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        modular_addition_split(**kwargs, generator=torch.Generator())


def test_checkpoints_outside_the_run_are_refused():
    generator = torch.Generator().manual_seed(0)
    network = ModularAdditionNetwork(5, embedding_dim=4, hidden=4, generator=generator)
    split = modular_addition_split(5, 0.5, generator=generator)
    with pytest.raises(ValueError, match="checkpoints"):
        train_modular(network, split, AdamWConfig(steps=10), [0, 11])
