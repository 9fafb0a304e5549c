"""`sltlab bench` reports medians beside targets (structure only: speed is never asserted)."""

import json
import sys
import time
from dataclasses import replace

import pytest

from sltlab.verification.bench.theory import Benchmark, format_rows, run_benchmarks
from sltlab.verification.cli import main
from sltlab.verification.suite.cases import DLN_SMOKE


def test_rows_carry_median_spread_and_verdict():
    rows = run_benchmarks(2, (Benchmark("no-op", lambda: None, 1.0), Benchmark("untargeted", lambda: None, None),
                              Benchmark("sleeps", lambda: time.sleep(0.01), 0.001)))
    assert [row["name"] for row in rows] == ["no-op", "untargeted", "sleeps"]
    assert rows[0]["median_seconds"] >= 0 and rows[0]["repeats"] == 2
    # a no-op is far inside one second; a 10 ms sleep is never within 1 ms
    assert rows[0]["meets_target"] is True and rows[1]["meets_target"] is None and rows[2]["meets_target"] is False
    assert "no-op" in format_rows(rows)


def test_cli_bench_json_and_its_exit_code_says_whether_a_target_was_missed(capsys):
    code = main(["bench", "--repeats", "1", "--only", "theory", "--json"])
    rows = json.loads(capsys.readouterr().out)["benchmarks"]
    assert code == int(any(row["meets_target"] is False for row in rows))
    assert any("10 layers of width 1000" in row["name"] and row["target_seconds"] == 0.05 for row in rows)


def test_sampler_step_time_and_rows():
    from sltlab.verification.bench.sampling import format_sampler_rows, sgld_seconds_per_step

    seconds = sgld_seconds_per_step([3, 3], chains=4, batch_size=10, steps=5, repeats=2)
    assert seconds > 0
    rows = [{"name": "a", "chain_steps_per_second": 4 / seconds, "target_chain_steps_per_second": 1,
             "meets_target": True}, {"name": "peak", "gflops": 10.0}]
    table = format_sampler_rows(rows)
    assert "ok" in table and "10.0" in table


def test_flops_follow_the_order_the_network_takes():
    """[4,3,5,2]: S = 5·3·4 + 2·5·4 = 100 and P = 2·4 = 8. One row goes layer by layer
    (8·1·37 − 2·1·12 = 272); a thousand go through the product (6·100 + 6·1000·8 + 2·100/8)."""
    from sltlab.models.deep_linear import DeepLinearNetwork
    from sltlab.verification.bench.sampling import sgld_flops_per_chain_step

    network = DeepLinearNetwork([4, 3, 5, 2])
    assert not network.product_first(1) and network.product_first(1000)
    assert sgld_flops_per_chain_step([4, 3, 5, 2], 1) == 272
    assert sgld_flops_per_chain_step([4, 3, 5, 2], 1000, chains=8) == 600 + 48_000 + 25


def test_overhead_rows_state_microseconds_threads_and_targets():
    from sltlab.verification.bench.overhead import format_overhead_rows, run_overhead_benchmarks

    rows = run_overhead_benchmarks(1, networks=(([2, 3], 1), ([10, 10, 10, 10], 2)), samplers=("sgld", "mala"),
                                   steps=3)
    assert [(row["sampler"], row["dim"]) for row in rows] == [("sgld", 6), ("mala", 6), ("sgld", 300), ("mala", 300)]
    assert all(row["microseconds_per_step"] > 0 and row["torch_threads"] >= 1 for row in rows)
    assert [row["target_microseconds"] is None for row in rows] == [True, True, False, False]
    assert all(isinstance(row["meets_target"], bool) for row in rows[2:])
    table = format_overhead_rows(rows)
    assert "µs/step" in table and "torch threads" in table and "d = 300" in table


def test_along_row_times_both_ways_and_compares_them_in_standard_errors(monkeypatch):
    from sltlab.verification.bench import along
    from sltlab.verification.bench.along import along_row, format_along

    monkeypatch.setattr(along, "matmul_peak_gflops", lambda device: 50.0)   # measured by the sampling row
    row = along_row(1, checkpoints=2, chains=2, draws=8)
    assert (row["checkpoints"], row["steps"], row["sequential_steps"]) == (2, 10, [10, 10]) and row["compared"] <= 2
    assert row["batched_seconds"] > 0 and row["sequential_seconds"] > 0 and row["speed_up"] > 0
    assert row["meets_target"] is None   # not measured at 50 checkpoints: no verdict
    assert all(said in format_along(row) for said in ("speed-up", "not measured at 50", "10 one after"))
    with pytest.raises(ValueError, match="at least 2 checkpoints"):
        along_row(1, checkpoints=1)


