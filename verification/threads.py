"""How many CPU threads torch uses: chosen by every ``sltlab`` command, never inherited; and
freed memory kept for the next step instead of handed back to the system.

torch starts with one thread per core. On a 2-core machine shared with other jobs, two torch
threads made one sampler step 10–30× slower than one thread on deep linear networks of
d = 300 and d = 10⁴ (8 chains, ``sltlab bench --only overhead`` at one and two threads), and
the dynamics studies measured up to 50× on one estimate: the threads wait on each other for
cores the machine does not have free. sltlab's hot loops are many small operations, so one
thread is the default; ``--threads N`` gives more to a large model on an idle machine.

glibc serves every allocation above its mmap threshold (128 KiB at first) with fresh pages and
returns them when the block is freed, so each step of a large model page-faults its
temporaries in again: at d = 10⁶ with 8 chains a tensor as large as the chains cost 4.3 ms to
add into a new tensor against 1.4 ms in place. :func:`keep_freed_memory` raises the threshold to
glibc's largest (32 MiB) and keeps up to 256 MiB of freed memory for reuse.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from contextlib import contextmanager
from typing import Iterator

DEFAULT_THREADS = 1
MMAP_THRESHOLD_BYTES = 32 * 1024**2   # glibc's upper limit for M_MMAP_THRESHOLD on 64-bit systems
TRIM_THRESHOLD_BYTES = 256 * 1024**2   # above the few tensors as large as the chains that a step frees
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # mallopt's parameter numbers (malloc.h)


def threads_option() -> tuple[str, dict]:
    """The ``--threads`` option every command that runs torch declares."""
    return ("--threads", dict(type=int, default=DEFAULT_THREADS,
                              help="torch CPU threads; on a shared 2-core machine two threads were measured "
                                   "10–30× slower per sampler step than one on small models, and up to 50× on one "
                                   f"estimate (default: {DEFAULT_THREADS})"))


def use_threads(threads: int, *, at_most_cores: bool = True) -> int:
    """Set torch's CPU thread count to ``threads`` (at least 1 and, with ``at_most_cores``, at most
    the cores this process may run on: threads beyond them wait on each other, as above) and return
    it. A Dask worker is not held to its cores: the command that chose the count checked it where it
    runs, and a cluster's workers may have other machines' counts."""
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    cores = usable_cores()
    if at_most_cores and threads > cores:
        raise ValueError(f"--threads {threads} exceeds the {cores} core(s) this process may run on: threads beyond "
                         "the cores wait on each other (give at most the core count)")
    import torch

    torch.set_num_threads(threads)
    keep_freed_memory()
    return threads


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system says, else the count)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc to serve allocations up to 32 MiB from memory the process keeps, and to keep
    up to 256 MiB of freed memory (module docstring); False where the C library is not glibc.
    Asked once per process: later calls (every command's thread setting, the bench's statement)
    return the first answer."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD,
                                                                                     TRIM_THRESHOLD_BYTES))


@contextmanager
def threads_restored() -> Iterator[None]:
    """Torch's thread count after the block as it was before it, when torch was loaded by then:
    ``sltlab``'s ``main()`` called from Python leaves the caller's setting as it found it."""
    import sys

    torch = sys.modules.get("torch")
    earlier = None if torch is None else torch.get_num_threads()
    try:
        yield
    finally:
        if earlier is not None:
            torch.set_num_threads(earlier)


@contextmanager
def threads_set_to(threads: int) -> Iterator[int]:
    """:func:`use_threads` for the block, with the earlier thread count restored after it."""
    import torch  # noqa: F401  (loaded first, so that the earlier count is known)

    with threads_restored():
        yield use_threads(threads)
