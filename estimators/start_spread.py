"""Chains that start together at w* and have not yet spread: what an SGLD λ̂ still lacks from it.

Every SGLD chain starts at w*, so along a direction of curvature c = nβh + γ of the localised
potential U = nβ·L_n + (γ/2)‖w − w*‖² all chains spread at one rate, which neither R-hat
(between chains that all lag alike) nor the drift between quarters of the draws sees. In the
quadratic model of L_n at w*, L_n(w* + δ) − L_n(w*) = gᵀδ + ½δᵀHδ, the unadjusted step
w' = w − (ε/2)·∇U + √ε·ξ is, along each eigenvector of H, the autoregression
δ' = a·δ − (ε/2)·p + √ε·ξ with a = 1 − εc/2 and pull p = nβ·g (the Euler–Maruyama
Ornstein–Uhlenbeck chain; Roberts & Tweedie 1996, Bernoulli 2(4), §1.2). From δ = 0 its mean after
t steps is m_∞(1 − a^t) with m_∞ = −p/c, and its variance v_∞(1 − a^{2t}) with
v_∞ = 1/(c(1 − εc/4)). The draws' gap nβ·(g·m + ½h(m² + v)) then falls short of its stationary
value by ½(c − γ)·v_∞·a^{2t} from the spread, less p²/c·((1 − 2r)·a^t + r·a^{2t}), r = (c − γ)/(2c),
from the mean (a centre that is no minimum reads high while its chains drift, so this part is
never a shortfall). Summed over the directions and averaged over the recorded steps, that is the
shortfall this module predicts: a sum over H's eigenvalues, tr f(H) for the spread and gᵀf(H)g
for the pull, taken from the whole Hessian up to 1,024 moving coordinates and beyond from Lanczos
quadrature (:mod:`sltlab.estimators.lanczos`), an estimate. Directions the Hessian does not see
(h = 0) add nothing in this model though they may lag too (and a Hessian taken on fewer rows than
it has directions sees fewer), and where the loss grows faster than quadratically away from w*
the model may overstate the lag: a prediction, not a bound.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
import torch
from torch import Tensor

from sltlab.estimators.config import MAX_METRIC_PARAMETERS, LLCConfig
from sltlab.estimators.lanczos import gauss_quadrature
from sltlab.estimators.localize import SHIFT_SHARE
from sltlab.estimators.metric import loss_hessian
from sltlab.estimators.posterior import LocalPosterior, mean_loss_and_gradient
from sltlab.estimators.sampling import Batches
from sltlab.estimators.step_size import hessian_vector_products

SHORTFALL_SHARE = SHIFT_SHARE   # the one call's bias budget: a predicted shortfall above it (and the SE) is said
SHORTFALL_FLOOR = 0.01   # ... and above a hundredth of a half-dimension: less is no lag worth saying, even at λ̂ = 0
# The Hessian is taken on this many rows at most, drawn at random: on an MLP of 958 parameters it
# took 12–16 s on 4,096 rows and 1.1–2.5 s on 1,024 (one thread, beside other jobs), against an
# SGLD estimate of 9–14 s there.
SPREAD_ROWS = 1024
# Beyond MAX_METRIC_PARAMETERS moving coordinates, Lanczos quadrature from this many random starts of
# this many steps each (plus one from the gradient) stands in for the whole Hessian: on quadratic
# losses of 300–1,000 parameters with eigenvalues spread over four to six decades, and on tanh MLPs
# of 520 and 780, 8 × 80 read the shortfall within 0.83–1.17 of the exact one where it exceeded 0.05
# (8 × 40 and 4 × 40: up to 2.4 times it), over three seeds and lags of 300 to 30,000 steps; on an
# independent draw of four tanh MLPs (d = 256–994), 0.80–1.19 over 36 readings. The
# random starts estimate a trace, so a lag carried by k directions alone is read to a relative spread
# of about √(2/(8k)): with 3 soft directions among 1,100 stiff ones, 0.52–1.70 of it over ten seeds.
QUADRATURE_PROBES = 8
QUADRATURE_STEPS = 80
HVP_COST = 2            # a Hessian-vector product by double backward costs about two gradients
QUADRATURE_SHARE = 0.25   # the check is made only where it costs at most this share of the run's gradients
MAX_BURN_IN = 2 ** 50
LAG_BURN_IN_CAP = 4   # a burn-in set from the predicted lag is at most this many times the draws' steps


def rest_limit(at_rest: float) -> float:
    """The lag a burn-in set from the model leaves at most: ``SHORTFALL_SHARE`` of the λ̂ it predicts
    at rest, and ``SHORTFALL_FLOOR``."""
    return max(SHORTFALL_SHARE * at_rest, SHORTFALL_FLOOR)


def said_limit(mean: float, standard_error: float) -> float:
    """The predicted lag above which the check after a run says it: λ̂'s standard error,
    ``SHORTFALL_SHARE`` of |λ̂| and ``SHORTFALL_FLOOR``."""
    return max(standard_error, SHORTFALL_SHARE * abs(mean), SHORTFALL_FLOOR)


def capped_burn_in(needed: int, draws: int, thin: int) -> tuple[int, str]:
    """``needed`` steps, at most ``LAG_BURN_IN_CAP`` times the draws' steps, and the words a note
    adds where the cap cut them short (empty otherwise)."""
    steps = min(needed, LAG_BURN_IN_CAP * draws * thin)
    return steps, (f", the most it takes ({LAG_BURN_IN_CAP} times the draws' {draws * thin:,} steps), short of the "
                   f"{needed:,} that would bring the lag under it") if steps < needed else ""


def predicted_shortfall(curvatures: np.ndarray, localization: float, step_size: float, recorded_steps: np.ndarray,
                        pulls: np.ndarray | None = None, weights: np.ndarray | None = None) -> tuple[float, float]:
    """The quadratic model's shortfall of λ̂ (module docstring) over draws recorded
    ``recorded_steps`` steps after w*, for the curvatures c of U at w* and the pulls p = nβ·g along
    the same directions (none: w* is a critical point); and the curvature of the direction that
    lacks the most (0 where none does). ``weights`` count each curvature's directions in the spread
    term (1 each when None; a quadrature's weights where the curvatures are its nodes). Directions
    with h ≤ 0, or so stiff that εc ≥ 2 (the step-size check's concern), are left out."""
    curvatures = np.asarray(curvatures, dtype=np.float64)
    pulls = np.zeros_like(curvatures) if pulls is None else np.asarray(pulls, dtype=np.float64)
    weights = np.ones_like(curvatures) if weights is None else np.asarray(weights, dtype=np.float64)
    kept = (curvatures > localization) & (step_size * curvatures < 2.0)
    curvatures, pulls, weights = curvatures[kept], pulls[kept], weights[kept]
    if curvatures.size == 0:
        return 0.0, 0.0
    contraction = (1.0 - 0.5 * step_size * curvatures)[:, None] ** np.asarray(recorded_steps, dtype=np.float64)
    once, twice = contraction.mean(-1), (contraction ** 2).mean(-1)   # a^t and a^{2t}, averaged over the draws
    share = (curvatures - localization) / (2.0 * curvatures)   # r
    spread = weights * share / (1.0 - 0.25 * step_size * curvatures) * twice   # ½(c − γ)·v_∞·a^{2t}
    drift = pulls ** 2 / curvatures * ((1.0 - 2.0 * share) * once + share * twice)
    lacking = spread - drift
    return float(lacking.sum()), float(curvatures[int(np.argmax(lacking))])


def burn_in_needed(curvatures: np.ndarray, localization: float, step_size: float, draws: int, thin: int,
                   pulls: np.ndarray | None, limit: float, weights: np.ndarray | None = None, least: int = 0) -> int:
    """The shortest burn-in of at least ``least`` steps before the first of ``draws`` draws ``thin``
    apart after which the predicted shortfall is at most ``limit`` (to within 1 %; at most
    ``MAX_BURN_IN``, where a step so small leaves a direction unmoved in floating point): ``least``
    itself where it suffices, else doubling, then bisection, each reading the average over at most
    200 of the draws, evenly spaced."""
    offsets = thin * np.unique(np.linspace(0, draws - 1, min(draws, 200)).round())

    def short(burnin: int) -> float:
        return predicted_shortfall(curvatures, localization, step_size, burnin + offsets, pulls, weights)[0]
    return shortest_burn_in(short, limit, least)


def shortest_burn_in(short: Callable[[int], float], limit: float, least: int) -> int:
    """The fewest steps, at least ``least``, whose shortfall ``short(steps)`` is at most ``limit``, to within 1 %
    (at most ``MAX_BURN_IN``): ``least`` itself where it suffices, else doubling, then bisection."""
    if not short(least) > limit:
        return least
    low, high = least, max(1, 2 * least)
    while short(high) > limit and high < MAX_BURN_IN:
        low, high = high, 2 * high
    while high - low > max(1, high // 100):
        middle = (low + high) // 2
        low, high = (middle, high) if short(middle) > limit else (low, middle)
    return high


class Spectrum(NamedTuple):
    """The curvatures c = nβh + γ of U at w*, the pulls p = nβ·g along them, and how many directions
    each curvature stands for in the spread term (module docstring; :func:`predicted_shortfall`)."""

    curvatures: np.ndarray
    pulls: np.ndarray
    weights: np.ndarray
    quadrature: bool   # from Lanczos quadrature (estimated), not the whole Hessian (exact)


def spectrum_at_center(posterior: LocalPosterior, rows: Any, coordinates: Tensor | None, generator: torch.Generator,
                       exact_up_to: int = MAX_METRIC_PARAMETERS, pull_rows: Any = None) -> Spectrum:
    """:class:`Spectrum` of the loss on ``rows`` at w*, over ``coordinates`` (all when None): from
    the whole Hessian's eigendecomposition up to ``exact_up_to`` coordinates, beyond from Gauss
    quadrature of its spectral measure (:mod:`sltlab.estimators.lanczos`), ``QUADRATURE_STEPS``
    Lanczos steps from each of ``QUADRATURE_PROBES`` random starts (the spread term, weighted to
    estimate its sum over all directions) and from the gradient's direction (the pull term, exact
    for polynomials of degree below twice the steps). The gradient is taken on ``pull_rows`` (all
    the data; ``rows`` when None): the chains drift by the gradient of the whole loss, and a
    subsample's own gradient at a full-data minimum is noise that the model would read as a pull."""
    center = posterior.center
    dim = center.shape[-1]
    count = dim if coordinates is None else len(coordinates)
    nbeta, gamma = float(posterior.nbeta), posterior.localization
    _, gradient = mean_loss_and_gradient(posterior.loss, center.unsqueeze(0), rows if pull_rows is None else pull_rows)
    gradient = gradient[0] if coordinates is None else gradient[0, coordinates]
    if count <= exact_up_to:
        values, vectors = torch.linalg.eigh(loss_hessian(posterior.loss, center, rows, coordinates))
        pulls = (nbeta * (vectors.T @ gradient.double())).cpu().numpy()
        return Spectrum((nbeta * values.clamp(min=0.0) + gamma).cpu().numpy(), pulls, np.ones_like(pulls), False)
    mask = torch.zeros(dim, dtype=center.dtype, device=center.device)
    mask[slice(None) if coordinates is None else coordinates] = 1.0
    probes = torch.randn((QUADRATURE_PROBES, dim), generator=generator, dtype=center.dtype, device=center.device)
    pull = torch.zeros(dim, dtype=center.dtype, device=center.device)
    pull[slice(None) if coordinates is None else coordinates] = gradient
    size = float(pull.norm())
    starts = torch.cat([probes, pull.unsqueeze(0) if size > 0 else probes[:1]])
    product_with = hessian_vector_products(posterior.loss, center.detach().expand(len(starts), dim), rows)
    nodes, weights = gauss_quadrature(product_with, starts, min(QUADRATURE_STEPS, count), mask.expand_as(starts))
    curvatures = (nbeta * nodes.clamp(min=0.0) + gamma).cpu().numpy()
    spread = np.concatenate([count * weights[:-1].cpu().numpy().ravel() / QUADRATURE_PROBES, np.zeros(nodes.shape[1])])
    pulls = np.concatenate([np.zeros(spread.size - nodes.shape[1]), nbeta * size * weights[-1].sqrt().cpu().numpy()])
    return Spectrum(np.concatenate([curvatures[:-1].ravel(), curvatures[-1]]), pulls, spread, True)


def measured_spectrum(posterior: LocalPosterior, batches: Batches, seed: int, steps: int, chains: int,
                      moved: Tensor | None = None) -> tuple[Spectrum | None, str | None]:
    """The :class:`Spectrum` at w* over the coordinates ``moved`` marks ([d]; all when None): the
    Hessian on at most ``SPREAD_ROWS`` rows drawn with ``seed``, so that its cost does not grow with
    the data set, and the gradient's pull on all of them (one pass); or None and a note saying why
    it was not taken: the Hessian could not be taken at w*, or Lanczos
    quadrature would cost more than ``QUADRATURE_SHARE`` of the gradients of a run of ``chains``
    chains and ``steps`` steps."""
    center = posterior.center
    coordinates = None if moved is None else moved.nonzero().flatten()
    count = center.shape[-1] if coordinates is None else len(coordinates)
    if count > MAX_METRIC_PARAMETERS:   # row-gradients of the quadrature against those of the run
        rows = min(SPREAD_ROWS, batches.n) if batches.n else 1
        check = HVP_COST * rows * (QUADRATURE_PROBES + 1) * QUADRATURE_STEPS
        run = chains * steps * (batches.n if batches.is_full and batches.n else batches.batch_size or 1)
        if check > QUADRATURE_SHARE * run:
            data = f"on {rows:,} rows" if batches.n else "of the loss"
            return None, (f"the start-lag check (BurnInWarning) was not made: Lanczos quadrature of the Hessian {data} "
                          f"in {count:,} parameters would cost about {check / run:.1f} times the run's gradients (it "
                          f"is made up to {QUADRATURE_SHARE:g}); a longer run, or MALA, avoids the question")
    generator = torch.Generator(center.device).manual_seed(seed)
    try:
        return spectrum_at_center(posterior, batches.subsample(SPREAD_ROWS, generator), coordinates, generator,
                                  pull_rows=batches.full()), None
    except (RuntimeError, torch.linalg.LinAlgError) as error:
        said = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return None, f"the start-lag check (BurnInWarning) was not made: the Hessian at w* could not be taken ({said})"


def burn_in_for_lag(spectrum: Spectrum, localization: float, step_size: float, draws: int, thin: int,
                    floor: int) -> tuple[int, str | None]:
    """The burn-in of SGLD's chains from w* where none is given: ``floor`` (a quarter of the draws),
    or longer where the quadratic model (module docstring) predicts that the draws after it would
    still lack more than ``SHORTFALL_SHARE`` of the λ̂ it predicts for chains at rest (and
    ``SHORTFALL_FLOOR``): the shortest burn-in that brings the lag under that, at most
    ``LAG_BURN_IN_CAP`` times the draws' steps; and a note where it was raised."""
    at_rest = predicted_shortfall(spectrum.curvatures, localization, step_size, np.zeros(1), None,
                                  spectrum.weights)[0]
    limit = rest_limit(at_rest)
    needed = burn_in_needed(spectrum.curvatures, localization, step_size, draws, thin, spectrum.pulls, limit,
                            spectrum.weights, least=floor)
    if needed <= floor:
        return floor, None
    burnin, capped = capped_burn_in(needed, draws, thin)
    return burnin, (f"burn-in {burnin:,} steps instead of {floor:,}{capped}: the chains start at w*, and the "
                    f"quadratic model of the loss there predicts that after {floor:,} they would still lack more than "
                    f"{limit:.2g} of the λ̂ = {at_rest:.4g} it predicts at rest (give burnin=, --burnin, to set it)")


def burn_in_at_center(posterior: LocalPosterior, batches: Batches, config: LLCConfig,
                      step_size: float) -> tuple[int, str | None, Spectrum | None]:
    """The burn-in SGLD's chains from w* take where none is given, from the spectrum measured before
    the run (:func:`measured_spectrum`, :func:`burn_in_for_lag`), with its note and the spectrum for
    the check after the run to reuse; where the spectrum cannot be measured, ``config.burnin`` (a
    quarter of the draws), no note and no spectrum: the check after the run says why."""
    spectrum, _ = measured_spectrum(posterior, batches, config.seed, config.burnin + config.draws * config.thin,
                                    config.chains)
    if spectrum is None:
        return config.burnin, None, None
    burnin, note = burn_in_for_lag(spectrum, posterior.localization, step_size, config.draws, config.thin,
                                   config.burnin)
    return burnin, note, spectrum


def start_spread_concern(posterior: LocalPosterior, batches: Batches, seed: int, step_size: float, steps: int,
                         draws: int, thin: int, chains: int, mean: float | None, standard_error: float | None,
                         moved: Tensor | None = None,
                         spectrum: Spectrum | None = None) -> tuple[str | None, str | None]:
    """For SGLD's chains from w*: a sentence where the predicted shortfall exceeds λ̂'s standard
    error, ``SHORTFALL_SHARE`` of |λ̂| and ``SHORTFALL_FLOOR`` (None where it does not), and a note
    where the check was not made (:func:`measured_spectrum`, unless the ``spectrum`` was measured
    before the run). ``moved`` marks the coordinates the chains move ([d]; all when None), the
    others frozen."""
    if mean is None or standard_error is None:
        return None, None
    if spectrum is None:
        spectrum, note = measured_spectrum(posterior, batches, seed, steps, chains, moved)
        if spectrum is None:
            return None, note
    gamma = posterior.localization
    recorded = steps - thin * (draws - np.arange(draws))   # a draw reads L_b where the step began
    shortfall, slowest = predicted_shortfall(spectrum.curvatures, gamma, step_size, recorded, spectrum.pulls,
                                             spectrum.weights)
    limit = said_limit(mean, standard_error)
    if not shortfall > limit:
        return None, None
    share = f" ({shortfall / abs(mean):.0%} of it)" if mean != 0 else ""
    burnin = burn_in_needed(spectrum.curvatures, gamma, step_size, draws, thin, spectrum.pulls, limit,
                            spectrum.weights)
    how = (f" (its Hessian's spectrum estimated by Lanczos quadrature from {QUADRATURE_PROBES} random directions)"
           if spectrum.quadrature else "")
    return (f"the chains, all started at w*, have not yet spread out: the quadratic model of the loss at w*{how} "
            f"predicts λ̂ = {mean:.4g} short by about {shortfall:.3g}{share} over these draws, most along a direction "
            f"of curvature {slowest:.3g}, which relaxes in about {3.0 / (step_size * slowest):,.0f} steps of "
            f"ε = {step_size:.3g} against the run's {steps:,}; R-hat cannot see a lag that all chains share; a burn-in "
            f"of about {burnin:,} steps (burnin=, --burnin) would bring the predicted lag under {limit:.2g}, or use a "
            "Metropolis-adjusted sampler (mala), whose tuned step is larger"), None
