"""Memory the operating system still lets this process allocate (Linux): the least of the
machine's ``MemAvailable`` and the headroom under every memory limit of the process's control
groups, cgroup v2 or v1, as a container or a batch scheduler sets them. Without the second, a
job in a container limited to a few GiB on a large machine passes a memory check it cannot
meet and is killed by the kernel (exit 137)."""

from __future__ import annotations

from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
MEMBERSHIP = Path("/proc/self/cgroup")
MEMINFO = Path("/proc/meminfo")
UNLIMITED = 2 ** 62   # v1 writes "no limit" as 2⁶³ − 1 rounded down to a page; v2 writes "max"
# (limit, usage, reclaimable page cache in memory.stat) file names in the two versions
V2_FILES = ("memory.max", "memory.current", "inactive_file")
V1_FILES = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")


def host_available_memory(meminfo: Path = MEMINFO, root: Path = CGROUP_ROOT,
                          membership: Path = MEMBERSHIP) -> int | None:
    """Bytes free for new tensors on the host: ``MemAvailable``, lowered to the cgroups' headroom
    (:func:`cgroup_headroom`) where that is smaller; None where neither can be read."""
    readings = [reading for reading in (meminfo_available(meminfo), cgroup_headroom(root, membership))
                if reading is not None]
    return min(readings, default=None)


def meminfo_available(meminfo: Path = MEMINFO) -> int | None:
    """The kernel's estimate of memory available without swapping, in bytes; None if unreadable."""
    try:
        fields = dict(line.split(":", 1) for line in meminfo.read_text().splitlines() if ":" in line)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError, IndexError):
        return None


def cgroup_headroom(root: Path = CGROUP_ROOT, membership: Path = MEMBERSHIP) -> int | None:
    """The least, over the process's memory cgroup and each of its ancestors that sets a limit, of
    limit − usage + inactive page cache (which the kernel reclaims before it refuses memory);
    None where no limit is set or none can be read. Paths in ``membership`` that do not exist
    under ``root`` (a container that sees its own cgroup as the root) are read from the root."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return None
    headrooms = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            base, files = root, V2_FILES
        elif "memory" in controllers.split(","):
            base, files = root / "memory", V1_FILES
        else:
            continue
        leaf = base / path.strip().lstrip("/")
        for level in _levels(leaf if leaf.is_dir() else base, base):
            headroom = _headroom(level, files)
            if headroom is not None:
                headrooms.append(headroom)
    return min(headrooms, default=None)


def _levels(leaf: Path, base: Path) -> list[Path]:
    """``leaf`` and its ancestors up to and including ``base``."""
    levels = [leaf]
    while levels[-1] != base and base in levels[-1].parents:
        levels.append(levels[-1].parent)
    return levels


def _headroom(level: Path, files: tuple[str, str, str]) -> int | None:
    limit_file, usage_file, cache_field = files
    try:
        limit_text = (level / limit_file).read_text().strip()
        if limit_text == "max" or int(limit_text) >= UNLIMITED:
            return None
        usage = int((level / usage_file).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        stat = dict(line.split() for line in (level / "memory.stat").read_text().splitlines() if len(line.split()) == 2)
        reclaimable = int(stat.get(cache_field, 0))
    except (OSError, ValueError):
        reclaimable = 0
    return max(int(limit_text) - usage + reclaimable, 0)
