"""The batched-loss entry points (estimate_llc_from_loss, at centres, at temperatures) refuse in
one line what would otherwise be a raw error from deep inside, or a confident wrong number: a
loss whose rows' losses depend on the other rows, an n the data contradict, and arguments of
the wrong kind."""

import numpy as np
import pytest
import torch

from sltlab.estimators import LLCConfig, estimate_llc_at_centers, estimate_llc_at_temperatures, estimate_llc_from_loss

X = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
SHORT = LLCConfig(draws=20, burnin=5, chains=2, step_size=1e-3)
LADDER = LLCConfig(draws=20, burnin=5, chains=2, step_size=1e-3, nbeta=10.0)


def per_row(position, batch):
    return 0.5 * ((position[:, None, :] - batch[0]) ** 2).sum(-1)


def centred_by_the_batch(position, batch):
    rows = batch[0] - batch[0].mean(-2, keepdim=True)
    return 0.5 * ((position[:, None, :] - rows) ** 2).sum(-1)


def noisy(position, batch):
    return per_row(position, batch) + torch.rand(position.shape[0], batch[0].shape[-2])


@pytest.mark.parametrize("loss, said", [
    (centred_by_the_batch, "the loss of a row depends on the other rows evaluated with it"),   # had read 30× too high
    (noisy, "the loss on the same rows at the same parameter differed between two evaluations"),
])
def test_a_loss_that_is_no_mean_of_per_row_losses_is_refused(loss, said):
    with pytest.raises(ValueError, match=f"^{said}"):
        estimate_llc_from_loss(loss, torch.zeros(2), (X,), SHORT)


@pytest.mark.parametrize("n, said", [
    (10 ** 6, "n = 1,000,000 but the data hold 50 rows"),   # had been ignored
    (2.5, "n is the data set's size, a whole number of rows, got 2.5"),
    (True, "n is the data set's size, a whole number of rows, got True"),
])
def test_an_n_the_data_contradict_or_that_is_no_whole_number_is_refused(n, said):
    with pytest.raises(ValueError, match=f"^{said}"):
        estimate_llc_from_loss(per_row, torch.zeros(2), (X,), SHORT, n=n)


@pytest.mark.parametrize("call, said", [
    (lambda: estimate_llc_from_loss(per_row, torch.zeros(2), X, SHORT), "data is one tensor: a batched loss takes"),
    (lambda: estimate_llc_from_loss(per_row, torch.zeros(2), (X.numpy(),), SHORT), "data entry 0 is a ndarray"),
    (lambda: estimate_llc_from_loss(per_row, torch.zeros(2), {"x": X}, SHORT), "data is a dict"),
    (lambda: estimate_llc_from_loss(per_row, torch.zeros(2), None, SHORT), "data is None"),
    (lambda: estimate_llc_from_loss(per_row, torch.zeros(2), (X,), None), "config must be an LLCConfig, got NoneType"),
    (lambda: estimate_llc_from_loss(per_row, torch.zeros(2, device="meta"), (X,), SHORT),
     "the true parameter is on the meta"),
    (lambda: estimate_llc_from_loss(per_row, torch.zeros(2, dtype=torch.complex64), (X,), SHORT),
     "the true parameter must hold real numbers, got complex64"),   # had dropped the imaginary part
    (lambda: estimate_llc_from_loss(per_row, torch.zeros(2, dtype=torch.bool), (X,), SHORT),
     "the true parameter must hold real numbers, got bool"),
    (lambda: estimate_llc_at_centers(per_row, [np.zeros(2)], (X,), SHORT), "centre 0 must be a torch tensor"),
    (lambda: estimate_llc_at_temperatures(per_row, torch.zeros(1, 2), (X,), LADDER, [10.0, 20.0]),
     r"the true parameter is one position, a tensor \[d\]"),
    (lambda: estimate_llc_at_temperatures(per_row, torch.zeros(2), (X,), LADDER, 10.0), "nbetas must be a list"),
    (lambda: estimate_llc_at_temperatures(per_row, torch.zeros(2), (X,), LADDER, [1e39]),
     r"nβ = 1e\+39 exceeds float32's range"),
])
def test_arguments_of_the_wrong_kind_are_one_line_errors(call, said):
    with pytest.raises(ValueError, match=f"^{said}"):
        call()


@pytest.mark.filterwarnings("ignore::sltlab.estimators.notices.EstimateWarning")   # a run this short lags
def test_centres_given_as_one_tensor_are_read_as_its_rows():
    results = estimate_llc_at_centers(per_row, torch.zeros(2, 2), (X,), SHORT)   # had been torch's "ambiguous"
    assert len(results) == 2 and all(result.mean is not None for result in results)


def test_a_loss_whose_gradient_at_the_centre_is_no_number_is_refused():
    def norm(position, batch):   # ‖w‖: autograd's gradient at 0 is NaN
        return position.square().sum(-1, keepdim=True).sqrt().expand(-1, batch[0].shape[-2])

    config = LLCConfig(sampler="mala", localize_at="true_parameter", dtype="float64")
    with pytest.raises(ValueError, match="^the loss's gradient at the given parameter is nan"):   # MALA had tuned
        estimate_llc_from_loss(norm, torch.zeros(2), (X,), config)   # its step to 10⁻¹¹² and blamed the step


@pytest.mark.parametrize("shaped, said", [
    (lambda losses: losses[0], "one row of losses for all chains: evaluate every chain's position"),
    (lambda losses: losses[:1], "one row of losses for all chains"),
    (lambda losses: losses.T, r"chains and samples are swapped: return \[C, b\], chains first"),
])
def test_a_loss_of_the_wrong_shape_gets_the_remedy_of_its_shape(shaped, said):
    def loss(position, batch):   # had been told to "average over samples inside the estimate" for each
        return shaped(per_row(position, batch))

    with pytest.raises(ValueError, match=said):
        estimate_llc_from_loss(loss, torch.zeros(2), (X,), SHORT)


def test_a_piecewise_linear_loss_gives_sglds_curvature_rule_nothing_to_set_a_step_by():
    def absolute(position, batch):   # |w1| + |w2|: no curvature anywhere, a slope of 1 off the axes
        return position.abs().sum(-1, keepdim=True).expand(-1, batch[0].shape[-2])

    with pytest.raises(ValueError, match=r"^SGLD's curvature rule measured no curvature \(h_max = 0"):
        estimate_llc_from_loss(absolute, torch.zeros(2), (X,), LLCConfig(localize_at="true_parameter"))   # had
        # taken ε = c/γ = 0.1, and every chain diverged


@pytest.mark.filterwarnings("ignore::sltlab.estimators.notices.EstimateWarning")   # a run this short lags
@pytest.mark.parametrize("start, n", [(torch.tensor([0, 0]), 50.0), (torch.zeros(2), torch.tensor(50)),
                                      (torch.zeros(2), np.int64(50))])
def test_an_integer_centre_and_a_whole_n_of_any_type_are_read(start, n):
    assert estimate_llc_from_loss(per_row, start, (X,), SHORT, n=n).n == 50


def test_a_coupling_hidden_at_the_centre_is_found_near_it():
    def centred_times_weights(position, batch):   # x − x.mean() enters only through the weights, 0 at w* = 0
        rows = batch[0] - batch[0].mean(-2, keepdim=True)
        return 0.5 * ((rows * position[:, None, :]).sum(-1) - batch[0][..., 0]) ** 2

    with pytest.raises(ValueError, match="^the loss of a row depends on the other rows"):
        estimate_llc_from_loss(centred_times_weights, torch.zeros(2), (X,), SHORT)
