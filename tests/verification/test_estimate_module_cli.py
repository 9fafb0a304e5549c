"""`sltlab estimate module`: a researcher's own model, data and checkpoints from files give the
numbers the Python calls give on the same settings, the curve along several checkpoints with its
stages and figure, and bad files a one-line error with exit 2."""

import json
import re
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from sltlab.estimators import estimate_llc, estimate_llc_along
from sltlab.verification.cli import main
from sltlab.verification.cli.own_model import checkpoint_steps

MODEL_FILE = """
import torch
from torch import nn

def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))

ready = build()

def broken():
    raise RuntimeError("no weights here")

class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x, gate):
        return self.linear(x * gate)

def gated():
    torch.manual_seed(0)
    return Gated()

def quitting():
    raise SystemExit(5)

def chatty():
    print("built by the model file")
    return build()
"""
SHORT = ["--chains", "2", "--draws", "60", "--burnin", "10", "--step-size", "1e-3", "--localize-at", "true_parameter",
         "--sampler", "sgld", "--seed", "3"]
STEPS = (5, 20, 60, 150, 400)


def _build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The model file, the data as a tuple and as a dict, and checkpoints of a short training run
    saved as training scripts save them (with the optimiser and the step)."""
    folder = tmp_path_factory.mktemp("own")
    (folder / "net.py").write_text(MODEL_FILE)
    (folder / "unimportable.py").write_text("import sltlab_no_such_module\n")
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(120, 2, generator=generator)
    y = torch.tanh(x[:, :1] - x[:, 1:]) + 0.1 * torch.randn(120, 1, generator=generator)
    torch.save((x, y), folder / "data.pt")
    torch.save({"x": x, "y": y}, folder / "columns.pt")
    model = _build()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    states = []
    for step in range(1, STEPS[-1] + 1):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        if step in STEPS:
            states.append({name: value.clone() for name, value in model.state_dict().items()})
            torch.save({"model_state_dict": states[-1], "step": step, "optimizer": optimizer.state_dict()},
                       folder / f"step{step}.pt")
    torch.save(states[-1], folder / "final.pt")
    torch.save(model, folder / "whole.pt")
    np.save(folder / "rows.npy", x.numpy())
    torch.save({"x": x.numpy(), "y": y.numpy()}, folder / "arrays.pt")
    (folder / "notes.pt").write_text("not a tensor file\n")
    torch.save(nn.Sequential(nn.Linear(2, 3)).state_dict(), folder / "other.pt")   # another architecture's
    return folder, (x, y), states


def _run(capsys, *argv):
    code = main(["estimate", "module", *argv, "--json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out else None), captured.err


def test_one_checkpoint_gives_the_python_call_s_numbers(files, capsys):
    folder, data, states = files
    code, result, _ = _run(capsys, "--model", f"{folder}/net.py:build", "--data", str(folder / "columns.pt"),
                           "--checkpoint", str(folder / "final.pt"), *SHORT)
    model = _build()
    model.load_state_dict(states[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # a short run's mixing warning, which the JSON carries too
        expected = estimate_llc(model, data, sampler="sgld", chains=2, draws=60, burnin=10, step_size=1e-3,
                                localize_at="true_parameter", seed=3)
    assert code == 0 and result["llc"] == expected.mean and result["checkpoint"].endswith("final.pt")
    assert result["warnings"] == list(expected.warnings)
    # several restrictions: one estimate each; the module itself when no checkpoint is given
    code, result, _ = _run(capsys, "--model", f"{folder}/net.py:ready", "--data", str(folder / "data.pt"),
                           "--restrict-to", "0.*", "--restrict-to", "2.weight", "2.bias", *SHORT)
    assert code == 0 and [row["restricted_to"] for row in result["restrictions"]] == ["0.*", ["2.weight", "2.bias"]]


def test_a_module_of_two_arguments_takes_them_from_inputs(files, capsys):
    folder, data, _ = files
    code, result, _ = _run(capsys, "--model", f"{folder}/net.py:gated", "--data", str(folder / "columns.pt"),
                           "--inputs", "x", "x", *SHORT)
    namespace = {}
    exec(MODEL_FILE, namespace)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # a short run's mixing warning, which the JSON carries too
        expected = estimate_llc(namespace["gated"](), data, inputs=(0, 0), sampler="sgld", chains=2, draws=60,
                                burnin=10, step_size=1e-3, localize_at="true_parameter", seed=3)
    assert code == 0 and result["llc"] == expected.mean


def test_checkpoints_along_training_give_the_curve_its_stages_and_a_figure(files, capsys):
    folder, data, states = files
    paths = [str(folder / f"step{step}.pt") for step in STEPS]
    out = folder / "along"
    code, result, _ = _run(capsys, "--model", f"{folder}/net.py:build", "--data", str(folder / "data.pt"),
                           "--checkpoint", *paths, "--out", str(out), *SHORT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = estimate_llc_along(states, data, model=_build(), sampler="sgld", chains=2, draws=60, burnin=10,
                                      step_size=1e-3, localize_at="true_parameter", seed=3)
    assert code == 0 and [row["step"] for row in result["checkpoints"]] == list(STEPS)   # as the files record
    assert [row["llc"] for row in result["checkpoints"]] == expected.means
    assert result["unmixed_checkpoints"] == expected.mixed.count(False) and result["stages_not_read"] is None
    assert all(stage["direction"] in ("rise", "fall") for stage in result["stages"])
    assert json.loads((out / "llc_along.json").read_text()) == result and (out / "llc_along.png").stat().st_size > 0
    code, again, _ = _run(capsys, "--model", f"{folder}/net.py:build", "--data", str(folder / "data.pt"),
                          "--checkpoint", *paths[:3], "--steps", "1", "2", "3", "--out", str(out), *SHORT)
    assert (result["replaced_earlier"], again["replaced_earlier"]) == (False, True)   # the second run said so
    assert code == 0 and [row["step"] for row in again["checkpoints"]] == [1, 2, 3]
    assert again["stages"] == [] and again["stages_not_read"] == "not read: fewer than 5 checkpoints"
    # several restrictions: a curve each, as the Python call gives them
    code, result, _ = _run(capsys, "--model", f"{folder}/net.py:build", "--data", str(folder / "data.pt"),
                           "--checkpoint", *paths[:2], "--restrict-to", "0.*", "--restrict-to", "2.*", *SHORT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = estimate_llc_along(states[:2], data, model=_build(), sampler="sgld", chains=2, draws=60, burnin=10,
                                      step_size=1e-3, localize_at="true_parameter", seed=3, restrict_to=["0.*", "2.*"])
    assert code == 0 and [curve["restricted_to"] for curve in result["curves"]] == ["0.*", "2.*"]
    assert [[row["llc"] for row in curve["checkpoints"]] for curve in result["curves"]] == [
        curve.means for curve in expected]


def test_the_text_says_the_notes_of_one_estimate_and_those_every_checkpoint_shares(files, capsys):
    folder = files[0]
    argv = ["estimate", "module", "--model", f"{folder}/net.py:build", "--data", str(folder / "data.pt"), *SHORT]
    mse = "loss 'mse' is the unit-variance Gaussian negative log-likelihood"
    assert main([*argv, "--checkpoint", str(folder / "final.pt")]) == 0
    out = capsys.readouterr().out
    assert f"  note: {mse}" in out and "final.pt (torch threads: 1)\n" in out
    assert main([*argv, "--checkpoint", *(str(folder / f"step{step}.pt") for step in STEPS[:2])]) == 0
    out = capsys.readouterr().out
    assert f"note, at every checkpoint: {mse}" in out and "data.pt (torch threads: 1)\n" in out


@pytest.mark.parametrize("arguments, message", [
    (["--model", "{f}/net.py"], "--model takes FILE.py:NAME"),
    (["--model", "{f}/nothing.py:build"], "--model: no file"),
    (["--model", "{f}/net.py:absent"], "defines no 'absent'"),
    (["--model", "{f}/net.py:torch"], "gives a module, not a torch.nn.Module"),
    (["--model", "{f}/net.py:broken"], "--model: RuntimeError: no weights here (line 12 of net.py) in broken()"),
    (["--model", "{f}/unimportable.py:build"], "--model: ModuleNotFoundError: No module named "
                                               "'sltlab_no_such_module' (line 1 of unimportable.py) while"),
    (["--model", "{f}/net.py:quitting"], "--model: SystemExit: 5 (line 27 of net.py) in quitting()"),   # had exit 5
    (["--out", "{f}/curve"], "--out writes the curve along several --checkpoint files; one estimate has no curve"),
    (["--data", "{f}/step5.pt"], "--data {f}/step5.pt holds a dict whose entries 'model_state_dict' (dict)"),
    (["--data", "{f}/final.pt"], "the tensors have different numbers of rows (0.weight 4, 0.bias 4, 2.weight 1"),
    (["--data", "{f}/missing.pt"], "--data: no file"),
    (["--checkpoint", "{f}/whole.pt"],
     "cannot be read as tensors (it holds a pickled torch.nn.modules.container.Sequential, which loading would run"),
    (["--data", "{f}/rows.npy"], "cannot be read as tensors (a NumPy .npy file, not one of torch.save's)"),
    (["--data", "{f}/notes.pt"], "cannot be read as tensors (not a file torch.save wrote)"),
    (["--data", "{f}/arrays.pt"], "cannot be read as tensors (it holds NumPy arrays, which loading would run code to "
                                  "rebuild; torch.from_numpy(array) saves a tensor, int(step) a step)"),
    (["--checkpoint", "{f}/data.pt"], "holds a tuple: save model.state_dict()"),
    (["--checkpoint", "{f}/other.pt"], "--checkpoint {f}/other.pt does not fit the model: Error(s) in loading"),
    (["--checkpoint", "{f}/step5.pt", "{f}/other.pt", "--steps", "5", "9"],
     "--checkpoint {f}/other.pt does not fit the model: Error(s) in loading"),
    (["--checkpoint", "{f}/step5.pt", "{f}/step20.pt", "--steps", "3"], "--steps gives 1 step for 2 checkpoints"),
    (["--checkpoint", "{f}/step5.pt", "{f}/step20.pt", "--steps", "3", "2"], "non-negative and increasing"),
    (["--checkpoint", "{f}/step20.pt", "{f}/step5.pt"], "got [20.0, 5.0]: give the files in the order of their steps"),
    (["--checkpoint", "{f}/step5.pt", "{f}/final.pt"], "--checkpoint {f}/final.pt records no training step that"),
    (["--checkpoint", "{f}/step5.pt", "{f}/step20.pt", "--steps", "nan", "2"], "finite, non-negative and increasing"),
    (["--checkpoint", "{f}/step5.pt", "{f}/step20.pt", "--steps", "0", "inf"], "finite, non-negative and increasing"),
    (["--checkpoint", "{f}/step5.pt", "{f}/../{d}/step5.pt"], "--checkpoint names {f}/../{d}/step5.pt twice"),
    (["--steps", "1"], "--steps names the training step of each of several"),
    (["--calibrate-at", "abc"], "--calibrate-at chooses one of several --checkpoint files"),
    (["--checkpoint", "{f}/step5.pt", "{f}/step20.pt", "--calibrate-at", "last"], "--calibrate-at takes the index"),
    (["--checkpoint", "{f}/step5.pt", "{f}/step20.pt", "--calibrate-at", "4"], "calibrate_at=4 is not the index"),
    (["--restrict-to", "0.*", "--restrict-to", "0.weight", "0.bias", "0.bias"],
     "restrict_to entries 0 ('0.*') and 1 (('0.weight', '0.bias')) select the same parameters"),
])
def test_bad_files_and_options_are_one_line_errors(files, capsys, arguments, message):
    folder = files[0]
    argv = ["--model", "{f}/net.py:build", "--data", "{f}/data.pt", *arguments]   # the last --model or --data counts
    named = {"{f}": str(folder), "{d}": folder.name}
    code, result, error = _run(capsys, *(_named(word, named) for word in argv), *SHORT)
    assert code == 2 and result is None and error.count("\n") == 1
    assert _named(message, named) in error


def _named(text: str, names: dict) -> str:
    for key, value in names.items():
        text = text.replace(key, value)
    return text


def test_under_json_what_the_model_file_prints_goes_to_stderr(files, capsys):
    code, result, error = _run(capsys, "--model", f"{files[0]}/net.py:chatty", "--data", f"{files[0]}/data.pt", *SHORT)
    assert result is not None and "built by the model file" in error   # it had come before the JSON on stdout


def test_a_checkpoint_s_warnings_are_printed_and_a_stage_read_from_it_says_so():
    from sltlab.verification.cli.own_model import curve_lines

    moved = "localising moved w* by 187 …: the estimate is of the empirical minimum, not of the point given"
    rows = [{"llc": value, "standard_error": 0.1, "rhat": 1.0, "ess": 400.0, "mixed": True, "warnings": warned}
            for value, warned in ((3.2, [moved]), (4.5, []), (4.6, []), (5.0, []), (5.6, []))]
    curve = {"restricted_to": None, "note": "sampled together", "checkpoints": rows, "unmixed_checkpoints": 0,
             "shared_notes": [], "stages_not_read": None,
             "stages": [{"step": 20.0, "direction": "rise", "window_start": 0.0, "window_end": 60.0,
                         "level_before": 3.2, "level_after": 4.6},
                        {"step": 200.0, "direction": "rise", "window_start": 60.0, "window_end": 2000.0,
                         "level_before": 4.6, "level_after": 5.6}], "edge_moves": []}
    lines = curve_lines(curve, [0.0, 20.0, 60.0, 200.0, 2000.0])
    assert f"warning at step 0: {moved}" in lines   # the table had shown only a count
    assert lines[-2].endswith("; read from flagged checkpoints (steps 0)") and lines[-1].endswith("to 5.6")


@pytest.mark.parametrize("edge, steps, said", [
    ("first", [0.0, 20.0, 60.0, 200.0, 2000.0], "rise steepest at the curve's first checkpoint (step 0, window 0–20): "
     "λ̂ from 3.2 to 4.5; not a located stage boundary: it may be steepest between steps 0 and 20, where the curve "
     "has no checkpoints to show it; read from flagged checkpoints (steps 0)"),
    ("first", [10.0, 20.0, 60.0, 200.0, 2000.0], "rise steepest at the curve's first checkpoint (step 10, window "
     "10–20): λ̂ from 3.2 to 4.5; not a located stage boundary: it may have begun before step 10, where the curve "
     "has no checkpoints to show it; read from flagged checkpoints (steps 10)"),
    ("last", [0.0, 20.0, 60.0, 200.0, 2000.0], "rise steepest at the curve's last checkpoint (step 2000, window "
     "200–2000): λ̂ from 3.2 to 4.5; not a located stage boundary: it may go on after step 2000, where the curve "
     "has no checkpoints to show it"),
])
def test_a_move_steepest_at_an_edge_is_said_in_words_and_not_as_a_boundary(edge, steps, said):
    """detect_stages's edge moves: printed after the boundaries (here none), each saying it is not
    located and why; a window holding a flagged checkpoint (the first, unmixed) says so, as a boundary's does."""
    from sltlab.verification.cli.own_model import curve_lines

    rows = [{"llc": 3.0, "standard_error": 0.1, "rhat": 1.0, "ess": 400.0, "mixed": i > 0, "warnings": []}
            for i in range(5)]
    window = steps[:2] if edge == "first" else steps[-2:]
    move = {"edge": edge, "window_start": window[0], "window_end": window[1], "direction": "rise",
            "level_before": 3.2, "level_after": 4.5, "bandwidth": 0.5}
    curve = {"restricted_to": None, "note": "sampled together", "checkpoints": rows, "unmixed_checkpoints": 1,
             "shared_notes": [], "stages_not_read": None, "stages": [], "edge_moves": [move]}
    lines = curve_lines(curve, steps)
    assert lines[-1] == said and "stages: none found" not in lines


