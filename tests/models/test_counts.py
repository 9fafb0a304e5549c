"""The models read their whole-number settings strictly: widths of 2.7, "23" or True, hidden units
of 2.5, and a modulus of 5.5 had been cut, split or read as 1 (or failed inside torch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sltlab.models.deep_linear import DeepLinearNetwork
from sltlab.models.modular import ModularAdditionNetwork, modular_addition_split
from sltlab.models.tanh_network import TanhNetwork
from sltlab.models.tms import ToyModelOfSuperposition


@pytest.mark.parametrize("make, message", [
    (lambda: DeepLinearNetwork((2.7, 3)), "every width must be a whole number of at least 1, got 2.7"),
    (lambda: DeepLinearNetwork("23"), "widths must list at least two positive integers, got '23'"),
    (lambda: DeepLinearNetwork((True, 2)), "every width must be a whole number of at least 1, got True"),
    (lambda: TanhNetwork(2.5), "the tanh network's hidden units must be a whole number of at least 1, got 2.5"),
    (lambda: TanhNetwork(float("nan")), "the tanh network.s hidden units must be a whole number"),
    (lambda: ModularAdditionNetwork(5.5, generator=torch.Generator()), "the modulus must be a whole number"),
    (lambda: ModularAdditionNetwork(5, generator=None), "generator must be a torch.Generator, got NoneType"),
    (lambda: modular_addition_split(5.5, 0.5, generator=torch.Generator()), "the modulus must be a whole number"),
    (lambda: ToyModelOfSuperposition(1), "the toy model's features must be a whole number of at least 2, got 1"),
])
def test_settings_that_are_no_whole_numbers_are_one_line_errors(make, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        make()


def test_numpy_integers_are_whole_numbers():
    assert DeepLinearNetwork((np.int64(2), 3)).widths == (2, 3) and TanhNetwork(np.int64(2)).dim == 4
    assert ToyModelOfSuperposition(np.int64(5)).features == 5
