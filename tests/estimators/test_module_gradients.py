"""What the one call refuses about the gradient the samplers move by and about torch's own losses:
a parameter the loss depends on without carrying its gradient (a .detach(), .data or
torch.no_grad() in the forward or the loss), a parameter the forward reads through a reference
of its own or differently in its backward (activation checkpointing), a callable loss that reduces
over the rows, and torch's loss modules, which take
(outputs, targets), are read per row only with reduction='none', and have their targets checked
as the named loss of the same likelihood has."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from sltlab.estimators import estimate_llc

pytestmark = pytest.mark.filterwarnings("ignore::sltlab.estimators.notices.EstimateWarning")   # runs of 20 draws

SHORT = dict(chains=2, draws=20, burnin=10, step_size=1e-4, localize_at="true_parameter", extend_unmixed=0,
             fallback=None, seed=0)


@pytest.fixture(scope="module")
def rows():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=generator)
    return x, torch.tanh(x[:, :1]), (x[:, 0] > 0).long()


class TwoLayers(nn.Module):
    """tanh(x·A) → B, with the first layer's weight read as ``how`` says."""

    def __init__(self, how: str):
        super().__init__()
        torch.manual_seed(0)
        self.first, self.second, self.how = nn.Linear(3, 4), nn.Linear(4, 1), how
        self.kept = [self.first.weight]
        self.unused = nn.Linear(2, 2)

    def forward(self, x):
        weight = {"plain": self.first.weight, "data": self.first.weight.data, "kept": self.kept[0]}.get(self.how)
        if self.how == "no_grad":
            with torch.no_grad():
                weight = self.first.weight * 1.0
        return self.second(torch.tanh(F.linear(x, weight, self.first.bias)))


@pytest.mark.parametrize("how", ["data", "no_grad"])
def test_a_parameter_the_loss_depends_on_without_its_gradient_is_refused(rows, how):
    x, y, _ = rows
    with pytest.raises(ValueError, match=r"^the loss changes with first\.weight but carries no gradient in it"):
        estimate_llc(TwoLayers(how), (x, y), **SHORT)


def test_a_loss_that_detaches_the_outputs_is_refused(rows):
    x, y, _ = rows
    with pytest.raises(ValueError, match=r"^the loss changes with first\.weight but carries no gradient"):
        estimate_llc(TwoLayers("plain"), (x, y), loss=lambda outputs, batch: (outputs.detach() - batch[1]).pow(2)
                     .sum(1), **SHORT)


def test_a_parameter_read_through_a_reference_of_its_own_is_refused_and_left_as_it_was(rows):
    x, y, _ = rows
    model = TwoLayers("kept")
    before = {name: value.clone() for name, value in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"^the module's forward reads first\.weight through a reference of its own"):
        estimate_llc(model, (x, y), **SHORT)
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())


class Checkpointed(nn.Module):
    """TwoLayers("plain") under activation checkpointing, whose backward runs the forward again."""

    def __init__(self, reentrant: bool):
        super().__init__()
        self.body, self.reentrant = TwoLayers("plain"), reentrant

    def forward(self, x):
        return checkpoint(self.body, x, use_reentrant=self.reentrant)


def test_activation_checkpointing_is_refused_as_the_gradient_at_other_weights(rows):
    x, y, _ = rows
    refused = r"^the gradient in body\.first\.weight away from the module's own weights differs from the module's"
    with pytest.raises(ValueError, match=refused + r" own backward there .*\(torch\.utils\.checkpoint\)"):
        estimate_llc(Checkpointed(reentrant=False), (x, y), **SHORT)
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad"), \
            pytest.raises(ValueError, match=r"^the loss changes with body\.first\.weight but carries no gradient"):
        estimate_llc(Checkpointed(reentrant=True), (x, y), **SHORT)


def test_a_parameter_the_forward_never_uses_is_only_noted(rows):
    x, y, _ = rows
    result = estimate_llc(TwoLayers("plain"), (x, y), **SHORT)
    assert any("never reach the loss" in note and "unused.weight" in note for note in result.notes)


@pytest.mark.parametrize("reduce", [lambda o, b: F.mse_loss(o, b[1]), lambda o, b: (o - b[1]).pow(2).sum()])
def test_a_callable_loss_that_reduces_over_the_rows_is_told_to_keep_them(rows, reduce):
    x, y, _ = rows
    with pytest.raises(ValueError, match=r"got \(2,\): one number per chain: .* give reduction='none'"):
        estimate_llc(TwoLayers("plain"), (x, y), loss=reduce, **SHORT)


