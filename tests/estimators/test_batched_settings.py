"""Several settings as one batched run: chains with their own nβ and step size are the chains of
separate runs on the same noise, and the temperature ladder is one run whose every rung matches
the exact stationary LLC of SGLD on a quadratic potential."""

import math
import warnings
from dataclasses import replace

import pytest
import torch

from sltlab.estimators import LLCConfig
from sltlab.estimators.ladder import estimate_llc_at_temperatures
from sltlab.estimators.problems import estimate_llc_of_problems
from sltlab.estimators.estimate import estimate_llc_from_loss
from sltlab.estimators.ladder import estimate_over_temperatures
from sltlab.estimators.posterior import LocalPosterior
from sltlab.estimators.sampling import Batches, run_chains
from sltlab.estimators.mala import mala
from sltlab.estimators.sgld import sgld
from sltlab.models.deep_linear import DeepLinearNetwork, balanced_factorization
from sltlab.models.deep_linear_losses import FullDataLoss, StackedFullDataLoss

CURVATURES = (1.0, 2.0, 0.5)
GAMMA = 3.0


def quadratic(position, batch):
    """½·Σ h_i w_i², one 'sample' per chain (a population potential)."""
    return 0.5 * (torch.tensor(CURVATURES, dtype=position.dtype) * position.square()).sum(-1, keepdim=True)


def sgld_stationary_llc(nbeta: float, step_size: float) -> float:
    """nβ·E[K] under SGLD's own stationary law on U = nβ·K + γ‖w‖²/2, K = ½Σ h_i w_i²: each
    coordinate of w' = (1 − εk/2)·w + √ε·ξ, k = nβh + γ, is stationary at variance
    1/(k·(1 − εk/4)), so nβ·E[K] = ½·Σ nβh/(k·(1 − εk/4)), exactly."""
    total = 0.0
    for h in CURVATURES:
        k = nbeta * h + GAMMA
        total += 0.5 * nbeta * h / (k * (1 - step_size * k / 4))
    return total


def _settings(groups: int, chains: int):
    nbetas = torch.tensor([30.0, 300.0, 3000.0, 900.0][:groups], dtype=torch.float64)
    steps = 0.2 / (nbetas * max(CURVATURES) + GAMMA)
    return nbetas, steps, nbetas.repeat_interleave(chains), steps.repeat_interleave(chains)


def test_one_step_of_k_settings_is_k_steps_of_one_setting_on_the_same_noise():
    chains, groups = 3, 4
    nbetas, steps, per_chain_nbeta, per_chain_step = _settings(groups, chains)
    generator = torch.Generator().manual_seed(0)
    center = torch.randn(3, generator=generator, dtype=torch.float64)
    position = center + torch.randn(groups * chains, 3, generator=generator, dtype=torch.float64)
    noise = torch.randn(groups * chains, 3, generator=generator, dtype=torch.float64)
    together = sgld(LocalPosterior(quadratic, per_chain_nbeta, GAMMA, center), step_size=per_chain_step)
    moved, _ = together.step(together.init(position.clone()), None, noise)
    for group in range(groups):
        rows = slice(group * chains, (group + 1) * chains)
        alone = sgld(LocalPosterior(quadratic, float(nbetas[group]), GAMMA, center), step_size=float(steps[group]))
        expected, _ = alone.step(alone.init(position[rows].clone()), None, noise[rows])
        torch.testing.assert_close(moved.position[rows], expected.position, rtol=1e-14, atol=1e-14)


def test_one_mala_step_of_k_settings_is_k_steps_of_one_setting_on_the_same_noise():
    chains, groups = 3, 4
    nbetas, steps, per_chain_nbeta, per_chain_step = _settings(groups, chains)
    generator = torch.Generator().manual_seed(4)
    center = 0.01 * torch.randn(3, generator=generator, dtype=torch.float64)   # near the mode, where moves can fail
    position = 0.03 * torch.randn(groups * chains, 3, generator=generator, dtype=torch.float64)
    noise = (torch.randn(groups * chains, 3, generator=generator, dtype=torch.float64),
             torch.rand(groups * chains, generator=generator, dtype=torch.float64))
    together = mala(LocalPosterior(quadratic, per_chain_nbeta, GAMMA, center), step_size=10 * per_chain_step)
    moved, info = together.step(together.init(position, None), None, noise)
    accepted = 0
    for group in range(groups):
        rows = slice(group * chains, (group + 1) * chains)
        alone = mala(LocalPosterior(quadratic, float(nbetas[group]), GAMMA, center), step_size=10 * float(steps[group]))
        expected, expected_info = alone.step(alone.init(position[rows], None), None, tuple(t[rows] for t in noise))
        torch.testing.assert_close(moved.position[rows], expected.position, rtol=1e-13, atol=1e-14)
        torch.testing.assert_close(info["acceptance"][rows], expected_info["acceptance"], rtol=1e-12, atol=1e-14)
        accepted += int((expected.position != position[rows]).any(-1).sum())
    assert 0 < accepted < groups * chains   # the settings both accept and reject: the test sees both branches


