"""The published-grid benchmark: its draw and its summary, exactly."""

import warnings

import pytest

from sltlab.estimators import EstimateWarning

from sltlab.verification.bench.grid import draw_grid, grid_summary
from sltlab.verification.cli import main


def test_the_draw_is_reproducible_and_inside_the_band():
    draws = draw_grid(200, seed=4)
    assert draws == draw_grid(200, seed=4) and draws != draw_grid(200, seed=5)
    assert {len(widths) - 1 for widths, _ in draws} == {2, 3, 4, 5}
    assert all(5 <= width <= 50 for widths, _ in draws for width in widths)
    assert all(0 <= rank <= min(widths) for widths, rank in draws)


def _row(default_error, reference_bias, sampler_error, authors_error, diverged=0):
    return {"default": {"error": default_error, "diverged": diverged, "seconds": 10.0, "estimand_bias": reference_bias,
                        "sampler_error": sampler_error},
            "at_one_size": {"error": 2 * default_error, "estimand_bias": 2 * reference_bias},
            "extrapolated_truth": {"error": reference_bias / 2},
            "authors": {"error": authors_error, "diverged": 1}}


def test_the_summary_counts_medians_tails_and_divergence():
    rows = [_row(0.01 * k, 0.005 * k, -0.01 * k if k % 2 else 0.01 * k, 0.1) for k in range(1, 11)]
    summary = grid_summary(rows)
    assert summary["default"]["median"] == pytest.approx(0.055) and summary["default"]["worst"] == pytest.approx(0.10)
    assert summary["default"]["p90"] == pytest.approx(0.091)
    assert summary["sampler_error"]["median"] == pytest.approx(0.055)   # absolute values
    assert summary["authors_diverged_rate"] == 1.0 and summary["default_diverged_rate"] == 0.0
    assert not summary["meets_targets"]                                  # median 5.5 % > 3 %
    small = grid_summary([_row(0.01, 0.01, 0.005, 0.2) for _ in range(5)])
    assert small["meets_targets"]
    assert not grid_summary([_row(0.01, 0.01, 0.005, 0.2, diverged=1)] * 5)["meets_targets"]


def test_a_draw_of_nothing_is_refused(capsys):
    assert main(["bench", "--only", "grid", "--count", "0"]) == 2
    assert "--count must be at least 1" in capsys.readouterr().err


def test_a_row_splits_each_size_against_its_truth_and_extrapolates_the_truths(monkeypatch):
    """End to end on a tiny network with short runs (the numbers are not judged here)."""
    from dataclasses import replace

    from sltlab.verification.bench import grid
    from sltlab.verification.defaults import ModelDefaults

    short = replace(grid.DLN_DEFAULTS.config, draws=200, burnin=400, thin=1)
    monkeypatch.setattr(grid, "DLN_DEFAULTS", ModelDefaults(short, n=500))
    monkeypatch.setattr(grid, "DLN_ESTIMATE_DEFAULTS", ModelDefaults(short, n=50_000))
    monkeypatch.setattr(grid, "AUTHORS_N", 2000)
    monkeypatch.setattr(grid, "AUTHORS_RECIPE", replace(grid.AUTHORS_RECIPE, draws=100))
    with warnings.catch_warnings():   # runs this short may fail the mixing gate; the numbers are not judged here
        warnings.simplefilter("ignore", EstimateWarning)
        row = grid.grid_row(([3, 2, 3], 1))
    assert row["lambda"] == 3.5 and row["default"]["n"] == 50_000 and row["at_one_size"]["n"] == 500
    for size in ("default", "at_one_size"):
        judged = row[size]
        assert judged["sampler_error"] == pytest.approx(judged["estimate"] / judged["truth"] - 1)
    assert row["extrapolated_truth"]["error"] == pytest.approx(abs(row["extrapolated_truth"]["estimate"] / 3.5 - 1))
    text = grid.format_grid([row], grid.grid_summary([row]))
    assert "n = 10⁴ alone" in text and "truths in 1/log" in text and "[3, 2, 3]" in text


def test_rows_come_back_in_the_draw_order_and_a_bad_cluster_address_is_refused(monkeypatch, capsys):
    from sltlab.verification.bench import grid

    monkeypatch.setattr(grid, "grid_row", lambda draw, threads=None, progress=False: {"widths": draw[0],
                                                                                        "rank": draw[1]})
    draws = [([5, 6], 1), ([7, 8, 9], 0), ([5, 6], 0)]
    assert [(row["widths"], row["rank"]) for row in grid.grid_rows(draws)] == draws
    assert main(["bench", "--only", "grid", "--count", "1", "--dask", "nowhere"]) == 2
    assert "scheduler address" in capsys.readouterr().err


def test_the_estimand_bench_gives_the_gibbs_truth_at_each_size_and_their_extrapolation(monkeypatch):
    from sltlab.estimators import extrapolate_llc
    from sltlab.verification.bench import estimand

    monkeypatch.setattr(estimand, "SIZES", (500, 50_000))
    row = estimand.estimand_row(([3, 2, 3], 1))
    assert [size["n"] for size in row["sizes"]] == [500, 50_000] and row["lambda"] == 3.5
    fit = extrapolate_llc(*zip(*[(size["nbeta"], size["truth"], size["se"]) for size in row["sizes"]]))
    assert row["extrapolated"]["truth"] == pytest.approx(fit.lam) and all(size["se"] > 0 for size in row["sizes"])
    summary = estimand.estimand_summary([row])
    assert summary["count"] == 1 and summary["extrapolated"]["worst"] == pytest.approx(abs(fit.lam / 3.5 - 1))
    assert "[3, 2, 3]" in estimand.format_estimand([row], summary)
