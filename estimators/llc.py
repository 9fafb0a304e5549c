"""The local learning coefficient from a recorded trace, with its diagnostics.

λ̂(w*) = nβ·(E_p[L_n(w)] − L_n(w*))  (Lau, Furman, Wang, Murfet & Wei 2023, Def. 3.1),
estimated draw by draw from the paired difference L_b(w_t) − L_b(w*) on the
same minibatch, which is unbiased for L_n(w_t) − L_n(w*) and carries none of the noise of a
separately estimated L_n(w*). R-hat (rank-normalised, Vehtari et al. 2021), the ESS and
the Monte Carlo standard error of the mean come from :mod:`sltlab.estimators.diagnostics` on the
(chain, draw) array; :mod:`sltlab.estimators.gate` judges them.

A chain is dropped, and named with its reason, when it diverged (not finite, or beyond the
localising prior's reach, :func:`sltlab.estimators.sampling.prior_reach`) or when it left
the basin: its median of nβ·(L(w) − L(w*)) lies more than ``OUTLIER_SPREADS`` robust
within-chain spreads (1.4826·MAD) from the median over the chains (stuck, when such a chain of a
Metropolis-adjusted sampler accepted under ``MIN_ACCEPTANCE`` of its moves). Chains mixing in one basin
differ in their medians by a small fraction of that spread (the median's error is about
1.25·spread/√ESS), so the threshold comes from the chains themselves, not from a constant.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np

from sltlab.estimators import diagnostics
from sltlab.estimators.sampling import Trace


OUTLIER_SPREADS = 5.0
BLOCKS_PER_CHAIN = 50   # each chain's draws are averaged in this many blocks for the standard error (:func:`mcse`)
MIN_ACCEPTANCE = 0.1   # below this a Metropolis-adjusted chain has hardly moved
MOVING_ACCEPTANCE = 0.5   # ... and at or above this, as the chains' median, the others have moved as tuned


class LLCEstimate(NamedTuple):
    """λ̂ over the chains that did not diverge; ``None`` where a number does not exist (every
    chain diverged, or R-hat with a single chain)."""

    mean: float | None
    standard_error: float | None
    per_chain: list[float | None]   # None for a dropped chain
    rhat: float | None
    ess: float | None               # the smaller of the bulk ESS and the standard error's (:func:`_ess`)
    diverged_chains: list[int]      # dropped chains, in order
    nbeta: float
    divergence: dict[int, str]      # why each dropped chain was dropped
    drift: float | None = None      # (last-quarter λ̂ − first-quarter λ̂)/SE of the difference: :func:`drift_z`
    flat: bool = False              # no draw's loss differed while every kept chain moved: λ̂ = 0
    sides: float | None = None      # (cooled chains' λ̂ − those from w*)/SE of the difference: :func:`sides_z`


def basin_outliers(gaps: np.ndarray, alive: np.ndarray, spreads: float = OUTLIER_SPREADS,
                   acceptance: np.ndarray | None = None) -> dict[int, str]:
    """Chains (among ``alive``, at least three) whose median gap is more than ``spreads``
    robust within-chain spreads from the median over the chains, with the reason: stuck, where
    a Metropolis chain's mean ``acceptance`` (per chain) is under ``MIN_ACCEPTANCE`` (it held one
    point at a step the others moved with: on [4,10,2,6,1,1,1] rank 0 one MALA chain of eight
    accepted none of 4,000 moves at nβ·ΔL 18.9, the others at 0.3–0.6), else left the basin. A
    Metropolis chain under ``MIN_ACCEPTANCE`` while the chains' median acceptance is at least
    ``MOVING_ACCEPTANCE`` is dropped as stuck wherever its gap lies: its draws repeat a few points,
    which count as many draws in λ̂ and in R-hat. On [10,3,8,9,5,12,8] rank 3 one HMC chain of eight
    accepted 0.2 % of its trajectories, holding nβ·ΔL 18.4 inside the others' spread, against their
    21.8–22.9 and the truth's 22.5, and took the run to R-hat 1.148."""
    chains = np.flatnonzero(alive)
    if len(chains) < 3:
        return {}
    medians = np.median(gaps[chains], axis=1)
    scale = float(np.median(1.4826 * np.median(np.abs(gaps[chains] - medians[:, None]), axis=1)))
    center = float(np.median(medians))
    if not scale > 0:
        return {}
    moving = acceptance is not None and float(np.median(acceptance[chains])) >= MOVING_ACCEPTANCE

    def stuck(chain: int) -> bool:
        return acceptance is not None and acceptance[chain] < MIN_ACCEPTANCE

    def why(chain: int, median: float) -> str:
        side = "more than" if abs(median - center) > spreads * scale else "within"
        where = (f"median nβ·ΔL {median:.4g} against {center:.4g} over the chains, {side} {spreads:g} within-chain "
                 f"spreads ({scale:.3g})")
        if stuck(chain):
            return f"stuck: it accepted {acceptance[chain]:.1%} of its Metropolis moves, at {where}"
        return f"left the basin: {where}"

    return {int(chain): why(chain, median) for chain, median in zip(chains, medians)
            if abs(median - center) > spreads * scale or (moving and stuck(chain))}


