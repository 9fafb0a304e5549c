"""Contracts checked once at the boundary of an estimate: every bad input is a one-line
ValueError that names what is wrong, never a silent wrong number."""

import math
import warnings
from dataclasses import replace

import pytest
from scipy.stats import chi2
import torch
from torch import nn

from sltlab.estimators import (DivergenceWarning, LLCConfig, LocalizationWarning, MixingWarning, StepSizeWarning,
                               estimate_llc, estimate_llc_along, estimate_llc_from_loss)
from sltlab.estimators.localize import Localization, empirical_minimum, localization_concerns
from sltlab.estimators import FunctionalModel
from sltlab.verification.suite import dln_problem

# Runs here are short on purpose: that their chains have not yet spread from w* is said by a
# BurnInWarning (tests/estimators/test_start_spread.py), which these tests leave aside.
pytestmark = pytest.mark.filterwarnings("ignore::sltlab.estimators.notices.BurnInWarning")

# Two chains of 20 draws are worth at most 40 independent draws: every estimate on QUICK fails the
# mixing gate (ESS ≥ 200) and says so.
QUICK = LLCConfig(chains=2, draws=20, burnin=0, step_size=1e-4, localize_at="true_parameter", dtype="float64")


def _one_line_error(call, match):
    with pytest.raises(ValueError, match=match) as error:
        call()
    assert "\n" not in str(error.value)


def test_mala_on_minibatches_is_refused():
    # The Metropolis ratio would compare energies on two different minibatches (λ̂ = −33 at
    # acceptance 0.01 on [3,2,3] rank 1, λ = 3.5, before this was refused).
    problem = dln_problem([3, 2, 3], 1, n=2000, seed=0, per_sample=True)
    config = LLCConfig(sampler="mala", batch_size=50, draws=40, chains=2)
    _one_line_error(lambda: estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data, config),
                    "mala compares energies on the full data")


def test_a_loss_that_averages_over_samples_or_keeps_outputs_is_refused():
    # A loss returning [C] instead of per-sample [C, b]: mean(-1) would then average over the
    # chains and couple them (λ̂ = 3.65 against 1.0 with identical per-chain values, before).
    x = torch.randn(100, 1, dtype=torch.float64)
    data = (x, x.clone())

    def per_chain_only(position, batch):
        inputs, targets = batch
        return ((targets - inputs * position[:, None, :1]) ** 2).mean((-1, -2))

    _one_line_error(lambda: estimate_llc_from_loss(per_chain_only, torch.ones(1, dtype=torch.float64), data, QUICK),
                    r"per-sample losses of shape \[C, b\] .* got \(2,\): one number per chain: the loss averages")

    def per_output(position, batch):   # [C, b, 1]: each sample's loss not yet reduced over its outputs
        inputs, targets = batch
        return (targets - inputs * position[:, None, :1]) ** 2

    _one_line_error(lambda: estimate_llc_from_loss(per_output, torch.ones(1, dtype=torch.float64), data, QUICK),
                    r"got \(2, 4, 1\): reduce each sample's losses over its other dimensions \(outputs, tokens\)")


def test_data_tensors_of_different_lengths_or_not_finite_are_refused():
    x = torch.randn(10, 2, dtype=torch.float64)
    module = FunctionalModel(nn.Linear(2, 1).double())
    _one_line_error(lambda: estimate_llc_from_loss(module, module.flatten(), (x, x[:9, :1]), QUICK), "rows")
    bad = x.clone()
    bad[3, 1] = float("nan")
    _one_line_error(lambda: estimate_llc_from_loss(module, module.flatten(), (bad, x[:, :1]), QUICK), "finite")


@pytest.mark.parametrize("center, said", [(torch.zeros(2, 3), r"one position, a tensor \[d\] with d ≥ 1, got \[2, 3\]"),
                                          (torch.zeros(0), r"one position, a tensor \[d\] with d ≥ 1, got \[0\]"),
                                          ([0.0, 1.0], r"must be a torch tensor \[d\], got a list")])
def test_a_true_parameter_that_is_not_one_position_is_refused(center, said):
    def square(position, batch):
        return position.square().sum(-1, keepdim=True)

    _one_line_error(lambda: estimate_llc_from_loss(square, center, (), QUICK, n=100), said)


