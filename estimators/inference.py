"""An estimate's trace as ArviZ data, for the ArviZ diagnostics and plots.

ArviZ ≥ 1.0 splits into ``arviz-base`` (the data structures, on xarray), ``arviz-stats`` and
``arviz-plots``. Only ``arviz-base`` is needed here, and it is imported when asked for, so that
sltlab does not depend on xarray (its own R-hat, ESS and MCSE are :mod:`sltlab.estimators.diagnostics`).
"""

from __future__ import annotations

import numpy as np


def trace_draws(result) -> dict[str, np.ndarray]:
    """The (chain, draw) arrays of an :class:`~sltlab.estimators.result.LLCResult`: ``llc``,
    the per-draw nβ·(L(w) − L(w*)) whose mean over the kept chains is λ̂ (Lau et al. 2023,
    Def. 3.1), ``loss`` (L(w) at each draw), ``center_loss`` (L(w*) on the same batch) and, where
    recorded, ``distance`` (‖w − w*‖ at each draw). Chains dropped from λ̂ are kept here;
    ``result.diverged`` names them."""
    fields = result.trace.fields
    loss, center_loss = fields["loss"], fields["center_loss"]
    draws = {"llc": result.config.nbeta * (loss - center_loss), "loss": loss, "center_loss": center_loss}
    return draws if "distance" not in fields else {**draws, "distance": fields["distance"]}


def to_inference_data(result):
    """``llc``, ``loss``, ``center_loss`` and ``distance`` as posterior variables with dims (chain, draw), in an
    ``arviz_base`` DataTree (``arviz_base.from_dict``); the resolved settings, n and nβ are the
    posterior group's attributes. Needs ``pip install arviz-base``."""
    try:
        from arviz_base import from_dict
    except ImportError:
        raise ImportError("to_inference_data needs ArviZ's data structures: pip install arviz-base") from None
    attrs = {"nbeta": result.config.nbeta, "n": result.n, "sampler": result.config.sampler,
             "step_size": result.config.step_size, "localization": result.config.localization,
             "diverged_chains": list(result.diverged), "loss_reference": result.loss_reference}
    return from_dict({"posterior": trace_draws(result)},
                     attrs={"posterior": {key: value for key, value in attrs.items() if value is not None}})