ROUNDING_SHARE_MAX = 0.01   # nβ·u·|L_n(w*)| as a share of λ̂ above which a rounding bias is possible


def rounding_concern(mean: float | None, nbeta: float, center_loss: float, dtype: str) -> str | None:
    """Whether the sampling precision can resolve the gaps λ̂ averages. A loss near L_n(w*) is
    held to u·|L_n(w*)| (u the unit roundoff, 2⁻²⁴ in float32), so each gap nβ·(L_n(w) − L_n(w*)),
    about λ̂ in size, and each Metropolis energy difference, is blurred by about r = nβ·u·|L_n(w*)|
    / λ̂ of λ̂. Chosen on linear regression (d = 10 and 24, 8 seeds each): float32 read 3.0 % low
    at r = 3.4 % (5 SE), and within 0.1 % at r = 2.1 % and 0.34 %; float64 was unbiased at each.
    Confirmed on a random draw of deep linear networks (random_dln_cases(6, 77), 6 seeds, against
    float64): [3,6,6,6,6,3] rank 3 −4.5 % at r = 5.6 % and [2,2,9,5] rank 2 −2.8 % at 8.5 %, both
    warned; [2,2,9,5] −0.4 ± 0.5 % at r = 0.85 %, not warned."""
    if mean is None or not mean or dtype != "float32":   # float64's 2⁻⁵³ is 5·10⁸ times finer
        return None
    unit = 2.0 ** -24
    share = nbeta * unit * abs(center_loss) / abs(mean)
    if share <= ROUNDING_SHARE_MAX:
        return None
    return (f"{dtype} holds L_n near w* = {center_loss:.4g} only to {unit * abs(center_loss):.2g}, which nβ = "
            f"{nbeta:.4g} turns into {share:.1%} of λ̂ per draw and per Metropolis decision: λ̂ may carry a rounding "
            f"bias of up to about that much (dtype='float64', --dtype float64, resolves it)")


def default_nbeta(n: int) -> float:
    """nβ = n/log n, i.e. β* = 1/log n (Watanabe 2013, WBIC), with n the data set size."""
    if n < 2:
        raise ValueError(f"the default nβ = n/log n needs n ≥ 2, got {n}")
    return n / math.log(n)


def llc_from_trace(trace: Trace, nbeta: float) -> LLCEstimate:
    """λ̂ with its Monte Carlo standard error, per-chain values, R-hat and ESS."""
    with np.errstate(over="ignore", invalid="ignore"):   # a diverged chain's gaps are not finite; it is dropped
        gaps = nbeta * (trace.fields["loss"] - trace.fields["center_loss"])
    reasons = {int(c): f"diverged at step {int(trace.divergence_step[c])} (not finite, or beyond the localising "
                       "prior's reach)" for c in np.flatnonzero(trace.diverged)}
    acceptance = trace.fields["acceptance"].mean(-1) if "acceptance" in trace.fields else None
    distance = trace.fields.get("distance")
    away = None if distance is None else (distance > 0).any(-1)
    moved = away if distance is None or distance.shape[1] < 2 else np.ptp(distance, -1) > 0   # over the draws
    return llc_from_gaps(gaps, nbeta, reasons, acceptance, moved, trace.cooled, away)


