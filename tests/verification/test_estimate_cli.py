"""`sltlab estimate dln|poly`: the JSON contract, bad input, divergence, and the multiplicity
fit on exact finite-temperature curves."""

import json
import math
import re

import pytest

from sltlab.estimators.multiplicity import fit_multiplicity, temperature_ladder
from sltlab.verification.cli import main
from sltlab.verification.suite.render import render_estimate
from sltlab.verification.reference.finite_truth import tempered_expectation
from sltlab.verification.suite import outside_band

KEYS = {"llc_mean", "llc_se", "llc_per_chain", "lambda_exact", "rel_error", "rhat", "ess", "diverged_chains",
        "sampling_seconds", "config"}


def run_json(capsys, *argv):
    code = main(["estimate", *argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_estimate_poly_json_matches_the_finite_n_truth(capsys):
    code, result = run_json(capsys, "poly", "w1**4 + w2**2", "--chains", "32", "--draws", "3000", "--seed", "1")
    assert code == 0 and KEYS <= result.keys()
    assert result["lambda_exact"] == "3/4" and result["config"]["sampler"] == "slice"
    assert len(result["llc_per_chain"]) == 32 and result["diverged_chains"] == []
    # Sampler error alone: within 3 standard errors of t·E[K] integrated numerically.
    assert abs(result["llc_mean"] - result["finite_n_truth"]) <= 3 * result["llc_se"]
    assert result["acceptance"] is None     # a slice move is always accepted: no acceptance to report


def test_estimate_dln_draws_a_million_rows_by_default_and_ten_thousand_where_rows_are_needed(capsys):
    code, result = run_json(capsys, "dln", "--widths", "2", "2", "--rank", "1", "--draws", "100", "--burnin", "100",
                            "--chains", "2")
    assert code == 0 and result["n"] == 1_000_000 and "statistics of n rows drawn exactly" in result["problem"]
    code, result = run_json(capsys, "dln", "--widths", "2", "2", "--rank", "1", "--draws", "100", "--burnin", "100",
                            "--chains", "2", "--sampler", "sgld", "--batch-size", "100")
    assert code == 0 and result["n"] == 10_000


def test_estimate_dln_json_resolves_every_default(capsys):
    code, result = run_json(capsys, "dln", "--widths", "3", "2", "3", "--rank", "1", "--draws", "200",
                            "--chains", "4", "--sizes", "2000")
    assert code == 0 and KEYS <= result.keys()
    config = result["config"]
    assert math.isclose(config["nbeta"], 2000 / math.log(2000))
    assert config["step_size"] > 0 and config["burnin"] == 40_000 and config["thin"] == 5
    assert result["localization"]["at"] == "empirical_minimum" and result["localization"]["gradient_norm"] < 1e-5
    assert result["lambda_exact"] == "7/2" and result["multiplicity_exact"] == 2  # Aoyagi & Watanabe, odd case


def test_all_chains_diverging_is_reported_not_inf(capsys):
    code, result = run_json(capsys, "dln", "--widths", "3", "3", "3", "--rank", "1", "--draws", "50",
                            "--chains", "3", "--n", "500", "--step-size", "10", "--sampler", "sgld")
    assert code == 1
    assert result["llc_mean"] is None and result["diverged_chains"] == [0, 1, 2]
    assert result["llc_per_chain"] == [None, None, None]


def test_chains_that_never_left_w_star_are_said_so_not_diverged(capsys):
    # at nβ = 10³⁰ MALA's tuned step (6·10⁻⁴⁴) moves nothing: "ALL CHAINS DIVERGED. Lower --step-size" had misled
    argv = ["estimate", "dln", "--widths", "3", "2", "3", "--rank", "1", "--n", "1000", "--draws", "200", "--burnin",
            "100", "--chains", "4", "--nbeta", "1e30", "--dtype", "float64"]
    assert main(argv) == 1
    said = capsys.readouterr().out
    assert "NO CHAIN LEFT w*: no estimate; chain 0 never left w*: its steps are below the rounding of w*" in said
    assert "DIVERGED" not in said


def test_text_output_names_the_pieces(capsys):
    assert main(["estimate", "poly", "w1**2", "--chains", "4", "--draws", "500"]) == 0
    text = capsys.readouterr().out
    for words in ("λ̂", "exact λ   1/2", "nβ·E[ΔL]", "R-hat", "slice sampling", "stepped out and shrunk"):
        assert words in text
    judged, to_lambda = text.splitlines()[1:3]    # the judged error leads, the distance to λ follows
    assert re.fullmatch(r"  error     z = \(λ̂ − truth\)/SE = [+-]\d\.\d\d "
                        r"against the finite-n truth nβ·E\[ΔL\] = .*", judged)
    assert to_lambda.startswith("  to λ ") and "reported, not judged" in to_lambda


def test_a_degenerate_potential_is_estimated_and_names_the_command_that_answers_its_lambda(capsys):
    code, result = run_json(capsys, "poly", "(w1+w2)**2", "--chains", "4", "--draws", "100")
    assert code == 0 and result["lambda_exact"] is None and "real torus" in result["exact_unavailable"]
    assert result["exact_answered_by"] == 'sltlab estimate volume "(w1+w2)**2"'


@pytest.mark.parametrize("argv", [
    ["dln", "--widths", "3", "2", "3", "--rank", "5"],
    ["dln", "--widths", "3", "2", "3", "--rank", "1", "--chains", "0"],
    ["dln", "--widths", "3", "2", "3", "--rank", "1", "--step-size", "-1"],
    ["dln", "--widths", "3", "2", "3", "--rank", "1", "--n", "1"],
    ["dln", "--widths", "3", "2", "3", "--rank", "1", "--sampler", "nuts"],
    ["dln", "--widths", "3", "2", "3", "--rank", "1", "--sampler", "hmc", "--localization", "0"],
    ["poly", "w1**2 +"],
    ["poly", "w1**2", "--localization", "-1"],
    ["poly", "w1**2", "--temperatures", "1"],
    ["poly", "w1**2", "--calibrate", "--step-size", "0.01"],
    ["dln", "--widths", "3", "2", "3", "--rank", "1", "--sampler", "mala", "--batch-size", "50", "--n", "2000"],
    ["dln", "--widths", "3", "2", "3", "--rank", "1", "--sampler", "hmc", "--batch-size", "50", "--n", "2000"],
    ["dln", "--widths", "3", "2", "3", "--rank", "1", "--nbeta", "1"],
    ["dln", "--widths", "3", "2", "3", "--rank", "1", "--n", "2000", "--sizes", "3000"],
    ["dln", "--widths", "3", "2", "3", "--rank", "1", "--sizes", "2000", "20000", "--batch-size", "50"],
    ["dln", "--widths", "3", "2", "3", "--rank", "1", "--sizes", "1", "2000"],
    ["dln", "--widths", "3", "2", "3", "--rank", "1", "--sizes", "2000", "2000"],
    ["dln", "--widths", "3", "2", "3", "--rank", "1", "--anneal", "0.5"],
    ["dln", "--widths", "3", "2", "3", "--rank", "1", "--nbeta", "5", "--temperatures", "3"],
])
def test_bad_input_exits_2_with_one_line(capsys, argv):
    assert main(["estimate", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1


def test_outside_band_counts_only_what_multiplicity_does_not_explain():
    low = 39.5 - 2 / math.log(1000.0)
    assert outside_band(39.4, 39.5, 3, 1000.0) == 0.0
    assert math.isclose(outside_band(41.475, 39.5, 3, 1000.0), 0.05)
    assert math.isclose(outside_band(low - 0.395, 39.5, 3, 1000.0), 0.01)


@pytest.mark.parametrize("potential, multiplicity", [("w1**2*w2**2", 2), ("w1**4 + w2**2", 1)])
def test_multiplicity_fit_on_exact_finite_temperature_curves(potential, multiplicity):
    """The fit applied to t·E_t[K] integrated numerically (no sampling error) over 10²–10⁶."""
    ladder = temperature_ladder(1e4, 5, decades=4)
    curve = [tempered_expectation(potential, t, 1.0) for t in ladder]
    fit = fit_multiplicity(ladder, curve, [1e-3] * len(ladder))
    assert fit.multiplicity_rounded == multiplicity


def test_a_ladder_of_more_rungs_than_a_fit_of_two_numbers_uses_is_refused():
    assert len(temperature_ladder(1e4, 64)) == 64   # each rung a whole estimate: 100,000 had run on, unbounded
    with pytest.raises(ValueError, match="^a multiplicity fit takes 2 to 64 temperatures, got 65$"):
        temperature_ladder(1e4, 65)


def test_a_ladder_too_long_is_refused_before_the_data_are_built(capsys, monkeypatch):
    def no_data(*args, **kwargs):
        raise AssertionError("the data were built before the ladder was refused")
    monkeypatch.setattr("sltlab.verification.suite.dln_problem", no_data)
    assert main(["estimate", "dln", "--widths", "3", "2", "3", "--rank", "1", "--temperatures", "65"]) == 2
    assert capsys.readouterr().err.strip().endswith("a multiplicity fit takes 2 to 64 temperatures, got 65")


def test_rmsprop_step_comes_from_the_preconditioned_curvature(capsys):
    code, result = run_json(capsys, "dln", "--widths", "1", "3", "1", "--rank", "1", "--sampler", "rmsprop_sgld",
                            "--draws", "300", "--burnin", "300", "--thin", "1", "--sizes", "2000")
    assert code == 0 and result["diverged_chains"] == []
    assert "preconditioned curvature" in result["step_size_rule"] and result["steps"] == 600


def test_hmc_counts_trajectories_with_its_own_defaults_and_no_cooling(capsys):
    """Chosen over the deep linear family's MALA, hmc takes its own counts (300 draws after 50
    trajectories, not 16,000 after 40,000 steps) unless given, and MALA's anneal is off."""
    code, result = run_json(capsys, "dln", "--widths", "1", "3", "1", "--rank", "1", "--sampler", "hmc",
                            "--chains", "2", "--sizes", "2000")
    config = result["config"]
    assert code == 0 and (config["draws"], config["burnin"], config["thin"], config["anneal"]) == (300, 50, 1, 1.0)
    assert result["steps"] == 350 and "leapfrog steps" in result["step_size_rule"] and result["notes"] == []
    code, result = run_json(capsys, "dln", "--widths", "1", "3", "1", "--rank", "1", "--sampler", "hmc",
                            "--chains", "2", "--sizes", "2000", "--draws", "40", "--burnin", "10")
    assert code == 0 and result["steps"] == 50


def test_calibrate_chooses_the_step_from_the_sweep_and_says_why(capsys):
    code, result = run_json(capsys, "poly", "w1**2 + w2**2", "--sampler", "sgld", "--chains", "64", "--draws",
                            "2000", "--calibrate")
    calibration = result["calibration"]
    assert code == 0 and result["config"]["step_size"] == calibration["chosen"]
    assert calibration["chosen"] == calibration["sweep"][-1]["step_size"]
    assert "shown within 5%" in calibration["reason"] and result["step_size_rule"] == calibration["reason"]
    # the run keeps its diffusion time at the calibrated step
    assert result["config"]["draws"] == round(2000 * min(4, max(1, calibration["rule"] / calibration["chosen"])))


def test_calibrating_mala_runs_no_sweep(capsys):
    code, result = run_json(capsys, "poly", "w1**2", "--chains", "8", "--draws", "300", "--calibrate")
    assert code == 0 and result["calibration"]["sweep"] == [] and "exact" in result["calibration"]["reason"]
    assert result["step_size_rule"].startswith("slice sampling, initial bracket")
    text = render_estimate(result)
    assert "calibration: slice is exact" in text and "calibrated step" not in text and "pilot λ̂" not in text


def test_estimate_dln_with_its_exact_reference(capsys):
    code, result = run_json(capsys, "dln", "--widths", "3", "2", "3", "--rank", "1", "--chains", "8", "--draws",
                            "2000", "--burnin", "4000", "--thin", "2", "--sizes", "2000", "--reference")
    assert code == 0 and result["config"]["sampler"] == "mala"
    assert result["finite_n_truth_method"].startswith("blocked Gibbs") and result["finite_n_truth_se"] > 0
    difference = math.hypot(result["llc_se"], result["finite_n_truth_se"])
    assert abs(result["llc_mean"] - result["finite_n_truth"]) <= 3 * difference + 0.01 * result["finite_n_truth"]
    text = render_estimate(result)
    assert text.splitlines()[1].startswith("  error     z = (λ̂ − truth)/SE")
    assert "(blocked Gibbs, 8 chains × 2000 sweeps, at this nβ and γ" in text


def test_estimate_dln_extrapolates_over_sample_sizes_and_its_reference_too(capsys):
    """At two sizes (sufficient statistics drawn at the larger), λ̂ extrapolated in 1/log nβ,
    judged against the Gibbs truths extrapolated the same way: within 3 combined SE and 1 %."""
    code, result = run_json(capsys, "dln", "--widths", "3", "2", "3", "--rank", "1", "--chains", "8", "--draws",
                            "2000", "--burnin", "4000", "--thin", "2", "--sizes", "2000", "200000", "--reference")
    assert code == 0 and result["n"] == [2000, 200_000] and len(result["estimates"]) == 2
    fit, means = result["extrapolation"], [line["llc_mean"] for line in result["estimates"]]
    assert result["llc_mean"] == pytest.approx(sum(w * m for w, m in zip(fit["weights"], means)), rel=1e-12)
    assert result["llc_se"] > max(line["llc_se"] for line in result["estimates"])   # extrapolating widens the SE
    assert "statistics of n rows drawn exactly" in result["estimates"][1]["problem"]
    assert result["band"] == [3.5, 3.5] and result["rel_error"] == pytest.approx(result["llc_mean"] / 3.5 - 1)
    difference = math.hypot(result["llc_se"], result["finite_n_truth_se"])
    assert abs(result["llc_mean"] - result["finite_n_truth"]) <= 3 * difference + 0.01 * result["finite_n_truth"]
    text = render_estimate(result)
    assert "λ̂ extrapolated to nβ → ∞ from n = 2,000 and 200,000" in text.splitlines()[0]
    assert "  at n = 200,000 " in text and "λ̂(nβ) = λ̂ − c/log nβ" in text
    assert result["notes"][0].startswith("the acceptance, drift, γ-elasticity, step and sampler settings shown are "
                                         "the largest size's (n = 200000)")
    assert "to λ " in text and "(reported; the z above judges the estimate)" in text


def test_chains_that_fail_the_mixing_gate_are_a_warning_on_the_command_line(capsys):
    # 2 chains × 20 draws are worth at most 40 independent draws, under the gate's ESS of 200
    code = main(["estimate", "poly", "w1**2", "--chains", "2", "--draws", "20"])
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    assert re.search(r"WARNING: the chains fail the mixing gate: .*ESS \d+ < 200", captured.out)
    code, result = run_json(capsys, "poly", "w1**2", "--chains", "2", "--draws", "20")
    assert any("mixing gate" in warning for warning in result["warnings"])


def test_the_deep_linear_fallback_belongs_to_its_recipe(capsys):
    """Runs too short for the mixing gate: with the family's recipe changed (--draws) the fallback
    is dropped and the failure is a warning; asked for again with --fallback, hmc replaces the
    run and a note keeps what MALA read."""
    short = ("dln", "--widths", "1", "3", "1", "--rank", "1", "--chains", "2", "--draws", "20", "--burnin", "20",
             "--sizes", "2000")
    code, result = run_json(capsys, *short)
    assert code == 0 and result["config"]["sampler"] == "mala" and result["config"]["fallback"] is None
    assert any("mixing gate" in warning for warning in result["warnings"])
    code, result = run_json(capsys, *short, "--fallback", "hmc")
    assert code == 0 and result["config"]["sampler"] == "hmc" and result["steps"] == 350
    assert any(note.startswith("mala's chains failed the mixing gate") for note in result["notes"])
    code, result = run_json(capsys, *short, "--fallback", "none", "--sampler", "sgld")
    assert code == 0 and result["config"]["fallback"] is None


def test_the_quadrature_truth_is_given_only_where_its_grid_resolves_the_posterior(capsys):
    """At K = w1²w2² the grid (|w| ≥ 10⁻⁹) resolves t^{−1/2} up to t = 10¹⁸; beyond, the integral
    was wrong (0.30 at 10²⁰ against a band of [0.478, 0.5]), so no truth is reported there."""
    from sltlab.verification.reference.finite_truth import resolves, tempered_expectation

    assert resolves(1e18) and not resolves(1e20)
    with pytest.raises(ValueError, match="resolves t·E"):
        tempered_expectation("w1**2*w2**2", 1e20, 1.0)
    assert main(["estimate", "poly", "w1**2*w2**2", "--chains", "2", "--draws", "20", "--nbeta", "1e20",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert "finite_n_truth" not in summary and summary["band"][1] == 0.5


def test_a_ladder_whose_fit_misses_the_exact_m_says_so_among_the_warnings(capsys):
    """w1²w2² has λ = 1/2 and m = 2; three short rungs fit m = 1.36 ± 0.27 (2.3 SE off), which the
    text rounded to 1 beside the exact 2 with no warning."""
    code, result = run_json(capsys, "poly", "w1**2*w2**2", "--temperatures", "3", "--draws", "200", "--chains", "8")
    fit = result["multiplicity_fit"]
    assert code == 0 and abs(fit["multiplicity"] - 2) > 2 * fit["multiplicity_se"]
    assert any(warning.startswith("the ladder's fit misses the exact values: m = ") for warning in result["warnings"])
