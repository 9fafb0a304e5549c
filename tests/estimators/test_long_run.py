"""A quiet run that will take long says so once, with the remedies: the one call in Python shows
no progress unless asked, and a full-data run on a large data set could otherwise seem to hang."""

import warnings
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from sltlab.estimators import LongRunWarning, estimate_llc
from sltlab.estimators import localize, notices, sampling
from sltlab.estimators.posterior import LocalPosterior
from sltlab.estimators.sampling import Batches, run_chains, say_a_long_run
from sltlab.estimators.sgld import sgld


def _said(call) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(item.message) for item in caught if item.category is LongRunWarning]


def test_the_time_left_is_projected_from_the_pace_so_far(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    full, minibatches = Batches((torch.zeros(50_000, 1),), 50_000), Batches((torch.zeros(50_000, 1),), 128)
    # 10 steps in 20 s, 990 left: 1,980 s, 33 minutes
    assert _said(lambda: say_a_long_run(20.0, 10, 1000, 8, "mala", full)) == [
        "mala's run will take about 33 more minutes (990 steps of 8 chains at 2 s each, over all 50,000 rows): "
        "progress=True shows a bar; a batch_size samples on minibatches (SGLD), faster per step"]
    assert _said(lambda: say_a_long_run(20.0, 10, 1000, 8, "sgld", minibatches)) == [
        "sgld's run will take about 33 more minutes (990 steps of 8 chains at 2 s each, on 128 rows): "
        "progress=True shows a bar"]
    assert _said(lambda: say_a_long_run(20.0, 10, 1000, 8, "mala", Batches((), 0))) == [
        "mala's run will take about 33 more minutes (990 steps of 8 chains at 2 s each, on a population loss): "
        "progress=True shows a bar"]
    assert _said(lambda: say_a_long_run(20.0, 10, 300, 8, "mala", full)) == []   # 580 s: not long


def test_a_long_localisation_says_so_before_any_sampling(monkeypatch):
    # 10 passes in 20 s, 490 left at most: 980 s, 16 minutes
    assert _said(lambda: localize.say_a_long_localisation(20.0, 10, 500)) == [
        "localising w* by L-BFGS may take up to about 16 more minutes (500 iterations at most, 2 s per pass over the "
        "data): localize_at='true_parameter' samples around the weights given without it (a trained checkpoint)"]
    assert _said(lambda: localize.say_a_long_localisation(20.0, 10, 300)) == []   # 580 s: not long
    monkeypatch.setattr(localize, "PROJECT_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(notices, "LONG_RUN_SECONDS", 0.0)
    torch.manual_seed(0)
    x = torch.randn(40, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimate_llc(nn.Linear(3, 1), (x, x[:, :1]), draws=20, burnin=10, chains=2, extend_unmixed=0, fallback=None)
    said = [item for item in caught if str(item.message).startswith("localising w* by L-BFGS may take")]
    assert len(said) == 1 and said[0].filename == __file__   # the caller's line, not scipy's, which calls back


@pytest.mark.parametrize("progress, expected", [(False, 1), (True, 0)])
def test_a_run_without_a_bar_says_it_once(monkeypatch, capsys, progress, expected):
    monkeypatch.setattr(sampling, "PROJECT_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(notices, "LONG_RUN_SECONDS", 0.0)   # every run counts as long here
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(40, 2, generator=generator)
    torch.manual_seed(0)
    said = _said(lambda: estimate_llc(nn.Linear(2, 1), (x, x[:, :1]), chains=2, draws=30, burnin=10, seed=0,
                                      localize_at="true_parameter", extend_unmixed=0, fallback=None,
                                      progress=progress))
    assert len(said) == expected and all(text.startswith("mala's run will take about") for text in said)
    capsys.readouterr()


def test_several_torch_threads_are_named_as_a_remedy(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    said = _said(lambda: say_a_long_run(20.0, 10, 1000, 8, "sgld", Batches((torch.zeros(500, 1),), 128)))
    assert said[0].endswith("progress=True shows a bar; torch runs 2 threads, and a small model can run many times "
                            "faster on one (torch.set_num_threads(1)), above all beside other jobs")


def test_the_first_step_s_one_off_cost_is_left_out_of_the_pace(monkeypatch):
    """A compiled step spends its first call compiling: 100 s there, then 10 ms a step, is a run of
    20 s in all, not of the 55 hours that the first step's pace would project."""
    now = [0.0]
    monkeypatch.setattr(sampling, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    posterior = LocalPosterior(lambda position, batch: position.square().sum(-1, keepdim=True), 100.0, 1.0,
                               torch.zeros(2, dtype=torch.float64))
    kernel = sgld(posterior, step_size=1e-3)

    def timed_step(state, batch, noise):
        now[0] += 100.0 if now[0] == 0.0 else 0.01
        return kernel.step(state, batch, noise)

    def run():
        run_chains(kernel._replace(step=timed_step), posterior, Batches((), 1), chains=2, draws=2000,
                   generator=torch.Generator().manual_seed(0))

    assert _said(run) == []
    now[0] = 0.0
    # projected after 10 s at 10 ms a step, the 999 steps left take 10 s, which a 5 s threshold calls long
    monkeypatch.setattr(notices, "LONG_RUN_SECONDS", 5.0)
    said = _said(run)
    assert len(said) == 1 and "run will take about 0 more minutes (999 steps of 2 chains at 0.01 s each" in said[0]
