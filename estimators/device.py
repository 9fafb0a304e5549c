"""Where an estimate runs: ``auto`` is CUDA when present, else the CPU."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """The device for ``name`` (auto, cpu, cuda or cuda:k); a one-line ``ValueError`` otherwise."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device cuda (--device cuda) asked for, but no CUDA device is available")
    return torch.device(name)
