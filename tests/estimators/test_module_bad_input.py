"""Bad input to the one call is a one-line ValueError that names the real problem, and a run
whose chains never moved claims no error bar: a non-finite loss at the given parameter, a loss
without a lower bound, class indices torch would skip or cannot read, a restriction given as a
submodule or as something else, two restrictions of the same parameters, single rows from a
loader without batching, a module or loss the data do not fit, a module whose outputs are
probabilities already given to cross-entropy, a forward or loss that draws random numbers in eval
mode or gives a row a loss that depends on the rows beside it (noise drawn after a seed fixed in
the forward among the causes named), sparse data, an index or names beside inputs and targets,
and a precision too coarse for the nβ asked."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from sltlab.estimators import LLCConfig, estimate_llc
from sltlab.estimators.data_rows import read_rows
from sltlab.estimators.llc import llc_from_gaps, rounding_concern
from sltlab.estimators.gate import mixing_concern
from sltlab.estimators.notices import EstimateWarning, PrecisionWarning

SHORT = dict(chains=2, draws=20, burnin=10, step_size=1e-4, localize_at="true_parameter", extend_unmixed=0,
             fallback=None)


@pytest.fixture(scope="module")
def regression():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(48, 3, generator=generator)
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)), x, torch.tanh(x[:, :1])


class LogOutput(nn.Module):
    """log of a linear map: NaN wherever the map is negative."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 1)

    def forward(self, x):
        return torch.log(self.layer(x))


@pytest.mark.parametrize("localize_at", ["true_parameter", "empirical_minimum"])
def test_a_loss_that_is_not_finite_at_the_given_parameter_is_named(regression, localize_at):
    _, x, y = regression
    with pytest.raises(ValueError, match="^the loss at the given parameter is nan over the data"):
        estimate_llc(LogOutput(), (x, y), **{**SHORT, "localize_at": localize_at})


def test_a_loss_without_a_lower_bound_is_refused_before_sampling(regression):
    # the log-likelihood where its negative belongs: L-BFGS scales the logits up without end
    _, x, _ = regression
    labels = (x[:, 0] > 0).long()
    torch.manual_seed(0)
    classifier = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"the loss has no lower bound, so exp\(−nβ·L_n\) is no posterior"):
        estimate_llc(classifier, (x, labels), loss=lambda out, batch: -nn.functional.cross_entropy(
            out, batch[1], reduction="none"), **{**SHORT, "localize_at": "empirical_minimum"})


def test_chains_that_never_moved_have_no_standard_error_or_ess():
    still = llc_from_gaps(np.full((4, 300), 0.0), nbeta=10.0)
    assert still.mean == 0.0 and still.standard_error is None and still.ess is None and still.rhat is None
    concern = mixing_concern(still)
    assert "R-hat could not be computed" in concern and "ESS could not be computed" in concern
    moving = llc_from_gaps(np.random.default_rng(0).normal(1.0, 0.1, (4, 300)), nbeta=10.0)
    assert moving.standard_error > 0 and moving.ess > 0


@pytest.mark.parametrize("label", [-1, -100])   # −100 is torch's ignore_index: that row would drop out of L_n
def test_negative_class_indices_are_refused(regression, label):
    _, x, _ = regression
    labels = (x[:, 0] > 0).long()
    labels[5] = label
    classifier = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(ValueError, match=f"class indices 0 … C − 1; the targets hold {label} \\(1 negative of 48\\)"):
        estimate_llc(classifier, (x, labels), loss="cross_entropy", **SHORT)


def test_cross_entropy_of_one_logit_and_class_indices_past_the_outputs_are_named(regression):
    _, x, _ = regression
    labels = (x[:, 0] > 0).long()
    with pytest.raises(ValueError, match=r"outputs of shape \[b, 1\] give one class, whose cross-entropy is 0 at"):
        estimate_llc(nn.Linear(3, 1), (x, labels), loss="cross_entropy", **SHORT)
    with pytest.raises(ValueError, match=r"in the loss.*Target 2 is out of bounds; the targets hold a class index at"):
        estimate_llc(nn.Linear(3, 2), (x, labels * 2), loss="cross_entropy", **SHORT)