def llc_from_gaps(gaps: np.ndarray, nbeta: float, diverged: dict[int, str] | None = None,
                  acceptance: np.ndarray | None = None, moved: np.ndarray | None = None,
                  cooled: np.ndarray | None = None, away: np.ndarray | None = None) -> LLCEstimate:
    """λ̂ from a (chain, draw) array of nβ·(L_n(w) − L_n(w*)), any sampler's: chains named in
    ``diverged`` (index → reason), chains with a gap that is not finite, and chains that left the
    basin (:func:`basin_outliers`, with each chain's mean Metropolis ``acceptance`` where there is
    one) are dropped. Where no draw
    differs from another (of at least two) although every kept chain ``moved`` from w* (per chain), the loss does
    not change with the sampled parameters near w* by more than its precision, and λ̂ = 0
    (``flat``): a restriction to a layer whose frozen neighbours' product vanishes has λ = 0
    (:mod:`sltlab.theory.restricted`), which chains read as a constant gap, the rounding between
    L_n(w*) and the draws' losses. Where no kept chain moved from w* at all (a Metropolis step so
    large that every move was rejected, or an unadjusted step below the rounding of w*), every
    chain is dropped, so there is no estimate rather than a λ̂ of 0 read at w* itself; so too where
    the kept chains stood ``away`` from w* (per chain) but none moved over its draws (steps below the
    rounding of coordinates far larger than the posterior's width; no run has yet met it: on [3,2,3]
    learning a singular value of 10⁴ in float32, where MALA's tuned step was 7·10⁻¹³ against
    coordinates near 100, the chains still moved by a unit in the last place, and the loss's own
    rounding is what :mod:`sltlab.estimators.rounding` finds there). Where only some
    chains were ``cooled`` from a hotter start ([C] bool), the two sides are compared
    (:func:`sides_z`)."""
    reasons = dict(diverged or {})
    finite = np.isfinite(gaps)
    reasons.update({int(c): f"diverged: its gap is not finite at draw {int(np.flatnonzero(~finite[c])[0])}"
                    for c in np.flatnonzero(~finite.all(-1)) if int(c) not in reasons})
    reasons.update(basin_outliers(gaps, ~np.isin(np.arange(len(gaps)), list(reasons)), acceptance=acceptance))
    alive = np.ones(len(gaps), dtype=bool)
    alive[list(reasons)] = False
    if moved is not None and alive.any() and not moved[alive].any():   # no estimate: not a draw away from w*
        for chain in np.flatnonzero(alive):   # accepted moves that left it unchanged are below its rounding
            expected = None if acceptance is None else acceptance[chain] * gaps.shape[1]   # moves accepted, expected
            left = away is not None and bool(away[chain])
            why = f"its steps are below the rounding of {'its coordinates' if left else 'w*'}"
            if expected is not None and expected < 1:
                why = "every move it proposed was rejected"
                why += f" (mean acceptance {acceptance[chain]:.1g})" if expected else ""
            reasons[int(chain)] = (f"never moved over its draws, away from w*: {why}" if left
                                   else f"never left w*: {why}")
        alive[:] = False
    per_chain = [float(row.mean()) if ok else None for row, ok in zip(gaps, alive)]
    dropped, reasons = sorted(reasons), dict(sorted(reasons.items()))
    if not alive.any():
        return LLCEstimate(None, None, per_chain, None, None, dropped, nbeta, reasons)
    kept = gaps[alive]
    if kept.size > 1 and not np.ptp(kept) > 0 and moved is not None and moved[alive].all():   # one draw: no test
        return LLCEstimate(0.0, 0.0, [0.0 if ok else None for ok in alive], None, None, dropped, nbeta, reasons,
                           flat=True)
    if not np.ptp(kept) > 0:   # no draw differs from another: chains that never moved have no error bar or ESS
        return LLCEstimate(float(kept.mean()), None, per_chain, None, None, dropped, nbeta, reasons)
    standard_error = mcse(kept)
    return LLCEstimate(float(kept.mean()), standard_error, per_chain, _rhat(kept), _ess(kept, standard_error),
                       dropped, nbeta, reasons, drift_z(kept),
                       sides=None if cooled is None else sides_z(kept, cooled[alive]))


def drift_z(values: np.ndarray) -> float | None:
    """z = (m₄ − m₁)/√(se₁² + se₄²), with m₁, m₄ the means of the first and last quarter of the
    draws over all chains and se their Monte Carlo standard errors: a Geweke-style comparison
    (Geweke 1992, with the chains pooled) that sees what R-hat cannot — chains started at one
    point (w*) that are still moving together towards the typical set, whose per-chain means
    agree while all of them rise. On a deep rank-0 network at n = 10⁶ the default run read
    R-hat 1.027 and z = 4.3 with λ̂ 6 % below the exact value. None under 16 draws."""
    if values.shape[1] < 16:
        return None
    quarters = np.array_split(values, 4, axis=1)
    first, last = mcse(quarters[0]), mcse(quarters[-1])
    if first is None or last is None or not first + last > 0:
        return None
    return float((quarters[-1].mean() - quarters[0].mean()) / math.hypot(first, last))


def sides_z(values: np.ndarray, cooled: np.ndarray) -> float | None:
    """z = (m_c − m_w)/√(se_c² + se_w²), with m_c the mean of the chains ``cooled`` from a hotter
    start (a mask over the chains of ``values``) and m_w of those started at w*, se their Monte
    Carlo standard errors: the two sides of the overdispersed start of Gelman & Rubin (1992, §2)
    compared as designed. R-hat weighs every chain against every other, so a disagreement between
    two halves of the chains is diluted by the spread within each half: on [4,8,8,12,8,4] rank 0 (the
    one call's defaults, 8 × 8,000 MALA draws at n = 10⁴) the cooled chains read λ̂ = 7.00 ± 0.11 and
    those from w* 6.43 ± 0.08 against a finite-n truth of 7.167, z = +4.1, while R-hat read 1.034
    and the drift +1.4: λ̂ 6.3 % low with no warning. None unless both sides hold a chain, with
    at least 16 draws."""
    if values.shape[1] < 16 or cooled.all() or not cooled.any():
        return None
    above, below = values[cooled], values[~cooled]
    errors = mcse(above), mcse(below)
    if None in errors or not sum(errors) > 0:
        return None
    return float((above.mean() - below.mean()) / math.hypot(*errors))


