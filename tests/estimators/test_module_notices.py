"""What the one call tells its caller: a negative λ̂ (a centre that is no minimum), warnings
attributed to the caller's own line, notes on how the module was sampled, a given step size
honoured along training, and where a module that cannot be batched failed."""

import copy
import re
import warnings

import pytest
import torch
from torch import nn

from sltlab.estimators import LLCConfig, estimate_llc, estimate_llc_along
from sltlab.estimators.functional import FunctionalModel
from sltlab.estimators.localize import Localization, negative_estimate_concern
from sltlab.estimators.notices import EstimateWarning, LocalizationWarning

SHORT = LLCConfig(chains=2, draws=40, burnin=10, step_size=1e-4, localize_at="true_parameter")
CENTRE = Localization(torch.zeros(3), "true_parameter", 0, 0.5, 0.0, 1.0)


def _regression(rows=64):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, 3, generator=generator)
    return x, torch.tanh(x @ torch.randn(3, 1, generator=generator))


def test_a_negative_estimate_is_said_only_beyond_two_standard_errors():
    assert negative_estimate_concern(-5.0, 1.0, CENTRE).startswith("λ̂ = -5 is negative: the chains found lower loss "
                                                                   "than at w* (‖∇L_n(w*)‖ = 5.00e-01)")
    assert negative_estimate_concern(-1.5, 1.0, CENTRE) is None     # within 2 SE of zero
    assert negative_estimate_concern(-0.1, None, CENTRE) is not None   # one chain: no SE to allow for
    assert negative_estimate_concern(None, None, CENTRE) is None and negative_estimate_concern(3.0, 1.0, CENTRE) is None
    # the remedy fits the centre: the empirical minimum is not offered to an estimate already made there
    assert negative_estimate_concern(-5.0, 1.0, CENTRE).endswith("(localize_at='empirical_minimum')")
    at_minimum = negative_estimate_concern(-5.0, 1.0, CENTRE._replace(kind="empirical_minimum"))
    assert "localize_at" not in at_minimum and at_minimum.endswith("(dtype='float64')")


def test_an_untrained_network_warns_that_its_centre_is_no_minimum_at_the_callers_line():
    """At random initialisation w* is no minimum: the chains go downhill and λ̂ comes out far
    below zero; the warning points at this file, not at the library's modules."""
    torch.manual_seed(0)
    network = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = estimate_llc(network, _regression(), config=SHORT, step_size=1e-3, draws=200)
    negative = [w for w in caught if issubclass(w.category, LocalizationWarning) and "is negative" in str(w.message)]
    assert result.mean + 2 * result.standard_error < 0 and len(negative) == 1
    assert negative[0].filename == __file__
    assert any("is negative" in message for message in result.warnings)


def test_notes_say_how_the_module_was_sampled():
    network = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.1), nn.Linear(4, 1)).double()
    network.eval()
    network[1].train()                      # one submodule left in training mode
    network[0].weight.requires_grad_(False)
    network[2].register_forward_hook(lambda module, inputs, output: None)
    notes = FunctionalModel(network).notes
    assert [note.split(" ")[:4] for note in notes] == [
        ["the", "module", "(or", "a"], ["1", "parameter", "tensor(s)", "with"], ["the", "module's", "forward", "hooks"]]
    assert "(0.weight)" in notes[1]
    x, y = _regression(32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = estimate_llc(network, (x.double(), y.double()), config=SHORT)
    assert "the module's parameters are float64: sampled in float32 (dtype=)" in result.notes
    assert FunctionalModel(nn.Linear(2, 1).eval()).notes == ()
    # training mode is noted only where eval mode may change the computation: torch's dropout, norm and
    # attention layers, or a module of the caller's own, whose forward may read self.training
    assert FunctionalModel(nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.LayerNorm(3))).notes == ()
    assert len(FunctionalModel(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))).notes) == 1
    assert len(FunctionalModel(_OwnModule()).notes) == 1


