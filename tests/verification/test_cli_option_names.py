"""A refusal of a setting the user gave on the command line names it by the option typed, not by
the Python name the settings and functions use."""

import pytest

from sltlab.verification.cli import main

DLN = ["estimate", "dln", "--widths", "3", "2", "--rank", "1"]


@pytest.mark.parametrize("argv, said", [
    ([*DLN, "--cooled-share", "2"], "--cooled-share must be a share of the chains in (0, 1], got 2.0"),
    ([*DLN, "--cooled-share=2"], "--cooled-share must be a share of the chains in (0, 1], got 2.0"),
    ([*DLN, "--extend-unmixed", "99"], "--extend-unmixed must be from 0 to 20, got 99"),
    ([*DLN, "--burnin", "-1"], "--burnin must be ≥ 0, got -1"),
    (["plot", "phase", "--depth", "3", "--io", "2", "--max-width", "0", "--out", "unused.png"],
     "--max-width must be at least 1, got 0"),
])
def test_a_refused_option_is_named_as_typed(argv, said, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"sltlab: error: {said}"


def test_a_setting_the_user_did_not_type_keeps_its_own_name(capsys):
    assert main(["dynamics", "saddle", "--curve-draws", "0", "--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert "draws must be at least 1" in err and "--draws" not in err


def test_an_operating_system_refusal_is_said_in_its_own_words_without_python_s_errno(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["plot", "phase", "--depth", "3", "--io", "2", "--max-width", "3",
                 "--out", str(blocker / "inside" / "phase.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sltlab: error: ") and "Errno" not in err and str(blocker) in err
