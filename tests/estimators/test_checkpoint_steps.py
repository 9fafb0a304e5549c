"""Recorded training steps as the order check reads them: a step repeated (saves within one epoch)
is in order, steps under different keys are not compared, NumPy and tensor steps are numbers, in
memory and in files (a NumPy bool, integer or float read without NumPy's own unpickling, any other
NumPy scalar refused by name); and tensors that hold no memory (meta, empty) never make two
checkpoints look as if they shared it."""

from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from sltlab.estimators.checkpoints import opened, refuse_shared_weights, saved_value, state_of


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


@pytest.mark.parametrize("step", [np.int64(60), np.int32(60), np.uint16(60), np.float32(60), np.float64(60),
                                  np.dtype(">i8").type(60)], ids=["int64", "int32", "uint16", "float32", "float64",
                                                                  "big-endian"])
def test_numpy_steps_saved_in_files_are_read_as_python_numbers(tmp_path, step):
    # torch's safe loading had refused them: "it holds NumPy arrays, which loading would run code to rebuild"
    before = set(torch.serialization.get_safe_globals())
    torch.save(_saved(step=np.int64(200)), tmp_path / "step200.pt")
    torch.save(_saved(step=step), tmp_path / "step60.pt")
    value = saved_value(tmp_path / "step60.pt", "checkpoint 1")
    assert type(value["step"]) is type(step.item()) and value["step"] == 60
    assert set(torch.serialization.get_safe_globals()) == before   # allowed while the file is read, no longer
    with pytest.raises(ValueError, match="^the checkpoints are not in training order: checkpoint 0 records step 200 "
                                         "and checkpoint 1 60"):
        opened([tmp_path / "step200.pt", tmp_path / "step60.pt"])


class NumPyScalar:
    """Pickles as NumPy's scalar of ``dtype`` built from ``data``, as a crafted file could."""

    def __init__(self, dtype, data):
        self.dtype, self.data = dtype, data

    def __reduce__(self):
        return np._core.multiarray.scalar, (self.dtype, self.data)


@pytest.mark.parametrize("value", [NumPyScalar(np.dtype("O"), 60), NumPyScalar(np.dtype([("a", "O")]), bytes(8)),
                                   NumPyScalar(np.dtype("c16"), bytes(16)), NumPyScalar(np.dtype("i8"), bytes(3)),
                                   np.array(60)], ids=["object", "structured", "complex", "short", "array"])
def test_other_numpy_values_in_files_are_refused_with_what_to_save(tmp_path, value):
    torch.save(_saved(step=value), tmp_path / "step.pt")
    kind = "NumPy arrays" if isinstance(value, np.ndarray) else "a NumPy scalar that safe loading cannot read"
    with pytest.raises(ValueError, match=f"^checkpoint 0 {tmp_path}/step.pt cannot be read as tensors \\(it holds "
                                         f"{kind}.*int\\(step\\)"):
        saved_value(tmp_path / "step.pt", "checkpoint 0")


def test_a_numpy_step_beside_another_pickled_object_names_that_object(tmp_path):
    saved = _saved(step=np.int64(60))
    saved["ratio"] = Fraction(1, 3)
    torch.save(saved, tmp_path / "step.pt")
    with pytest.raises(ValueError, match=f"^checkpoint 0 {tmp_path}/step.pt cannot be read as tensors \\(it holds a "
                                         "pickled fractions.Fraction, which loading would run code to rebuild"):
        saved_value(tmp_path / "step.pt", "checkpoint 0")
