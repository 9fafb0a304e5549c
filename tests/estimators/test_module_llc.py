"""The one call for any model: ``estimate_llc(module, data, loss=...)`` on a zoo of modules and
data shapes (short runs: shapes, finiteness, notes and warnings), and bad input as one-line
errors."""

import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from sltlab.estimators import (BurnInWarning, EstimateWarning, LLCConfig, LocalizationWarning, MixingWarning,
                               estimate_llc)
from sltlab.estimators.inference import trace_draws
from sltlab.estimators.llc import llc_from_trace
from sltlab.estimators.gate import ESS_MIN, RHAT_MAX

SHORT = LLCConfig(chains=2, draws=40, burnin=10, step_size=1e-4, localize_at="true_parameter")


@pytest.fixture(autouse=True)
def seeded():
    """One state of torch's generator, whatever ran before (another had read a negative λ̂ here)."""
    torch.manual_seed(0)


def judged(call):
    """Run ``call``; every estimate warning it raised must be a MixingWarning, raised exactly when
    the result fails the mixing gate, and listed in the result. The modules here are untrained and
    sampled where they stand, so a warning that the point is no critical point may come too, and
    the runs are short, so may one that the chains have not yet spread from w*; each must be listed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    raised = [w for w in caught if issubclass(w.category, EstimateWarning)]
    untrained = [w for w in raised if issubclass(w.category, BurnInWarning) or (
        issubclass(w.category, LocalizationWarning) and "not a critical point" in str(w.message))]
    assert all(str(w.message) in result.warnings for w in untrained)
    raised = [w for w in raised if w not in untrained]
    assert all(issubclass(w.category, MixingWarning) for w in raised), [str(w.message) for w in raised]
    fails = not (result.rhat is not None and result.rhat <= RHAT_MAX and result.ess >= ESS_MIN)
    assert len(raised) == int(fails) and (any("mixing gate" in w for w in result.warnings) == fails)
    return result


def _check_shapes(result, n, chains=2, draws=40):
    assert result.n == n and result.nbeta == pytest.approx(n / math.log(n))
    assert len(result.per_chain) == chains and all(math.isfinite(v) for v in result.per_chain)
    assert math.isfinite(result.mean) and math.isfinite(result.standard_error) and result.diverged == []
    assert {name: values.shape for name, values in trace_draws(result).items()} == {
        "llc": (chains, draws), "loss": (chains, draws), "center_loss": (chains, draws), "distance": (chains, draws)}


def test_an_mlp_with_batch_norm_and_dropout_from_a_shuffling_data_loader():
    module = nn.Sequential(nn.Linear(3, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
    x = torch.randn(256, 3)
    y = module.eval()(x).detach() + 0.1 * torch.randn(256, 2)
    module.train()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    result = judged(lambda: estimate_llc(module, loader, config=SHORT, batch_size=64))
    _check_shapes(result, 256)
    assert result.config.batch_size == 64 and module.training, "the user's module is left in training mode"
    assert [note.split(":")[0][:20] for note in result.notes] == [
        "the module (or a sub", "the DataLoader's 8 b", "the loader's order i", "loss 'mse' is the un"]
    assert len(result.parameters) == 6 and result.restricted_to is None


def test_a_small_cnn_classifies_a_dataset_with_cross_entropy():
    module = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    images, labels = torch.randn(120, 1, 8, 8), torch.randint(3, (120,))
    result = judged(lambda: estimate_llc(module, TensorDataset(images, labels), loss="cross_entropy", config=SHORT))
    _check_shapes(result, 120)
    assert any("Dataset's 1 batch was read" in note for note in result.notes)


class SequenceModel(nn.Module):
    """Embedding, one TransformerEncoderLayer (LayerNorm, dropout) and a per-token head."""

    def __init__(self, vocabulary=5, width=8):
        super().__init__()
        self.embed = nn.Embedding(vocabulary, width)
        self.encoder = nn.TransformerEncoderLayer(width, nhead=2, dim_feedforward=16, dropout=0.1, batch_first=True)
        self.head = nn.Linear(width, vocabulary)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens)))


def test_a_transformer_layer_on_dict_batches_of_a_generated_sequence_task():
    tokens = torch.randint(5, (96, 6))
    rows = [{"tokens": t, "reversed": t.flip(-1)} for t in tokens]   # the task: reverse the sequence

    def per_sequence_cross_entropy(outputs, batch):
        return nn.functional.cross_entropy(outputs.transpose(1, 2), batch["reversed"], reduction="none").mean(-1)

    module = SequenceModel()
    result = judged(lambda: estimate_llc(module, DataLoader(rows, batch_size=32, shuffle=True),
                                         loss=per_sequence_cross_entropy, inputs="tokens", config=SHORT))
    _check_shapes(result, 96)
    assert "encoder.norm1.weight" in result.parameters
    assert len(result.parameters) == len(list(module.parameters()))


def test_dict_batches_find_their_inputs_and_targets_by_name():
    module = nn.Linear(3, 1)
    x = torch.randn(64, 3)
    rows = [{"x": a, "y": b} for a, b in zip(x, module(x).detach() + torch.randn(64, 1))]
    result = judged(lambda: estimate_llc(module, DataLoader(rows, batch_size=16), config=SHORT))
    _check_shapes(result, 64)


def test_dict_fields_that_are_no_tensors_are_left_out_and_said():
    x = torch.randn(40, 3)
    rows = [{"x": a, "y": b, "id": f"row {index}"} for index, (a, b) in enumerate(zip(x, x[:, :1] + 1))]
    module = nn.Linear(3, 1)
    with_ids = judged(lambda: estimate_llc(module, DataLoader(rows, batch_size=16), config=SHORT))
    without = judged(lambda: estimate_llc(module, DataLoader([{key: row[key] for key in ("x", "y")} for row in rows],
                                                             batch_size=16), config=SHORT))
    assert with_ids.mean == without.mean
    assert "dict fields that hold no tensor with a row per sample were left out: id" in with_ids.notes
    with pytest.raises(ValueError, match=r"^no batch field \(id\) is a tensor with a row per sample$"):
        estimate_llc(nn.Linear(3, 1), DataLoader([{"id": "a"}] * 4, batch_size=2), config=SHORT)
    nested = [{"inputs": {"x": row["x"]}, "labels": row["y"]} for row in rows]   # a field that is a dict itself
    with pytest.raises(ValueError, match=r"^inputs='inputs' holds no tensor with a row per sample .* so it was left "
                                         r"out of the batches \(labels\).* \(flatten a nested dict\)$"):
        estimate_llc(module, DataLoader(nested, batch_size=16), inputs="inputs", targets="labels", config=SHORT)


def test_a_loader_that_drops_rows_is_read_whole_as_streamed_and_one_that_resamples_says_so():
    x = torch.randn(50, 2)   # drop_last had left n = 48 read (and, shuffled, which 48 by torch's global state)
    loader = DataLoader(TensorDataset(x, x[:, :1]), batch_size=16, drop_last=True, shuffle=True)
    result = judged(lambda: estimate_llc(nn.Linear(2, 1), loader, config=SHORT))
    assert result.n == 50 and any("drop_last (which drops 2 of them) and order" in note for note in result.notes)
    sampler = WeightedRandomSampler(torch.ones(50), 50, replacement=True, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():   # an untrained module on a resample: only the note matters here
        warnings.simplefilter("ignore", EstimateWarning)
        result = estimate_llc(nn.Linear(2, 1), DataLoader(TensorDataset(x, x[:, :1]), batch_size=16, sampler=sampler),
                              config=SHORT)
    assert result.n == 50 and any(note.startswith("the loader's sampler (WeightedRandomSampler) draws rows with "
                                                  "replacement") for note in result.notes)


def test_inference_data_has_the_four_variables_over_chain_and_draw():
    x = torch.randn(40, 2)
    result = judged(lambda: estimate_llc(nn.Linear(2, 1), (x, x[:, :1]), config=SHORT))
    posterior = result.to_inference_data().posterior
    for name in ("llc", "loss", "center_loss", "distance"):
        assert posterior[name].dims == ("chain", "draw") and posterior[name].shape == (2, 40)
    np.testing.assert_allclose(posterior["llc"].values.mean(), result.mean)


def test_inference_data_holds_the_chains_the_estimate_kept_under_their_run_indices():
    x = torch.randn(40, 2)
    result = judged(lambda: estimate_llc(nn.Linear(2, 1), (x, x[:, :1]), config=replace(SHORT, chains=3)))
    fields = {name: values.copy() for name, values in result.trace.fields.items()}
    fields["loss"][1, 10:] = np.nan   # chain 1 diverges at its tenth draw
    trace = result.trace._replace(fields=fields, diverged=np.array([False, True, False]),
                                  divergence_step=np.array([-1, 10, -1]))
    dropped = replace(result, trace=trace, estimate=llc_from_trace(trace, result.nbeta))
    posterior = dropped.to_inference_data().posterior
    assert dropped.diverged == [1] and list(posterior.chain.values) == [0, 2]
    assert posterior.attrs["diverged_chains"] == [1] and np.isfinite(posterior["llc"].values).all()
    np.testing.assert_allclose(posterior["llc"].values.mean(), dropped.mean)
    np.testing.assert_array_equal(posterior["loss"].values, fields["loss"][[0, 2]])
    everything = trace._replace(diverged=np.ones(3, dtype=bool), divergence_step=np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match=r"^every chain was dropped from λ̂ \(result.diverged\), so there are no draws"):
        replace(result, trace=everything, estimate=llc_from_trace(everything, result.nbeta)).to_inference_data()


class _Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 2)

    def forward(self, x):
        return self.linear(x), x


def _torchscript(module: nn.Module, example=None):
    """The module scripted, or traced on ``example``; torch deprecates both, and says so."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(module) if example is None else torch.jit.trace(module, example)


