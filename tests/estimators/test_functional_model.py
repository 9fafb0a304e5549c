"""The nn.Module adapter: batched over chains like the native models, with any loss, batches of
named fields, modules of several arguments, and a position restricted to some of the parameters."""

import math
import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from sltlab.estimators import estimate_llc
from sltlab.estimators.notices import EstimateWarning
from sltlab.estimators.functional import FunctionalModel
from sltlab.estimators.sample_losses import check_class_probabilities, cross_entropy, gaussian_nll
from sltlab.models.deep_linear import DeepLinearNetwork


def test_functional_model_equals_the_batched_deep_linear_network():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Linear(4, 2, bias=False)).double()
    model, network = FunctionalModel(module), DeepLinearNetwork([3, 4, 2])
    assert model.dim == network.dim
    position = torch.randn(5, model.dim, dtype=torch.float64)
    x, y = torch.randn(5, 7, 3, dtype=torch.float64), torch.randn(5, 7, 2, dtype=torch.float64)
    for pos, batch in [(position, (x, y)), (position, (x[:1], y[:1])), (position[:1], (x, y)),
                       (position[:1], (x[:1], y[:1]))]:
        torch.testing.assert_close(model(pos, batch), network(pos, batch))
    torch.testing.assert_close(model.flatten(), network.flatten([module[0].weight, module[1].weight]).detach())


def test_functional_model_with_cross_entropy():
    torch.manual_seed(0)
    module = nn.Linear(3, 4).double()
    model = FunctionalModel(module, cross_entropy)
    x, labels = torch.randn(1, 6, 3, dtype=torch.float64), torch.randint(4, (1, 6))
    position = model.flatten().unsqueeze(0).expand(2, -1)
    expected = nn.functional.cross_entropy(module(x[0]), labels[0], reduction="none")
    torch.testing.assert_close(model(position, (x, labels)), expected.expand(2, -1))


def test_a_restricted_position_samples_the_selected_parameters_and_freezes_the_rest():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    full, last = FunctionalModel(module), FunctionalModel(module, restrict_to="2.*")
    assert last.names == ("2.weight", "2.bias") and last.dim == 10
    assert FunctionalModel(module, restrict_to="0.weight").names == ("0.weight",)
    assert FunctionalModel(module, restrict_to=("0.bias", "2")).names == ("0.bias", "2.weight", "2.bias")
    moved = last.flatten() + torch.randn(3, 10, dtype=torch.float64)
    x, y = torch.randn(1, 7, 3, dtype=torch.float64), torch.randn(1, 7, 2, dtype=torch.float64)
    frozen_head = full.flatten()[:16].expand(3, -1)
    torch.testing.assert_close(last(moved, (x, y)), full(torch.cat([frozen_head, moved], -1), (x, y)))
    torch.testing.assert_close(last.flatten(), torch.cat([module[2].weight.reshape(-1), module[2].bias]).detach())


def test_a_restriction_that_matches_nothing_is_a_one_line_error():
    module = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"restrict_to 'layers.2.\*' matches no parameter of the module; its "
                                         r"parameters are: 0.weight, 0.bias, 1.weight, 1.bias$"):
        FunctionalModel(module, restrict_to="layers.2.*")


def test_a_restriction_to_the_second_name_of_a_tied_weight_names_the_tie():
    module = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Linear(3, 3, bias=False), nn.Linear(3, 2))
    module[1].weight = module[0].weight
    assert FunctionalModel(module).names == ("0.weight", "2.weight", "2.bias")
    for pattern in ("1.*", "1", "1.weight"):
        with pytest.raises(ValueError, match=r"matches only 1.weight, which is tied to 0.weight: restrict to "
                                             r"'0.weight' to sample that one shared tensor \(sampled once, under "
                                             r"every name it has\)$"):
            FunctionalModel(module, restrict_to=pattern)
    assert FunctionalModel(module, restrict_to="0.weight").names == ("0.weight",)
    module = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Tanh(), nn.Linear(3, 3))
    module[2].weight = module[0].weight   # a head tied to the input layer, as an embedding to an output head
    with pytest.raises(ValueError, match=r"^restrict_to '2' also matches 2.weight, which is tied to 0.weight and "
                                         r"would be left out: add '0.weight' to sample"):
        FunctionalModel(module, restrict_to="2")   # had sampled 2.bias alone, unsaid
    assert FunctionalModel(module, restrict_to=["0.weight", "2"]).names == ("0.weight", "2.bias")
    module = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 1))
    module.add_module("again", module[0])   # a whole layer under a second name: both its parameters tied
    with pytest.raises(ValueError, match=r"^restrict_to 'again.\*' matches only again.weight, again.bias, which are "
                                         r"tied to 0.weight, 0.bias: restrict to '0.weight', '0.bias' to sample those"):
        FunctionalModel(module, restrict_to="again.*")
    module.add_module("also", module[0])   # a third name: the shared tensors are named once each
    with pytest.raises(ValueError, match=r"^restrict_to 'a\*.weight' matches only again.weight, also.weight, which are "
                                         r"tied to 0.weight: restrict to '0.weight' to sample that one shared tensor"):
        FunctionalModel(module, restrict_to="a*.weight")


