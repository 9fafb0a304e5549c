"""What ``sltlab dynamics bayes`` takes of its teacher and its range of n."""

from __future__ import annotations

import numpy as np
import torch

from sltlab.verification.cli import main
from sltlab.verification.dynamics.bayes_problems import BayesSetup, build_problem


def test_singular_values_are_read_as_the_theory_reads_them_fractions_included():
    decimal = build_problem(BayesSetup("dln", widths=(4, 2, 4), singular_values=("1", "0.4")))
    fraction = build_problem(BayesSetup("dln", widths=(4, 2, 4), singular_values=("1", "2/5")))
    assert decimal.starts == fraction.starts and decimal.classes == fraction.classes
    position = torch.tensor(np.random.default_rng(0).normal(size=(3, decimal.dim)))
    np.testing.assert_array_equal(decimal.loss(position, 100.0).numpy(), fraction.loss(position, 100.0).numpy())


def test_a_range_of_n_without_a_predicted_transition_is_refused_with_where_it_lies(capsys, tmp_path):
    code = main(["dynamics", "bayes", "--model", "dln", "--widths", "2", "2", "2", "--singular-values", "1", "0.4",
                 "--out", str(tmp_path / "made")])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "no predicted transition between n = 25 and 3000 (rank 2 is preferred at both; predicted: " in err
    assert "rank 1 → rank 2 at n = 18.35; move --n-min or --n-max)" in err
    assert not (tmp_path / "made").exists()   # refused before the output folder is made
