"""Modules as users write them: tensors made inside the forward, arguments taken by name or by
keyword only, parameters that are integers, and the remedies their failures are told (a tensor
attribute in another dtype, inputs of one number per row, a parameter changed in place)."""

import warnings

import pytest
import torch
from torch import nn

from sltlab.estimators import EstimateWarning, estimate_llc
from sltlab.estimators.functional import FunctionalModel
from sltlab.estimators.sample_losses import gaussian_nll


class Recurrent(nn.Module):
    """An RNN cell run over the sequence from a zero state the forward makes without a dtype."""

    def __init__(self):
        super().__init__()
        self.cell, self.readout = nn.RNNCell(3, 4), nn.Linear(4, 1)

    def forward(self, x):
        state = torch.zeros(x.shape[0], 4)
        for step in range(x.shape[1]):
            state = self.cell(x[:, step], state)
        return self.readout(state)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_tensor_the_forward_makes_without_a_dtype_takes_the_dtype_evaluated(dtype):
    torch.manual_seed(0)
    module, x, y = Recurrent(), torch.randn(5, 6, 3, dtype=dtype), torch.randn(5, 1, dtype=dtype)
    model = FunctionalModel(module)
    losses = model(model.flatten().to(dtype)[None], (x[None], y[None]))
    assert losses.dtype == dtype and torch.get_default_dtype() == torch.float32
    module.to(dtype)
    state = torch.zeros(5, 4, dtype=dtype)
    for step in range(6):
        state = module.cell(x[:, step], state)
    expected = gaussian_nll(module.readout(state), y).detach()
    torch.testing.assert_close(losses[0], expected)


class Shifted(nn.Module):
    """A module of two arguments in which their order matters."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, x, shift):
        return self.linear(x) + shift[:, :1]


def test_dict_fields_named_as_the_forwards_parameters_are_given_by_name_in_any_order():
    torch.manual_seed(0)
    module, x, shift, y = Shifted().double(), *torch.randn(3, 1, 6, 3, dtype=torch.float64)
    expected = gaussian_nll(module(x[0], shift[0]), y[0, :, :1]).detach()
    for inputs in (("x", "shift"), ("shift", "x")):
        model = FunctionalModel(module, inputs=inputs, targets="y", fields=("x", "shift", "y"))
        torch.testing.assert_close(model(model.flatten()[None], (x, shift, y[..., :1]))[0], expected)


def test_dict_batches_without_an_input_key_are_told_to_name_one_or_several():
    class Named(torch.utils.data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, row):
            return {"features": torch.ones(3), "shift": torch.ones(3), "label": torch.ones(1)}
    with pytest.raises(ValueError, match=r"name the module's input with inputs=KEY \(or a tuple of keys, "
                                         r"inputs=\('features', 'shift'\), given to the forward by name"):
        estimate_llc(Shifted(), Named())


class OptionalScale(nn.Module):
    """A module whose second argument is optional, as an attention mask is."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, features, scale=None):
        return self.linear(features) * (1.0 if scale is None else scale[:, :1])


def test_dict_batches_without_an_input_key_give_the_forward_the_fields_it_names():
    class Rows(torch.utils.data.Dataset):   # model(**batch) less the label, as a language model's batches go
        def __len__(self):
            return 30

        def __getitem__(self, row):
            generator = torch.Generator().manual_seed(row)
            return {"features": torch.randn(3, generator=generator), "scale": torch.rand(3, generator=generator) + 1,
                    "label": torch.randn(1, generator=generator)}
    short = dict(chains=2, draws=20, burnin=10, step_size=1e-4, localize_at="true_parameter", sampler="sgld",
                 extend_unmixed=0, fallback=None, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimateWarning)   # a short run at untrained weights: only the numbers matter
        torch.manual_seed(0)
        module = OptionalScale()
        found = estimate_llc(module, Rows(), **short)
        named = estimate_llc(module, Rows(), inputs=("scale", "features"), **short)
        alone = estimate_llc(module, Rows(), inputs="features", **short)
    assert found.per_chain == named.per_chain != alone.per_chain
    said = "the module received the batch's fields features, scale by name"
    assert any(note.startswith(said) for note in found.notes)


class KeywordOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, *, x):
        return self.linear(x)


def test_a_keyword_only_forward_takes_a_dict_field_of_its_name_and_a_tuple_batch_is_told_why_not():
    torch.manual_seed(0)
    module, x, y = KeywordOnly().double(), torch.randn(1, 6, 3, dtype=torch.float64), torch.randn(1, 6, 1,
                                                                                                 dtype=torch.float64)
    model = FunctionalModel(module, inputs="x", targets="y", fields=("x", "y"))
    torch.testing.assert_close(model(model.flatten()[None], (x, y))[0], gaussian_nll(module(x=x[0]), y[0]).detach())
    with pytest.raises(ValueError, match=r"forward takes x by keyword only: a dict batch's fields of those names"):
        estimate_llc(KeywordOnly(), (x[0], y[0]))


class PlainAttribute(nn.Module):
    """A fixed projection kept as a plain attribute, not a buffer: it stays float32."""

    def __init__(self):
        super().__init__()
        self.projection, self.linear = torch.randn(3, 3), nn.Linear(3, 1)

    def forward(self, x):
        return self.linear(x @ self.projection)


def test_a_plain_attribute_tensor_in_another_dtype_is_told_to_be_a_buffer():
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"a dtype of its own \(a plain attribute.*register it as a buffer"):
        estimate_llc(PlainAttribute(), (torch.randn(20, 3), torch.randn(20, 1)))


class Scaled(nn.Module):
    """A linear map times an integer parameter held by requires_grad=False."""

    def __init__(self):
        super().__init__()
        self.linear, self.factor = nn.Linear(3, 1), nn.Parameter(torch.tensor(3), requires_grad=False)

    def forward(self, x):
        return self.linear(x) * self.factor


def test_an_integer_parameter_is_held_at_its_value_and_cannot_be_sampled_alone():
    torch.manual_seed(0)
    module, x, y = Scaled().double(), torch.randn(1, 6, 3, dtype=torch.float64), torch.randn(1, 6, 1,
                                                                                           dtype=torch.float64)
    model = FunctionalModel(module)
    assert model.names == ("linear.weight", "linear.bias")
    assert any(note.startswith("1 integer or boolean parameter tensor(s) held at their values") for note in model.notes)
    torch.testing.assert_close(model(model.flatten()[None], (x, y))[0], gaussian_nll(module(x[0]), y[0]).detach())
    assert FunctionalModel(module, restrict_to="*").names == model.names
    with pytest.raises(ValueError, match=r"^the parameters to sample are all integer or boolean \(factor is int64\)"):
        FunctionalModel(module, restrict_to="factor")


def test_inputs_of_one_number_per_row_to_a_layer_taking_features_are_told_to_add_a_column():
    x = torch.linspace(-1, 1, 20)
    with pytest.raises(ValueError, match=r"shapes cannot be multiplied.*holds one number per row .*give x\[:, None\]$"):
        estimate_llc(nn.Linear(1, 1), (x, 2 * x[:, None]))


class ClampedInPlace(nn.Module):
    """Weight clipping written into the forward, in place."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, x):
        with torch.no_grad():
            self.linear.weight.clamp_(-1, 1)
        return self.linear(x)


def test_a_forward_that_changes_a_parameter_in_place_is_told_to_change_it_out_of_place():
    x = torch.randn(20, 3)
    with pytest.raises(ValueError, match=r"modified inplace.*; the forward changes a parameter in place"):
        estimate_llc(ClampedInPlace(), (x, x[:, :1]))
