"""Fixtures of the scale-out tests: a real tracking server, started and always stopped here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from helpers_scale import SERVER_OPTS, MlflowServer, Postgres, ensure_postgres

SLURM_LOCAL = Path(__file__).resolve().parents[2] / "scripts" / "slurm-local"


@pytest.fixture
def server_db(tmp_path, template_db) -> Path:
    (tmp_path / "server").mkdir()
    return Path(shutil.copy(template_db, tmp_path / "server" / "server.db"))


@pytest.fixture
def server(tmp_path, server_db):
    """A ``mlflow server`` on 127.0.0.1:<free port> (1 uvicorn worker, SQLite backend,
    artifacts in tmp_path/server), stopped however the test ends."""
    with MlflowServer(tmp_path / "server", *SERVER_OPTS, db=server_db) as srv:
        yield srv


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL 15 cluster (Debian's postgresql-15 installed when missing)."""
    pytest.importorskip("psycopg", reason="the ffexp[postgres] extra")
    why = ensure_postgres()
    if why:
        pytest.skip(f"no PostgreSQL 15: {why}")
    with Postgres() as pg:
        yield pg


def _up() -> bool:
    return subprocess.run([str(SLURM_LOCAL), "status"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def cluster():
    """The local cluster (started and stopped here, unless it was running before)."""
    started = False
    if not _up():
        if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
            pytest.skip("no SLURM and no apt-get to install it")
        subprocess.run([str(SLURM_LOCAL), "start"], check=True, timeout=900)
        started = True
    yield
    if started:
        subprocess.run([str(SLURM_LOCAL), "stop"], check=True, timeout=120)
