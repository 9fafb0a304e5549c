"""The sampling step through torch.compile: the same chains as the eager step up to rounding.
Compiling takes tens of seconds, so these are ``slow``; the option's plumbing is tested fast."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from sltlab.estimators import LLCConfig
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.posterior import LocalPosterior, compiled
from sltlab.estimators.sampling import Batches, run_chains
from sltlab.estimators.mala import mala
from sltlab.estimators.sgld import sgld
from sltlab.verification.cli import build_parser
from sltlab.verification.suite import dln_problem


def _posterior():
    problem = dln_problem([3, 4, 2], 1, n=2000, seed=0)
    return problem, LocalPosterior(problem.loss, 300.0, 3.0, problem.true_parameter.to(torch.float64))


@pytest.mark.slow
@pytest.mark.parametrize("kernel", [lambda p: sgld(p, step_size=1e-4), lambda p: mala(p, step_size=1e-4)])
def test_a_compiled_step_runs_the_chains_of_the_eager_step(kernel):
    _, posterior = _posterior()
    eager = kernel(posterior)
    traces = [run_chains(k, posterior, Batches((), 1), chains=4, draws=50, generator=torch.Generator().manual_seed(3))
              for k in (eager, compiled(eager))]
    # float64: the fused arithmetic differs from the eager one in the last bits only, and at this
    # step no Metropolis decision sits within rounding of its threshold.
    np.testing.assert_allclose(traces[1].fields["loss"], traces[0].fields["loss"], rtol=1e-9)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sltlab.estimators.notices.MixingWarning")   # a deliberately short run
@pytest.mark.filterwarnings("ignore::sltlab.estimators.notices.BurnInWarning")   # ... whose chains lag alike
def test_an_estimate_with_a_compiled_step_says_so_and_agrees():
    problem, _ = _posterior()
    config = LLCConfig(sampler="sgld", chains=4, draws=200, step_size=1e-4, localization=3.0, dtype="float64")
    results = [estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data,
                                      replace(config, compile_step=flag), n=problem.n) for flag in (False, True)]
    assert results[1].config.compile_step and not results[0].config.compile_step
    assert results[1].mean == pytest.approx(results[0].mean, rel=1e-9)


def test_compile_is_an_option_off_by_default():
    assert LLCConfig().compile_step is False
    args = build_parser().parse_args(["estimate", "dln", "--widths", "3", "2", "--rank", "1", "--compile"])
    assert args.compile_step is True
    assert build_parser().parse_args(["estimate", "dln", "--widths", "3", "2", "--rank", "1"]).compile_step is None
    assert build_parser().parse_args(["bench", "--only", "overhead", "--compile"]).compile


@pytest.mark.parametrize("sampler", ["hmc", "slice"])
def test_compiling_a_step_whose_loops_depend_on_the_draws_is_refused(sampler):
    with pytest.raises(ValueError, match=f"compile_step \\(--compile\\) applies to a step of fixed shape; {sampler}'s"):
        LLCConfig(sampler=sampler, compile_step=True).validate()


def test_a_compiled_run_falls_back_to_an_uncompiled_hmc():
    config = LLCConfig(sampler="mala", compile_step=True, fallback="hmc")
    config.validate()
    assert config.fallback_config().compile_step is False and config.fallback_config().sampler == "hmc"
    assert LLCConfig(sampler="mala", fallback="hmc").fallback_config().compile_step is False
