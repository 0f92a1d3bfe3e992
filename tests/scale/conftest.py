"""Fixtures of the scale-out tests: a real tracking server, started and always stopped here."""

from __future__ import annotations

import pytest

from helpers_scale import MlflowServer


@pytest.fixture
def server(tmp_path):
    """A default ``mlflow server`` on 127.0.0.1:<free port> (SQLite backend, artifacts in
    tmp_path/server), stopped however the test ends."""
    srv = MlflowServer(tmp_path / "server", "--workers", "2")
    with srv:
        yield srv
