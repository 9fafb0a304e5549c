"""The command line never prints a traceback: valid commands with random tokens added, dropped
or replaced end in exit 0, 1, 2 or 3 (a refusal), with exactly one line on stderr when they
fail without a result (exit 2, or 1 with nothing on stdout; exit 1 beside a printed result is a
missed gate, whose warnings may take several lines), one line on stdout when they refuse, and
--json output that parses."""

import io
import json
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from hypothesis import event, given, settings, strategies as st

from sltlab.verification.cli import main

VALID = {
    ("theory", "dln"): ["--widths", "3", "2", "3", "--rank", "1"],
    ("theory", "rrr"): ["--widths", "3", "2", "3", "--rank", "1"],
    ("theory", "nc"): ["--k", "1", "2", "--h", "0", "1"],
    ("theory", "poly"): ["w1**2*w2**2"],
    ("theory", "tanh"): ["--hidden", "3"],
    ("theory", "regular"): ["--dim", "4"],
    ("theory", "staircase"): ["--widths", "3", "2", "3"],
    ("estimate", "dln"): ["--widths", "2", "2", "--rank", "1"],
    ("estimate", "poly"): ["w1**2"],
    ("estimate", "volume"): ["w1**2*w2**2"],
    ("plot", "staircase"): ["--widths", "3", "2", "3"],
    ("plot", "phase"): ["--depth", "2", "--io", "2", "--max-width", "3"],
}
TOKENS = ("--widths", "--rank", "--k", "--h", "--vars", "--prior", "--hidden", "--dim", "--draws", "--chains",
          "--burnin", "--thin", "--step-size", "--localization", "--localize-at", "--nbeta", "--batch-size", "--n",
          "--seed", "--sampler", "--dtype", "--temperatures", "--calibrate", "--fluctuation", "--box", "--depth",
          "--io", "--max-width", "--singular-values", "--device", "--h", "-3", "-1", "0", "1", "2", "3", "0.5",
          "1e-3", "1e9", "nan", "inf", "abc", "", "1/2", "w1**2", "(w1+w2)**2", "w1^4 + w2^2", "w1**2 +", "w3",
          "sgld", "mala", "sgnht", "rmsprop_sgld", "float64", "cpu", "cuda", "true_parameter")
# Appended last (argparse keeps the last value), so that any estimate that runs is tiny.
CAPS = ["--draws", "3", "--burnin", "0", "--chains", "2", "--n", "40"]


@st.composite
def argument_lists(draw):
    command = draw(st.sampled_from(sorted(VALID)))
    tokens = list(VALID[command])
    for _ in range(draw(st.integers(0, 3))):
        action, index = draw(st.sampled_from(["add", "drop", "replace"])), draw(st.integers(0, len(tokens)))
        if action == "add":
            tokens.insert(index, draw(st.sampled_from(TOKENS)))
        elif tokens and action == "drop":
            del tokens[min(index, len(tokens) - 1)]
        elif tokens:
            tokens[min(index, len(tokens) - 1)] = draw(st.sampled_from(TOKENS))
    return list(command) + tokens + (CAPS if command[0] == "estimate" and command[1] != "volume" else [])


@settings(max_examples=60, deadline=None)
@given(argv=argument_lists(), as_json=st.booleans())
def test_random_arguments_never_end_in_a_traceback(argv, as_json):
    argv = argv + (["--json"] if as_json else [])
    stdout, stderr = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as folder, redirect_stdout(stdout), redirect_stderr(stderr):
        code = main(argv + (["--out", str(Path(folder) / "figure.png")] if argv[0] == "plot" else []))
    out, err = stdout.getvalue(), stderr.getvalue()
    event(f"{' '.join(argv[:2])}: exit {code}")
    assert code in (0, 1, 2, 3), (argv, code)
    assert "Traceback" not in err
    if code == 2 or (code == 1 and not out):
        assert err.count("\n") == 1 and err.startswith("sltlab"), (argv, err)
    if code == 3:
        assert err == "" and out.count("\n") == 1, (argv, out, err)
    if as_json and code in (0, 1, 3) and out:
        assert isinstance(json.loads(out), dict), argv