@pytest.mark.parametrize("loss, instead", [(nn.MSELoss(), "loss='mse'"), (nn.L1Loss(reduction="sum"), "nn.L1Loss"),
                                           (nn.CrossEntropyLoss(), "loss='cross_entropy'")])
def test_a_torch_loss_module_that_reduces_over_the_rows_is_refused_with_its_per_row_form(rows, loss, instead):
    x, y, _ = rows
    with pytest.raises(ValueError, match=rf"^loss=nn\.{type(loss).__name__}\(\) takes the (mean|sum) over the rows.*"
                                         rf"give {instead}"):
        estimate_llc(TwoLayers("plain"), (x, y), loss=loss, **SHORT)


def test_torch_loss_modules_per_row_read_as_the_same_likelihood_written_out(rows):
    x, y, labels = rows
    squared = estimate_llc(TwoLayers("plain"), (x, y), loss=nn.MSELoss(reduction="none"), **SHORT)
    written = estimate_llc(TwoLayers("plain"), (x, y), loss=lambda o, b: (o - b[1]).pow(2).sum(1), **SHORT)
    assert squared.per_chain == pytest.approx(written.per_chain, rel=1e-6)
    assert any("twice loss 'mse'" in note for note in squared.notes)
    torch.manual_seed(1)
    classifier = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    module = estimate_llc(classifier, (x, labels), loss=nn.CrossEntropyLoss(reduction="none"), **SHORT)
    named = estimate_llc(classifier, (x, labels), loss="cross_entropy", **SHORT)
    assert module.per_chain == pytest.approx(named.per_chain, rel=1e-6)
    # class weights, a float32 buffer of the loss module, follow the float64 of localisation
    weights = torch.tensor([1.0, 3.0])
    weighted = estimate_llc(classifier, (x, labels), loss=nn.CrossEntropyLoss(weights, reduction="none"), **SHORT)
    def by_hand(outputs, batch):
        return weights.to(outputs.dtype)[batch[1]] * nn.functional.cross_entropy(outputs, batch[1], reduction="none")
    written = estimate_llc(classifier, (x, labels), loss=by_hand, **SHORT)
    assert weighted.per_chain == pytest.approx(written.per_chain, rel=1e-6)
    assert any(note.startswith("nn.CrossEntropyLoss with weight=: each row's loss is not") for note in weighted.notes)


def test_torch_loss_modules_per_row_have_their_targets_checked_as_the_named_losses_do(rows):
    x, y, labels = rows
    torch.manual_seed(1)
    classifier = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    skipped = labels.clone()
    skipped[3] = -100   # torch's ignore_index: that row would have no loss and still count in n
    with pytest.raises(ValueError, match=r"^loss=nn.CrossEntropyLoss takes class indices 0 … C − 1; the targets hold"):
        estimate_llc(classifier, (x, skipped), loss=nn.CrossEntropyLoss(reduction="none"), **SHORT)
    # an ignore_index of the loss's own: class 0 rows would have no loss; in sequences it marks padding
    with pytest.raises(ValueError, match=r"^loss=nn.CrossEntropyLoss: \d+ of 64 rows have class 0, the loss's ignore"):
        estimate_llc(classifier, (x, labels), loss=nn.CrossEntropyLoss(reduction="none", ignore_index=0), **SHORT)
    padded = torch.stack([labels + 1, torch.zeros_like(labels)], 1)   # classes 1, 2 and a padding position 0
    wider = nn.Sequential(nn.Linear(3, 6), nn.Unflatten(1, (3, 2)))
    notes = estimate_llc(wider, (x, padded), loss=nn.CrossEntropyLoss(reduction="none", ignore_index=0), **SHORT).notes
    assert "64 of 128 target positions hold 0, the loss's ignore_index (padding)" in " ".join(notes)
    with pytest.raises(ValueError, match=r"^loss=nn.CrossEntropyLoss: 1 of 64 rows hold 0 \(the loss's ignore_index\)"):
        estimate_llc(wider, (x, padded * (torch.arange(64) != 5)[:, None]),
                     loss=nn.CrossEntropyLoss(reduction="none", ignore_index=0), **SHORT)
    signs = (2.0 * (x[:, :1] > 0) - 1.0)   # −1/+1 labels, for which the logistic loss has no minimum
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        estimate_llc(nn.Linear(3, 1), (x, signs), loss=nn.BCEWithLogitsLoss(reduction="none"), **SHORT)
    counted = estimate_llc(TwoLayers("plain"), (x, labels[:, None]), loss=nn.MSELoss(reduction="none"), **SHORT)
    assert any(note.startswith("the targets are int64 (2 distinct values): loss 'mse'") for note in counted.notes)