def _finite_or_none(compute) -> float | None:
    """Run a diagnostic; a degenerate trace (e.g. constant) gives None, quietly."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(compute())
    return value if math.isfinite(value) else None


def block_length(draws: int) -> int:
    """Draws per block of the standard error: S/``BLOCKS_PER_CHAIN`` (1 under 100 draws)."""
    return max(1, draws // BLOCKS_PER_CHAIN)


def mcse(values: np.ndarray) -> float | None:
    """Monte Carlo standard error of the mean of a (chain, draw) array: the ESS-based standard
    error (Vehtari et al. 2021, eq. 10–11) of the means of consecutive blocks of
    :func:`block_length` draws. A minibatch trace is a slow signal under white noise many times
    its size, whose autocorrelations (about 0.03 out to lag 50) Geyer's truncation cuts off when
    it is read draw by draw; averaging blocks first lifts the signal out of the noise. On the
    middle layer of [10,10,10,10] rank 2 restricted (SGLD on batches of 100, 8 × 1,000 draws),
    16 seeds' λ̂ spread by 0.196: the per-draw SE read 0.151 in the median (1.30 times too small),
    blocks of 10 draws 0.237. The length was then chosen on a random draw of nine deep linear
    networks (``sltlab bench --only spread``, SGLD on batches of 100, 12 independent groups of
    8 chains × 1,000 draws each): the groups' λ̂ spread by 1.95 of their per-draw SE, 1.27 of
    the SE by blocks of S/100 up to 10, 1.17 by S/50 and 1.27 by S/20 (root mean square of z);
    on a second, independent draw 1.58, 1.14, 1.05 and 1.14."""
    if values.shape[1] < 4:
        return None
    return _finite_or_none(lambda: diagnostics.mcse_mean(diagnostics.block_means(values,
                                                                                 block_length(values.shape[1]))))


def _rhat(values: np.ndarray) -> float | None:
    """The larger of the rank-normalised split R-hat (Vehtari et al. 2021, eq. 4–5) of the draws
    and of the means of blocks of :func:`block_length` draws. White minibatch noise inflates the
    within-chain variance of the draws, so chains that disagree on a slow signal under it read
    near 1 draw by draw; averaging blocks takes the noise out and leaves the disagreement. On
    AR(1) signals of correlation 0.998 under five times their spread of noise (4 chains × 1,000
    draws, 20 seeds) draw by draw R-hat exceeded 1.05 once, the block R-hat 19 times; at
    correlation 0.9, and on white noise, neither did (``tests/estimators/test_sampling_and_llc.py``).
    On [5,20,10,20,4] rank 1 (SGLD on batches of 100 at the rule's step, 8 × 4,000 draws) the chains
    read λ̂ = 3.0 ± 0.5 against a finite-n truth of 8.75 ± 0.02 (blocked Gibbs at the same centre
    and γ), with R-hat 1.045 draw by draw, ESS 222 and a drift of 3.4 SE, all inside the gate: the
    block R-hat read 1.54."""
    if values.shape[0] < 2 or values.shape[1] < 4:
        return None
    draws = _finite_or_none(lambda: diagnostics.rhat(values))
    length = block_length(values.shape[1])
    if draws is None or length == 1:
        return draws
    blocks = _finite_or_none(lambda: diagnostics.rhat(diagnostics.block_means(values, length)))
    return draws if blocks is None else max(draws, blocks)


def _ess(values: np.ndarray, standard_error: float | None) -> float | None:
    """The smaller of the bulk ESS (Vehtari et al. 2021, §4.3) and the ESS of the mean that the
    block standard error implies, σ²/SE² (σ² the draws' variance; :func:`mcse`). Counted draw by
    draw, the bulk ESS of a minibatch trace misses the slow signal under its noise as the
    per-draw SE does, and reads high: on the middle layer of [10,10,10,10] rank 2 restricted
    (SGLD on batches of 100, 8 × 2,000 draws) 5,439 against σ²/SE² = 1,023. On a trace without
    that noise the two agree (MALA on a trained MLP, 8 × 4,000 draws: 563 and 586), so the gate
    reads the one that is lower."""
    if values.shape[1] < 4:
        return None
    bulk = _finite_or_none(lambda: diagnostics.bulk_ess(values))
    if bulk is None or standard_error is None or not standard_error > 0:
        return bulk
    return min(bulk, float(values.var(ddof=1)) / standard_error ** 2)