class _Named(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 2)

    def forward(self, x):
        return {"mean": self.linear(x), "scale": torch.ones_like(x)}


class _Detached(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 2)

    def forward(self, x):
        return self.linear(x).detach()


class _Complex(nn.Module):
    def __init__(self):
        super().__init__()
        self.weights = nn.Parameter(torch.ones(2, dtype=torch.cfloat))

    def forward(self, x):
        return (x.to(torch.cfloat) * self.weights).real


def _in_inference_mode(call):
    with torch.inference_mode():
        return call()


@pytest.mark.parametrize("call, match", [
    (lambda x: estimate_llc(lambda t: t, (x, x)), "must be a torch.nn.Module"),
    (lambda x: estimate_llc(nn.Linear(2, 2), x), "data must be a DataLoader"),
    (lambda x: estimate_llc(nn.Linear(2, 2), (x,)), "give data as"),
    (lambda x: estimate_llc(nn.Linear(2, 2), (x, x), loss="hinge"), "loss must be one of"),
    (lambda x: estimate_llc(nn.Linear(2, 2), (x, x), drawz=10), "unknown setting 'drawz'"),
    (lambda x: estimate_llc(nn.Linear(2, 2), (x, x), config={"draws": 10}), "config must be an LLCConfig"),
    (lambda x: estimate_llc(nn.Linear(2, 2), (x, x), restrict_to="2.*"), "matches no parameter"),
    (lambda x: estimate_llc(nn.Linear(2, 2), (x, x), restrict_to=[]), "empty list"),
    (lambda x: estimate_llc(nn.Linear(2, 2), (x, x), targets=5), "must index the 2 data tensors"),
    (lambda x: estimate_llc(nn.Linear(2, 2), [{"a": x[0], "b": x[0]}]), "must hold tensors"),
    (lambda x: estimate_llc(nn.Linear(2, 2), DataLoader([{"a": r, "b": r} for r in x])), "name the module's input"),
    (lambda x: estimate_llc(nn.Linear(2, 2), DataLoader([(r, "label") for r in x], batch_size=4)), "not a tensor"),
    (lambda x: estimate_llc(nn.Linear(2, 2), (x, x[:5])), "different numbers of rows"),
    (lambda x: estimate_llc(nn.Linear(2, 2), {"x": x, "y": x[:5]}),
     r"^the tensors have different numbers of rows \(x 10, y 5\)$"),
    (lambda x: estimate_llc(nn.Linear(2, 2), (x, x), loss=nn.MSELoss),   # torch's message on a Tensor's truth had come
     r"^loss=nn\.MSELoss is a class: give an instance of it, such as nn\.MSELoss\(reduction='none'\)$"),
    # outputs [b, 1] against targets [b] would broadcast to [b, b]: a large negative λ̂, silently
    (lambda x: estimate_llc(nn.Linear(2, 1), (x, x[:, 0])), r"outputs of shape \[b, 1\] with targets of shape \[b\]"),
    (lambda x: estimate_llc(nn.Linear(2, 2), (x, x[:, :1])), "must have the same shape"),
    (lambda x: estimate_llc(nn.Linear(2, 2), (x, x[:, :1]), loss="gaussian_nll"),
     r"loss 'mse' \(or 'gaussian_nll', of unit variance\).*; outputs of a mean and a variance take a callable loss"),
    (lambda x: estimate_llc(nn.Linear(2, 3), (x, torch.zeros(10, 1, dtype=torch.long)), loss="cross_entropy"),
     r"class indices \(integers\) of shape \[b\] .* got int64 targets of shape \[b, 1\]"),
    (lambda x: estimate_llc(nn.Linear(2, 3), (x, torch.zeros(10)), loss="cross_entropy"),
     r"got floating-point targets of shape \[b\]"),
    (lambda x: estimate_llc(_Pair(), (x, x)), r"returned a tuple, not a tensor: .* which can read outputs\[0\]$"),
    (lambda x: estimate_llc(_Named(), (x, x)),
     r"returned a dict, not a tensor: .* read outputs\['mean'\] \(the keys: mean, scale\)$"),
    (lambda x: estimate_llc(nn.Identity(), (x, x)), "has no parameters"),
    (lambda x: estimate_llc(_Detached(), (x, x)), r"the loss changes with linear\.weight but carries no gradient"),
    (lambda x: estimate_llc(nn.DataParallel(nn.Linear(2, 2)), (x, x)), r"wrapped in DataParallel.*\(model\.module\)"),
    (lambda x: estimate_llc(_torchscript(nn.Linear(2, 2)), (x, x)), r"^the model is TorchScript .* pass the Python"),
    (lambda x: estimate_llc(nn.Sequential(nn.LazyLinear(2)), (x, x)), r"^parameter 0\.weight is not initialised yet"),
    (lambda x: estimate_llc(nn.Linear(2, 2, device="meta"), (x, x)), r"^parameter weight is on the meta device"),
    (lambda x: estimate_llc(nn.Linear(2, 2), (x.to("meta"), x)), r"^data tensor 0 is on the meta device"),
    (lambda x: estimate_llc(nn.Sequential(_torchscript(nn.Linear(2, 2), x), nn.Tanh()), (x, x)),
     r"^0 is TorchScript \(torch\.jit\.script or trace\)"),
    (lambda x: estimate_llc(_Complex(), (x, x)), "parameter weights is complex64: the samplers move real parameters"),
    (lambda x: estimate_llc(_Pair(), (x, x), restrict_to="linear.bias", loss=lambda out, batch: out[1].sum(-1)),
     "carries no gradient in the sampled parameters"),
    (lambda x: _in_inference_mode(lambda: estimate_llc(nn.Linear(2, 2), (x, x))), "inference_mode"),
])
def test_bad_input_is_a_one_line_value_error(call, match):
    with pytest.raises(ValueError, match=match) as error:
        call(torch.randn(10, 2))
    assert "\n" not in str(error.value)


