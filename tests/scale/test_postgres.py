"""A tracking server on PostgreSQL, as in docs/scaling.md's recipe (``pip install 'ffexp[postgres]'``,
``--backend-store-uri postgresql+psycopg://...``): a throwaway PostgreSQL 15 cluster (initdb
into a temporary directory, 127.0.0.1 only) and an ``mlflow server`` on it, both started and
stopped here. Slow.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from mlflow import MlflowClient

from helpers_scale import (FFEXP, SERVER_OPTS, TINY, MlflowServer, check_sweep_store,
                           env_without_mlflow, run_ffexp, sweep_args)

pytestmark = pytest.mark.slow


@pytest.mark.integration
def test_parallel_sweep_against_a_server_on_postgres(tmp_path, postgres):
    n = 6
    with MlflowServer(tmp_path / "server", *SERVER_OPTS, backend=postgres.uri) as server:
        run_ffexp(tmp_path, sweep_args(n, workers=2), server.uri)
        check_sweep_store(server.uri, n)
        # it is all in PostgreSQL: the runs table, read with psql
        assert postgres.psql("SELECT count(*) FROM runs", "mlflow").strip() == str(n + 1)
    assert not (tmp_path / "mlflow.db").exists()


def _children(uri: str, status: str) -> list:
    client = MlflowClient(uri)
    try:
        exps = [e.experiment_id for e in client.search_experiments()]
        return [r for r in client.search_runs(exps, f"attributes.status = '{status}'")
                if "mlflow.parentRunId" in r.data.tags]
    except Exception:
        return []


def test_database_outage_beyond_the_retry_window_then_resume(tmp_path, postgres):
    """PostgreSQL stops for longer than the client's retries (~30 s): the server answers 500,
    each running job trains on and spools its record (one line each, ffexp.tracking.spool),
    the sweep exits 0 saying how to upload them; with the database back, the same command with
    tracking.skip_existing=true uploads the spools first (ffexp-sync) and retrains nothing:
    every config FINISHED once."""
    n = 4
    args = ["-m", f"seed=range(0,{n})", "train.epochs=300", "tracking.flush_seconds=0.5",
            "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TINY]
    with MlflowServer(tmp_path / "server", *SERVER_OPTS, backend=postgres.uri) as server:
        proc = subprocess.Popen([FFEXP, *args, f"tracking.uri={server.uri}"], cwd=tmp_path,
                                env=env_without_mlflow(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 600
            while not _children(server.uri, "FINISHED") and time.monotonic() < deadline:
                assert proc.poll() is None, proc.communicate()
                time.sleep(1)
            postgres.stop()
            out, err = proc.communicate(timeout=900)
        finally:
            if proc.poll() is None:
                proc.kill()
        print(out[-4000:], err[-4000:])
        assert proc.returncode == 0, (out[-3000:], err[-3000:])
        spooled = [line for line in out.splitlines() if ": spooled " in line]
        assert spooled, out
        assert all(line.startswith("[job ") for line in spooled)
        assert "Traceback" not in out + err and "ffexp-sync" in err
        postgres.start()
        proc, _ = run_ffexp(tmp_path, [*args, "tracking.skip_existing=true"], server.uri)
        assert f"{n} job(s) done" in proc.stdout and "skipped" in proc.stdout
        uploaded = [x for x in proc.stdout.splitlines() if x.startswith("ffexp-sync: ")
                    and " run " in x and "parent run" not in x]
        assert len(uploaded) == len(spooled), proc.stdout
        seeds = [r.data.params["seed"] for r in _children(server.uri, "FINISHED")]
        assert sorted(seeds) == sorted(str(s) for s in range(n))


def test_a_dataset_another_job_stores_meanwhile_is_linked_on_postgres(postgres):
    """tests/tracking/test_run.py's race on PostgreSQL: the other job's log_inputs (a client
    of its own) commits the dataset between this one's lookup and its insert, whose key
    error PostgreSQL words its own way; the run still gets the dataset input."""
    from sqlalchemy import event

    from ffexp.job.data import load_dataset
    from ffexp.tracking.inputs import dataset_input, log_dataset
    from ffexp.tracking.retry import RetryingClient

    data = load_dataset("moons", params={"n_samples": 60})
    client, other = RetryingClient(MlflowClient(postgres.uri)), MlflowClient(postgres.uri)
    experiment = client.create_experiment("race")
    run, other_run = client.create_run(experiment), client.create_run(experiment)
    engine = client.unwrapped._tracking_client.store.engine
    raced = []

    def other_job_inserts_first(conn, cursor, statement, *args):
        if statement.lstrip().startswith("INSERT INTO datasets") and not raced:
            raced.append(statement)
            other.log_inputs(other_run.info.run_id, datasets=[dataset_input(data, "binary")])

    event.listen(engine, "before_cursor_execute", other_job_inserts_first)
    try:
        log_dataset(client, run.info.run_id, data, "binary")
    finally:
        event.remove(engine, "before_cursor_execute", other_job_inserts_first)
    assert raced
    for r in (run, other_run):
        (linked,) = client.get_run(r.info.run_id).inputs.dataset_inputs
        assert linked.dataset.name == "moons"


def test_a_database_outage_of_20_s_while_jobs_are_created_loses_no_job(tmp_path, postgres):
    """PostgreSQL stops for 20 s while a sweep of short jobs keeps creating and closing runs
    (the server answers 503 TEMPORARILY_UNAVAILABLE, or 500): the calls are retried
    (ffexp.tracking.retry), a create whose answer was lost is found by its ``ffexp.run_key``,
    and the sweep ends with every job FINISHED once, at the first pass."""
    n = 12
    args = [*sweep_args(n, workers=2), "tracking.log_model=false", "tracking.log_plots=false"]
    with MlflowServer(tmp_path / "server", *SERVER_OPTS, backend=postgres.uri) as server:
        proc = subprocess.Popen([FFEXP, *args, f"tracking.uri={server.uri}"], cwd=tmp_path,
                                env=env_without_mlflow(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 600
            while len(_children(server.uri, "FINISHED")) < 2 and time.monotonic() < deadline:
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.5)
            postgres.stop()
            t0 = time.monotonic()
            time.sleep(20)
            postgres.start()
            print(f"PostgreSQL was down for {time.monotonic() - t0:.1f} s")
            out, err = proc.communicate(timeout=900)
        finally:
            if proc.poll() is None:
                proc.kill()
        print(out[-3000:], err[-3000:])
        assert proc.returncode == 0, out + err
        parent, children = check_sweep_store(server.uri, n)  # n FINISHED, once each
        keys = [c.data.tags["ffexp.run_key"] for c in children]
        assert len(set(keys)) == n
        logs = "".join(p.read_text() for p in tmp_path.rglob("ffexp.log"))
        retried = logs.count("MLflow store unavailable")
        print(f"{n} jobs FINISHED, 0 duplicated; {retried} call(s) retried during the outage")
        assert retried > 0  # the outage met the jobs
