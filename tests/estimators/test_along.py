"""λ̂ along training: one estimate per checkpoint (modules, state dicts, training checkpoints
holding them, or files of them), one calibrated step for all of them, and each checkpoint's own
diagnostics."""

import copy
import math
import warnings
from dataclasses import replace

import pytest
import torch
from torch import nn

from sltlab.estimators import LLCConfig, MixingWarning, estimate_llc_along

SHORT = LLCConfig(chains=2, draws=40, burnin=10, localize_at="true_parameter")
# The checkpoints of 60 training steps are not minima, and λ̂ there comes out negative, which a
# LocalizationWarning says (tests/estimators/test_module_notices.py); these tests are about
# how the checkpoints are sampled.
# ("." stands for the ":" after the checkpoint's index, which a filter cannot hold.)
# Their runs are short, so a BurnInWarning says the chains have not yet spread from w*
# (tests/estimators/test_start_spread.py).
pytestmark = [pytest.mark.filterwarnings(
    "ignore:checkpoint \\d+. λ̂ = .* is negative:sltlab.estimators.notices.LocalizationWarning"),
    pytest.mark.filterwarnings("ignore::sltlab.estimators.notices.BurnInWarning")]


def _training_run():
    """Three state dicts of a small MLP trained on a regression task, and its data."""
    torch.manual_seed(0)
    x = torch.randn(200, 3)
    y = torch.tanh(x @ torch.randn(3, 2))
    mlp = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2))
    optimizer = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    checkpoints = []
    for step in range(61):
        if step % 30 == 0:
            checkpoints.append(copy.deepcopy(mlp.state_dict()))
        optimizer.zero_grad()
        nn.functional.mse_loss(mlp(x), y).backward()
        optimizer.step()
    return mlp, checkpoints, (x, y)


def test_each_checkpoint_has_its_estimate_and_diagnostics():
    mlp, checkpoints, data = _training_run()
    with pytest.warns(MixingWarning):   # 2 chains × 40 draws cannot reach an ESS of 200
        along = estimate_llc_along(checkpoints, data, model=mlp, config=SHORT, calibrate_at=None, step_size=1e-4)
    assert len(along.results) == 3 and along.calibration is None and along.calibrated_at is None
    assert all(math.isfinite(mean) for mean in along.means) and all(se > 0 for se in along.standard_errors)
    assert len(along.rhats) == len(along.esses) == 3 and along.mixed == [False, False, False]
    assert all(any("mixing gate" in warning for warning in result.warnings) for result in along.results)
    first = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2))
    first.load_state_dict(checkpoints[0])
    torch.testing.assert_close(along.results[0].localization.center.float(),
                               torch.cat([p.detach().reshape(-1) for p in first.parameters()]))


def test_checkpoints_sampled_together_say_that_auto_kept_the_identity_metric():
    mlp, checkpoints, data = _training_run()
    config = replace(SHORT, sampler="mala", metric="auto", step_size=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixingWarning)
        along = estimate_llc_along(checkpoints, data, model=mlp, config=config, calibrate_at=None)
    for result in along.results:
        assert result.config.metric == "identity"
        assert "metric = auto was not applied (the chains run in groups, each with a centre or nβ of its own); " \
               "the identity was used" in result.notes


def test_each_warning_names_its_checkpoint_and_the_calibrated_step_says_where_it_came_from():
    mlp, checkpoints, data = _training_run()
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        along = estimate_llc_along(checkpoints, data, model=mlp, config=SHORT, sampler="mala", calibrate_at=1)
    mixing = [str(notice.message) for notice in raised if notice.category is MixingWarning]
    assert [message.split(":")[0] for message in mixing] == ["checkpoint 0", "checkpoint 1", "checkpoint 2"]
    assert all(notice.filename == __file__ for notice in raised)
    # MALA, exact at any step, is not calibrated: each checkpoint's warm-up tunes its own step, in one run
    assert along.calibration is None and along.calibrated_at is None and along.batched
    assert along.note.startswith("mala is exact at any step: no calibration, each checkpoint's step tuned by its own "
                                 "warm-up; the 3 checkpoints sampled together")
    assert all(result.step_size_rule.startswith("dual averaging to MALA acceptance 0.8")
               and result.step_size_rule.endswith("every group's own step in one batched warm-up")
               for result in along.results)
    assert len({result.config.step_size for result in along.results}) == 3
    lines = repr(along).splitlines()
    shared = [f"  note, at every checkpoint: {note}" for note in along.results[0].notes]   # the same data for all
    assert lines[2].startswith(f"  checkpoint 1: λ̂ = {along.results[1].mean:.4g} ± ") and lines[4:-1] == shared
    assert along.shared_notes and along.shared_notes == list(along.results[2].notes)


