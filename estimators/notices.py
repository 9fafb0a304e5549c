"""Warnings an estimate raises about its own result, all subclasses of :class:`EstimateWarning`
so that a caller can filter them together. Each is also listed in ``LLCResult.warnings``, and
is attributed to the caller's own line (:func:`caller_stacklevel`). :class:`LongRunWarning`,
about the time a run will take rather than its result, is attributed so too, but is no
``EstimateWarning`` and is not listed in the result; when it is said is :func:`long_run_left`'s."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any, Callable, Sequence

# A quiet run (L-BFGS's localisation, a sampling run without a progress bar) projected from the pace
# of its first PROJECT_AFTER_SECONDS to take more than LONG_RUN_SECONDS says so once
PROJECT_AFTER_SECONDS, LONG_RUN_SECONDS = 10.0, 600.0

# sltlab's own modules: the folders installed as sltlab.estimators, .models, .theory, .verification
_OWN_FOLDERS = tuple(os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), name) + os.sep
                     for name in ("estimators", "models", "theory", "verification"))


def caller_stacklevel() -> int:
    """The ``stacklevel`` that a ``warnings.warn`` in the function calling this needs to point
    at the frame that called sltlab from outside: the user's line, however many of sltlab's calls
    lie between (``estimate_llc`` reaches the warning through four), and whatever library sltlab
    itself called on the way (scipy's optimiser, which calls back into sltlab's loss)."""
    level, frame, outermost = 1, sys._getframe(1), 1
    while frame is not None:
        if os.path.realpath(frame.f_code.co_filename).startswith(_OWN_FOLDERS):
            outermost = level
        frame, level = frame.f_back, level + 1
    return outermost + 1


def long_run_left(elapsed: float, done: int, total: int) -> float | None:
    """The seconds the ``total - done`` units left of a run (steps, passes over the data) would
    take at the pace of the ``done`` that took ``elapsed``, when that is more than
    ``LONG_RUN_SECONDS``; None otherwise."""
    left = elapsed / done * max(total - done, 0)
    return left if left > LONG_RUN_SECONDS else None


class EstimateWarning(UserWarning):
    """Something the caller must know to trust an estimate."""


class DivergenceWarning(EstimateWarning):
    """Chains were dropped from an estimate: they diverged, left the basin of w*, or held one
    point while the others moved (:func:`~sltlab.estimators.llc.basin_outliers`)."""


class LocalizationWarning(EstimateWarning):
    """The centre w* is not the point the caller gave, or not a critical point: the optimiser
    stopped before its tolerance, or moved far enough to measure another point; or λ̂ is
    negative, which a local minimum cannot give; or λ̂ depends on γ, the localisation holding
    the chains where the loss does not (:mod:`sltlab.estimators.elasticity`)."""


class StepSizeWarning(EstimateWarning):
    """An unadjusted Langevin step was too large for the curvature where the chains ended:
    the estimate carries a discretisation bias, usually upwards."""


class MixingWarning(EstimateWarning):
    """The chains fail the mixing gate (:func:`~sltlab.estimators.gate.mixing_concern`: R-hat, ESS,
    drift, the two sides of the start, λ̂ against zero): they do not yet agree with one another, are
    still moving, or are worth too few independent draws, for λ̂ ± SE to be trusted."""


class BurnInWarning(EstimateWarning):
    """The chains, all started at w*, have not yet spread as far as the posterior reaches along
    some directions: λ̂ understates, by a lag every chain shares, so R-hat does not see it."""


class PrecisionWarning(EstimateWarning):
    """The sampling precision resolves L_n near w* too coarsely for the gaps nβ·(L_n(w) − L_n(w*))
    that λ̂ averages: the estimate may carry a rounding bias."""


class LongRunWarning(UserWarning):
    """A run without a progress bar will take long (more than ten minutes at the pace of its first
    seconds): said once, with the remedies, so that a quiet call does not seem to hang."""


def named_warnings(label: Callable[[int], str], compute: Callable[[], Sequence[Any]]) -> Sequence[Any]:
    """The results of ``compute`` (several estimates, each with its ``warnings``), the warnings their
    estimates raise held back and raised again at the caller's line, each led by the ``label`` of
    the index of the result that holds it (a checkpoint's, a restriction's), so that one can tell
    which estimate a warning is about."""
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        results = compute()
    unclaimed = [list(result.warnings) for result in results]
    for notice in raised:
        message = str(notice.message)
        owner = next((index for index, messages in enumerate(unclaimed) if message in messages), None)
        if owner is not None:
            unclaimed[owner].remove(message)
            message = f"{label(owner)}: {message}"
        warnings.warn(message, notice.category, stacklevel=caller_stacklevel())
    return results