@pytest.mark.parametrize("config, match", [
    (LLCConfig(nbeta=1.0), "nβ must exceed 1"),
    (LLCConfig(sampler="rmsprop_sgld", localization=0.0), "γ > 0"),
    # settings of the wrong kind, which failed deep inside torch or numpy, or were taken as true
    (LLCConfig(chains=2.5), "chains must be an integer, got 2.5"),
    (LLCConfig(chains=True), "chains must be an integer, got True"),
    (LLCConfig(burnin=2.5), "burnin must be an integer or None"),
    (LLCConfig(seed=None), "seed must be an integer, got None"),
    (LLCConfig(step_size="0.1"), "step_size must be a number or None"),
    (LLCConfig(localization=None), "localization must be a number, got None"),
    (LLCConfig(functional_variance="yes"), "functional_variance must be True or False"),
    (LLCConfig(localize_at="minimum"), "localize_at must be one of empirical_minimum, true_parameter"),
])
def test_settings_without_a_meaning_are_refused(config, match):
    _one_line_error(config.validate, match)


def _mlp_with(*layers):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), *layers, nn.Linear(8, 2))


@pytest.mark.parametrize("layers", [(nn.BatchNorm1d(8),), (nn.Dropout(0.5),), (nn.BatchNorm1d(8), nn.ReLU())])
@pytest.mark.filterwarnings("ignore:the given parameter is not a critical point")   # untrained, sampled where it is
def test_modules_with_buffers_dropout_or_batchnorm_are_sampled_in_eval_mode(layers):
    module = _mlp_with(*layers)
    module.train()
    x = torch.randn(64, 3)
    y = module.eval()(x).detach() + torch.randn(64, 2)
    module.train()
    model = FunctionalModel(module)
    with pytest.warns(MixingWarning, match="ESS"):
        result = estimate_llc_from_loss(model, model.flatten(), (x, y), replace(QUICK, dtype="float32"))
    assert result.estimate.mean is not None
    assert any("eval mode" in note for note in result.notes)
    assert module.training, "the user's module is left as it was"


class _Recurrent(nn.Module):   # neither .item() nor torch's LSTM can run under vmap
    def __init__(self):
        super().__init__()
        self.linear, self.lstm = nn.Linear(2, 2), nn.LSTM(2, 3, batch_first=True)

    def forward(self, x):   # each row a sequence of one step of its own
        hidden = self.linear(x)
        return self.lstm((hidden * float(hidden.sum().item() > -1e9)).unsqueeze(-2))[0].squeeze(-2)