class _OwnModule(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def forward(self, x):
        return self.layer(x) * (2.0 if self.training else 1.0)


class _TwoHeads(nn.Module):
    """A head the forward never calls, and one it calls only under torch.no_grad()."""

    def __init__(self):
        super().__init__()
        self.body, self.unused, self.watched = nn.Linear(3, 1), nn.Linear(3, 2), nn.Linear(3, 1)

    def forward(self, x):
        with torch.no_grad():
            watched = self.watched(x)
        return self.body(x) + 0 * watched


def test_a_batch_size_above_the_rows_is_said_to_use_them_all():
    x, y = _regression(rows=64)
    with warnings.catch_warnings():   # a run this short fails the mixing gate; only the notes matter here
        warnings.simplefilter("ignore", EstimateWarning)
        result = estimate_llc(nn.Linear(3, 1), (x, y), batch_size=100, chains=2, draws=40, step_size=1e-4)
    assert result.config.batch_size == 64
    said = [note for note in result.notes if note.startswith("batch_size = 100")]   # once: it had been said twice
    assert said == ["batch_size = 100 is more rows than the data hold: every batch is all 64"]


def test_which_of_three_tensors_the_loss_compared_with_is_said():
    x, y = _regression(rows=64)
    with warnings.catch_warnings():   # a run this short fails the mixing gate; only the notes matter here
        warnings.simplefilter("ignore", EstimateWarning)
        three = estimate_llc(nn.Linear(3, 1), (x, torch.ones(64, 2), y), config=SHORT)
        two = estimate_llc(nn.Linear(3, 1), (x, y), config=SHORT)
    assert ("the data hold 3 tensors per row: the module received tensor 0 and loss 'mse' compared its outputs with "
            "tensor 2, the last (inputs=, targets= choose others)") in three.notes
    assert not any("tensors per row" in note for note in two.notes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimateWarning)
        weighted = estimate_llc(nn.Linear(3, 1), {"x": x, "y": y, "w": torch.rand(64)}, config=SHORT)
    assert any(note.startswith("the data's field 'w' reaches neither the module nor the loss")
               for note in weighted.notes)


def test_one_hot_or_integer_targets_under_a_regression_loss_are_said():
    x, y = _regression(rows=64)
    one_hot = nn.functional.one_hot((x[:, 0] > 0).long(), 2).float()
    with warnings.catch_warnings():   # a run this short fails the mixing gate; only the notes matter here
        warnings.simplefilter("ignore", EstimateWarning)
        classifier = estimate_llc(nn.Linear(3, 2), (x, one_hot), config=SHORT)
        regression = estimate_llc(nn.Linear(3, 1), (x, y), config=SHORT)
        labels = estimate_llc(nn.Linear(3, 1), (x, (x[:, :1] > 0).long() + (x[:, 1:2] > 0).long()), config=SHORT)
    said = "the targets look like a classifier's (every row non-negative and summing to 1): loss 'mse' fits them"
    assert any(note.startswith(said) for note in classifier.notes)
    assert "the targets are int64 (3 distinct values): loss 'mse' fits them as real numbers" in " ".join(labels.notes)
    assert not any("look like a classifier's" in note or "distinct value" in note for note in regression.notes)


def test_parameters_that_never_reach_the_loss_are_named():
    x, y = _regression(32)
    probe = FunctionalModel(_TwoHeads())
    assert probe.unreached((x, y)) == ("unused.weight", "unused.bias", "watched.weight", "watched.bias")
    assert FunctionalModel(_TwoHeads(), restrict_to="body.*").unreached((x, y)) == ()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # a short run's mixing warning
        result = estimate_llc(_TwoHeads(), (x, y), config=SHORT)
    assert ("4 of the 6 sampled parameter tensors never reach the loss on the data (unused.weight, unused.bias, "
            "watched.weight, watched.bias): the loss does not depend on them, so they add nothing to λ̂ (restrict_to= "
            "leaves them out)") in result.notes
    # a list of restrictions says which one reaches nothing, before any of them is sampled
    with pytest.raises(ValueError, match=r"^restrict_to='watched\.\*': the loss carries no gradient in the sampled "
                                         r"parameters \(watched\.weight, watched\.bias\)"):
        estimate_llc(_TwoHeads(), (x, y), config=SHORT, restrict_to=["body.*", "watched.*"])


def test_a_step_size_given_along_training_is_used_at_every_checkpoint():
    x, y = _regression()
    network = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    checkpoints = [copy.deepcopy(network.state_dict()) for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        along = estimate_llc_along(checkpoints, (x, y), model=network, config=SHORT, step_size=3e-5)
    assert along.calibration is None and along.calibrated_at is None
    assert {result.config.step_size for result in along.results} == {3e-5}
    assert along.note.startswith("the step size given, 3e-05, at every checkpoint; ")


class _TwoStage(nn.Module):
    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Linear(2, 3), nn.Linear(3, 1)

    def forward(self, x):
        hidden = self.first(x)
        return self.second(hidden.reshape(7, -1))   # 4 rows × 3 do not make 7 rows


def _failure(module, sample_loss):
    model = FunctionalModel(module, sample_loss)
    position = model.flatten().expand(2, -1).clone()
    batch = (torch.randn(1, 4, 2), torch.randn(1, 4, 1))
    with pytest.raises(ValueError) as error:
        model(position, batch)
    return str(error.value)


def test_a_failure_is_placed_in_a_layer_between_layers_or_in_the_loss():
    def failing_loss(output, target):
        return output[:, 3]   # the outputs have one column

    in_between = _failure(_TwoStage(), lambda output, target: (output - target).square().sum(-1))
    assert "in the module's forward after layer first (Linear)" in in_between
    assert "in the loss, after the module's forward" in _failure(nn.Linear(2, 1), failing_loss)
    assert "\n" not in in_between


def _linear_regression_at(where: str):
    """A linear model of 10 weights on 1,000 generated rows, at the generating weights or at the
    least-squares fit, and its data."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 10, generator=generator)
    weights = torch.randn(10, 1, generator=generator)
    y = x @ weights + torch.randn(1000, 1, generator=generator)
    model = nn.Linear(10, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_((weights if where == "truth" else torch.linalg.lstsq(x, y).solution).T)
    return model, (x, y)


def test_a_given_parameter_off_the_minimum_is_said_with_the_gap_to_the_minimum_nearby():
    """At the generating weights ‖∇L_n‖ ≈ 0.1 and λ̂ read 4.24 against 4.97 at the minimum (−15 %),
    with the chains mixed and no warning. Both centres share one localised posterior, so the two
    estimates differ by nβ·(L_n(w*) − L_n(ŵ)), which the warning states: it must agree with the
    measured difference within three combined standard errors."""
    settings = dict(localize_at="true_parameter", draws=2000, seed=0)
    model, data = _linear_regression_at("truth")
    with pytest.warns(LocalizationWarning, match="not a critical point") as caught:
        off = estimate_llc(model, data, **settings)
    said = [str(w.message) for w in caught if "not a critical point" in str(w.message)]
    assert said and said[0] in off.warnings
    gap = float(re.search(r"lowers nβ·L_n by ([\d.e+-]+) within", said[0]).group(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        at_minimum = estimate_llc(*_linear_regression_at("minimum"), **settings)
    measured = at_minimum.mean - off.mean
    assert gap > 0 and abs(gap - measured) < 3 * (off.standard_error ** 2 + at_minimum.standard_error ** 2) ** 0.5


def test_checkpoints_along_training_are_read_as_they_are():
    """Along training a checkpoint is rarely a critical point; its λ̂ is read as it is, unwarned, also
    where the checkpoints are estimated one after the other (each calibrated on its own)."""
    model, data = _linear_regression_at("truth")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimate_llc_along([model, copy.deepcopy(model)], data, localize_at="true_parameter", draws=200, seed=0,
                           calibrate_at=None)
    assert not [w for w in caught if "not a critical point" in str(w.message)]


class _Exponential(nn.Module):
    """exp(50·(a·x + b)): a loss whose gradient changes faster near w* than any step can follow in float32."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, inputs):
        return torch.exp(50.0 * self.linear(inputs))


@pytest.mark.parametrize("sampler, unit, shrunk", [("mala", "steps", r"to .*, below what float32 holds"),
                                                   ("hmc", "trajectories", r"from h = .* to .*")])
def test_a_warm_up_that_accepts_nothing_says_so_in_one_line(monkeypatch, sampler, unit, shrunk):
    """Every proposal rejected: MALA's warm-up step shrinks below float32's smallest normal number,
    HMC's through its first trajectories (each kept short here: at the full length they take a
    minute); a ValueError saying what happened, where MALA's step check printed a tensor of zeros
    and HMC ran on for minutes at steps ever smaller."""
    from sltlab.estimators import hmc_tuning

    monkeypatch.setattr(hmc_tuning, "MAX_LEAPFROG_STEPS", 10)
    torch.manual_seed(0)
    inputs, targets = torch.randn(200, 3), torch.randn(200, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the localisation's notes on this loss are not what is tested
        with pytest.raises(ValueError, match=rf"^{sampler.upper()}'s warm-up found no step size its chains accept: "
                                             rf"over \d+ warm-up {unit} they accepted 0 of their proposals while the "
                                             rf"step shrank {shrunk}; the loss or its gradient near w\* is not finite"):
            estimate_llc(_Exponential(), (inputs, targets), draws=400, sampler=sampler)


class _Bag(nn.Module):
    """An embedding of tokens, summed over each row's positions, read out to three classes."""

    def __init__(self, sparse: bool):
        super().__init__()
        torch.manual_seed(0)
        self.embedding, self.readout = nn.Embedding(10, 4, sparse=sparse), nn.Linear(4, 3)

    def forward(self, tokens):
        return self.readout(self.embedding(tokens).sum(1))


def test_a_sparse_embedding_is_sampled_with_dense_gradients_as_the_same_function():
    generator = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, 10, (48, 5), generator=generator)
    labels = tokens.sum(1) % 3
    with warnings.catch_warnings():   # a run this short fails the mixing gate; only the numbers matter here
        warnings.simplefilter("ignore", EstimateWarning)
        sparse = estimate_llc(_Bag(True), (tokens, labels), loss="cross_entropy", config=SHORT)
        dense = estimate_llc(_Bag(False), (tokens, labels), loss="cross_entropy", config=SHORT)
    assert sparse.per_chain == dense.per_chain
    assert "1 embedding(s) made with sparse=True (embedding) are sampled with dense gradients" in " ".join(sparse.notes)
    assert not any("sparse" in note for note in dense.notes)
