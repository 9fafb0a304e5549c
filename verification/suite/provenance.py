"""Where and how a suite ran, for its report: the sltlab commit and version, torch's version
and threads, the machine, the date, and the wall time of each case and of all of them: what a
reader needs to reproduce a report, or to compare two."""

from __future__ import annotations

import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

SOURCE_ROOT = Path(__file__).resolve().parents[2]   # the repository, when sltlab runs from one


def provenance(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Facts about the run of ``lines`` (results.jsonl), JSON-ready."""
    import torch

    threads = sorted({line["torch_threads"] for line in lines if "torch_threads" in line})
    seconds = {line["id"]: line["seconds"] for line in lines if "seconds" in line}
    return {"git_commit": git_commit(), "sltlab_version": _version("sltlab"), "torch_version": torch.__version__,
            "python_version": platform.python_version(), "platform": platform.platform(),
            "machine": f"{platform.machine()}, {platform.node() or 'unnamed host'}",
            "torch_threads": threads or [torch.get_num_threads()],
            "report_date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "case_seconds": seconds, "total_seconds": sum(seconds.values())}


def git_commit() -> str:
    """The commit sltlab's source is checked out at (marked when it has uncommitted changes),
    or "unknown" when it does not run from a git repository of its own."""
    def git(*arguments: str) -> str:
        return subprocess.run(["git", "-C", str(SOURCE_ROOT), *arguments], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != SOURCE_ROOT:
            return "unknown"
        commit = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + (" (with uncommitted changes)" if changed else "")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def provenance_markdown(facts: dict[str, Any]) -> list[str]:
    """The provenance block of report.md."""
    return ["## Provenance", "",
            f"- sltlab commit: {facts['git_commit']}; sltlab {facts['sltlab_version']}, "
            f"torch {facts['torch_version']}, "
            f"Python {facts['python_version']}",
            f"- machine: {facts['machine']}; platform {facts['platform']}; torch threads "
            f"{', '.join(map(str, facts['torch_threads']))}",
            f"- report written {facts['report_date']}",
            f"- wall time: {facts['total_seconds']:.0f} s for {len(facts['case_seconds'])} cases (sum of each case's "
            "calibration and sampling time; per case in column s)"]
