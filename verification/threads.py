"""How many CPU threads torch uses: chosen by every ``sltlab`` command, never inherited.

torch starts with one thread per core. On a 2-core machine shared with other jobs, two torch
threads made one sampler step 10–30× slower than one thread on deep linear networks of
d = 300 and d = 10⁴ (8 chains, ``sltlab bench --only overhead`` at one and two threads), and
the dynamics studies measured up to 50× on one estimate: the threads wait on each other for
cores the machine does not have free. sltlab's hot loops are many small operations, so one
thread is the default; ``--threads N`` gives more to a large model on an idle machine.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

DEFAULT_THREADS = 1


def threads_option() -> tuple[str, dict]:
    """The ``--threads`` option every command that runs torch declares."""
    return ("--threads", dict(type=int, default=DEFAULT_THREADS,
                              help="torch CPU threads; on a shared 2-core machine two threads were measured "
                                   f"10–50× slower than one on small models (default: {DEFAULT_THREADS})"))


def use_threads(threads: int) -> int:
    """Set torch's CPU thread count to ``threads`` (at least 1) and return it."""
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    import torch

    torch.set_num_threads(threads)
    return threads


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
