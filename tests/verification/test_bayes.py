"""The Bayesian phase-transition study: crossovers and their jackknife on constructed shares, the
phase classifiers on constructed points, a small study end to end, and the command line."""

import json
import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.notices import EstimateWarning
from sltlab.models.tms import ToyModelOfSuperposition
from sltlab.theory.tms import kgon
from sltlab.verification.cli import main
from sltlab.verification.dynamics.bayes import bayes_study
from sltlab.verification.dynamics.bayes_problems import (BayesSetup, build_problem, classify_tms, hull_vertices,
                                                         nearest_rank, random_symmetry)
from sltlab.verification.dynamics.occupancy import (crossover, jackknife_crossover, observed_transition,
                                                    occupancy_table)

N = np.array([10.0, 20.0, 40.0, 80.0])


def test_the_crossover_interpolates_in_log_n_where_the_two_shares_are_equal():
    assert math.isclose(crossover([0.9, 0.7, 0.3, 0.1], [0.1, 0.3, 0.7, 0.9], N), 20 * math.sqrt(2))
    # Other phases do not matter: b's share of the two is what crosses ½.
    assert math.isclose(crossover([0.45, 0.35, 0.15, 0.05], [0.05, 0.15, 0.35, 0.45], N), 20 * math.sqrt(2))
    assert crossover([0.9, 0.8, 0.7, 0.6], [0.1, 0.2, 0.3, 0.4], N) is None          # b never wins
    assert crossover([0.9, 0.3, 0.3, 0.9], [0.1, 0.7, 0.7, 0.1], N) is None          # and loses again
    assert math.isclose(crossover([0.6, 0.4, 0.004, 0.2], [0.4, 0.6, 0.001, 0.8], N),  # a rung without either
                        10 * 2 ** 0.5)


def test_the_last_turn_is_the_crossover():
    assert math.isclose(crossover([0.4, 0.6, 0.4, 0.1], [0.6, 0.4, 0.6, 0.9], N), 20 * math.sqrt(2))


def test_the_jackknife_over_ladders():
    before = np.array([[0.9, 0.9], [0.7, 0.7], [0.3, 0.3], [0.1, 0.1]])
    estimate, error = jackknife_crossover(before, 1 - before, N)
    assert math.isclose(estimate, 20 * math.sqrt(2)) and error == 0.0
    shifted = np.array([[0.9, 0.9, 0.9], [0.8, 0.7, 0.6], [0.3, 0.3, 0.3], [0.1, 0.1, 0.1]])
    estimate, error = jackknife_crossover(shifted, 1 - shifted, N)
    leave_out = np.array([crossover(np.delete(shifted, m, 1), 1 - np.delete(shifted, m, 1), N) for m in range(3)])
    assert math.isclose(error, math.sqrt(2 / 3 * ((leave_out - leave_out.mean()) ** 2).sum()))


def test_observed_transition_compares_start_groups_and_halves():
    labels = np.zeros((4, 4, 10), dtype=int)
    labels[2:] = 1
    result = observed_transition(labels, 0, 1, N, [np.arange(2), np.arange(2, 4)])
    assert math.isclose(result["observed_n"], 20 * math.sqrt(2)) and result["observed_se"] == 0.0
    assert result["observed_by_start"] == [result["observed_n"]] * 2 and result["observed_by_half"] == [
        result["observed_n"]] * 2
    assert result["largest_start_difference"] == 0.0 and result["largest_start_difference_z"] is None
    table = occupancy_table(labels, {"a": 0, "b": 1})
    np.testing.assert_allclose(np.array(table["a"]["mean"]) + table["b"]["mean"] + table["other"]["mean"], 1.0)


def test_every_copy_of_a_kgon_is_classified_as_one():
    model = ToyModelOfSuperposition(6)
    generator = torch.Generator().manual_seed(0)
    for k in (5, 6):
        base = torch.tensor(kgon(6, k).parameter, dtype=torch.float64)
        copies = torch.stack([random_symmetry(model, base, generator) for _ in range(20)])
        assert classify_tms(model, copies, 0.5).tolist() == [k] * 20
        torch.testing.assert_close(model(copies), model(base.unsqueeze(0)).expand(20, 1))


def test_the_classifier_refuses_what_is_not_a_regular_polygon():
    model = ToyModelOfSuperposition(6)
    hexagon = torch.tensor(kgon(6, 6).parameter, dtype=torch.float64)
    columns, bias = model.split(hexagon)
    crowded = columns.clone()
    crowded[1] = columns[0] * 0.95 + 0.05 * columns[1]          # two columns almost on top of each other
    shrunk = columns.clone()
    shrunk[3] = columns[3] * 0.3                                 # one column below the alive threshold
    labels = classify_tms(model, torch.stack([model.join(crowded, bias), model.join(shrunk, bias)]), 0.5)
    assert labels.tolist() == [-1, -1]                           # 5 alive, but a gap of 120°: not a 5-gon
    pentagon_gap = columns.clone()
    pentagon_gap[5] = 0.0
    assert classify_tms(model, model.join(pentagon_gap, bias).unsqueeze(0), 0.5).tolist() == [-1]


