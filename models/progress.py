"""Progress bars for long model work (training), quiet unless asked for."""

from __future__ import annotations


def progress_bar(total: int, description: str, *, enabled: bool, unit: str = "step", leave: bool = False):
    """A tqdm bar when ``enabled`` (a terminal, not ``--json``), else None."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit=unit, leave=leave)
