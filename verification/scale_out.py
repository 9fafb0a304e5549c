"""Run one function over many items, in this process or on a Dask cluster: the verification
suites' cases and the grid benchmark's networks are independent, so each is one task.

``dask`` is None (here, in order), ``"local"`` (a LocalCluster of one single-threaded worker
per core, at most one per item) or a scheduler address (``tcp://host:8786``). Results come back
as they finish."""

from __future__ import annotations

import importlib.util
import os
import socket
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import urlsplit

REACH_SECONDS = 5.0   # how long a scheduler's address is given to answer before anything runs


def check_dask(dask: str | None, *, reach: bool = True) -> None:
    """One-line errors for a Dask address that cannot work, before anything runs; with ``reach``,
    also for a scheduler that does not answer (one probe per command: the callers that pass work on
    to another that checks leave it out)."""
    if dask is None:
        return
    if dask != "local" and "://" not in dask:
        raise ValueError(f"--dask takes 'local' or a scheduler address such as tcp://host:8786, got {dask!r}")
    if importlib.util.find_spec("distributed") is None:
        raise ValueError("--dask needs Dask's distributed package: pip install 'sltlab[dask]'")
    if reach and dask != "local":
        _check_reachable(dask)


def _check_reachable(address: str) -> None:
    """A one-line error where a ``tcp://`` scheduler's host and port do not answer within
    ``REACH_SECONDS`` (Dask's own client would wait 30 s, after the output folder was made); other
    schemes are left to Dask."""
    parts = urlsplit(address)
    if parts.scheme != "tcp":
        return
    try:
        host, port = parts.hostname, parts.port or 8786
    except ValueError:
        raise ValueError(f"--dask {address}: the port must be a number from 0 to 65535") from None
    if not host:
        raise ValueError(f"--dask {address} names no host (e.g. tcp://host:8786)")
    try:
        socket.create_connection((host, port), timeout=REACH_SECONDS).close()
    except OSError as error:
        why = error.strerror or str(error) or type(error).__name__
        raise ValueError(f"cannot reach the Dask scheduler at {address}: {why}") from None


def run_each(function: Callable[..., Any], items: Iterable[Any], dask: str | None, **keywords) -> Iterator[Any]:
    """``function(item, **keywords)`` for every item, where ``dask`` says (module docstring)."""
    items = list(items)
    check_dask(dask, reach=False)
    if dask is None:
        for item in items:
            yield function(item, **keywords)
        return
    from distributed import Client, LocalCluster, as_completed

    cluster = LocalCluster(n_workers=min(len(items), os.cpu_count() or 1) or 1, threads_per_worker=1,
                           dashboard_address=None) if dask == "local" else None
    try:
        with Client(cluster if cluster is not None else dask) as client:
            for future in as_completed([client.submit(function, item, pure=False, **keywords) for item in items]):
                yield future.result()
    finally:
        if cluster is not None:
            cluster.close()