@pytest.mark.parametrize("restrict_to, batched", [(None, True), ("0.*", True), (None, False)])   # three paths
def test_one_calibration_sets_the_step_of_every_checkpoint(restrict_to, batched):
    mlp, checkpoints, data = _training_run()
    modules = []
    for state in checkpoints:
        module = copy.deepcopy(mlp)
        module.load_state_dict(state)
        modules.append(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # short pilots and runs at untrained checkpoints
        along = estimate_llc_along(modules, data, config=SHORT, calibrate_at=1, restrict_to=restrict_to,
                                   batched=batched)   # SGLD: swept
    assert along.calibrated_at == 1 and along.calibration.sweep
    assert {result.config.step_size for result in along.results} == {along.calibration.step_size}
    assert {result.step_size_rule for result in along.results} == {
        "calibrated at checkpoint 1, shared by every checkpoint; calibration.reason says how"}


def test_training_checkpoints_files_and_wrapped_states_read_as_the_state_dicts_they_hold(tmp_path):
    mlp, checkpoints, data = _training_run()
    paths = []
    for step, state in enumerate(checkpoints):
        paths.append(tmp_path / f"step{step}.pt")
        torch.save({"model": state, "optimizer": {"lr": 1e-2}, "step": step}, paths[-1])
    wrapped = [{"model_state_dict": state, "epoch": step} for step, state in enumerate(checkpoints)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixingWarning)   # only that the three read alike matters here
        curves = [estimate_llc_along(given, data, model=mlp, config=SHORT, calibrate_at=None, step_size=1e-4).means
                  for given in (checkpoints, wrapped, paths, [str(path) for path in paths])]
    assert curves[1] == curves[2] == curves[3] == curves[0]
    # the state of torch.compile(model), of a DistributedDataParallel one, or of a wrapper holding it
    # as its attribute net, as a LightningModule saves it, is the model's
    prefixed = [{f"net.module._orig_mod.{key}": value for key, value in state.items()} for state in checkpoints]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixingWarning)
        assert estimate_llc_along(prefixed, data, model=mlp, config=SHORT, calibrate_at=None,
                                  step_size=1e-4).means == curves[0]


TRAINED = nn.Linear(3, 2)   # one model, appended as it is while it trains


@pytest.mark.parametrize("checkpoints, options, match", [
    ([], {}, "checkpoints is empty"),
    ([{"0.weight": torch.zeros(6, 3)}], {}, "need model="),
    ([{"0.weight": torch.zeros(5, 3)}], {"model": nn.Sequential(nn.Linear(3, 6))}, "checkpoint 0 does not fit"),
    ([3], {}, "checkpoint 0 is int: give modules, state dicts or files of them"),
    ([nn.Linear(3, 2)], {"model": nn.Linear(3, 3)},
     r"^checkpoint 0 is a module whose parameters are not model='s \(weight is \[2, 3\] in it and \[3, 3\] in model="),
    (["/no/such/checkpoint.pt"], {}, "^checkpoint 0: no file /no/such/checkpoint.pt$"),
    ("checkpoint.pt", {}, "checkpoints is one str: give a list"),
    ([{"optimizer": {"lr": 0.1}, "step": 3}], {"model": nn.Linear(3, 2)},
     "^checkpoint 0 is neither a state dict nor a checkpoint holding one under state_dict, model_state_dict, model$"),
    ([nn.Linear(3, 2)], {"calibrate_at": 3}, "calibrate_at=3"),
    ([nn.Linear(3, 2)], {"restrict_to": []}, "restrict_to is an empty list"),
    ([TRAINED] * 3, {}, r"^checkpoints 0 and 1 share their weights in memory \(the same module"),
    ([nn.Linear(3, 2).state_dict(), TRAINED.state_dict(), TRAINED.state_dict()], {"model": TRAINED},
     r"^checkpoints 1 and 2 share their weights .* state dicts of copies"),
    ([nn.Linear(3, 2).state_dict(), TRAINED.state_dict(), TRAINED], {"model": TRAINED},
     r"^checkpoints 1 and 2 share their weights in memory \(the same module, its state dict"),
    ([nn.Sequential(nn.Linear(3, 2))], {"restrict_to": ["0.weight", "0.*", "0"]},
     r"^restrict_to entries 1 \('0\.\*'\) and 2 \('0'\) select the same parameters \(0\.weight, 0\.bias\)"),
    (nn.Sequential(nn.Linear(3, 2)), {}, "checkpoints is one Sequential: give a list"),
    ([{"model": nn.Linear(3, 2).state_dict(), "step": step} for step in (0, 200, torch.tensor(60))], {"model": TRAINED},
     "^the checkpoints are not in training order: checkpoint 1 records step 200 and checkpoint 2 60"),
    ([nn.Linear(3, 2)], {"calibrate_at": 0.5}, "calibrate_at must be the index of a checkpoint"),
    ([nn.Linear(3, 2), nn.Linear(3, 2).requires_grad_(False).apply(lambda m: m.weight.fill_(math.nan))],
     {"step_size": 1e-4}, "^checkpoint 1: the loss at the given parameter is nan"),
    ([nn.Linear(3, 2), nn.Linear(3, 3)], {},
     r"^checkpoint 1: loss 'mse' \(or 'gaussian_nll', of unit variance\) compares outputs of shape \[b, 3\]"),
])
def test_bad_checkpoints_are_one_line_errors(checkpoints, options, match):
    x = torch.randn(20, 3)
    with pytest.raises(ValueError, match=match) as error:
        estimate_llc_along(checkpoints, (x, x[:, :2]), **options)
    assert "\n" not in str(error.value)