def test_a_module_that_ends_in_a_softmax_is_refused_for_cross_entropy(regression):
    _, x, _ = regression
    labels = (x[:, 0] > 0).long()
    torch.manual_seed(0)
    logits = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"^loss 'cross_entropy' takes logits, and the module's outputs on the first "
                                         r"48 rows are probabilities .* end it with LogSoftmax, or give a callable "
                                         r"loss$"):
        estimate_llc(nn.Sequential(logits, nn.Softmax(-1)), (x, labels), loss="cross_entropy", **SHORT)
    with warnings.catch_warnings():   # a run this short fails the mixing gate; only its acceptance matters here
        warnings.simplefilter("ignore", EstimateWarning)
        log_probabilities = estimate_llc(nn.Sequential(logits, nn.LogSoftmax(-1)), (x, labels), loss="cross_entropy",
                                         **SHORT)
        plain = estimate_llc(logits, (x, labels), loss="cross_entropy", **SHORT)
    assert log_probabilities.mean == pytest.approx(plain.mean, rel=1e-4)   # log softmax leaves log-probabilities


class FunctionalDropout(nn.Module):
    """Dropout written as ``F.dropout(h, p)``, whose ``training`` defaults to True: eval mode does
    not turn it off unless ``training=self.training`` is passed."""

    def __init__(self, follow_mode: bool):
        super().__init__()
        self.follow_mode = follow_mode
        self.hidden, self.out = nn.Linear(3, 4), nn.Linear(4, 1)

    def forward(self, x):
        hidden = torch.tanh(self.hidden(x))
        return self.out(nn.functional.dropout(hidden, 0.2, training=self.training if self.follow_mode else True))


def test_a_forward_or_loss_that_draws_random_numbers_in_eval_mode_is_refused(regression):
    model, x, y = regression
    random_losses = r"^the loss on the same rows at the same weights differed between two evaluations \(by up to "
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=random_losses + r".*\(F.dropout\(x, p, training=self.training\)\)$"):
        estimate_llc(FunctionalDropout(follow_mode=False), (x, y), **SHORT)
    with pytest.raises(ValueError, match=random_losses):
        estimate_llc(model, (x, y), loss=lambda outputs, batch: ((outputs - batch[1]) ** 2).sum(-1) / 2
                     + 0.01 * torch.randn(len(outputs)), **SHORT)
    with warnings.catch_warnings():   # a run this short fails the mixing gate; only that it runs matters here
        warnings.simplefilter("ignore", EstimateWarning)
        result = estimate_llc(FunctionalDropout(follow_mode=True), (x, y), **SHORT)
    assert np.isfinite(result.mean)


class BatchCentred(nn.Module):
    """Inputs centred on the batch's mean: a row's output depends on the rows beside it."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 1)

    def forward(self, x):
        return self.layer(x - x.mean(0))


def test_a_loss_that_depends_on_the_other_rows_of_the_batch_is_refused(regression):
    model, x, y = regression
    batched = r"^the loss of a row depends on the other rows evaluated with it \(by up to .* between rows 0–23 alone "
    with pytest.raises(ValueError, match=batched + r"and among the first 48\).* from that row alone$"):
        estimate_llc(BatchCentred(), (x, y), **SHORT)
    torch.manual_seed(0)
    sequence = nn.RNN(3, 1)   # given [b, 3], it reads the rows as one sequence: only the later half differs alone
    with pytest.raises(ValueError, match=r"between rows 24–47 alone and among the first 48\)"):
        estimate_llc(sequence, (x, y), loss=lambda outputs, batch: ((outputs[0] - batch[1]) ** 2).sum(-1), **SHORT)
    with pytest.raises(ValueError, match=batched):   # in-batch negatives: each row against the batch's mean output
        estimate_llc(model, (x, y), loss=lambda outputs, batch: ((outputs - outputs.mean(0)) ** 2).sum(-1), **SHORT)


class SeededNoise(nn.Module):
    """Noise drawn after a seed fixed in the forward: the same at every call, but row i's draw
    depends on how many rows come before it."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 1)

    def forward(self, x):
        torch.manual_seed(0)
        return self.layer(x) + 0.1 * torch.randn(len(x), 1)


