"""RMSProp-SGLD's chains all start at w*: the lag they share with its preconditioner held
(sltlab.estimators.preconditioned_lag), said as a BurnInWarning. On the two-parameter quadratic loss
of test_start_spread at nβ = 10⁴ its tuned step leaves the soft direction (preconditioned curvature
about 0.04) relaxing over ~10⁵ steps, against the run's 5,000: λ̂ read 0.558 ± 0.015 and 0.554 ± 0.014
where the posterior's is 0.88, with R-hat 1.02–1.03 and no warning. Where no burn-in is given, the
steps the lag needs are now run after the preconditioner is adapted, at most four times the draws'."""

import re
from functools import partial
import warnings

import numpy as np
import pytest
import torch

from sltlab.estimators import BurnInWarning, LLCConfig, estimate_llc_from_loss
from sltlab.estimators.preconditioned_lag import PreconditionedModes
from sltlab.estimators.start_spread import predicted_shortfall

from tests.estimators.test_start_spread import HESSIAN, quadratic_loss

TOLERANCE_SE = 3.5   # as test_start_spread's: the quadratic model is exact here, the SE read loosely


def test_with_a_uniform_preconditioner_the_shortfall_is_sgld_s_at_the_scaled_curvature():
    hessian = np.array([[2.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 1e-4]])
    nbeta, gamma, scale, step = 300.0, 2.0, 0.05, 0.01
    modes = PreconditionedModes(hessian, np.full(3, scale), nbeta, gamma)
    curvatures = scale * (nbeta * np.linalg.eigvalsh(hessian) + gamma)
    recorded = np.arange(0, 2000, 5)
    shortfall, at_rest = modes.shortfall([(step, 700)], step, recorded)
    assert np.isclose(shortfall, predicted_shortfall(curvatures, scale * gamma, step, 700 + recorded)[0], rtol=1e-12)
    assert np.isclose(at_rest, predicted_shortfall(curvatures, scale * gamma, step, np.zeros(1))[0], rtol=1e-12)


def test_a_burn_in_at_another_step_carries_its_spread_into_the_draws():
    modes = PreconditionedModes(np.diag([1.0, 1e-3]), np.array([0.5, 2.0]), 100.0, 0.01)   # soft: c̃ = 0.22
    recorded = np.arange(1000)
    slow, _ = modes.shortfall([(1e-3, 500)], 1e-3, recorded)
    fast, _ = modes.shortfall([(4e-3, 500)], 1e-3, recorded)   # four times the step spreads the soft direction faster
    never, at_rest = modes.shortfall([], 1e-3, 500 + recorded)
    assert 0 < fast < slow and np.isclose(never, slow, rtol=1e-12) and at_rest > slow


@pytest.mark.parametrize("burnin, settling", [(None, 16_000), (1000, 0)])
def test_rmsprop_sgld_from_w_star_settles_what_it_may_and_reads_the_predicted_lagging_value(burnin, settling):
    """Left to choose its burn-in, the sampler runs the steps the lag needs at the run's step after
    adapting, at most four times the draws' (here capped: about 10⁵ would be needed), and the lag
    left is said; given one, it runs that alone. Either way λ̂ reads what the model predicts."""
    config = LLCConfig(sampler="rmsprop_sgld", chains=16, draws=4000, burnin=burnin, nbeta=1e4, localization=1.0,
                       localize_at="true_parameter", dtype="float64")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = estimate_llc_from_loss(quadratic_loss, torch.zeros(2, dtype=HESSIAN.dtype), (), config, n=10_000)
    said = [str(w.message) for w in caught if issubclass(w.category, BurnInWarning)]
    assert result.trace.steps == 1000 + settling + 4000
    assert any(note.startswith("16,000 more burn-in steps at the run's step") and "the most it takes" in note
               for note in result.notes) == (settling > 0)
    assert len(said) == 1 and said[0].startswith("RMSProp-SGLD's chains, all started at w*, have not yet spread out")
    short, at_rest = (float(value) for value in re.search(r"short by about ([\d.]+) .*λ̂ at rest about ([\d.]+)",
                                                           said[0]).groups())
    assert at_rest - short < (0.8 if settling else 0.7) * at_rest   # a fifth, or a third, of λ̂ missing
    assert abs(result.mean - (at_rest - short)) < TOLERANCE_SE * result.standard_error   # z −1.64; +0.26 (seed 0)


def test_the_steps_of_a_rerun_count_as_burn_in():
    """A rerun goes on from where the chains ended, its run discarded: 3,000 more steps at the run's
    step before the draws bring the soft direction (c̃ = 2) nearly to rest."""
    from sltlab.estimators.estimate import run_inputs
    from sltlab.estimators.posterior import LocalPosterior
    from sltlab.estimators.preconditioned_lag import rmsprop_lag_concern
    from sltlab.estimators.rmsprop_sgld import RMSPropState

    hessian = torch.diag(torch.tensor([1.0, 1e-4], dtype=torch.float64))

    def loss(position, batch):
        return 0.5 * ((position @ hessian) * position).sum(-1, keepdim=True)

    config = LLCConfig(sampler="rmsprop_sgld", chains=2, draws=1000, burnin=100, step_size=1e-3, nbeta=1e4,
                       localization=1.0, dtype="float64")
    batches = run_inputs((), config, 10_000).batches
    posterior = LocalPosterior(loss, 1e4, 1.0, torch.zeros(2, dtype=torch.float64))
    held = RMSPropState(torch.zeros(2, 2, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64),
                        torch.full((2,), 10_000, dtype=torch.float64))   # V̂ = 1: G = 1/(1 + 10⁻⁵)
    concern = partial(rmsprop_lag_concern, posterior, batches, held, torch.ones(2, dtype=torch.bool), 0,
                      warm_up_step=1e-3, burnin=100, step=1e-3, draws=1000, thin=1, mean=0.5, standard_error=1e-3)
    said, _ = concern(steps=1100)
    assert said is not None and "short by about" in said
    assert concern(steps=4100) == (None, None)


def test_directions_too_stiff_for_the_step_or_of_negative_curvature_are_left_out_without_overflow():
    modes = PreconditionedModes(np.diag([1.0, 1e-4, -1e-3]), np.ones(3), 1e4, 1.0)   # εc̃ = 10; c̃ = −9
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # underflow to 0 is the answer
        shortfall, at_rest = modes.shortfall([(1e-3, 2 ** 40)], 1e-3, np.arange(1000))
    assert shortfall == pytest.approx(0.0, abs=1e-12) and at_rest == pytest.approx(0.5 * 1.0 / 2.0 / (1 - 5e-4))