def test_a_module_that_vmap_cannot_batch_is_evaluated_chain_by_chain():
    torch.manual_seed(0)
    model = FunctionalModel(_Recurrent().eval())
    position = model.flatten() + 0.3 * torch.randn(3, model.dim)
    batch = (torch.randn(3, 5, 2), torch.randn(3, 5, 3))
    alone = torch.cat([model(position[c:c + 1], tuple(t[c:c + 1] for t in batch)) for c in range(3)])
    assert model.notes == () and not model.chain_by_chain
    assert torch.equal(model(position, batch), alone)
    assert model.chain_by_chain and model.notes[-1].startswith("torch.func.vmap cannot batch the module over chains (")
    # restrictions sampled as one run over the whole module say so too
    x = torch.randn(40, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # a short run's mixing warning
        results = estimate_llc(_Recurrent().eval(), (x, x @ torch.ones(2, 3)), restrict_to=["linear.*", "lstm.*"],
                               sampler="sgld", chains=2, draws=20, burnin=5, step_size=1e-4)
    assert all(any(note.startswith("torch.func.vmap cannot batch") for note in result.notes) for result in results)
    assert all(any("sampled together" in note for note in result.notes) for result in results)


def test_a_centre_that_moved_far_is_a_warning_and_a_field():
    torch.manual_seed(0)
    module = nn.Linear(2, 1).double()
    x = torch.randn(500, 2, dtype=torch.float64)
    y = module(x).detach() + torch.randn(500, 1, dtype=torch.float64)
    model = FunctionalModel(module)
    with pytest.warns(MixingWarning), pytest.warns(LocalizationWarning, match="moved w"):
        result = estimate_llc_from_loss(model, model.flatten() + 1.0, (x, y),
                                        replace(QUICK, localize_at="empirical_minimum"))
    assert result.localization.distance > 1.0 and any("moved w" in warning for warning in result.warnings)


def test_an_optimiser_stopped_early_is_a_concern():
    x = torch.randn(200, 2, dtype=torch.float64)
    model = FunctionalModel(nn.Linear(2, 1).double())
    stopped = empirical_minimum(model, model.flatten() + 3.0, (x.unsqueeze(0), x[:, :1].unsqueeze(0)),
                                max_iterations=1)
    assert not stopped.converged
    assert any("stopped after 1 iterations" in concern for concern in localization_concerns(stopped, 100.0, 1.0))


def test_an_optimiser_asked_only_how_far_the_loss_falls_stops_there_once_its_time_is_up():
    torch.manual_seed(0)
    x = torch.randn(200, 2, dtype=torch.float64)
    model, rows = FunctionalModel(nn.Linear(2, 1).double()), (x.unsqueeze(0), x[:, :1].unsqueeze(0))
    full = empirical_minimum(model, model.flatten() + 3.0, rows)
    enough = full.loss_drop / 10
    early = empirical_minimum(model, model.flatten() + 3.0, rows, enough_drop=enough)
    patient = empirical_minimum(model, model.flatten() + 3.0, rows, enough_drop=enough, enough_after=60.0)
    assert full.converged and not early.converged and enough < early.loss_drop < full.loss_drop
    assert patient.converged and patient.loss_drop == full.loss_drop


@pytest.mark.parametrize("squared_distance, gamma, concerned", [(14.0, 1.0, True), (13.0, 1.0, False),
                                                                  (1.4, 10.0, True), (1e6, 0.0, False)])
def test_a_centre_moved_beyond_the_posteriors_reach_is_a_concern(squared_distance, gamma, concerned):
    """The 99 % quantile of χ²₄ is 13.2767: γ‖ŵ − w0‖² beyond it leaves the point given outside
    the localised posterior (without localisation, γ = 0, nothing is out of reach)."""
    assert chi2.ppf(0.99, 4) == pytest.approx(13.2767, abs=1e-4)
    moved = Localization(torch.zeros(4), "empirical_minimum", 10, 0.0, 0.0, 0.0, math.sqrt(squared_distance))
    concerns = localization_concerns(moved, 100.0, gamma)
    assert len(concerns) == int(concerned)
    if concerned:
        assert concerns[0].startswith(f"localising moved w* by {math.sqrt(squared_distance):.3g}, beyond the "
                                      f"localised posterior's reach of {math.sqrt(chi2.ppf(0.99, 4) / gamma):.3g}")


@pytest.mark.parametrize("center_loss, said", [(1e-7, True), (0.5, False)])
def test_a_far_centre_where_the_loss_nearly_vanishes_is_said_to_have_no_minimum(center_loss, said):
    moved = Localization(torch.zeros(4), "empirical_minimum", 10, 0.0, 0.5, center_loss, 3.9e3)
    (concern,) = localization_concerns(moved, 100.0, 1.0)
    clause = (f"; L_n fell to {center_loss:.2g} there: where it only tends to 0 as the weights grow (cross-entropy "
              "on classes the model separates) there is no minimum")
    assert (clause in concern) == said


def test_dropped_chains_are_a_warning_in_python():
    problem = dln_problem([3, 3, 3], 1, n=500, seed=0)
    with pytest.warns(DivergenceWarning, match="3 of 3 chains dropped") as caught:   # each chain's why, not the first's
        result = estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data,
                                        LLCConfig(chains=3, draws=50, step_size=10.0), n=problem.n)
    assert result.estimate.mean is None and set(result.estimate.divergence) == {0, 1, 2}
    said = next(str(w.message) for w in caught if issubclass(w.category, DivergenceWarning))
    assert all(f"chain {chain} diverged" in said for chain in range(3))


@pytest.mark.parametrize("stiffness", [0.1, 1.5])
def test_a_langevin_step_too_large_for_the_curvature_is_a_warning(stiffness):
    # K = w² at nβ = 1000, γ = 1: curvature k = 2·nβ + γ. SGLD is stable below ε·k = 2, and its
    # stationary variance is 1/(k·(1 − εk/4)), so it reads λ̂ = nβ/(k·(1 − εk/4)) exactly in
    # expectation: at ε·k = 1.5 that is 1.6 times the exact LLC nβ/k; at 0.1 it is 2.6 % above it.
    from sltlab.models import Potential
    from sltlab.theory import parse_expression

    loss = Potential(*parse_expression("w1**2"))
    config = LLCConfig(sampler="sgld", chains=4, draws=2000, burnin=200, nbeta=1000.0, localization=1.0,
                       step_size=stiffness / 2001.0, localize_at="true_parameter", dtype="float64")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = estimate_llc_from_loss(loss, torch.zeros(1), (), config, n=10_000)
    flagged = [w for w in caught if issubclass(w.category, StepSizeWarning)]
    stationary = 1000.0 / (2001.0 * (1 - stiffness / 4))
    assert abs(result.estimate.mean - stationary) <= 3 * result.estimate.standard_error
    if stiffness > 1:
        assert len(flagged) == 1 and "ε·(nβ·h_max + γ) = 1.5" in str(flagged[0].message)
        assert any("discretisation bias" in message for message in result.warnings)
        assert result.estimate.mean - 3 * result.estimate.standard_error > 1000.0 / 2001.0   # far above nβ/k
    else:
        assert flagged == []