def test_noise_drawn_after_a_seed_fixed_in_the_forward_is_named_among_the_causes(regression):
    _, x, y = regression
    with pytest.raises(ValueError, match=r"^the loss of a row depends on the other rows .* draws noise after fixing a "
                                         r"seed in the forward \(a row's draw then depends on the rows before it\)"):
        estimate_llc(SeededNoise(), (x, y), **SHORT)


def test_sparse_data_are_refused_with_the_remedy(regression):
    model, x, y = regression
    with pytest.raises(ValueError, match=r"^data tensor 0 is a sparse_coo tensor: .*give it as .to_dense\(\)$"):
        estimate_llc(model, (x.to_sparse(), y), **SHORT)
    loader = DataLoader(TensorDataset(x, y), batch_size=16,
                        collate_fn=lambda rows: (torch.stack([r[0] for r in rows]).to_sparse(),
                                                 torch.stack([r[1] for r in rows])))
    with pytest.raises(ValueError, match=r"^batch field 0 is a sparse_coo tensor: "):
        estimate_llc(model, loader, **SHORT)


def test_an_index_or_names_beside_inputs_and_targets_are_refused_saying_which_field(regression):
    model, x, y = regression
    with pytest.raises(ValueError, match=r"\(e.g. targets y\[:, None\] for outputs \[b, 1\]\); the data hold 3 tensors "
                                         r"per row: the module received tensor 0 and loss 'mse' compared its outputs "
                                         r"with tensor 2, the last \(inputs=, targets= choose others\)$"):
        estimate_llc(model, (x, y, torch.arange(len(x))), **SHORT)   # a Dataset's (x, y, index)
    named = DataLoader([(x[i], y[i], f"row {i}") for i in range(len(x))], batch_size=16)
    with pytest.raises(ValueError, match=r"^batch field 2 is tuple, not a tensor with a row per sample: every field "
                                         r"of a tuple batch must be one, .* a Dataset that returns a dict carries"):
        estimate_llc(model, named, **SHORT)


def test_a_class_index_beyond_the_outputs_is_blamed_on_the_data_not_on_batching(regression):
    _, x, _ = regression
    labels = (x[:, 0] > 0).long()
    labels[-1] = 5
    with pytest.raises(ValueError) as raised:
        estimate_llc(nn.Sequential(nn.Linear(3, 2)), (x, labels), loss="cross_entropy", **SHORT)
    assert str(raised.value).startswith("the module and loss cannot be evaluated on the data in the loss")
    assert "Target 5 is out of bounds" in str(raised.value) and "vmap" not in str(raised.value)


def test_a_restriction_given_as_a_submodule_is_its_name(regression):
    model, x, y = regression
    config = LLCConfig(**SHORT)
    with warnings.catch_warnings():   # runs this short fail the mixing gate; only the parameters chosen matter here
        warnings.simplefilter("ignore", EstimateWarning)
        by_module = estimate_llc(model, (x, y), config=config, restrict_to=model[2])
        by_name = estimate_llc(model, (x, y), config=config, restrict_to="2")
        several = estimate_llc(model, (x, y), config=config, restrict_to=[model[0], ("2.bias", model[2])])
    assert by_module.parameters == by_name.parameters == ("2.weight", "2.bias")
    assert by_module.restricted_to == "2" and by_module.mean == by_name.mean
    assert [result.restricted_to for result in several] == ["0", ("2.bias", "2")]


@pytest.mark.parametrize("restriction, message", [
    (0, "restrict_to takes parameter names, glob patterns or submodules, got int 0"),
    (nn.Linear(3, 4), "restrict_to names a Linear that is not a submodule of the model"),
])
def test_a_restriction_that_is_neither_a_name_nor_a_submodule_is_refused(regression, restriction, message):
    model, x, y = regression
    with pytest.raises(ValueError, match=f"^{message}$"):
        estimate_llc(model, (x, y), restrict_to=restriction, **SHORT)


