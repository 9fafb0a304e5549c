"""Warnings an estimate raises about its own result, all subclasses of :class:`EstimateWarning`
so that a caller can filter them together. Each is also listed in ``LLCResult.warnings``."""


class EstimateWarning(UserWarning):
    """Something the caller must know to trust an estimate."""


class DivergenceWarning(EstimateWarning):
    """Chains were dropped from an estimate: they diverged or left the basin of w*."""


class LocalizationWarning(EstimateWarning):
    """The centre w* is not the point the caller gave, or not a critical point: the optimiser
    stopped before its tolerance, or moved far enough to measure another point."""


class StepSizeWarning(EstimateWarning):
    """An unadjusted Langevin step was too large for the curvature where the chains ended:
    the estimate carries a discretisation bias, usually upwards."""


class MixingWarning(EstimateWarning):
    """The chains fail the mixing gate (R-hat above 1.05 or bulk ESS under 200): they do not yet
    agree with one another, or are worth too few independent draws, for λ̂ ± SE to be trusted."""
