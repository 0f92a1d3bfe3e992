"""A parallel sweep against a real ``mlflow server`` on 127.0.0.1, started and stopped here; and
the server going away mid-sweep (slow): with a restart the sweep completes, without one the
jobs fail clearly, within bounded time, and nothing recorded before is lost."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import pytest
from mlflow import MlflowClient

from ffexp.tracking.retry import WINDOW

from helpers_scale import (FFEXP, SERVER_OPTS, TINY, MlflowServer, check_sweep_store,
                           env_without_mlflow, run_ffexp, sweep_args)


@pytest.mark.slow
def test_parallel_sweep_against_a_tracking_server(tmp_path, server):
    n = 6
    proc, seconds = run_ffexp(tmp_path, sweep_args(n, workers=2), server.uri)
    parent, children = check_sweep_store(server.uri, n)
    # the artifacts went through the server, to its --artifacts-destination
    client = MlflowClient(server.uri)
    names = {f.path for f in client.list_artifacts(children[0].info.run_id)}
    assert {"history.csv", "plots", "model_npz"} <= names
    assert any((server.root / "artifacts").rglob("history.csv"))
    assert not (tmp_path / "mlflow.db").exists()  # nothing fell back to a local store


def _finished_children(uri: str) -> list:
    client = MlflowClient(uri)
    try:
        exps = [e.experiment_id for e in client.search_experiments()]
        return [r for r in client.search_runs(exps, "attributes.status = 'FINISHED'")
                if "mlflow.parentRunId" in r.data.tags]
    except Exception:
        return []


def _start_sweep(cwd, uri: str, n_jobs: int, epochs: int, extra_env: dict | None = None):
    args = ["-m", f"seed=range(0,{n_jobs})", f"train.epochs={epochs}",
            "tracking.flush_seconds=0.5", *TINY, f"tracking.uri={uri}"]
    return subprocess.Popen([FFEXP, *args], cwd=cwd, env=env_without_mlflow(**(extra_env or {})),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, proc, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended early: {proc.communicate()}")
        time.sleep(0.3)
    pytest.fail("timed out waiting for the sweep")


@pytest.mark.slow
def test_server_restarted_mid_sweep_every_job_completes(tmp_path, server_db):
    """The server dies and is back on the same port (a restart: ~10 s here): ffexp's retries
    (ffexp.tracking.retry: a window of 60 s) carry the jobs over."""
    n = 6
    server = MlflowServer(tmp_path / "server", *SERVER_OPTS, db=server_db).start()
    proc = _start_sweep(tmp_path, server.uri, n, epochs=300)
    try:
        _wait_for(lambda: len(_finished_children(server.uri)) >= 2, proc)
        server.stop(signal.SIGKILL)
        time.sleep(1)
        server.start()
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, out + err
        check_sweep_store(server.uri, n)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()


@pytest.mark.slow
def test_server_gone_mid_sweep_jobs_spool_clearly_nothing_lost(tmp_path, server_db):
    n = 4
    server = MlflowServer(tmp_path / "server", *SERVER_OPTS, db=server_db).start()
    proc = _start_sweep(tmp_path, server.uri, n, epochs=300)
    try:
        _wait_for(lambda: len(_finished_children(server.uri)) >= 2, proc)
        before = {r.info.run_id: r for r in _finished_children(server.uri)}
        client = MlflowClient(server.uri)
        histories = {rid: len(client.get_metric_history(rid, "train/cost")) for rid in before}
        server.stop(signal.SIGKILL)
        t0 = time.monotonic()
        out, err = proc.communicate(timeout=600)
        seconds = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()
    print(f"sweep ended {seconds:.0f} s after the server died\n{out[-2000:]}\n{err[-2000:]}")
    # the jobs the outage met trained on and spooled their records (ffexp.tracking.spool),
    # each says so in its line, the sweep says how to upload them; no job hangs for minutes
    assert proc.returncode == 0, out + err
    spooled = [x for x in out.splitlines() if x.startswith("[job ") and ": spooled " in x]
    assert spooled and "ffexp-sync" in err
    assert "Traceback" not in out + err
    # a call fails at the end of ffexp's retry window (ffexp.tracking.retry.WINDOW); the
    # metrics helper's own window runs alongside; then the server is known down: fail fast
    assert seconds < 2 * WINDOW + 30
    # nothing recorded before is lost: read the server's database directly
    local = MlflowClient(f"sqlite:///{server.db}")
    for rid, run in before.items():
        again = local.get_run(rid)
        assert again.info.status == "FINISHED"
        assert len(local.get_metric_history(rid, "train/cost")) == histories[rid] == 301  # steps 0-300
        assert again.data.params == run.data.params
