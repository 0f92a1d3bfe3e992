"""Fixtures for the engine tests (ffexp.nn)."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    """The engine's matrices here are tiny: a multi-threaded BLAS only adds overhead (10× on a
    busy 2-core machine), so the engine tests run single-threaded."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
