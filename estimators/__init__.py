"""Sampling estimators of the local learning coefficient (LLC): SG-MCMC kernels over batched
chains, HMC and replica exchange over a ladder of nβ, the driver that records (chain, draw)
traces, the LLC with its diagnostics, runs of several settings (centres, nβ, steps, losses) as
one batch, automatic step-size calibration (SGLD's pilots in coupled pairs), the temperature
ladder for λ and m, the singular fluctuation, and the developmental stages of an LLC curve
along training.

The public API is listed in ``__all__`` and imported on first use (PEP 562), so that
``sltlab.estimators.config`` can be read without loading torch::

    from sltlab.estimators import estimate_llc              # an nn.Module and its data
    from sltlab.estimators import LLCConfig, estimate_llc_from_loss   # a batched loss
"""

from importlib import import_module

_PUBLIC = {
    "config": ("LLCConfig", "SAMPLER_NAMES", "LOCALIZATIONS"),
    "estimate": ("estimate_llc_from_loss",),
    "result": ("LLCResult",),
    "module": ("estimate_llc",),
    "along": ("LLCAlongTraining", "estimate_llc_along"),
    "batched": ("estimate_llc_at_centers",),
    "problems": ("estimate_llc_of_problems",),
    "functional": ("FunctionalModel",),
    "sample_losses": ("binary_cross_entropy", "cross_entropy", "gaussian_nll"),
    "inference": ("to_inference_data",),
    "calibrate": ("Calibration", "CalibrationError", "calibrate_step_size", "calibrated_config"),
    "pilots": ("SweepPoint",),
    "coupled": ("coupled_sgld", "run_coupled_pilots"),
    "ladder": ("LadderEstimate", "estimate_llc_at_temperatures", "estimate_over_temperatures"),
    "llc": ("LLCEstimate", "default_nbeta", "llc_from_trace", "llc_from_gaps"),
    "extrapolate": ("Extrapolation", "extrapolate_llc"),
    "stages": ("EdgeMove", "StageBoundary", "StageDetection", "detect_stages"),
    "localize": ("Localization", "at_true_parameter", "empirical_minimum"),
    "multiplicity": ("MultiplicityFit", "fit_multiplicity", "temperature_ladder"),
    "posterior": ("LocalPosterior", "Sampler", "common_noise"),
    "sampling": ("Batches", "Trace", "run_chains"),
    "samplers": ("SAMPLERS",),
    "sgld": ("sgld",),
    "rmsprop_sgld": ("rmsprop_sgld",),
    "sgnht": ("sgnht",),
    "mala": ("mala",),
    "hmc": ("HMCState", "hmc"),
    "exchange": ("ExchangeTrace", "run_replica_exchange", "swap_rungs"),
    "step_size": ("default_step_size", "top_hessian_eigenvalue"),
    "thermodynamics": ("ChainMean", "singular_fluctuation"),
    "device": ("resolve_device",),
    "notices": ("EstimateWarning", "DivergenceWarning", "LocalizationWarning", "StepSizeWarning", "MixingWarning",
                "BurnInWarning", "PrecisionWarning", "LongRunWarning"),
}
_HOME = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
