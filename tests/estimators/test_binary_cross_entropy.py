"""Loss 'binary_cross_entropy': the Bernoulli likelihood of one logit per output, exactly; targets
outside [0, 1] and shapes that would broadcast refused in one line; outputs that may be
probabilities said; and on logistic regression, a regular model, the one call's λ̂ against the
LLC of its localised posterior by importance sampling."""

import math
import warnings

import pytest
import torch
from torch import nn

from sltlab.estimators import EstimateWarning, estimate_llc
from sltlab.estimators.sample_losses import binary_cross_entropy


def test_the_loss_is_the_bernoulli_negative_log_likelihood_summed_over_outputs():
    logits = torch.tensor([[0.3, -2.0], [1.5, 0.0], [-0.7, 4.0]], dtype=torch.float64)
    labels = torch.tensor([[1, 0], [0, 1], [1, 1]])
    p = torch.sigmoid(logits)
    expected = -(labels * p.log() + (1 - labels) * (1 - p).log()).sum(1)
    torch.testing.assert_close(binary_cross_entropy(logits, labels), expected)
    torch.testing.assert_close(binary_cross_entropy(logits, labels.bool()), expected)
    torch.testing.assert_close(binary_cross_entropy(logits[:, :1], labels[:, :1].double()), expected.new_tensor(
        [-math.log(p[0, 0]), -math.log(1 - p[1, 0]), -math.log(p[2, 0])]))


@pytest.mark.parametrize("targets, message", [
    (lambda y: y[:, 0], r"compares logits of shape \[b, 1\] with targets of shape \[b\] .* targets y\[:, None\]"),
    (lambda y: 2 * y - 1, r"takes targets in \[0, 1\] .* got values from -1 to 1 \(labels −1/\+1 go in as"),
])
def test_targets_of_another_shape_or_outside_zero_to_one_are_refused(targets, message):
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    labels = (x[:, :1] > 0).float()
    with pytest.raises(ValueError, match=message) as error:
        estimate_llc(nn.Linear(2, 1), (x, targets(labels)), loss="binary_cross_entropy")
    assert "\n" not in str(error.value)


class Squashed(nn.Module):
    """Logits through a sigmoid in the forward, where no layer shows it."""

    def __init__(self, logits: nn.Module):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return torch.sigmoid(self.logits(x))


def test_outputs_that_are_or_may_be_probabilities_are_refused_or_said():
    torch.manual_seed(0)
    x = torch.randn(50, 2)
    labels = (x[:, :1] > 0).float()
    logits = nn.Linear(2, 1)
    short = dict(chains=2, draws=40, burnin=10, step_size=1e-4, localize_at="true_parameter")
    with pytest.raises(ValueError, match="the module ends in nn.Sigmoid") as error:   # had been a note
        estimate_llc(nn.Sequential(logits, nn.Sigmoid()), (x, labels), loss="binary_cross_entropy", **short)
    assert "\n" not in str(error.value)
    with warnings.catch_warnings():   # a run this short fails the mixing gate; only the notes matter here
        warnings.simplefilter("ignore", EstimateWarning)
        squashed = estimate_llc(Squashed(logits), (x, labels), loss="binary_cross_entropy", **short)
        plain = estimate_llc(logits, (x, labels), loss="binary_cross_entropy", **short)
    said = "the module's outputs on the first 50 rows all lie in [0, 1]: loss 'binary_cross_entropy' takes logits"
    assert any(note.startswith(said) for note in squashed.notes)
    assert not any("all lie in [0, 1]" in note for note in plain.notes)


def test_logistic_regression_reads_the_llc_of_its_posterior_by_importance_sampling():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 2, generator=generator)
    labels = torch.bernoulli(torch.sigmoid(x @ torch.tensor([[1.5], [-1.0]]) + 0.3), generator=generator)
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    fit = torch.optim.LBFGS(model.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def mean_loss():
        fit.zero_grad()
        value = binary_cross_entropy(model(x), labels).mean()
        value.backward()
        return value

    fit.step(mean_loss)   # trained: the call is centred at a minimum
    result = estimate_llc(model, (x, labels), loss="binary_cross_entropy")   # any warning fails the test
    truth, truth_se = _importance_llc(x.double(), labels.double(), result.localization.center.double(), result.nbeta,
                                      result.config.localization)
    # The chains start at w*: a bias budget of 1 % of the truth, beside three combined standard errors.
    assert abs(result.mean - truth) <= 3 * math.hypot(result.standard_error, truth_se) + 0.01 * truth


def _importance_llc(x, labels, centre, nbeta, gamma, draws=2**16):
    """nβ·E[L_n(w) − L_n(w*)] under exp(−nβ·L_n(w) − (γ/2)‖w − w*‖²) for logistic regression,
    w = (weight, bias), by self-normalised importance sampling from its Laplace approximation
    N(w*, (nβ·∇²L_n + γ)⁻¹), with the delta-method standard error; no code shared with the samplers."""
    def mean_losses(w):   # L_n at each row of w [D, 3]
        logits = x @ w[:, :2].T + w[:, 2]
        per_row = nn.functional.binary_cross_entropy_with_logits(logits, labels.expand_as(logits), reduction="none")
        return per_row.mean(0)

    curvature = torch.autograd.functional.hessian(lambda w: mean_losses(w[None])[0], centre)
    precision = nbeta * curvature + gamma * torch.eye(3, dtype=torch.float64)
    spread = torch.linalg.cholesky(torch.linalg.inv(precision))
    normal = torch.randn(draws, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    w = centre + normal @ spread.T
    gaps = nbeta * (torch.cat([mean_losses(part) for part in w.split(8192)]) - mean_losses(centre[None]))
    log_weights = -gaps - 0.5 * gamma * (w - centre).square().sum(1) + 0.5 * normal.square().sum(1)
    weights = torch.softmax(log_weights, 0)
    mean = float((weights * gaps).sum())
    return mean, math.sqrt(float((weights.square() * (gaps - mean).square()).sum()))