def _modules(mlp, checkpoints):
    modules = []
    for state in checkpoints:
        module = copy.deepcopy(mlp)
        module.load_state_dict(state)
        modules.append(module)
    return modules


@pytest.mark.filterwarnings("ignore:.*given is large:sltlab.estimators.notices.StepSizeWarning")   # both ways alike
def test_batched_checkpoints_agree_with_one_after_the_other_within_their_errors():
    """Four checkpoints, sampled as one run of 4 × 8 chains and one after the other, on other
    seeds so that the two estimates of each checkpoint are independent. Both sample the same
    localised posterior with the same kernel, step and nβ, so the difference of the two λ̂ has
    mean zero and standard deviation √(SE₁² + SE₂²), each SE the Monte Carlo standard error of
    its chains; |Δ| ≤ 3·√(SE₁² + SE₂²) then fails with probability 0.3 % per checkpoint when the
    errors are right (about 1 % for the four), and the seeds are fixed."""
    mlp, checkpoints, data = _training_run()
    checkpoints.append(copy.deepcopy(mlp.state_dict()))
    config = LLCConfig(chains=8, draws=600, burnin=150, batch_size=50, step_size=2e-3, localize_at="true_parameter")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixingWarning)
        together = estimate_llc_along(checkpoints, data, model=mlp, config=config, calibrate_at=None, seed=1)
        apart = estimate_llc_along(checkpoints, data, model=mlp, config=config, calibrate_at=None, batched=False)
    assert together.batched and "4 checkpoints sampled together: 32 chains in 1 run" in together.note
    assert not apart.batched and "batched=False" in apart.note
    for batched, alone in zip(together.results, apart.results):
        assert batched.trace.fields["loss"].shape == (8, 600) and batched.config == replace(alone.config, seed=1)
        assert None not in (batched.rhat, batched.ess, batched.standard_error)
        assert abs(batched.mean - alone.mean) <= 3 * math.hypot(batched.standard_error, alone.standard_error)
        torch.testing.assert_close(batched.localization.center, alone.localization.center, rtol=0, atol=0)
    assert len({round(mean, 6) for mean in together.means}) == 4   # each checkpoint its own estimate


def test_checkpoints_with_different_buffers_are_sampled_one_after_the_other():
    mlp, checkpoints, data = _training_run()
    modules = _modules(mlp, checkpoints)
    for index, module in enumerate(modules):
        module.register_buffer("offset", torch.full((1,), float(index == 2)))
    with pytest.warns(MixingWarning):
        along = estimate_llc_along(modules, data, config=SHORT, calibrate_at=None, step_size=1e-4)
    assert not along.batched and "checkpoint 2's buffers differ" in along.note
    assert len(along.results) == 3 and all(result.rhat is not None for result in along.results)


