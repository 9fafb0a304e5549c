"""``sltlab theory tms`` and ``theory transitions --features`` look at every k-gon (about 20 s at
c = 64): a bar over them on a terminal, nothing under ``--json`` or off a terminal."""

from __future__ import annotations

import json
import sys

import pytest

from sltlab.theory.tms import tms_phases
from sltlab.verification.cli import main


def test_each_point_is_reported_once_in_order():
    calls = []
    _, points = tms_phases(6, each=lambda done, total: calls.append((done, total)))
    assert calls == [(done, len(points)) for done in range(1, len(points) + 1)]


@pytest.mark.parametrize("command", [["theory", "tms", "--features", "6"],
                                     ["theory", "transitions", "--features", "6"]])
def test_a_bar_on_a_terminal_and_none_under_json(capsys, monkeypatch, command):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(command) == 0
    points = len(tms_phases(6)[1])
    assert f"k-gons:   0%|          | 0/{points}" in capsys.readouterr().err   # tqdm draws the rest as time passes
    assert main([*command, "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and json.loads(out)


def test_no_bar_off_a_terminal(capsys):
    assert main(["theory", "tms", "--features", "6"]) == 0
    assert capsys.readouterr().err == ""
