"""Hypothesis profiles: `ci` (derandomised, loaded when CI is set), `dev` (default), and
`thorough` (many more examples: HYPOTHESIS_PROFILE=thorough pytest)."""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=30, deadline=None)
settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` need CUDA; skip them where there is none."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One torch thread for every test, as every ``sltlab`` command defaults to, chosen rather than
    inherited from torch (one thread per core). On an idle 2-core machine it hardly matters
    (``tests/estimators`` 143 s against 148 s at two threads, back to back); beside one busy
    core, two threads wait on each other (``tests/verification/test_grid.py`` 37 s against 15 s at
    one thread). A test that needs another count sets it for itself. Restored afterwards."""
    from sltlab.verification.threads import threads_set_to

    with threads_set_to(1):
        yield