def test_peer_row_times_a_fresh_process_and_divides_the_peer_seconds(capsys):
    """One real repeat (the job's options must stay valid for `sltlab estimate`); the speed-ups
    are the peer's seconds over the medians, and the verdicts read them."""
    from sltlab.verification.bench.peer import format_peer, peer_row

    row = peer_row(1, threads=1, peer_seconds=(1e6, 1e-9))
    assert row["whole_seconds"] >= row["sampling_seconds"] > 0
    assert row["speed_ups"]["whole"] == pytest.approx(1e6 / row["whole_seconds"])
    assert row["speed_ups"]["sampling"] < 1 and row["meets_targets"] is False
    text = format_peer(row)
    assert "end to end" in text and "ok" in text and "MISSED" in text
    assert "not computed" in format_peer({key: value for key, value in row.items() if key != "speed_ups"})
    assert main(["bench", "--only", "peer", "--repeats", "1", "--peer-seconds", "0", "1"]) == 2
    assert "--peer-seconds must be two positive, finite numbers" in capsys.readouterr().err


def test_a_peer_command_is_timed_in_turn_and_its_sampling_seconds_read_from_its_output(capsys):
    """The peer's command runs before each of sltlab's repeats; its whole seconds are timed and
    its sampling seconds are the regex's group in its output. A failing command, or output
    without the pattern, is a one-line error."""
    from sltlab.verification.bench.peer import peer_row

    peer = f"{sys.executable} -c \"import time; time.sleep(0.3); print('wall time = 0.25 s')\""
    row = peer_row(2, threads=1, peer_command=peer)
    assert row["peer_sampling_seconds"] == 0.25 and row["peer_whole_seconds"] >= 0.3
    assert row["speed_ups"]["sampling"] == pytest.approx(0.25 / row["sampling_seconds"])
    assert row["peer_timed"].startswith("in turn")
    assert main(["bench", "--only", "peer", "--repeats", "1", "--peer-command", "exit 3"]) == 2
    assert "the peer command exited with 3" in capsys.readouterr().err
    assert main(["bench", "--only", "peer", "--repeats", "1", "--peer-command", "echo done"]) == 2
    assert "no match for --peer-sampling-regex" in capsys.readouterr().err


def test_calibration_row_times_calibration_plus_run_against_the_run_alone():
    """MALA is not swept (no pilots, the ratio near 1); SGLD's coupled pairs decide on runs this
    short, and the row gives their count, the step chosen and the ratio; a sweep that finds no
    equivalent pair is reported as a failure, not as a time."""
    from sltlab.verification.bench.calibration import calibration_rows, format_calibration

    config = replace(DLN_SMOKE, chains=4, draws=40, burnin=100, thin=1)
    mala, sgld = calibration_rows(1, widths=[3, 2, 3], rank=1, n=200, config=config)
    assert mala["pilots"] == 0 and mala["run_steps"] == 140
    assert mala["run_seconds"] > 0 and mala["ratio"] == mala["calibration_and_run_seconds"] / mala["run_seconds"]
    assert mala["meets_target"] == (mala["ratio"] <= 1.5)
    assert sgld["pilots"] >= 2 and sgld["pilots"] % 2 == 0   # coupled pilots come in pairs
    assert sgld["chosen_step_size"] <= 2 * sgld["rule_step_size"]
    assert sgld["meets_target"] == (sgld["ratio"] <= 1.5)
    failed = dict(name="sgld: a case", sampler="sgld", repeats=1, target_ratio=1.5, meets_target=False,
                  failure="no stable step size: across 4 pilots")
    table = format_calibration([mala, sgld, failed])
    assert "no sweep (exact sampler)" in table and "MISSED: calibration failed: no stable step size" in table
    assert f"{sgld['pilots']} pilots" in table


def test_spread_row_scores_every_group_by_the_standard_error_the_estimates_carry():
    """Two draws of two networks, three groups of two chains × 40 draws each: the rule in use gives each
    group's z from its own estimate's SE, z = √(G/(G − 1))·(λ̂_g − mean)/SE_g, and the per-draw
    rule the SE of blocks of one draw."""
    from sltlab.verification.bench.spread import IN_USE, format_spread, spread_rows

    result = spread_rows(count=2, seeds=(0, 1), groups=3, chains=2, draws=40)
    assert [draw["seed"] for draw in result["draws_of_networks"]] == [0, 1]
    row = result["draws_of_networks"][0]["networks"][0]
    assert row["groups"] == 3 and row["lambda"] == 7.0   # [7, 1, 5, 9, 8] rank 1
    assert set(row["z"]) == {IN_USE, "per draw", "S/100 up to 10", "S/20"}
    # at 40 draws every rule but S/20 averages blocks of one draw: the same scores
    assert row["z"][IN_USE] == pytest.approx(row["z"]["per draw"])
    assert row["z"][IN_USE] == pytest.approx(row["z"]["S/100 up to 10"])
    pooled = result["draws_of_networks"][0]["by_rule"][IN_USE]["all"]
    scores = [z for network in result["draws_of_networks"][0]["networks"] for z in network["z"][IN_USE]]
    assert pooled["scores"] == len(scores) and pooled["spread"] == pytest.approx((sum(z * z for z in scores)
                                                                                  / len(scores)) ** 0.5)
    assert isinstance(result["meets_target"], bool) and "root mean square of z" in format_spread(result)


