"""`sltlab bench --only head-accuracy`: the one call's LLC of the last layer of random nonlinear
networks, judged against the exact truth of that layer's Gaussian localised posterior."""

import math

import pytest
import torch
from torch import nn

from sltlab.verification.bench.head_accuracy import (PooledEncoder, format_head_accuracy, head_accuracy_rows,
                                                     head_names, head_truth, random_head_networks)
from sltlab.verification.bench.module_accuracy import BIAS_BUDGET, MIN_PASSING_SHARE

NAMES = ("2.weight", "2.bias")
NAMES_OF_ENCODER = ("head.weight", "head.bias")


@pytest.fixture
def network_with_a_dead_unit():
    """A ReLU network [3, 5, 2] whose first hidden unit never fires, on 400 random rows (float64)."""
    torch.manual_seed(3)
    network = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)).double()
    with torch.no_grad():
        network[0].weight[0] = 0.0
        network[0].bias[0] = -1.0
    x = torch.randn(400, 3, dtype=torch.float64)
    return network, (x, torch.randn(400, 2, dtype=torch.float64))


def _features(network, x):
    """h̃ = (h(x), 1): the head's inputs with a 1 appended, [n, 6]."""
    with torch.no_grad():
        hidden = network[:-1](x)
    return torch.cat([hidden, torch.ones(len(x), 1, dtype=x.dtype)], 1)


def _flat(weight_and_bias: torch.Tensor) -> torch.Tensor:
    """Head parameters [6, out] (weights over the bias row) flattened as the restriction orders
    them: the weight [out, 5] row by row, then the bias."""
    return torch.cat([weight_and_bias[:-1].T.reshape(-1), weight_and_bias[-1]])


def test_at_the_least_squares_head_the_truth_is_the_sum_over_the_feature_covariance(network_with_a_dead_unit):
    """At g = 0 the truth is ½·out·Σ nβσ/(nβσ + γ) over the eigenvalues σ of Σ̃ = h̃ᵀh̃/n, and a
    dead unit's zero column takes one from the rank: λ = 2·5/2."""
    network, (x, y) = network_with_a_dead_unit
    features = _features(network, x)
    second_moments = features.T @ features / len(x)
    least_squares = torch.linalg.pinv(features) @ y   # [6, 2]
    nbeta, gamma = 60.0, 1.5
    truth, lam = head_truth(network, (x, y), NAMES, _flat(least_squares), nbeta, gamma)
    sigma = torch.linalg.eigvalsh(second_moments).clamp(min=0)
    expected = 2 * float((0.5 * nbeta * sigma / (nbeta * sigma + gamma)).sum())
    assert truth == pytest.approx(expected, rel=1e-9)
    assert lam == 5.0 and int((sigma > 1e-9 * sigma.max()).sum()) == 5


def test_away_from_the_minimum_the_truth_is_the_gaussian_posterior_s_mean(network_with_a_dead_unit):
    """At a centre that is not the minimum, the truth against 200,000 exact draws of the Gaussian
    posterior of the head, exp(−nβ·L_n(θ) − γ‖θ − θ*‖²/2): within 4 of their standard errors."""
    network, (x, y) = network_with_a_dead_unit
    features = _features(network, x)
    centre = torch.linalg.pinv(features) @ y + 0.3 * torch.randn(6, 2, dtype=torch.float64)
    nbeta, gamma = 60.0, 1.5
    truth, _ = head_truth(network, (x, y), NAMES, _flat(centre), nbeta, gamma)

    def mean_loss(heads):   # [k, 6, 2] -> [k]
        return 0.5 * ((y - features @ heads) ** 2).sum(-1).mean(-1)

    # per output column the posterior is Gaussian with precision nβ·Σ̃ + γ·I and the mean below
    precision = nbeta * features.T @ features / len(x) + gamma * torch.eye(6, dtype=torch.float64)
    mean = torch.linalg.solve(precision, nbeta * features.T @ y / len(x) + gamma * centre)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(200_000, 6, 2, generator=generator, dtype=torch.float64)
    draws = mean + torch.linalg.solve_triangular(torch.linalg.cholesky(precision).T, noise, upper=True)
    gaps = nbeta * (mean_loss(draws) - mean_loss(centre[None]))
    assert abs(truth - float(gaps.mean())) < 4 * float(gaps.std()) / math.sqrt(len(gaps))


def test_an_encoder_s_head_loses_one_direction_to_its_layer_norm():
    """The encoder's features, LayerNorm's output averaged over positions, satisfy one linear
    relation with the constant (Σ_k (h_k − β_k)/γ_k = 0), so of the 8 features and the 1 only 8
    directions count: λ = 2 outputs · 8/2, not 2 · 9/2."""
    torch.manual_seed(0)
    encoder = PooledEncoder(8, 2, "relu")
    data = (torch.randn(200, 5, 3), torch.randn(200, 2))
    centre = torch.cat([encoder.head.weight.detach().reshape(-1), encoder.head.bias.detach()])
    assert head_names(encoder) == NAMES_OF_ENCODER
    assert head_truth(encoder, data, NAMES_OF_ENCODER, centre, 50.0, 1.0)[1] == 8.0


def test_the_draw_takes_mlps_cnns_and_encoders_in_turn_and_is_the_same_for_the_same_seed():
    names = list(random_head_networks(4, 7))
    assert [name.split()[0] for name in names] == ["MLP", "CNN", "encoder", "MLP"]
    assert names == list(random_head_networks(4, 7)) != list(random_head_networks(4, 8))
    with pytest.raises(ValueError, match="at least 1 for a random draw of networks, got 0"):
        random_head_networks(0, 7)


def test_head_accuracy_bench_judges_every_network_under_every_setting():
    """An MLP, a CNN and an encoder, each setting run short: a row per network and setting, each truth between 0
    and its λ (every centre is the head's least-squares fit), and a miss exactly where the rule puts one."""
    result = head_accuracy_rows(count=3, seeds=(0,), shorter=dict(chains=2, draws=40, burnin=10))
    (draw,) = result["draws"]
    assert [row["sampler"] for row in draw["rows"]] == ["mala", "sgld"] * 3
    for row in draw["rows"]:
        assert 0 < row["truth"] <= row["lambda"] and row["truth_se"] == 0.0
        if row["llc"] is not None and row["se"] is not None:
            assert row["misses"] == (abs(row["llc"] - row["truth"]) - 3 * row["se"] > BIAS_BUDGET * row["truth"])
    assert any(row["llc"] is not None and row["se"] is not None for row in draw["rows"])   # the rule was applied
    defaults = draw["summary"]["defaults (mala)"]
    assert defaults["networks"] == 3 and result["meets_target"] == (
        defaults["silent_misses"] == 0 and defaults["passing_gate"] >= MIN_PASSING_SHARE * defaults["networks"])
    table = format_head_accuracy(result)
    assert "exact finite-n LLC of the head's Gaussian localised posterior" in table
    assert all(row["network"] in table for row in draw["rows"])   # whole, with the draw's index