def test_data_that_requires_grad_or_comes_as_numpy_arrays_or_a_dict_is_read_as_plain_numbers():
    x, module = torch.randn(32, 2), nn.Linear(2, 2)
    plain = judged(lambda: estimate_llc(module, (x, x), config=SHORT))
    tracked = judged(lambda: estimate_llc(module, (x.clone().requires_grad_(), x), config=SHORT))
    arrays = judged(lambda: estimate_llc(module, [x.numpy(), x.numpy()], config=SHORT))
    named = judged(lambda: estimate_llc(module, {"x": x, "y": x.numpy(), "id": ["a"] * 32}, config=SHORT))
    assert tracked.mean == plain.mean == arrays.mean == named.mean   # a dict was refused as data
    assert "dict fields that hold no tensor with a row per sample were left out: id" in named.notes


def test_a_result_prints_as_a_short_table_and_summarises_itself_as_a_dict():
    import json

    result = judged(lambda: estimate_llc(nn.Linear(2, 1), (torch.randn(64, 2), torch.randn(64, 1)), config=SHORT))
    text = repr(result)
    assert str(result) == text and len(text) < 2000 and "\n" in text
    head = text.splitlines()[0]
    assert head.startswith(f"LLCResult: λ̂ = {result.mean:.4f} ± ") and "n = 64" in head
    assert "chains 2 (dropped: none)" in text and "w* true parameter" in text and "result.trace" in text
    assert result.notes and all(f"  note: {note}" in text.splitlines() for note in result.notes)
    summary = result.summary()
    assert json.loads(json.dumps(summary)) == summary     # JSON-ready
    assert summary["llc"] == result.mean and summary["rhat"] == result.rhat and summary["chains"] == 2
    assert summary["warnings"] == list(result.warnings) and summary["centre"]["at"] == "true_parameter"
    assert summary["singular_fluctuation"] is None and "singular fluctuation" not in text
    varied = judged(lambda: estimate_llc(nn.Linear(2, 1), (torch.randn(64, 2), torch.randn(64, 1)),
                                         config=replace(SHORT, functional_variance=True)))
    fluctuation = varied.summary()["singular_fluctuation"]
    assert fluctuation == {"mean": varied.fluctuation.mean, "standard_error": varied.fluctuation.standard_error}
    assert f"singular fluctuation ν̂ = {varied.fluctuation.mean:.4g} ± " in repr(varied)
