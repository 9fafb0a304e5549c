"""MALA's dense metric: the kernel, the metric built from the Hessian at w*, and where it applies."""

import math
from dataclasses import replace

import pytest
import torch

from sltlab.estimators.config import MAX_METRIC_PARAMETERS, LLCConfig
from sltlab.estimators.mala import mala
from sltlab.estimators.metric import (HESSIAN_BLOCK, Metric, hessian_metric, metric_not_applied, relaxation_gain,
                                      with_metric)
from sltlab.estimators.posterior import LocalPosterior


def quadratic(curvature: torch.Tensor):
    """L(w) = ½·wᵀKw, as a per-sample loss of three identical rows."""
    def loss(position, batch):
        return (0.5 * (position @ curvature * position).sum(-1, keepdim=True)).expand(-1, 3)
    return loss


def anisotropic(dim=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))[0]
    curvature = basis @ torch.diag(torch.logspace(-3, 1, dim, dtype=torch.float64)) @ basis.T
    return curvature, LocalPosterior(quadratic(curvature), 400.0, 1.0, torch.zeros(dim, dtype=torch.float64))


def test_a_diagonal_dense_metric_takes_the_diagonal_preconditioners_steps():
    dim, chains = 5, 4
    posterior = anisotropic(dim)[1]
    scale = torch.rand(dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.2
    metric = Metric(torch.diag(scale.rsqrt()), torch.diag(scale.sqrt()), scale)
    diagonal = mala(posterior, step_size=1e-3, preconditioner=scale.expand(chains, dim), drift_limit=None)
    dense = mala(posterior._replace(metric=metric), step_size=1e-3, drift_limit=None)
    start = 0.1 * torch.randn(chains, dim, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    one, two = diagonal.init(start, None), dense.init(start, None)
    for step in range(40):
        noise = diagonal.noise(one, torch.Generator().manual_seed(step))
        one, first = diagonal.step(one, None, noise)
        two, second = dense.step(two, None, noise)
    torch.testing.assert_close(two.position, one.position, rtol=0, atol=1e-12)
    torch.testing.assert_close(second["acceptance"], first["acceptance"], rtol=0, atol=1e-12)


def test_the_hessian_metric_whitens_the_curvature_of_a_quadratic_posterior():
    curvature, posterior = anisotropic()
    metric = hessian_metric(posterior.loss, posterior.center, None, posterior.nbeta, posterior.localization)
    precision = posterior.nbeta * curvature + posterior.localization * torch.eye(len(curvature), dtype=torch.float64)
    metric_matrix = metric.from_whitened.T @ metric.from_whitened                     # G = A·Aᵀ
    identity = torch.eye(len(curvature), dtype=torch.float64)
    torch.testing.assert_close(metric.to_whitened @ metric.from_whitened, identity, rtol=0, atol=1e-12)
    torch.testing.assert_close(metric_matrix @ precision, (posterior.nbeta + posterior.localization) * identity,
                               rtol=1e-10, atol=1e-9)
    torch.testing.assert_close(metric.curvatures, torch.linalg.eigvalsh(precision), rtol=1e-10, atol=0)


def test_the_hessian_is_the_same_assembled_from_several_blocks_of_products():
    curvature, posterior = anisotropic(dim=HESSIAN_BLOCK + 6)
    metric = hessian_metric(posterior.loss, posterior.center, None, posterior.nbeta, posterior.localization)
    precision = posterior.nbeta * curvature + posterior.localization * torch.eye(len(curvature), dtype=torch.float64)
    torch.testing.assert_close(metric.curvatures, torch.linalg.eigvalsh(precision), rtol=1e-10, atol=0)


def test_negative_curvature_counts_as_none():
    curvature = torch.diag(torch.tensor([-2.0, 3.0], dtype=torch.float64))
    metric = hessian_metric(quadratic(curvature), torch.zeros(2, dtype=torch.float64), None, 10.0, 1.0)
    assert metric.curvatures.tolist() == [1.0, 31.0]   # γ, and nβ·3 + γ


def test_dense_mala_keeps_a_gaussian_posterior_whose_curvatures_span_four_decades():
    """Chains started at exact draws of N(0, P⁻¹) stay distributed so after 200 steps: the mean of
    nβ·L is ½·tr(nβK·P⁻¹) exactly, and over 2,000 chains its standard error is measured."""
    curvature, posterior = anisotropic()
    metric = hessian_metric(posterior.loss, posterior.center, None, posterior.nbeta, posterior.localization)
    precision = posterior.nbeta * curvature + posterior.localization * torch.eye(len(curvature), dtype=torch.float64)
    covariance = torch.linalg.inv(precision)
    generator = torch.Generator().manual_seed(5)
    start = torch.randn(2000, len(curvature), generator=generator, dtype=torch.float64) @ torch.linalg.cholesky(
        covariance).T
    sampler = mala(posterior._replace(metric=metric), step_size=0.5 / (posterior.nbeta + posterior.localization))
    state = sampler.init(start, None)
    accepted = []
    for _ in range(200):
        state, info = sampler.step(state, None, sampler.noise(state, generator))
        accepted.append(float(info["acceptance"].mean()))
    gaps = posterior.nbeta * posterior.loss(state.position, None)[:, 0]
    exact = 0.5 * float(torch.trace(posterior.nbeta * curvature @ covariance))
    assert abs(float(gaps.mean()) - exact) <= 4 * float(gaps.std()) / math.sqrt(len(gaps))
    assert sum(accepted) / len(accepted) > 0.9   # every direction moves at the same whitened step


def test_the_metric_applies_to_mala_at_one_centre_of_at_most_the_stated_size():
    _, posterior = anisotropic()
    config = LLCConfig(sampler="mala", metric="hessian", nbeta=400.0)
    applied, used, note, words = with_metric(config, posterior, None, torch.Generator().manual_seed(0))
    assert applied.metric is not None and used.metric == "hessian" and note is None
    assert words.startswith(", in the metric (nβ + γ)·P⁻¹ of the Hessian at w* (curvatures of P 1.4 to 4e+03")
    for other, center, why in [(replace(config, sampler="sgld"), posterior.center, "only MALA samples with a metric"),
                               (config, posterior.center.expand(4, -1), "each with a centre or nβ of its own"),
                               (config, torch.zeros(MAX_METRIC_PARAMETERS + 1),
                                f"{MAX_METRIC_PARAMETERS + 1:,} parameters")]:
        used, note = metric_not_applied(other, center)
        assert used.metric == "identity" and why in note and "the identity was used" in note
        used, note = metric_not_applied(replace(other, metric="auto"), center)
        assert used.metric == "identity"   # auto takes the identity where no metric applies, quietly but for groups,
        assert (note is None) == (center.dim() == 1) and (note is None or note.startswith("metric = auto was not"))
    said = []
    with_metric(replace(config, sampler="sgld"), posterior, None, torch.Generator(), announce=said.append)
    assert said == []   # no Hessian is taken where no metric applies
    with_metric(config, posterior, None, torch.Generator(), announce=said.append)
    assert said == ["building MALA's metric from the Hessian at w*"]


def spread_in(words: str) -> float:
    """The spread the rule's words report: "… over 64 of its draws S" then "," or the end."""
    return float(words.split("over 64 of its draws ")[1].split(",")[0])


def test_auto_takes_the_metric_where_the_loss_is_quadratic_and_the_identity_at_a_singular_centre():
    _, quadratic_posterior = anisotropic()
    config = LLCConfig(sampler="mala", metric="auto", nbeta=400.0)
    generator = torch.Generator().manual_seed(0)
    applied, used, note, words = with_metric(config, quadratic_posterior, None, generator)
    assert applied.metric is not None and used.metric == "hessian" and note is None
    assert spread_in(words) < 1e-9   # the loss is its own quadratic model, up to rounding

    def product(position, batch):   # L = (w₁w₂)²/2: the Hessian vanishes at w* = 0, the posterior is not Gaussian
        return (0.5 * (position[:, 0] * position[:, 1]) ** 2).unsqueeze(-1).expand(-1, 3)
    singular = LocalPosterior(product, 400.0, 1.0, torch.zeros(2, dtype=torch.float64))
    applied, used, note, words = with_metric(config, singular, None, generator)
    assert applied.metric is None and used.metric == "identity" and note is None
    assert spread_in(words) > 1 and words.endswith("over 1: the Hessian's Gaussian is no guide there)")


def test_auto_keeps_the_identity_where_one_stiff_direction_carries_the_llc():
    """A layer of a rank-1 deep linear network: one curvature nβh among 107 held by γ alone. The
    Gaussian holds exactly, but the identity relaxes the one direction that counts faster."""
    dim, generator = 108, torch.Generator().manual_seed(0)
    direction = torch.randn(dim, generator=generator, dtype=torch.float64)
    direction /= direction.norm()
    posterior = LocalPosterior(quadratic(10.0 * torch.outer(direction, direction)), 1086.0, 1.0,
                               torch.zeros(dim, dtype=torch.float64))
    applied, used, _, words = with_metric(LLCConfig(sampler="mala", metric="auto", nbeta=1086.0), posterior, None,
                                          generator)
    assert applied.metric is None and used.metric == "identity" and spread_in(words) < 1e-9
    assert words.endswith(f"its predicted gain in relaxing the slowest direction that carries λ̂ "
                          f"{(1 / 108) ** (1 / 3):.3g}, not over 1)")


def test_the_relaxation_gain_is_the_carrying_curvatures_spread_times_their_share_of_the_directions_cubed_root():
    assert relaxation_gain(torch.tensor([1.0, 4.0, 8.0, 40.0]), 1.0) == pytest.approx(10 * 0.75 ** (1 / 3), rel=1e-12)
    assert relaxation_gain(torch.tensor([1.0, 1.5]), 1.0) == 0.0   # none has nβh ≥ γ


class SquareWithoutSecondDerivative(torch.autograd.Function):
    """w² whose backward is not itself differentiable, as some custom operations are."""

    @staticmethod
    def forward(ctx, position):
        ctx.save_for_backward(position)
        return position ** 2

    @staticmethod
    def backward(ctx, upstream):
        (position,) = ctx.saved_tensors
        return upstream * 2 * position.detach()


def test_a_loss_without_a_second_derivative_keeps_auto_on_the_identity_and_refuses_hessian():
    def loss(position, batch):
        return SquareWithoutSecondDerivative.apply(position).sum(-1, keepdim=True)
    posterior = LocalPosterior(loss, 100.0, 1.0, torch.zeros(3, dtype=torch.float64))
    config = LLCConfig(sampler="mala", metric="auto", nbeta=100.0)
    applied, used, _, words = with_metric(config, posterior, None, torch.Generator())
    assert applied.metric is None and used.metric == "identity"
    assert words.startswith(", in the identity metric (the Hessian at w* could not be taken (")
    with pytest.raises(ValueError, match="^metric = hessian: the Hessian at w\\* could not be taken .*choose metric"):
        with_metric(replace(config, metric="hessian"), posterior, None, torch.Generator())


def test_without_localisation_a_direction_flat_to_second_order_refuses_the_metric():
    curvature = torch.diag(torch.tensor([1.0, 0.0], dtype=torch.float64))   # L = ½w₁², flat along w₂
    posterior = LocalPosterior(quadratic(curvature), 100.0, 0.0, torch.zeros(2, dtype=torch.float64))
    config = LLCConfig(sampler="mala", metric="hessian", nbeta=100.0, localization=0.0)
    with pytest.raises(ValueError, match=r"^metric = hessian: P = nβ·∇²L_n\(w\*\) \+ γ·I is singular \(γ = 0"):
        with_metric(config, posterior, None, torch.Generator())
    applied, used, _, words = with_metric(replace(config, metric="auto"), posterior, None, torch.Generator())
    assert applied.metric is None and used.metric == "identity" and "is singular" in words


def test_the_metric_is_checked_and_the_fallback_runs_without_it():
    with pytest.raises(ValueError, match="metric must be one of identity, hessian"):
        LLCConfig(metric="fisher").validate()
    assert LLCConfig(sampler="mala", metric="hessian", fallback="hmc").fallback_config().metric == "identity"
