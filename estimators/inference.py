"""An estimate's trace as ArviZ data, for the ArviZ diagnostics and plots.

ArviZ ≥ 1.0 splits into ``arviz-base`` (the data structures, on xarray), ``arviz-stats`` and
``arviz-plots``. Only ``arviz-base`` is needed here, and it is imported when asked for, so that
sltlab does not depend on xarray (its own R-hat, ESS and MCSE are :mod:`sltlab.estimators.diagnostics`).
"""

from __future__ import annotations

import numpy as np


def kept_chains(result) -> np.ndarray:
    """The indices of the chains λ̂ was computed from: all but those ``result.diverged`` names."""
    return np.setdiff1d(np.arange(result.trace.fields["loss"].shape[0]), result.diverged)


def trace_draws(result) -> dict[str, np.ndarray]:
    """The (chain, draw) arrays of an :class:`~sltlab.estimators.result.LLCResult` over the chains
    λ̂ was computed from (:func:`kept_chains`): ``llc``, the per-draw nβ·(L(w) − L(w*)) whose mean
    is λ̂ (Lau et al. 2023, Def. 3.1), ``loss`` (L(w) at each draw), ``center_loss`` (L(w*) on the
    same batch) and, where recorded, ``distance`` (‖w − w*‖ at each draw). The chains dropped from
    λ̂ (``result.diverged``: diverged, their draws NaN from there on, left the basin, or stuck) are left
    out, so that diagnostics computed from these arrays are those of the result; ``result.trace``
    keeps every chain."""
    fields, kept = result.trace.fields, kept_chains(result)
    loss, center_loss = fields["loss"][kept], fields["center_loss"][kept]
    draws = {"llc": result.config.nbeta * (loss - center_loss), "loss": loss, "center_loss": center_loss}
    return draws if "distance" not in fields else {**draws, "distance": fields["distance"][kept]}


def to_inference_data(result):
    """``llc``, ``loss``, ``center_loss`` and ``distance`` as posterior variables with dims (chain, draw), in an
    ``arviz_base`` DataTree (``arviz_base.from_dict``), over the chains λ̂ was computed from
    (:func:`trace_draws`; the chain coordinate keeps their indices in the run); the resolved
    settings, n, nβ and the chains dropped are the posterior group's attributes. Needs ``pip
    install arviz-base``. A one-line ``ValueError`` when every chain was dropped, or for anything
    but one estimate's result."""
    if not all(hasattr(result, field) for field in ("trace", "estimate", "config")):
        along = hasattr(result, "results")
        raise ValueError(f"to_inference_data takes one estimate's result (an LLCResult), got {type(result).__name__}"
                         + ("; an along-training result holds one per checkpoint: result.results[k]" if along else ""))
    kept = kept_chains(result)
    if not len(kept):
        raise ValueError("every chain was dropped from λ̂ (result.diverged), so there are no draws of the estimate to "
                         "export; result.trace holds them as they were")
    try:
        from arviz_base import from_dict
    except ImportError:
        raise ImportError("to_inference_data needs ArviZ's data structures: pip install arviz-base") from None
    attrs = {"nbeta": result.config.nbeta, "n": result.n, "sampler": result.config.sampler,
             "step_size": result.config.step_size, "localization": result.config.localization,
             "diverged_chains": list(result.diverged), "loss_reference": result.loss_reference}
    return from_dict({"posterior": trace_draws(result)}, coords={"chain": kept},
                     attrs={"posterior": {key: value for key, value in attrs.items() if value is not None}})