def test_hull_vertices_agree_with_qhull():
    from scipy.spatial import ConvexHull

    points = torch.randn(300, 7, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = [len(ConvexHull(p.numpy()).vertices) for p in points]
    assert hull_vertices(points).tolist() == expected and min(expected) < 5 < max(expected)


def test_the_hull_counts_a_sixth_column_once_it_leaves_the_pentagon():
    model = ToyModelOfSuperposition(6)
    columns, _ = model.split(torch.tensor(kgon(6, 5).parameter, dtype=torch.float64))
    assert hull_vertices(columns).item() == 5                    # the dead column sits at the origin
    angles = torch.atan2(columns[:5, 1], columns[:5, 0]).sort().values
    middle = (angles[0] + angles[1]) / 2                         # the middle of one gap of the pentagon
    edge = columns[:5].norm(dim=-1).mean() * math.cos(math.pi / 5)
    for length, count in ((0.98 * edge, 5), (1.02 * edge, 6)):
        grown = columns.clone()
        grown[5] = length * torch.stack([middle.cos(), middle.sin()])
        assert hull_vertices(grown).item() == count


def test_nearest_rank_compares_the_draw_with_each_truncation():
    singular = torch.tensor([1.0, 0.3, 0.15], dtype=torch.float64)
    components = torch.tensor([[1.0, 0.3, 0.15], [1.0, 0.3, 0.07], [1.0, 0.3, 0.08], [1.0, 0.1, 0.15], [0.0, 0, 0]],
                              dtype=torch.float64)
    assert nearest_rank(components, singular, 0.5).tolist() == [3, 2, 3, 1, 0]   # 0.1 < 0.3/2: mode 2 not learned
    assert nearest_rank(components[1:3], singular, 0.65).tolist() == [2, 2]


def test_the_deep_linear_problem_labels_each_truncation_with_its_rank():
    setup = BayesSetup("dln", widths=(4, 3, 4), singular_values=("1", "0.5", "0.25"), n_min=10, n_max=2000)
    problem = build_problem(setup)
    generator = torch.Generator().manual_seed(1)
    points = torch.stack([problem.start(f"rank {k}", generator) for k in range(4)])
    assert problem.record(points)["label"].tolist() == [0, 1, 2, 3]
    assert problem.starts == ("rank 1", "rank 3") and problem.labels["rank 2"] == 2
    assert float(problem.loss(points[3:])) < 1e-20


TINY = BayesSetup("dln", widths=(3, 2, 3), singular_values=("1", "0.4"), n_min=5.0, n_max=400.0, rungs=6, ladders=4,
                  warmup=20, draws=20, leapfrog_steps=2)


def test_a_tiny_study_runs_end_to_end_and_caches(tmp_path):
    result = bayes_study(TINY, cache=tmp_path)
    (row,) = result["transitions"]
    assert (row["before"], row["after"]) == ("rank 1", "rank 2") and 40 < row["predicted_n"] < 50
    # L = ½‖P − B‖² is the unit-variance Gaussian's own: the conversion leaves n as it is
    assert row["observed_n_unit_variance_likelihood"]["label"] == row["observed_n"]
    assert set(result["occupancy"]) == {"rank 0", "rank 1", "rank 2", "other"}
    assert len(result["sampler"]["step_size"]) == 6 and result["sampler"]["chains"] == 24
    json.dumps(result, allow_nan=False)
    again = bayes_study(TINY, cache=tmp_path)
    same = json.loads(json.dumps({**again, "from_cache": False})) == json.loads(json.dumps(result))
    assert again["from_cache"] and same
    # the cache holds measurements only: no verdict, no theory, no occupancy to go stale
    (stored,) = tmp_path.glob("bayes-measured-*.json")
    assert set(json.loads(stored.read_text())) == {"step_size", "move_acceptance", "swap_acceptance", "round_trips",
                                                   "steps", "sampling_seconds", "llc"}
    (labels,) = tmp_path.glob("bayes-labels-*.pt")
    assert set(torch.load(labels, weights_only=True)) == {"label", "label_loose", "label_strict"}


def test_tiny_studies_on_sampled_data_run_and_say_which_posterior(tmp_path):
    setup = BayesSetup("tms", features=6, n_min=100.0, n_max=1500.0, rungs=6, ladders=4, warmup=20, draws=20,
                       leapfrog_steps=2, data="sampled")
    short = LLCConfig(sampler="mala", chains=2, draws=20, burnin=10, localization=100.0,
                      localize_at="true_parameter", dtype="float64")
    with warnings.catch_warnings():   # an LLC this short fails the mixing gate; only its place in the result matters
        warnings.simplefilter("ignore", EstimateWarning)
        result = bayes_study(setup, llc=short, cache=tmp_path)
    assert result["n"] == [100.0, 172.0, 295.0, 508.0, 873.0, 1500.0]   # whole rows
    assert result["sampler"]["likelihood"].startswith("exp(−Σ_j ‖x_j − f(x_j)‖²) over a data set of n drawn rows, "
                                                      "one per pair")
    assert result["unit_variance_scale"] is None
    assert all(row["observed_n_unit_variance_likelihood"] is None for row in result["transitions"])
    json.dumps(result, allow_nan=False)
    dln = bayes_study(replace(TINY, data="sampled"), cache=tmp_path)   # ½Σ‖y − Px‖²: the unit-variance likelihood
    assert dln["sampler"]["likelihood"].startswith("exp(−½Σ_j ‖y_j − P x_j‖²) over a data set of n drawn rows")
    assert dln["unit_variance_scale"] == 1.0 and dln["n"] == [5.0, 12.0, 29.0, 69.0, 167.0, 400.0]
    with pytest.raises(ValueError, match="whole number of rows"):
        replace(setup, n_min=3.0, n_max=10.0, rungs=12).validate()


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_theory_tms_gives_the_point_and_its_kind(capsys):
    code, out, err = run(capsys, "theory", "tms", "--features", "6", "--k", "5", "--json")
    result = json.loads(out)
    assert (code, err) == (0, "") and result["lambda"] == "7" and result["kind"] == "minimum"
    code, out, _ = run(capsys, "theory", "tms", "--features", "8", "--k", "6", "--positive-dead", "1")
    assert code == 0 and "saddle" in out and "negative Hessian eigenvalues" in out


def test_theory_transitions_for_both_models(capsys):
    code, out, _ = run(capsys, "theory", "transitions", "--widths", "6", "3", "6", "--singular-values", "1", "0.3",
                       "0.15", "--json")
    result = json.loads(out)
    assert code == 0 and [round(t["critical_n"]) for t in result["transitions"]] == [15, 206, 1123]
    assert (result["n_max"], result["preferred_at_n_max"]) == (1e12, "rank 3")
    code, out, _ = run(capsys, "theory", "transitions", "--features", "6")
    assert code == 0 and "5-gon → 6-gon: n = 601" in out and "Laplace" in out
    assert out.rstrip().endswith("preferred at n = 1e+12, the end of the range searched: 6-gon")


def test_a_refused_point_exits_3_and_a_mode_no_layer_carries_is_said(capsys):
    code, out, _ = run(capsys, "theory", "tms", "--features", "6", "--k", "4", "--json")
    assert code == 3 and json.loads(out)["kind"] == "refused"
    code, out, _ = run(capsys, "theory", "transitions", "--widths", "6", "3", "6", "--singular-values", "1", "0.3",
                       "0.15", "0.1", "--json")
    result = json.loads(out)
    assert code == 0 and result["note"] == ("the teacher has rank 4 and the narrowest layer 3: its 1 smallest mode(s) "
                                            "cannot be learnt, and every phase keeps their loss")
    assert [p["name"] for p in result["phases"]][-1] == "rank 3" and result["phases"][-1]["loss"] == "1/200"
    code, out, _ = run(capsys, "theory", "transitions", "--features", "6")
    assert out.splitlines()[1].startswith("each k-gon, its dead biases of either sign, is one phase")


def test_a_transition_past_the_range_searched_is_said_so(capsys):
    """With s₂ = 10⁻⁵ the rank-2 phase would win only far beyond n = 10¹²: rank 1 ends the range."""
    code, out, _ = run(capsys, "theory", "transitions", "--widths", "6", "3", "6", "--singular-values", "1", "1e-5",
                       "--json")
    result = json.loads(out)
    assert code == 0 and [t["after"] for t in result["transitions"]] == ["rank 1"]
    assert result["preferred_at_n_max"] == "rank 1"


def test_a_transition_before_the_range_searched_is_said_so_and_large_numbers_keep_their_columns(capsys):
    """With s₁ = 10⁶ rank 1 wins from n = 3 on (rank 0's loss is 5·10¹¹): no transition is found.
    The table had run the multiplicity into c = 10⁶ ("11000000.00000")."""
    code, out, _ = run(capsys, "theory", "transitions", "--widths", "6", "3", "6", "--singular-values", "1e6", "1e-6")
    lines = out.splitlines()
    assert code == 0 and "→" not in out and "preferred at n = 3, the start of the range searched: rank 1" in lines
    assert [line.split() for line in lines[2:4]] == [["rank", "0", "5e+11", "8", "2", "0"],
                                                     ["rank", "1", "5e-13", "10", "1", "1e+06"]]
    result = json.loads(run(capsys, "theory", "transitions", "--widths", "6", "3", "6", "--singular-values", "1e6",
                            "1e-6", "--json")[1])
    assert (result["n_min"], result["preferred_at_n_min"], result["transitions"]) == (3.0, "rank 1", [])


def test_plot_transitions_writes_a_png(capsys, tmp_path):
    code, out, _ = run(capsys, "plot", "transitions", "--widths", "4", "2", "4", "--singular-values", "1", "0.3",
                       "--out", str(tmp_path / "f.png"), "--json")
    assert code == 0 and json.loads(out)["written"]["figure"].endswith("f.png")
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


TINY_ARGS = ["--model", "dln", "--widths", "3", "2", "3", "--singular-values", "1", "0.4", "--n-min", "5", "--n-max",
             "400", "--rungs", "6", "--ladders", "4", "--warmup", "20", "--draws", "20", "--leapfrog-steps", "2"]


def test_the_study_prints_one_json_object_and_writes_its_figure(capsys, tmp_path):
    code, out, err = run(capsys, "dynamics", "bayes", *TINY_ARGS, "--out", str(tmp_path), "--json")
    result = json.loads(out)
    assert code == int(not result["targets_met"]) and err == ""
    assert (tmp_path / "bayes-dln.png").stat().st_size > 0
    assert json.loads((tmp_path / "bayes-dln.json").read_text())["studies"] == result["studies"]
    code, out, _ = run(capsys, "dynamics", "bayes", *TINY_ARGS, "--out", str(tmp_path))
    assert "predicted" in out and "loaded from the cache" in out


@pytest.mark.parametrize("argv, words", [
    (["theory", "tms", "--features", "6", "--k", "7"], "7-gon"),
    (["theory", "tms", "--features", "1", "--k", "1"], "features"),
    (["theory", "transitions", "--widths", "6", "3", "6"], "singular-values"),
    (["theory", "transitions", "--widths", "6", "3", "6", "--singular-values", "1", "x"], "singular values"),
    (["theory", "transitions", "--features", "6", "--widths", "2", "2"], "either"),
    (["theory", "transitions", "--features", "4"], "no k-gon minimum"),
    (["theory", "transitions", "--widths", "6", "3", "6", "--singular-values", "1", "1/0"], "singular values"),
    (["theory", "transitions", "--widths", "6", "3", "6", "--singular-values", "1", "0", "0.15"], "must be positive"),
    (["theory", "transitions", "--features", "6", "--singular-values", "1", "0.3"], "either"),
    (["theory", "tms", "--features", "6", "--positive-dead", "1"], "give --k with it"),
    (["dynamics", "bayes", "--model", "mlp", "--out", "{out}"], "invalid choice"),
    (["dynamics", "bayes", "--model", "dln", "--rungs", "2", "--out", "{out}"], "rungs"),
    (["dynamics", "bayes", "--model", "dln", "--widths", "3", "2", "3", "--out", "{out}"], "singular-values"),
    (["dynamics", "bayes", "--model", "tms", "--widths", "3", "2", "3", "--out", "{out}"], "--model dln"),
    (["dynamics", "bayes", "--model", "tms", "--features", "40", "--out", "{out}"], "features"),
    (["dynamics", "bayes", "--model", "tms", "--features", "3", "--out", "{out}"], "5 to 12 features"),
    (["dynamics", "bayes", "--model", "tms", "--threads", "0", "--out", "{out}"], "threads"),
    (["dynamics", "bayes", "--model", "dln", "--data", "drawn", "--out", "{out}"], "invalid choice"),
])
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, argv, words):
    code, out, err = run(capsys, *[a.replace("{out}", str(tmp_path)) for a in argv], "--json")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and words in err


@pytest.mark.slow
def test_the_llc_of_the_pentagon_and_the_hexagon_is_within_5_percent_of_lambda():
    """20–40 s on one core: the study's LLC setting at the 5-gon (λ = 7) and the 6-gon (17/2)."""
    from sltlab.estimators.estimate import estimate_llc_from_loss
    from sltlab.verification.dynamics.bayes import TMS_LLC, TMS_LLC_N

    model = ToyModelOfSuperposition(6)
    for k in (5, 6):
        point = kgon(6, k)
        result = estimate_llc_from_loss(model, torch.tensor(point.parameter, dtype=torch.float64), (), TMS_LLC,
                                        n=TMS_LLC_N)
        assert abs(result.estimate.mean / point.coefficient.lam_float - 1) < 0.05
        assert result.estimate.rhat < 1.05 and not result.estimate.diverged_chains
