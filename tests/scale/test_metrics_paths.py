"""ffexp's Core path for metric values on the other stores: on PostgreSQL 15 (a throwaway
cluster) it writes what log_batch writes, read back through MlflowClient; against a tracking
server (a real ``mlflow server`` on 127.0.0.1) it is not taken, log_batch writes, and the job's
log says so. Slow."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ffexp._compat import mlflow_metrics
from ffexp.tracking.buffer import store_rows

from helpers_scale import PG_BIN, TINY, Postgres, run_ffexp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tracking"))
from helpers_metrics import (CASES, expected_latest, log_batch, new_run,  # noqa: E402
                             random_batches, read_back, table_rows, unsigned_zero)

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not (PG_BIN / "initdb").exists(), reason="no PostgreSQL 15")
def test_on_postgresql_core_writes_what_log_batch_writes():
    pytest.importorskip("psycopg", reason="the ffexp[postgres] extra")
    with Postgres() as pg:
        client = MlflowClient(pg.uri)  # MLflow creates its schema in the empty database
        core_run, batch_run = new_run(client), new_run(client)
        choice = mlflow_metrics.choose(client, pg.uri)
        assert choice.writer is not None and choice.reason.startswith(
            "postgresql, alembic revision f4a9b2c7d1e6"), choice
        batches = CASES + random_batches(7) + random_batches(8)
        for rows in batches:
            store_rows(client, pg.uri, core_run, rows)
            log_batch(client, batch_run, rows)
        got, want = read_back(client, core_run), read_back(client, batch_run)
        assert got == want
        assert unsigned_zero(got["latest"]) == expected_latest(batches)
        assert table_rows(pg.uri, core_run) == table_rows(pg.uri, batch_run)
        # PostgreSQL keeps the sign of a zero, both ways
        assert got["histories"]["signed_zero"][0][1] == "-0.0"


def test_a_tracking_server_gets_log_batch_and_the_job_log_says_so(tmp_path, server):
    client = MlflowClient(server.uri)
    choice = mlflow_metrics.choose(client, server.uri)
    assert choice.writer is None
    assert choice.line == f"metrics are written by MLflow's log_batch (a tracking server, " \
        f"{server.uri})"
    run_id = new_run(client)
    store_rows(client, server.uri, run_id, CASES[0])
    assert read_back(client, run_id)["latest"] == {"same_step": "3.0"}

    run_ffexp(tmp_path, ["train.epochs=3", *TINY], server.uri)
    log = next(tmp_path.glob("outputs/*/*/ffexp.log")).read_text()
    assert choice.line in log and "SQLAlchemy Core" not in log
    run = [r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
           if r.info.run_id != run_id][0]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/cost")] == \
        [0, 1, 2, 3]
