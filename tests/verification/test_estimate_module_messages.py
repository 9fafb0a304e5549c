"""`sltlab estimate module` names the file a problem is in: a checkpoint by its --checkpoint path
(the errors of the Python call count checkpoints from 0, which on the command line had read as
the file before), an architecture that does not fit before any question of steps, and the
entries of a --data dict that are no tensors."""

import pytest
import torch
from torch import nn

from sltlab.verification.cli import main

MODEL_FILE = """
from torch import nn

def build():
    return nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
"""
SHORT = ["--chains", "2", "--draws", "20", "--burnin", "5", "--step-size", "1e-3", "--localize-at", "true_parameter",
         "--sampler", "sgld", "--threads", "1"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("named")
    (folder / "net.py").write_text(MODEL_FILE)
    torch.manual_seed(0)
    x = torch.randn(50, 2)
    torch.save((x, x[:, :1]), folder / "data.pt")
    torch.save({"x": x, "y": "not a tensor", "step": 3}, folder / "mixed.pt")
    state = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).state_dict()
    for step in (1, 2, 3):
        torch.save({"state_dict": state, "step": step}, folder / f"step{step}.pt")
    torch.save({"state_dict": {name: value * float("nan") for name, value in state.items()}, "step": 4},
               folder / "broken.pt")
    torch.save(nn.Sequential(nn.Linear(2, 5)).state_dict(), folder / "other.pt")   # no step, another architecture
    torch.save(state, folder / "plain.pt")   # this architecture, no step
    return folder


def _error(capsys, folder, *checkpoints, data="data.pt"):
    code = main(["estimate", "module", "--model", f"{folder}/net.py:build", "--data", str(folder / data),
                 "--checkpoint", *[str(folder / name) for name in checkpoints], *SHORT])
    assert code == 2
    return capsys.readouterr().err.strip()


def test_a_checkpoint_that_breaks_the_estimate_is_named_by_its_file(folder, capsys):
    said = _error(capsys, folder, "step1.pt", "step2.pt", "broken.pt")
    assert f"checkpoint 2 (--checkpoint {folder / 'broken.pt'})" in said   # had read "checkpoint 2" alone


def test_a_checkpoint_of_another_architecture_is_refused_before_its_missing_step(folder, capsys):
    said = _error(capsys, folder, "step1.pt", "step2.pt", "other.pt")   # had asked for --steps first
    assert said.startswith(f"sltlab: error: --checkpoint {folder / 'other.pt'} does not fit the model")


def test_a_checkpoint_without_a_step_among_others_is_named_by_its_file(folder, capsys):
    said = _error(capsys, folder, "step1.pt", "plain.pt", "step3.pt")
    assert f"--checkpoint {folder / 'plain.pt'} records no training step" in said


def test_a_data_dict_says_which_entries_are_no_tensors(folder, capsys):
    said = _error(capsys, folder, "step1.pt", data="mixed.pt")
    assert "holds a dict whose entries 'y' (str), 'step' (int) are no tensors" in said


def test_an_out_folder_that_cannot_be_written_fails_before_any_sampling(folder, capsys, monkeypatch):
    def unwritable(*args, **kwargs):   # what a read-only folder answers (root would write there anyway)
        raise PermissionError(13, "Permission denied", str(folder / "curve"))

    def never(*args, **kwargs):
        raise AssertionError("sampled")   # a read-only folder had failed only after all the sampling

    monkeypatch.setattr("sltlab.estimators.estimate_llc_along", never)
    monkeypatch.setattr("tempfile.TemporaryFile", unwritable)
    code = main(["estimate", "module", "--model", f"{folder}/net.py:build", "--data", str(folder / "data.pt"),
                 "--checkpoint", *[str(folder / f"step{step}.pt") for step in (1, 2, 3)], "--out",
                 str(folder / "curve"), *SHORT])
    assert code == 2 and "Permission denied" in capsys.readouterr().err


def test_checkpoints_without_an_estimate_are_said_to_have_none():
    from sltlab.verification.cli.own_model import curve_lines

    row = {"llc": None, "standard_error": None, "rhat": None, "ess": None, "warnings": ["2 of 2 chains dropped"]}
    curve = {"restricted_to": None, "note": "sampled together", "checkpoints": [row, row], "unmixed_checkpoints": 2,
             "shared_notes": [], "stages": [], "edge_moves": [], "stages_not_read": "fewer than 5"}
    assert "no estimate at steps 1, 2: every chain was dropped" in "\n".join(curve_lines(curve, [1.0, 2.0]))
