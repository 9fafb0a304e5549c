"""Bad numbers that once ended in a raw error text, a wrong number or a default taken silently
now end in exit 2 with one line saying what is wrong (each checked before any work starts)."""

import io
from contextlib import redirect_stderr, redirect_stdout

import pytest

from sltlab.verification.cli import main

HUGE_SEED = str(2 ** 70)


@pytest.mark.parametrize("argv, said", [
    (["dynamics", "saddle", "--learning-rate", "inf"], "must be positive and finite"),      # a JSON encoder's error
    (["dynamics", "saddle", "--init-scale", "1e400"], "must be positive and finite"),
    (["dynamics", "saddle", "--singular-values", "inf"], "is not a finite number"),   # NaN to integer
    (["dynamics", "grokking", "--weight-decay", "inf"], "need a finite learning rate"),
    (["dynamics", "grokking", "--modulus", "100000"], "need 2 ≤ modulus ≤ 1,000"),   # had failed allocating 80 GB
    (["estimate", "dln", "--widths", "2", "2", "--rank", "1", "--nbeta", "1e39"], "exceeds float32's range"),
    (["estimate", "dln", "--widths", "2", "2", "--rank", "1", "--seed", HUGE_SEED], "a seed is an integer from 0"),
    (["verify", "--random", "1", "--seed", "-1"], "a seed is an integer from 0"),
    (["dynamics", "grokking", "--seeds", "0", HUGE_SEED], "a seed is an integer from 0"),      # after seed 0 trained
    (["bench", "--only", "curve", "--checkpoints", "0"], "need at least 2 checkpoints, got 0"),   # had run 60
    (["bench", "--only", "along", "--checkpoints", "1"], "need at least 2 checkpoints, got 1"),   # named chains too
    (["estimate", "dln", "--widths", "3", "2", "3", "--rank", "1", "--reference", "--localization", "0"],
     "--reference (blocked Gibbs) needs γ > 0"),                                                 # had left it out
    (["estimate", "dln", "--widths", "3", "2", "3", "--rank", "1", "--reference", "--batch-size", "10"],
     "and the full data: no --batch-size"),
    (["estimate", "volume", "(w1+w2)**2", "--box", "1000"], "the fit is not settled"),        # had read 0.566, m 2
    (["verify", "--only", ""], "--only '' keeps every case"),                                  # had run the suite
    (["dynamics", "bayes", "--model", "tms", "--data", "sampled", "--n-max", "1e12"], "at most 1,000,000"),
    (["theory", "report", "--out", ""], "an output folder is a path, not ''"),                   # had written into .
    (["theory", "poly", "nan*w1**2"], "has a coefficient that is not a finite number"),         # "has no variables"
    (["plot", "phase", "--depth", "3", "--io", "3000", "--max-width", "3000", "--out", "never.png"],
     "up to depth 1,000, 250,000 cells ((io + 1) × max_width) and 5,000,000 cells × depth"),   # had run minutes
    (["theory", "poly", "gamma**2"], "(gamma: a name sympy or Python keeps for itself, not a variable"),  # "TypeError"
    (["dynamics", "saddle", "--init-scale", "0"], "the init scale must be positive and finite, got 0.0"),  # named none
])
def test_a_bad_number_is_one_line_and_exit_2(argv, said, tmp_path):
    argv = argv + (["--out", str(tmp_path / "out")] if argv[0] == "dynamics" else [])
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = main(argv)
    assert code == 2 and said in stderr.getvalue() and stderr.getvalue().count("\n") == 1, stderr.getvalue()


def test_a_folder_given_as_the_data_file_is_called_a_folder(tmp_path):
    (tmp_path / "model.py").write_text("import torch\nmodel = torch.nn.Linear(2, 1)\n")
    stderr = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(stderr):
        code = main(["estimate", "module", "--model", f"{tmp_path / 'model.py'}:model", "--data", str(tmp_path)])
    assert code == 2 and stderr.getvalue() == f"sltlab: error: --data: {tmp_path} is a folder, not a file\n"
