"""Outputs and targets of different shapes are a one-line ValueError naming both, before any
sampling: given to one of torch's losses that compares element by element, whether torch would
broadcast them (outputs [b, 1] against targets [b] to [b, b], or against targets [b, 3] to
[b, 3], which ran to a number) or fail; and given to a callable loss that broadcasts them into
a loss of every row against every row's target. A module that couples the rows itself keeps the
message that says so, and a torch loss whose targets are class indices is not refused."""

import pytest
import torch
from torch import nn

from sltlab.estimators import LLCConfig, estimate_llc, estimate_llc_along

SHORT = dict(chains=2, draws=20, burnin=10, step_size=1e-5, localize_at="true_parameter", extend_unmixed=0,
             fallback=None)
X = torch.linspace(-1, 1, 96).reshape(48, 2)
Y = X.sum(1)   # [b]
SHAPES = "compares the module's outputs of shape {} with targets of shape {} \\(b rows\\) element by element"


@pytest.mark.parametrize("loss", [nn.MSELoss(reduction="none"), nn.L1Loss(reduction="none"),
                                  nn.HuberLoss(reduction="none")], ids=["mse", "l1", "huber"])
def test_a_torch_loss_would_broadcast_outputs_b1_against_targets_b(loss):
    pattern = f"^loss=nn.{type(loss).__name__}\\(reduction='none'\\) " + SHAPES.format("\\[b, 1\\]", "\\[b\\]")
    with pytest.raises(ValueError, match=pattern + ".*torch would broadcast them to \\[48, 48\\] on the first 48"):
        estimate_llc(nn.Linear(2, 1), (X, Y), loss=loss, **SHORT)


def test_targets_of_three_columns_for_one_output_are_refused_where_they_ran_to_a_number():
    targets = torch.stack([Y, 2 * Y, 3 * Y], 1)
    with pytest.raises(ValueError, match=SHAPES.format("\\[b, 1\\]", "\\[b, 3\\]") + ".*\\[48, 3\\]"):
        estimate_llc(nn.Linear(2, 1), (X, targets), loss=nn.MSELoss(reduction="none"), **SHORT)


def test_shapes_torch_cannot_compare_are_named_too():
    targets = torch.full((48, 2), 0.5)
    with pytest.raises(ValueError, match=SHAPES.format("\\[b, 3\\]", "\\[b, 2\\]") + ", so they must have the same "
                       "shape \\(torch cannot compare them\\)"):
        estimate_llc(nn.Linear(2, 3), (X, targets), loss=nn.BCEWithLogitsLoss(reduction="none"), **SHORT)


def test_dict_batches_and_checkpoints_along_training_are_checked_too():
    with pytest.raises(ValueError, match=SHAPES.format("\\[b, 1\\]", "\\[b\\]")):
        estimate_llc(nn.Linear(2, 1), {"x": X, "y": Y}, loss=nn.MSELoss(reduction="none"), **SHORT)
    with pytest.raises(ValueError, match=SHAPES.format("\\[b, 1\\]", "\\[b\\]")):
        estimate_llc_along([nn.Linear(2, 1), nn.Linear(2, 1)], (X, Y), loss=nn.MSELoss(reduction="none"),
                           config=LLCConfig(**SHORT), calibrate_at=None)


@pytest.mark.filterwarnings("ignore::sltlab.estimators.notices.EstimateWarning")   # 20 draws do not mix
def test_a_torch_loss_of_class_indices_takes_targets_of_its_own_shape():
    torch.manual_seed(0)
    labels = (X[:, 0] > 0).long()
    result = estimate_llc(nn.Linear(2, 2), (X, labels), loss=nn.CrossEntropyLoss(reduction="none"), **SHORT)
    assert result.n == 48


BROADCAST = ("^the module's outputs of shape \\[b, 1\\] and {} of shape \\[b\\] \\(b rows\\) broadcast to \\[48, 48\\] "
             "on the first 48 rows: a loss that compares them compares every row's output with every row's target")


@pytest.mark.parametrize("loss, data, targets, named", [
    (lambda outputs, batch: ((outputs - batch[1]) ** 2).sum(1), (X, Y), None, "batch tensor 1"),
    (lambda outputs, batch: (outputs - batch[1]) ** 2, (X, Y), None, "batch tensor 1"),
    (lambda outputs, batch: ((outputs - batch["y"]) ** 2).sum(1), {"x": X, "y": Y}, None, "batch field 'y'"),
    (lambda outputs, target: ((outputs - target) ** 2).sum(1), (X, Y), 1, "the targets")],
    ids=["summed", "unreduced", "dict", "targets"])
def test_a_callable_that_broadcasts_names_both_shapes(loss, data, targets, named):
    with pytest.raises(ValueError, match=BROADCAST.format(named)):
        estimate_llc(nn.Linear(2, 1), data, loss=loss, targets=targets, **SHORT)


class Centred(nn.Module):
    """Outputs centred over the batch: a module that couples the rows itself."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def forward(self, x):
        out = self.layer(x)
        return out - out.mean(0)


def test_a_module_that_couples_the_rows_is_named_as_before():
    def squeezed(outputs, batch):
        return (outputs.squeeze(1) - batch[1]) ** 2

    with pytest.raises(ValueError, match="^the loss of a row depends on the other rows evaluated with it"):
        estimate_llc(Centred(), (X, Y), loss=squeezed, **SHORT)


def test_a_loss_that_compares_rows_on_purpose_is_not_blamed_on_broadcasting():
    def in_batch_softmax(outputs, batch):   # each row against the others' scores; batch[1] is never read
        return -(outputs[:, 0] - outputs[:, 0].logsumexp(0))

    with pytest.raises(ValueError, match="^the loss of a row depends on the other rows evaluated with it"):
        estimate_llc(nn.Linear(2, 1), (X, Y), loss=in_batch_softmax, **SHORT)


@pytest.mark.parametrize("made, kind", [(lambda gap: gap.round().long(), "int64"), (lambda gap: gap > 0, "bool")])
def test_a_loss_that_is_no_floating_point_number_is_refused_as_such(made, kind):
    """It had been told its gradient was cut by a .detach()."""
    def loss(outputs, batch):
        return made(((outputs.squeeze(-1) - batch[1]) ** 2))

    with pytest.raises(ValueError, match=f"^the loss must return real floating-point losses, got {kind}: "):
        estimate_llc(nn.Linear(2, 1), (X, Y), loss=loss, **SHORT)
