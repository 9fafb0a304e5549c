"""Recorded training steps as the order check reads them: a step repeated (saves within one epoch)
is in order, steps under different keys are not compared, NumPy and tensor steps are numbers; and
tensors that hold no memory (meta, empty) never make two checkpoints look as if they shared it."""

import numpy as np
import pytest
import torch
from torch import nn

from sltlab.estimators.checkpoints import opened, refuse_shared_weights, state_of


def _saved(**recorded):
    return {"model_state_dict": nn.Linear(2, 1).state_dict(), **recorded}


def test_a_repeated_epoch_and_steps_under_other_keys_are_in_order():
    assert len(opened([_saved(epoch=3), _saved(epoch=3), _saved(epoch=4)])) == 3
    assert len(opened([_saved(step=500), _saved(epoch=2)])) == 2
    with pytest.raises(ValueError, match="^the checkpoints are not in training order: checkpoint 0 records step 200 "
                                         "and checkpoint 2 60"):   # compared under its key across another's
        opened([_saved(step=200), _saved(epoch=2), _saved(step=60)])


@pytest.mark.parametrize("step", [np.int64(60), torch.tensor(60), 60.0])
def test_numpy_and_tensor_steps_are_read_and_ordered(step):
    assert state_of(_saved(step=step), "checkpoint").step == 60.0
    with pytest.raises(ValueError, match="^the checkpoints are not in training order: checkpoint 0 records step 200"):
        opened([_saved(step=200), _saved(step=step)])


def test_modules_on_the_meta_device_are_not_said_to_share_their_weights():
    # refused later, by name, as a meta model is: here they had been said to share their weights
    assert refuse_shared_weights([nn.Linear(2, 1, device="meta"), nn.Linear(2, 1, device="meta")]) is None