def test_dict_batches_reach_a_loss_of_the_whole_batch():
    torch.manual_seed(0)
    module = nn.Linear(3, 2).double()
    x, y = torch.randn(1, 5, 3, dtype=torch.float64), torch.randn(1, 5, 2, dtype=torch.float64)

    def weighted(output, batch):
        return batch["weight"] * (output - batch["target"]).square().sum(-1)

    model = FunctionalModel(module, weighted, inputs="features", targets=None, fields=("features", "target", "weight"))
    weight = torch.rand(1, 5, dtype=torch.float64)
    expected = weight[0] * (module(x[0]) - y[0]).square().sum(-1)
    torch.testing.assert_close(model(model.flatten().unsqueeze(0), (x, y, weight))[0], expected.detach())


class Masked(nn.Module):
    """A module of two arguments, as a transformer taking (tokens, mask) is."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, x, mask):
        return self.linear(x * mask)


def test_a_module_of_several_arguments_takes_a_tuple_of_fields():
    torch.manual_seed(0)
    module, x, y = Masked().double(), torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 1, dtype=torch.float64)
    mask = (torch.rand(6, 3) > 0.3).double()
    model = FunctionalModel(module, inputs=(0, 1), targets=2)
    expected = gaussian_nll(module(x, mask), y).detach()
    torch.testing.assert_close(model(model.flatten()[None], (x[None], mask[None], y[None]))[0], expected)
    named = FunctionalModel(module, inputs=("x", "mask"), targets="y", fields=("y", "mask", "x"))
    torch.testing.assert_close(named(named.flatten()[None], (y[None], mask[None], x[None]))[0], expected)
    with pytest.raises(ValueError, match=r"missing 1 required positional argument: 'mask'; inputs= takes a tuple"):
        estimate_llc(Masked(), (x, mask, y))
    with pytest.raises(ValueError, match=r"^inputs=\(\) names no field"):
        estimate_llc(Masked(), (x, mask, y), inputs=())
    with pytest.raises(ValueError, match=r"^the targets \(tensor -1\) are also one of the module's inputs \(\(0, 1"):
        estimate_llc(Masked(), (x, mask), inputs=(0, 1))   # no targets left: the last would be the mask


def test_cross_entropy_takes_integer_indices_of_any_width_and_refuses_booleans():
    outputs, labels = torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
    torch.testing.assert_close(cross_entropy(outputs, labels.int()), cross_entropy(outputs, labels), rtol=0, atol=0)
    torch.testing.assert_close(cross_entropy(outputs, labels.to(torch.uint8)), cross_entropy(outputs, labels))
    with pytest.raises(ValueError, match="got bool targets of shape"):
        cross_entropy(outputs, labels.bool())


def test_cross_entropy_of_a_sequence_sums_its_positions():
    outputs, tokens = torch.randn(4, 3, 6), torch.randint(0, 3, (4, 6))   # [b, C, T]: the classes along dimension 1
    by_position = torch.stack([cross_entropy(outputs[:, :, t], tokens[:, t]) for t in range(6)], 1)
    torch.testing.assert_close(cross_entropy(outputs, tokens), by_position.sum(1))
    probabilities = torch.softmax(torch.randn(4, 3, 6), 1)
    torch.testing.assert_close(cross_entropy(outputs, probabilities), sum(
        cross_entropy(outputs[:, :, t], probabilities[:, :, t]) for t in range(6)))
    with pytest.raises(ValueError, match=r"the classes along dimension 1: a sequence's outputs \[b, T, C\] go in "
                                         r"as \[b, C, T\]\); got int64 targets of shape \[b, 6\]"):
        cross_entropy(outputs.transpose(1, 2), tokens)


class TokenTagger(nn.Module):
    """Logits [b, C, T] for tokens [b, T]: an embedding and a linear read-out per position."""

    def __init__(self):
        super().__init__()
        self.embedding, self.out = nn.Embedding(5, 4), nn.Linear(4, 3)

    def forward(self, tokens):
        return self.out(self.embedding(tokens)).transpose(1, 2)


def test_padded_sequence_targets_skip_their_padding_positions():
    """−100 (torch's ignore_index) in sequence targets marks padding: the estimate equals that of
    a callable loss summing the other positions by hand, on the same seed."""
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 5, (60, 6), generator=generator)
    labels = torch.randint(0, 3, (60, 6), generator=generator)
    labels[::2, 4:] = -100                                                # every other sequence two shorter
    torch.manual_seed(0)
    module, settings = TokenTagger(), dict(chains=2, draws=20, burnin=10, step_size=1e-4, localize_at="true_parameter",
                                           extend_unmixed=0, fallback=None)

    def by_hand(outputs, batch):
        kept = batch[1] >= 0
        losses = nn.functional.cross_entropy(outputs, batch[1].clamp_min(0), reduction="none")
        return (losses * kept).sum(-1)

    with warnings.catch_warnings():   # a run this short fails the mixing gate; only its numbers matter here
        warnings.simplefilter("ignore", EstimateWarning)
        named = estimate_llc(module, (tokens, labels), loss="cross_entropy", **settings)
        manual = estimate_llc(module, (tokens, labels), loss=by_hand, **settings)
    assert named.mean == pytest.approx(manual.mean, rel=1e-6)
    assert "60 of 360 target positions hold -100, the loss's ignore_index (padding)" in " ".join(named.notes)
    labels[3] = -100
    with pytest.raises(ValueError, match="1 of 60 rows hold -100 .* at every target position"):
        estimate_llc(module, (tokens, labels), loss="cross_entropy", **settings)
    labels[3] = -1
    with pytest.raises(ValueError, match=r"the targets hold -1 \(6 negative of 360\)$"):
        estimate_llc(module, (tokens, labels), loss="cross_entropy", **settings)


def test_cross_entropy_refuses_float_targets_that_are_not_class_probabilities_before_sampling():
    x, labels = torch.randn(40, 3), torch.randint(0, 2, (40,))
    soft = torch.softmax(torch.randn(40, 2), 1).double()
    check_class_probabilities(soft)                                       # probabilities pass
    check_class_probabilities(nn.functional.one_hot(labels, 2).float())   # and so do one-hot floats
    check_class_probabilities(labels)                                     # class indices are not checked here
    module, negative = nn.Linear(3, 2), soft.clone()
    negative[0] = torch.tensor([1.5, -0.5])                              # sums to 1, yet unbounded below
    with pytest.raises(ValueError, match="got entries down to -0.5 and row sums off 1 by up to"):
        estimate_llc(module, (x, negative), loss="cross_entropy")
    with pytest.raises(ValueError, match="row sums off 1 by up to 1 "):
        estimate_llc(module, (x, 2 * soft), loss="cross_entropy")         # rescales the likelihood row by row
    with pytest.raises(ValueError, match="got entries down to -0.5"):   # streamed rows: checked on their first slice
        estimate_llc(module, TensorDataset(x, negative), loss="cross_entropy", stream=True)


def test_an_operation_without_a_batching_rule_is_one_note_not_a_warning_per_step():
    # weight_norm has no vmap batching rule: torch warns at every batched call, so at every step
    torch.manual_seed(0)
    module = nn.Sequential(nn.utils.parametrizations.weight_norm(nn.Linear(3, 4)), nn.Tanh(), nn.Linear(4, 1))
    model = FunctionalModel(module.double())
    x = torch.randn(1, 6, 3, dtype=torch.float64)
    position = model.flatten().unsqueeze(0).expand(3, -1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = model(position, (x, x[..., :1])), model(position, (x, x[..., :1]))
    assert not [caught_warning for caught_warning in caught if "performance drop" in str(caught_warning.message)]
    assert [note for note in model.notes if "no batching rule for aten::_weight_norm" in note] != []
    assert len([note for note in model.notes if "batching rule" in note]) == 1
    expected = (module.double()(x[0]) - x[0, :, :1]).pow(2).squeeze(-1) / 2 + math.log(2 * math.pi) / 2
    torch.testing.assert_close(first, expected.expand(3, -1))
    torch.testing.assert_close(second, first)
