"""Load: a sweep of 200 tiny jobs (1 or 3 epochs), two at a time, against the default SQLite
store, a tracking server on SQLite, a tracking server on PostgreSQL (the ffexp[postgres]
extra; a throwaway cluster) and, through SLURM (scripts/slurm-local's one node, two CPUs),
against a tracking server on SQLite; every child must exist with its full history.

    pytest -m slow -s tests/scale/test_stress.py            # prints jobs per minute
    FFEXP_STRESS_JOBS=40 pytest -m slow -s tests/scale/test_stress.py
"""

from __future__ import annotations

import os

import pytest

from helpers_scale import (PG_BIN, SERVER_OPTS, MlflowServer, Postgres, check_sweep_store,
                           lock_retries, run_ffexp, sweep_args)

N_JOBS = int(os.environ.get("FFEXP_STRESS_JOBS", "200"))
WORKERS = 2


def _report(store: str, seconds: float) -> None:
    print(f"\nstress: {N_JOBS} jobs, 2 at a time, {store}: {seconds:.0f} s, "
          f"{N_JOBS / seconds * 60:.1f} jobs/min")


@pytest.mark.slow
def test_stress_default_sqlite_store(tmp_path):
    """The default store: no tracking.uri, no MLFLOW_TRACKING_URI: ./mlflow.db, created fresh."""
    proc, seconds = run_ffexp(tmp_path, sweep_args(N_JOBS, WORKERS), uri=None)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    check_sweep_store(uri, N_JOBS)
    assert "database is locked" not in proc.stdout
    _report(f"default SQLite store ({lock_retries(tmp_path, proc)} lock retries)", seconds)


@pytest.mark.slow
def test_stress_tracking_server(tmp_path, server_db):
    with MlflowServer(tmp_path / "server", *SERVER_OPTS, db=server_db) as server:
        proc, seconds = run_ffexp(tmp_path, sweep_args(N_JOBS, WORKERS), server.uri)
        check_sweep_store(server.uri, N_JOBS)
    _report(f"tracking server ({server.uri}, 1 uvicorn worker, SQLite backend)", seconds)


@pytest.mark.slow
@pytest.mark.skipif(not (PG_BIN / "initdb").exists(), reason="no PostgreSQL 15")
def test_stress_tracking_server_on_postgres(tmp_path):
    pytest.importorskip("psycopg", reason="the ffexp[postgres] extra")
    with Postgres() as pg, MlflowServer(tmp_path / "server", *SERVER_OPTS,
                                        backend=pg.uri) as server:
        proc, seconds = run_ffexp(tmp_path, sweep_args(N_JOBS, WORKERS), server.uri)
        check_sweep_store(server.uri, N_JOBS)
    _report(f"tracking server ({server.uri}, 1 uvicorn worker, PostgreSQL 15 backend)",
            seconds)


@pytest.mark.slow
def test_stress_slurm_against_a_tracking_server(tmp_path, server, cluster):
    args = [*sweep_args(N_JOBS, launcher="ffexp_slurm"), "hydra.launcher.timeout_min=30"]
    proc, seconds = run_ffexp(tmp_path, args, server.uri)
    check_sweep_store(server.uri, N_JOBS)
    _report(f"SLURM (1 node, 2 CPUs: 2 tasks at once), tracking server on SQLite", seconds)