def test_module_bench_judges_each_setting_against_the_gibbs_truth_at_its_own_centre():
    """One network of two draws, each setting run short: the samplers are the defaults' and
    LLCConfig()'s, a miss is |λ̂ − t| beyond 3 combined SE plus the budget, a silent miss is one
    that passes the gate and warns of nothing, and the summary counts them."""
    import math

    from sltlab.verification.bench.module_accuracy import (BIAS_BUDGET, MIN_PASSING_SHARE, format_module_accuracy,
                                                           module_accuracy_rows)

    result = module_accuracy_rows(count=1, seeds=(0, 1), rows_of_data=500, shorter=dict(chains=2, draws=40, burnin=10),
                                  gibbs=dict(chains=2, sweeps=40, burnin=10))
    assert [draw["seed"] for draw in result["draws"]] == [0, 1]
    for draw in result["draws"]:
        assert [row["sampler"] for row in draw["rows"]] == ["mala", "sgld"]
        for row in draw["rows"]:
            if row["llc"] is not None:
                beyond = abs(row["llc"] - row["truth"]) - 3 * math.hypot(row["se"], row["truth_se"])
                assert row["misses"] == (beyond > BIAS_BUDGET * abs(row["truth"]))
                assert row["z"] == (row["llc"] - row["truth"]) / math.hypot(row["se"], row["truth_se"])
                assert row["passes_gate"] or "MixingWarning" in row["warned"]
        for name, summary in draw["summary"].items():
            mine = [row for row in draw["rows"] if row["setting"] == name]
            silent = [row["misses"] and row["passes_gate"] and not row["warned"] for row in mine]
            assert summary["silent_misses"] == sum(silent)
            assert summary["passing_gate"] == sum(row["passes_gate"] for row in mine)
    defaults = next(iter(result["draws"][0]["summary"]))
    summaries = [draw["summary"][defaults] for draw in result["draws"]]
    assert result["meets_target"] == all(summary["silent_misses"] == 0 and summary["passing_gate"]
                                         >= MIN_PASSING_SHARE * summary["networks"] for summary in summaries)
    assert "blocked-Gibbs truths" in format_module_accuracy(result)


def test_module_bench_counts_the_passing_estimates_within_two_standard_errors():
    """Only estimates that pass the gate count; |z| = 2 is within; the root mean square is exact."""
    from sltlab.verification.bench.module_accuracy import draw_summary

    def row(z, passes):
        return {"z": z, "passes_gate": passes, "error": None if z is None else 0.01 * z, "misses": False,
                "warned": [], "seconds": 1.0}

    summary = draw_summary([row(-2.0, True), row(3.0, True), row(0.5, False), row(None, True), row(1.0, True)])
    assert (summary["passing_with_z"], summary["within_two_se_passing"]) == (3, 2)
    assert summary["rms_z_passing"] == pytest.approx(((4.0 + 9.0 + 1.0) / 3) ** 0.5, rel=1e-15)
    assert draw_summary([row(0.5, False)])["rms_z_passing"] is None


def test_fallback_bench_runs_each_network_by_mala_alone_and_by_the_defaults():
    """A linear map on 100 rows, runs too short for the gate: MALA alone fails it and is kept; the
    defaults either run HMC (and say so) or refuse it with its cost; the table shows both runs."""
    import torch
    from torch import nn

    from sltlab.verification.bench.fallback import fallback_rows, format_fallback

    def linear_map():
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(100, 2, generator=generator)
        return nn.Linear(2, 1), (x, x[:, :1] + 0.1 * torch.randn(100, 1, generator=generator)), "mse"

    (row,) = fallback_rows({"linear map": linear_map}, chains=2, draws=20, burnin=10)
    alone, defaults = row["mala_alone"], row["defaults"]
    assert row["parameters"] == 3 and alone["sampler"] == "mala" and not alone["passes_gate"]
    assert alone["fallback"] is None
    if defaults["sampler"] == "hmc":
        assert defaults["fallback"].startswith("mala's chains failed the mixing gate")
    else:
        assert defaults["fallback"].startswith("the fallback hmc was not run")
        assert (defaults["llc"], defaults["rhat"]) == (alone["llc"], alone["rhat"])   # the same MALA run
    assert "linear map (d = 3)" in format_fallback([row]) and "gate FAILED" in format_fallback([row])


