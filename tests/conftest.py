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
    """One torch thread for every test, as every ``sltlab`` command defaults to: the tests' models
    are small, and torch's default of one thread per core ran ``tests/estimators`` in 180 s
    against 133 s at one thread on an idle 2-core machine (and many times slower beside another
    job). A test that needs another count sets it for itself. Restored afterwards."""
    from sltlab.verification.threads import threads_set_to

    with threads_set_to(1):
        yield