def test_restricted_checkpoints_sampled_together_agree_with_one_after_the_other():
    """As above, under a restriction to the first layer: each checkpoint's chains move only its
    weights, the second layer frozen at that checkpoint's own values."""
    mlp, checkpoints, data = _training_run()
    config = LLCConfig(chains=8, draws=600, burnin=150, batch_size=50, step_size=2e-3, localize_at="true_parameter")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixingWarning)
        together = estimate_llc_along(checkpoints, data, model=mlp, config=config, calibrate_at=None, seed=1,
                                      restrict_to="0.*")
        apart = estimate_llc_along(checkpoints, data, model=mlp, config=config, calibrate_at=None, batched=False,
                                   restrict_to="0.*")
    assert together.batched and "3 checkpoints sampled together: 24 chains in 1 run" in together.note
    assert "moving only the restriction's parameters" in together.note
    for batched, alone, state in zip(together.results, apart.results, checkpoints):
        assert batched.parameters == alone.parameters == ("0.weight", "0.bias") and batched.restricted_to == "0.*"
        frozen = torch.cat([state["2.weight"].reshape(-1), state["2.bias"]]).double()   # the second layer, last
        final = batched.trace.final_state.position[:, -len(frozen):]
        assert torch.equal(final, frozen.expand_as(final))
        assert abs(batched.mean - alone.mean) <= 3 * math.hypot(batched.standard_error, alone.standard_error)


@pytest.mark.parametrize("options, words", [
    ({"restrict_to": "0.*", "sampler": "mala", "batch_size": None, "step_size": 1e-4},
     "only sgld confines chains to a restriction's parameters"),
    ({}, "calibrate_at=None and no step size"),
])
def test_what_cannot_be_batched_says_why(options, words):
    mlp, checkpoints, data = _training_run()
    with pytest.warns(MixingWarning):
        along = estimate_llc_along(checkpoints, data, model=mlp, config=replace(SHORT, draws=8, burnin=2),
                                   calibrate_at=None, **options)
    assert not along.batched and words in along.note


def test_more_chains_than_one_run_holds_are_sampled_in_groups_of_whole_checkpoints(monkeypatch):
    import sltlab.estimators.batched as batched

    monkeypatch.setattr(batched, "MAX_CHAINS_PER_RUN", 5)   # two checkpoints of 2 chains per run
    mlp, checkpoints, data = _training_run()
    with pytest.warns(MixingWarning):
        along = estimate_llc_along(checkpoints, data, model=mlp, config=SHORT, calibrate_at=None, step_size=1e-4)
    assert along.batched and "6 chains in 2 runs of at most 4" in along.note
    assert [result.trace.fields["loss"].shape for result in along.results] == [(2, 40)] * 3


@pytest.mark.parametrize("centers, options, match", [
    ([], {}, "centers is empty"),
    ([torch.zeros(38)], {"step_size": None}, "share one step size"),
    ([torch.zeros(38), torch.zeros(37)], {}, "same d"),
])
def test_bad_centres_are_one_line_errors(centers, options, match):
    from sltlab.estimators import FunctionalModel, estimate_llc_at_centers

    mlp, _, data = _training_run()
    config = replace(SHORT, **{"step_size": 1e-4, **options})
    with pytest.raises(ValueError, match=match) as error:
        estimate_llc_at_centers(FunctionalModel(mlp), centers, data, config)
    assert "\n" not in str(error.value)


def test_a_restriction_given_as_a_submodule_of_the_template_is_taken_by_its_name():
    mlp, checkpoints, data = _training_run()
    with warnings.catch_warnings():   # short runs at untrained checkpoints: only the parameters chosen matter here
        warnings.simplefilter("ignore")
        along = estimate_llc_along(checkpoints[:2], data, model=mlp, config=SHORT, step_size=1e-4,
                                   restrict_to=mlp[2], batched=False)
    assert [result.parameters for result in along.results] == [("2.weight", "2.bias")] * 2
    assert {result.restricted_to for result in along.results} == {"2"}
    with pytest.raises(ValueError, match="not a submodule of the model"):
        estimate_llc_along(checkpoints[:2], data, model=mlp, config=SHORT, step_size=1e-4, restrict_to=nn.Linear(2, 2))


def test_a_list_of_restrictions_gives_one_curve_each_equal_to_its_own_call():
    mlp, checkpoints, data = _training_run()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curves = estimate_llc_along(checkpoints, data, model=mlp, config=SHORT, step_size=1e-4,
                                    restrict_to=["0.*", mlp[2]])
        alone = [estimate_llc_along(checkpoints, data, model=mlp, config=SHORT, step_size=1e-4, restrict_to=restriction)
                 for restriction in ("0.*", "2")]
    assert [curve.means for curve in curves] == [curve.means for curve in alone]
    assert [{result.restricted_to for result in curve.results} for curve in curves] == [{"0.*"}, {"2"}]
