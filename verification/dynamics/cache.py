"""On-disk cache of training checkpoints and study results, keyed by the configuration that
produced them, so that re-running a study with the same settings (to re-plot, say) neither
retrains nor resamples, and any change of setting computes afresh."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import torch


def config_key(config: dict[str, Any]) -> str:
    """A short hash of a JSON-ready configuration (key order does not matter)."""
    text = json.dumps(config, sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_tensors(directory: Path, name: str, config: dict[str, Any],
                   compute: Callable[[], dict[str, torch.Tensor]]) -> tuple[dict[str, torch.Tensor], bool]:
    """``compute()`` once per ``config``: later calls load ``directory/name-KEY.pt``.

    Returns
    -------
    tensors : dict of str to Tensor
    loaded : bool
        True when the tensors came from the cache.
    """
    path = Path(directory) / f"{name}-{config_key(config)}.pt"
    if path.exists():
        return torch.load(path, weights_only=True), True
    tensors = compute()
    _write_atomically(path, lambda partial: torch.save(tensors, partial))
    return tensors, False


def cached_json(directory: Path, name: str, config: dict[str, Any],
                compute: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """Like :func:`cached_tensors` for a JSON-ready result, stored as ``name-KEY.json``."""
    path = Path(directory) / f"{name}-{config_key(config)}.json"
    if path.exists():
        return json.loads(path.read_text()), True
    result = compute()
    text = json.dumps(result, allow_nan=False, indent=1)
    _write_atomically(path, lambda partial: partial.write_text(text))
    return result, False


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write to a sibling file and rename it, so an interrupted run leaves no torn cache entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    write(partial)
    partial.replace(path)