def test_a_metropolis_step_that_is_almost_never_accepted_is_a_warning():
    # MALA at a step far beyond the curvature rejects every move: its chains sit at w*, where λ̂
    # would read 0 without a word; no chain left it, so there is no estimate.
    problem = dln_problem([3, 3, 3], 1, n=500, seed=0)
    config = LLCConfig(sampler="mala", chains=3, draws=50, burnin=0, step_size=10.0, dtype="float64")
    with pytest.warns(DivergenceWarning, match="never left w"), pytest.warns(StepSizeWarning,
                                                                            match="accepted 0.0% of its moves"):
        result = estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data, config, n=problem.n)
    assert result.acceptance < 0.1 and result.mean is None
    assert any("hardly left w*, so there is no estimate" in message for message in result.warnings)


@pytest.mark.parametrize("sampler, remedy", [("mala", "MALA is exact at any step, and a step left to it is tuned"),
                                             ("sgld", "run more draws or chains (or calibrate the step size, where "
                                                      "it was not)")])
def test_the_mixing_warning_names_the_remedy_that_fits_the_sampler(sampler, remedy):
    problem = dln_problem([3, 3, 3], 1, n=500, seed=0)
    config = LLCConfig(sampler=sampler, chains=3, draws=8, burnin=0, step_size=1e-6, dtype="float64")
    with warnings.catch_warnings():   # 24 draws in all: an ESS under 200 whatever they read
        warnings.simplefilter("ignore")
        result = estimate_llc_from_loss(problem.loss, problem.true_parameter, problem.data, config, n=problem.n)
    (mixing,) = [message for message in result.warnings if "fail the mixing gate" in message]
    assert remedy in mixing


def test_the_mixing_gate_names_what_failed():
    from sltlab.estimators.llc import LLCEstimate
    from sltlab.estimators.gate import mixing_concern

    passing = LLCEstimate(1.0, 0.1, [1.0, 1.0], 1.05, 200.0, [], 100.0, {})
    assert mixing_concern(passing) is None
    assert "R-hat 1.200 > 1.05" in mixing_concern(passing._replace(rhat=1.2))
    both = mixing_concern(passing._replace(rhat=1.06, ess=150.0))
    assert "R-hat 1.060 > 1.05 and ESS 150 < 200" in both and "\n" not in both
    assert "R-hat could not be computed" in mixing_concern(passing._replace(rhat=None))
    assert mixing_concern(passing._replace(mean=None, rhat=None, ess=None)) is None   # no estimate: said elsewhere


@pytest.mark.parametrize("dim", [1, 6])
def test_every_sgnht_estimate_warns_that_its_error_bar_is_not_to_be_trusted(dim):
    """On sums of squares of 1 to 20 parameters its z-scores reached +14.8 with an R-hat that
    passes (:func:`sltlab.estimators.sgnht.sgnht_concern`): the warning holds at every d."""
    from sltlab.models.potential import Potential
    from sltlab.theory import parse_expression

    potential = Potential(*parse_expression(" + ".join(f"w{i}**2" for i in range(1, dim + 1))))
    with pytest.warns(StepSizeWarning, match="SGNHT's standard error is not to be trusted"), warnings.catch_warnings():
        warnings.simplefilter("ignore", MixingWarning)   # 4 chains × 200 draws: short
        result = estimate_llc_from_loss(potential, torch.zeros(dim, dtype=torch.float64), (),
                                        replace(QUICK, sampler="sgnht", chains=4, draws=200, step_size=None), n=10_000)
    assert any(warning.startswith("SGNHT's standard error") for warning in result.warnings)


@pytest.mark.parametrize("flags", [dict(batched="no"), dict(progress="yes"), dict(progress=1)])
def test_a_flag_that_is_not_true_or_false_is_refused_not_read_as_true(flags):
    module, rows = torch.nn.Linear(2, 1), (torch.randn(20, 2), torch.randn(20, 1))
    with pytest.raises(ValueError, match=f"^{next(iter(flags))} must be True or False"):
        estimate_llc(module, rows, **flags)
    with pytest.raises(ValueError, match=f"^{next(iter(flags))} must be True or False"):
        estimate_llc_along([module, module], rows, **flags)
