"""Settings given as NumPy numbers act as the Python numbers they stand for, and a seed is one
torch's generators keep whole."""

import numpy as np
import pytest
import torch

from sltlab.estimators import LLCConfig, estimate_llc_from_loss
from sltlab.verification.suite import dln_problem


def test_numpy_numbers_are_stored_as_python_numbers_and_seed_the_same_run():
    config = LLCConfig(seed=np.int64(3), chains=np.int32(2), draws=np.int64(40), nbeta=np.float32(100.0),
                       step_size=1e-4, localize_at="true_parameter")
    assert [type(value) for value in (config.seed, config.chains, config.draws, config.nbeta)] == [int, int, int, float]
    problem = dln_problem([3, 2, 3], 1, n=200, seed=0, per_sample=True)
    with pytest.warns():   # two chains of 40 draws fail the mixing gate, as any run this short does
        numpy_seeded = estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data, config)
        seeded = estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data,
                                        LLCConfig(seed=3, chains=2, draws=40, nbeta=100.0, step_size=1e-4,
                                                  localize_at="true_parameter"))
    assert numpy_seeded.per_chain == seeded.per_chain   # had been torch's TypeError at the generator


def test_a_seed_torch_would_cut_to_32_bits_is_refused():
    assert torch.randn(2, generator=torch.Generator().manual_seed(2 ** 32)).equal(
        torch.randn(2, generator=torch.Generator().manual_seed(0)))   # why: 2**32 repeats seed 0
    with pytest.raises(ValueError, match=r"^seed must be between 0 and 2\*\*32 − 1, got 4294967296$"):
        LLCConfig(seed=2 ** 32).validate()
    LLCConfig(seed=2 ** 32 - 1).validate()


@pytest.mark.parametrize("settings, message", [
    (dict(thin=10**30), "burnin \\+ draws·thin = 1e\\+33 steps per chain, more than the 1e\\+10"),
    (dict(burnin=10**30), "burnin \\+ draws·thin = 1e\\+30 steps per chain"),   # had run on past any timeout
    (dict(reruns=10**30), "reruns must be from 0 to 20"),
    (dict(extend_unmixed=21), "extend_unmixed must be from 0 to 20"),
    (dict(localization=1e39), "localization γ = 1e\\+39 exceeds float32's range"),   # had overflowed in the run
    (dict(step_size=1e39), "step size = 1e\\+39 exceeds float32's range"),
])
def test_settings_no_run_could_finish_or_hold_are_refused_before_it(settings, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        LLCConfig(**settings).validate()
    if "localization" in settings or "step_size" in settings:
        LLCConfig(**settings, dtype="float64").validate()   # float64 holds them
