"""Fixtures of the scale-out tests: a real tracking server, started and always stopped here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers_scale import MlflowServer


@pytest.fixture
def server_db(tmp_path, template_db) -> Path:
    (tmp_path / "server").mkdir()
    return Path(shutil.copy(template_db, tmp_path / "server" / "server.db"))


@pytest.fixture
def server(tmp_path, server_db):
    """A ``mlflow server`` on 127.0.0.1:<free port> (2 uvicorn workers, SQLite backend,
    artifacts in tmp_path/server), stopped however the test ends."""
    with MlflowServer(tmp_path / "server", "--workers", "2", db=server_db) as srv:
        yield srv
