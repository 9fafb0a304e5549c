"""A run whose chains cannot fit in memory is refused in one line before it allocates, rather
than killed by the operating system."""

import pytest
import torch

from sltlab.estimators import LLCConfig, estimate_llc_from_loss
from sltlab.estimators import checks
from sltlab.estimators.ladder import estimate_llc_at_temperatures
from sltlab.verification.suite import dln_problem


def test_the_bound_counts_four_state_tensors_and_two_records_per_draw(monkeypatch):
    # 2 chains × (4 tensors × 3 float32 parameters × 4 bytes + 5 draws × 16 bytes) = 256 bytes.
    monkeypatch.setattr(checks, "available_memory", lambda device: 256)
    checks.check_memory(2, 3, 5, torch.float32, torch.device("cpu"))
    monkeypatch.setattr(checks, "available_memory", lambda device: 255)
    with pytest.raises(ValueError, match="2 chains of 3 parameters and 5 draws need at least"):
        checks.check_memory(2, 3, 5, torch.float32, torch.device("cpu"))


def test_chains_sampled_in_turns_count_the_state_of_one_turn_and_every_chain_s_final_position(monkeypatch):
    # 10 at a time of 100: (10 × 4 + 90) tensors' rows × 10 float32 parameters × 4 bytes + 100 × 5 draws × 16 bytes
    monkeypatch.setattr(checks, "available_memory", lambda device: 13_200)
    checks.check_memory(100, 10, 5, torch.float32, torch.device("cpu"), at_once=10)
    monkeypatch.setattr(checks, "available_memory", lambda device: 13_199)
    with pytest.raises(ValueError, match="^100 chains \\(10 at a time\\) of 10 parameters and 5 draws need at least"):
        checks.check_memory(100, 10, 5, torch.float32, torch.device("cpu"), at_once=10)


def test_no_reading_of_the_free_memory_refuses_nothing(monkeypatch):
    monkeypatch.setattr(checks, "available_memory", lambda device: None)
    checks.check_memory(10 ** 12, 10 ** 6, 10 ** 6, torch.float64, torch.device("cpu"))


@pytest.mark.parametrize("run", ["one estimate", "a temperature ladder"])
def test_far_too_many_chains_are_refused_before_sampling(monkeypatch, run):
    monkeypatch.setattr(checks, "available_memory", lambda device: 2 ** 30)
    problem = dln_problem([3, 2, 3], 1, n=200, seed=0, per_sample=True)
    config = LLCConfig(chains=10 ** 7, draws=100, step_size=1e-4, nbeta=100.0, localize_at="true_parameter")
    if run == "one estimate":
        call = lambda: estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data, config)  # noqa: E731
        chains = "10,000,000 chains"
    else:
        call = lambda: estimate_llc_at_temperatures(  # noqa: E731
            problem.loss, problem.true_parameter, problem.data, config, [100.0, 200.0])
        chains = r"20,000,000 chains \(10,000,000 at a time\)"   # one rung's chains to a run
    with pytest.raises(ValueError, match=f"{chains} of 12 parameters and 100 draws need at least") as error:
        call()
    assert "\n" not in str(error.value) and "1 GiB is available" in str(error.value)