def test_a_batched_run_of_k_settings_equals_k_separate_runs_on_the_same_noise():
    chains, groups, draws = 2, 3, 50
    nbetas, steps, per_chain_nbeta, per_chain_step = _settings(groups, chains)
    center = torch.zeros(3, dtype=torch.float64)
    noise = torch.randn(draws, groups * chains, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def replaying(sampler, rows):
        draws_so_far = iter(noise[:, rows])
        return sampler._replace(noise=lambda state, generator: next(draws_so_far))

    batches, generator = Batches((), 1), torch.Generator().manual_seed(2)
    posterior = LocalPosterior(quadratic, per_chain_nbeta, GAMMA, center)
    together = run_chains(replaying(sgld(posterior, step_size=per_chain_step), slice(None)), posterior, batches,
                          chains=groups * chains, draws=draws, generator=generator)
    for group in range(groups):
        rows = slice(group * chains, (group + 1) * chains)
        alone_posterior = LocalPosterior(quadratic, float(nbetas[group]), GAMMA, center)
        alone = run_chains(replaying(sgld(alone_posterior, step_size=float(steps[group])), rows), alone_posterior,
                           batches, chains=chains, draws=draws, generator=generator)
        torch.testing.assert_close(torch.as_tensor(together.fields["loss"][rows]),
                                   torch.as_tensor(alone.fields["loss"]), rtol=1e-12, atol=1e-15)


LADDER = LLCConfig(chains=8, draws=4000, burnin=400, nbeta=1000.0, localization=GAMMA, step_size=1e-4,
                   localize_at="true_parameter", dtype="float64", seed=3)


@pytest.mark.filterwarnings("ignore:.*given is large:sltlab.estimators.notices.StepSizeWarning")   # SGLD's truth
def test_the_temperature_ladder_is_one_run_and_every_rung_meets_sglds_exact_llc():
    ladder = estimate_over_temperatures(quadratic, torch.zeros(3, dtype=torch.float64), (), LADDER, count=4,
                                        n=10_000)
    assert ladder.how.startswith("the 4 rungs sampled together as one batched run")
    for nbeta, mean, standard_error in ladder.rungs:
        step_size = LADDER.step_size * LADDER.nbeta / nbeta   # a given step is scaled as 1/nβ
        truth = sgld_stationary_llc(nbeta, step_size)
        # The chains start at w*; 400 steps of burn-in relax the slowest coordinate by
        # e^{−εk·400} ≤ e^{−20} at every rung (εk ≥ 0.05), so nothing but Monte Carlo error is left.
        assert abs(mean - truth) <= 4 * standard_error, (nbeta, mean, standard_error, truth)


def test_a_mala_ladder_warms_every_rung_up_to_its_own_step_in_one_run_and_meets_the_exact_llc():
    """MALA is exact, so nβ·E[K] = ½·Σ nβh/(nβh + γ) at every rung, whatever step each reaches."""
    config = LLCConfig(sampler="mala", chains=8, draws=3000, burnin=200, nbeta=1000.0, localization=GAMMA,
                       localize_at="true_parameter", dtype="float64", seed=3)
    ladder = estimate_over_temperatures(quadratic, torch.zeros(3, dtype=torch.float64), (), config, count=4,
                                        n=10_000)
    assert ladder.how.startswith("the 4 rungs sampled together as one batched run")
    results = estimate_llc_at_temperatures(quadratic, torch.zeros(3, dtype=torch.float64), (), config,
                                           [nbeta for nbeta, _, _ in ladder.rungs], n=10_000)
    steps = [result.config.step_size for result in results]
    assert steps == sorted(steps, reverse=True) and steps[0] > 5 * steps[-1]   # each rung its own step
    for result in results:
        assert "every group's own step in one batched warm-up" in result.step_size_rule
        assert abs(result.acceptance - 0.8) < 0.1, (result.config.nbeta, result.acceptance)
    for nbeta, mean, standard_error in ladder.rungs:
        truth = sum(0.5 * nbeta * h / (nbeta * h + GAMMA) for h in CURVATURES)
        assert abs(mean - truth) <= 4 * standard_error, (nbeta, mean, standard_error, truth)


def test_each_rung_reports_its_own_nbeta_step_and_rule():
    with warnings.catch_warnings():   # 20 draws cannot pass the mixing gate; only the settings matter here
        warnings.simplefilter("ignore")
        results = estimate_llc_at_temperatures(quadratic, torch.zeros(3, dtype=torch.float64), (),
                                               LLCConfig(chains=2, draws=20, burnin=5, nbeta=100.0,
                                                         localization=GAMMA, localize_at="true_parameter",
                                                         dtype="float64"),
                                               [50.0, 500.0], n=10_000)
    assert [result.config.nbeta for result in results] == [50.0, 500.0]
    ruled = [result.config.step_size for result in results]
    assert ruled[0] > ruled[1] > 0 and all("h_max" in result.step_size_rule for result in results)


def test_a_sampler_without_per_chain_steps_runs_the_ladder_one_rung_after_another():
    config = LLCConfig(sampler="sgnht", chains=2, draws=20, burnin=20, nbeta=100.0, localization=GAMMA,
                       localize_at="true_parameter", dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ladder = estimate_over_temperatures(quadratic, torch.zeros(3, dtype=torch.float64), (), config, count=3,
                                            n=10_000)
    assert "one after another" in ladder.how and len(ladder.rungs) == 3
    with pytest.raises(ValueError, match="step per chain"):
        estimate_llc_at_temperatures(quadratic, torch.zeros(3, dtype=torch.float64), (), config, [50.0], n=10_000)


@pytest.mark.parametrize("steps", [torch.tensor([1e-3, 0.0]), torch.tensor([1e-3, math.inf]),
                                   torch.tensor([[1e-3]])])
def test_per_chain_step_sizes_must_be_positive_and_finite(steps):
    posterior = LocalPosterior(quadratic, 10.0, GAMMA, torch.zeros(3))
    with pytest.raises(ValueError, match="per-chain step sizes"):
        sgld(posterior, step_size=steps)


def test_each_rung_reports_its_own_dropped_chains_and_warnings_and_a_split_run_says_so(monkeypatch):
    import sltlab.estimators.batched as batched

    monkeypatch.setattr(batched, "MAX_CHAINS_PER_RUN", 4)   # one rung of 4 chains per run
    config = LLCConfig(chains=4, draws=20, burnin=5, nbeta=100.0, localization=GAMMA, step_size=1e-3,
                       localize_at="true_parameter", dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ladder = estimate_over_temperatures(quadratic, torch.zeros(3, dtype=torch.float64), (), config, count=3,
                                            n=10_000)
    assert "in 3 batched runs of whole rungs" in ladder.how
    assert [rung["nbeta"] for rung in ladder.diagnostics] == [nbeta for nbeta, _, _ in ladder.rungs]
    assert all(any("mixing gate" in warning for warning in rung["warnings"]) for rung in ladder.diagnostics)


@pytest.mark.parametrize("nbetas, match", [([], "one or more"), ([0.5, 100.0], "above 1"), ([math.inf], "above 1")])
def test_bad_temperatures_are_one_line_errors(nbetas, match):
    config = LLCConfig(chains=2, draws=20, burnin=5, nbeta=100.0, step_size=1e-3, localize_at="true_parameter")
    with pytest.raises(ValueError, match=match):
        estimate_llc_at_temperatures(quadratic, torch.zeros(3, dtype=torch.float64), (), config, nbetas, n=10_000)


def test_a_ladder_reaching_below_nbeta_1_is_refused_before_sampling():
    config = LLCConfig(chains=2, draws=20, burnin=5, nbeta=5.0, localize_at="true_parameter")
    with pytest.raises(ValueError, match="every rung needs nβ > 1"):
        estimate_over_temperatures(quadratic, torch.zeros(3, dtype=torch.float64), (), config, count=3, n=10_000)


def test_per_chain_step_sizes_must_match_the_chains():
    kernel = sgld(LocalPosterior(quadratic, 10.0, GAMMA, torch.zeros(3)), step_size=torch.tensor([1e-3, 1e-3]))
    with pytest.raises(ValueError, match="2 per-chain step sizes for 3 chains"):
        kernel.init(torch.zeros(3, 3))


def _relabelled_problems():
    """A [3,2,3] network at three centres of end-to-end rank 0, 1 and 2, each an exact minimum of
    its own relabelled loss (targets = its own outputs on shared inputs)."""
    generator = torch.Generator().manual_seed(6)
    network = DeepLinearNetwork((3, 2, 3))
    x = torch.randn(300, 3, generator=generator, dtype=torch.float64)
    target = torch.randn(3, 3, generator=generator, dtype=torch.float64)
    centres = [0.02 * torch.randn(network.dim, generator=generator, dtype=torch.float64),
               *(balanced_factorization(network, target, rank, generator=generator) for rank in (1, 2))]
    losses = [FullDataLoss(network, x, network.forward(centre.unsqueeze(0), x)[0]) for centre in centres]
    return losses, centres


def _stack(losses, chains):
    return StackedFullDataLoss(losses, torch.arange(len(losses)).repeat_interleave(chains))


def test_problems_with_their_own_losses_sampled_together_read_what_each_reads_alone():
    """MALA is exact after its warm-up, so each problem's λ̂ from the batched run must lie within
    4 combined standard errors of the same problem sampled alone; each warms up its own step."""
    losses, centres = _relabelled_problems()
    config = LLCConfig(sampler="mala", chains=4, draws=600, burnin=300, localization=1.0,
                       localize_at="true_parameter", seed=2)
    together = estimate_llc_of_problems(losses, centres, (), config, stack=_stack, n=300)
    steps = []
    for loss, centre, result in zip(losses, centres, together):
        alone = estimate_llc_from_loss(loss, centre, (), replace(config, seed=3), n=300).estimate
        combined = math.hypot(result.estimate.standard_error, alone.standard_error)
        assert abs(result.estimate.mean - alone.mean) <= 4 * combined, (result.estimate.mean, alone.mean, combined)
        steps.append(result.config.step_size)
    assert together[0].estimate.mean < together[1].estimate.mean < together[2].estimate.mean   # ranks 0 < 1 < 2
    assert len(set(steps)) == 3


def test_problems_sampled_together_need_a_centre_each_and_a_step_per_chain():
    losses, centres = _relabelled_problems()
    with pytest.raises(ValueError, match="one centre per loss"):
        estimate_llc_of_problems(losses, centres[:2], (), LLCConfig(sampler="mala"), stack=_stack, n=300)
    with pytest.raises(ValueError, match="their own step"):
        estimate_llc_of_problems(losses, centres, (), LLCConfig(sampler="sgnht"), stack=_stack, n=300)
    with pytest.raises(ValueError, match="mala only"):
        estimate_llc_of_problems(losses, centres, (), LLCConfig(sampler="sgld"), stack=_stack, n=300)


@pytest.mark.filterwarnings("ignore::sltlab.estimators.notices.MixingWarning")   # short chains; the test is the noise
def test_on_shared_noise_equal_problems_read_alike_and_each_as_it_would_alone():
    """Common random numbers: three copies of one problem on shared noise give one trace three
    times, and that trace is the one the problem gives alone at the same seed (to rounding);
    without shared noise the copies differ."""
    losses, centres = _relabelled_problems()
    config = LLCConfig(sampler="mala", chains=3, draws=100, burnin=100, localization=1.0,
                       localize_at="true_parameter", seed=4, dtype="float64")

    def copies(shared):
        return estimate_llc_of_problems([losses[1]] * 3, [centres[1]] * 3, (), config,
                                        stack=lambda many, chains: many[0], n=300, shared_noise=shared)

    shared, alone = copies(True), estimate_llc_of_problems([losses[1]], [centres[1]], (), config,
                                                          stack=lambda many, chains: many[0], n=300)[0]
    for result in shared:
        torch.testing.assert_close(torch.as_tensor(result.trace.fields["loss"]),
                                   torch.as_tensor(alone.trace.fields["loss"]), rtol=1e-10, atol=1e-12)
        assert result.config.step_size == pytest.approx(alone.config.step_size, rel=1e-10)
    apart = copies(False)
    assert len({result.estimate.mean for result in apart}) == 3