def test_random_mlps_are_drawn_from_the_seed_within_their_stated_ranges():
    """The same seed gives the same networks, a network is built as its name says, and the table
    counts the gate's verdicts."""
    import pytest
    import torch

    from sltlab.verification.bench.fallback import format_fallback, random_mlps

    draw = random_mlps(6, 3)
    assert list(draw) == list(random_mlps(6, 3)) and list(draw) != list(random_mlps(6, 4))
    for name in draw:
        widths = widths_of(name)
        assert 2 <= widths[0] <= 6 and 1 <= widths[-1] <= 3 and 1 <= len(widths) - 2 <= 3
        assert set(widths[1:-1]) <= {4, 8, 16, 32} and ("Tanh" in name) != ("ReLU" in name)
    name, build = min(draw.items(), key=lambda item: len(item[0]))
    first, again = build(), build()
    module, (x, y), loss = first
    linears = [layer for layer in module if isinstance(layer, torch.nn.Linear)]
    assert [linears[0].in_features] + [layer.out_features for layer in linears] == widths_of(name)
    assert loss == "mse" and len(x) == len(y) == int(name.split("n = ")[1].split(" ")[0].replace(",", ""))
    assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(), again[0].state_dict().values()))
    with pytest.raises(ValueError, match="at least 1"):
        random_mlps(0, 3)
    run = {"sampler": "mala", "llc": 1.0, "se": 0.1, "rhat": 1.2, "ess": 50.0, "seconds": 1.0,
           "passes_gate": False, "fallback": None}
    rows = [{"network": name, "parameters": 10, "mala_alone": run, "defaults": {**run, "passes_gate": flag}}
            for flag in (True, False)]
    assert "passed on 0 of 2 networks under MALA alone, on 1 under the defaults" in format_fallback(rows)


def widths_of(name: str) -> list[int]:
    return [int(width) for width in name[name.index("[") + 1:name.index("]")].split(",")]


def test_curve_row_times_a_saddle_curve_both_ways_and_compares_them_in_standard_errors():
    from sltlab.estimators.config import LLCConfig
    from sltlab.verification.bench.curve import curve_row, format_curve

    tiny = LLCConfig(sampler="mala", chains=2, draws=20, burnin=20, localization=1.0, localize_at="true_parameter")
    row = curve_row(1, checkpoints=3, widths=(5, 4, 5), sampler=tiny)
    assert row["checkpoints"] <= 3 and row["compared"] == row["checkpoints"]
    assert row["batched_seconds"] > 0 and row["sequential_seconds"] > 0 and row["speed_up"] > 0
    assert "speed-up" in format_curve(row) and "no target" in format_curve(row)
    with pytest.raises(ValueError, match="at least 2 checkpoints"):
        curve_row(1, checkpoints=1)


def test_the_stages_bench_counts_failed_seeds_per_case_under_each_bandwidth_rule():
    from sltlab.verification.bench.stages import CASES, format_stages, stage_rows

    rows = stage_rows(3)
    assert [row["case"] for row in rows] == [name for name, _ in CASES]
    assert all(0 <= row[key] <= 3 for row in rows for key in ("failed_default", "failed_chosen", "failed_former"))
    short = next(row for row in rows if row["case"].startswith("a stage of 3"))
    assert short["failed_chosen"] == 0 and short["failed_former"] == 3   # the former bandwidth merges its two rises
    gradual = next(row for row in rows if row["case"].startswith("a gradual rise"))
    assert gradual["failed_default"] < gradual["failed_chosen"]         # the coarser scales find what it misses
    assert "C_L" in format_stages(rows)


@pytest.mark.parametrize("argv, message", [
    (["--only", "overhead", "--count", "5"], "--count applies to along-accuracy, estimand, fallback, grid, "
                                             "head-accuracy, module, restricted-accuracy, spread, stages, not to "
                                             "overhead"),
    (["--only", "theory", "--peer-seconds", "1", "2"], "--peer-seconds applies to peer, not to theory"),
    (["--only", "stages", "--seed", "3"], "--seed applies to"), (["--only", "theory", "--seed", "0"], "--seed appl"),
    (["--checkpoints", "5"], "--checkpoints applies to along, curve, not to accuracy, overhead, sampling, theory"),
    (["--only", "stages", "--repeats", "3"], "--repeats applies to along, calibration, curve, ladder, overhead, peer"),
    (["--only", "theory", "--peer-sampling-regex", "("], "--peer-sampling-regex applies to peer, not to theory"),
])
def test_an_option_the_groups_asked_for_do_not_read_is_refused(argv, message, capsys):
    assert main(["bench", *argv]) == 2
    assert message in capsys.readouterr().err