def test_the_curve_s_stages_are_json_ready_with_its_edge_moves_apart():
    """A rise of 5 before the first of 40 checkpoints and a sharp one at step 1,000: the boundary and
    the move at the first checkpoint, numbers as floats, the edge and direction as words."""
    from sltlab.verification.cli.own_model import stages_as_dicts

    steps = np.unique(np.round(np.logspace(np.log10(75), 4, 40)).astype(int))
    u = np.log1p(steps)
    llc = 12.5 + 5 / (1 + np.exp(-(u - np.log1p(60)) / 0.2)) + 5 / (1 + np.exp(-(u - np.log1p(1000)) / 0.04))
    stages, edge_moves, why_not = stages_as_dicts(steps.tolist(), llc.tolist(), [0.3] * steps.size)
    assert why_not is None and [(b["step"], b["window_start"], b["window_end"]) for b in stages] == [
        (1045.0, 717.0, 1343.0)]
    (move,) = edge_moves
    assert (move["edge"], move["direction"], move["window_start"], move["window_end"]) == ("first", "rise", 75.0, 140.0)
    assert all(type(value) is float for key, value in move.items() if key not in ("edge", "direction"))
    assert stages_as_dicts([1.0, 2.0], [1.0, 2.0], [0.1, 0.1]) == ([], [], "not read: fewer than 5 checkpoints")


@pytest.mark.parametrize("recorded, keys, said", [
    ([3.0, 3.0, 4.0], ["epoch"] * 3, "the curve needs a distinct step at each checkpoint"),   # had blamed the order
    ([500.0, 2.0], ["step", "epoch"], "record their steps under different keys (epoch, step), which do not compare"),
    ([200.0, 60.0], ["step"] * 2, "give the files in the order of their steps"),
])
def test_recorded_steps_that_cannot_place_the_curve_are_refused_saying_why(recorded, keys, said):
    with pytest.raises(ValueError, match=re.escape(said)):
        checkpoint_steps(None, recorded, keys, ["a.pt"] * len(recorded))
    given = [1.0, 2.0, 3.0][:len(recorded)]
    assert checkpoint_steps(given, recorded, keys, ["a.pt"] * len(recorded)) == given
