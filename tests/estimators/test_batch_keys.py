"""A key that names no field of the dict batches: the refusal lists the fields kept and, where some
were left out (a nested dict, a list, strings), those too, since the key may sit inside one."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from sltlab.estimators import estimate_llc


def rows(nested: bool):
    x, y = torch.randn(20, 3, generator=torch.Generator().manual_seed(0)), torch.zeros(20, 1)
    return [{"inp": {"x": a}, "y": b} if nested else {"x": a, "y": b} for a, b in zip(x, y)]


def test_a_key_inside_a_nested_dict_names_the_field_left_out():
    with pytest.raises(ValueError, match=r"^inputs='x' is not a key of the batches \(y\); left out as holding no "
                                         r"tensor with a row per sample \(a nested dict, a list or strings\): inp "
                                         r"\(a key inside a nested dict is no field: flatten it\)$"):
        estimate_llc(nn.Linear(3, 1), DataLoader(rows(nested=True), batch_size=5), inputs="x", targets="y")


def test_a_key_that_is_nowhere_lists_the_fields_alone_when_none_was_left_out():
    with pytest.raises(ValueError, match=r"^inputs='z' is not a key of the batches \(x, y\)$"):
        estimate_llc(nn.Linear(3, 1), DataLoader(rows(nested=False), batch_size=5), inputs="z", targets="y")