@pytest.mark.parametrize("restrictions, message", [
    (["0.weight", "2.*", "0.weight"], r"entries 0 \('0\.weight'\) and 2 \('0\.weight'\)"),
    (["2.*", "0", ("2.bias", "2.weight")], r"entries 0 \('2\.\*'\) and 2 \(\('2\.bias', '2\.weight'\)\)"),
])
def test_two_restrictions_that_select_the_same_parameters_are_refused(regression, restrictions, message):
    model, x, y = regression
    with pytest.raises(ValueError, match=f"^restrict_to {message} select the same parameters .*: give each once$"):
        estimate_llc(model, (x, y), restrict_to=restrictions, **SHORT)


def test_a_loader_without_batching_over_single_rows_reads_each_item_as_a_row(regression):
    _, x, y = regression
    rows = read_rows(DataLoader(TensorDataset(x, y[:, 0]), batch_size=None))
    assert torch.equal(rows.tensors[0], x) and torch.equal(rows.tensors[1], y[:, 0])
    assert rows.notes[0].startswith("the DataLoader's 48 items, single rows (batch_size=None), were read once")
    served = read_rows(DataLoader(TensorDataset(x.reshape(6, 8, 3), y.reshape(6, 8, 1)), batch_size=None))
    assert torch.equal(served.tensors[0], x) and "6 batches were read once" in served.notes[0]


def test_data_the_module_cannot_take_are_blamed_on_the_data_not_on_batching(regression):
    model, x, y = regression
    with pytest.raises(ValueError) as raised:
        estimate_llc(model, (x[:, :2], y), **SHORT)
    assert str(raised.value).startswith("the module and loss cannot be evaluated on the data at layer 0 (Linear): "
                                        "mat1 and mat2 shapes cannot be multiplied")


def test_integer_inputs_to_a_layer_of_floating_point_weights_are_blamed_on_the_data(regression):
    model, x, y = regression
    with pytest.raises(ValueError, match=r"at layer 0 \(Linear\): .*; the module's inputs are integers, which a"):
        estimate_llc(model, (x.round().long(), y), **SHORT)


def test_a_callable_loss_that_returns_no_tensor_is_named_with_what_it_receives(regression):
    model, x, y = regression
    with pytest.raises(ValueError, match="in the loss, after the module's forward: the loss returned a float, not a "
                                         "tensor of per-sample losses \\[b\\]; a callable loss receives the module's "
                                         "outputs and the batch as it came, and returns one loss per row$"):
        estimate_llc(model, (x, y), loss=lambda outputs, batch: 1.0, **SHORT)


def test_a_rounding_bias_float32_cannot_rule_out_is_said_and_float64_is_not_doubted():
    """r = nβ·2⁻²⁴·|L_n(w*)|/λ̂: 10⁶·5.96e-8·2.5/5 = 2.98 % is said, 10⁵ (0.30 %) and float64 are not."""
    concern = rounding_concern(5.0, 1e6, 2.5, "float32")
    assert concern.startswith("float32 holds L_n near w* = 2.5 only to 1.5e-07, which nβ = 1e+06 turns into 3.0% of λ̂")
    assert rounding_concern(5.0, 1e5, 2.5, "float32") is None and rounding_concern(5.0, 1e6, 2.5, "float64") is None
    assert rounding_concern(None, 1e6, 2.5, "float32") is None


def test_linear_regression_at_a_large_nbeta_warns_of_rounding_in_float32_only():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1000, 5, generator=generator)
    y = x @ torch.randn(5, 2, generator=generator) + torch.randn(1000, 2, generator=generator)
    model = nn.Linear(5, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(x, y).solution.T)
    for dtype, expected in (("float32", 1), ("float64", 0)):
        with warnings.catch_warnings(record=True) as raised:
            warnings.simplefilter("always")
            estimate_llc(model, (x, y), nbeta=1e6, dtype=dtype, draws=200, chains=4, extend_unmixed=0, fallback=None)
        assert sum(notice.category is PrecisionWarning for notice in raised) == expected
