"""A sweep run while its tracking server is down, recorded afterwards: a real ``mlflow server``
is killed as soon as the sweep's parent run exists; every job trains and spools its record
(none is lost, the sweep exits 0 and says how to upload them); with the server back on the same
database, ``ffexp-sync <sweep dir>`` uploads every job's run exactly once under that parent,
whose summary then counts them, and a second sync adds nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow import MlflowClient

import ffexp_command
from helpers_scale import SERVER_OPTS, TINY, MlflowServer, env_without_mlflow

SYNC = str(Path(sys.executable).with_name("ffexp-sync"))
JOBS = 8


def _children(client: MlflowClient, parent) -> list:
    return client.search_runs([parent.info.experiment_id],
                              f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
                              max_results=1000)


def _spooling_env(server) -> dict[str, str]:
    """A job's environment against ``server``: a 2 s retry window (FFEXP_RETRY_WINDOW) and no
    HTTP retries of MLflow's own, so that a job meets the outage and spools at once."""
    return env_without_mlflow(MLFLOW_TRACKING_URI=server.uri, FFEXP_RETRY_WINDOW="2",
                              MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")


@pytest.mark.slow
def test_a_sweep_run_while_the_server_is_down_is_uploaded_once_afterwards(tmp_path):
    server = MlflowServer(tmp_path / "server", *SERVER_OPTS).start()
    sweep_dir = tmp_path / "sweep"
    env = _spooling_env(server)
    try:
        proc = ffexp_command.start(
            tmp_path, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TINY,
            "train.epochs=40", "tracking.snapshots=2", "activation=relu,tanh",
            "seed=0,1,2,3", f"hydra.sweep.dir={sweep_dir}", env=env)
        deadline = time.monotonic() + 300
        while not (sweep_dir / "mlflow_sweep.json").exists():   # the parent run exists
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        server.stop(signal.SIGKILL)
        out, err = proc.communicate(timeout=900)
        print("\n".join(x for x in out.splitlines() if x.startswith("[job ")))
        print("\n".join(x for x in err.splitlines() if x.startswith("ffexp:")))
        assert proc.returncode == 0, (out[-3000:], err[-3000:])
        assert "Traceback" not in out + err
        statuses = [json.loads(p.read_text()) for p in sweep_dir.rglob("ffexp_status.json")]
        first = Counter(s["status"] for s in statuses)
        print(f"\nfirst pass, server down: {len(statuses)} jobs, {dict(first)}")
        assert len(statuses) == JOBS and set(first) <= {"spooled", "ok"}
        assert first["spooled"] >= JOBS - 2, first   # at most a job per worker raced the kill
        assert sum("spooled" in x for x in out.splitlines() if x.startswith("[job ")) == \
            first["spooled"]
        assert f"ffexp-sync {sweep_dir}" in err
        parent_id = json.loads((sweep_dir / "mlflow_sweep.json").read_text())["parent_run_id"]

        server.start()
        sync = subprocess.run([SYNC, str(sweep_dir)], capture_output=True, text=True,
                              timeout=900, env=env)
        print(sync.stdout)
        assert sync.returncode == 0, sync.stdout + sync.stderr
        assert f"{first['spooled']} uploaded" in sync.stdout.splitlines()[-1]
        client = MlflowClient(server.uri)
        parent = client.get_run(parent_id)
        children = _children(client, parent)
        by_status = Counter(r.info.status for r in children)
        keys = Counter(r.data.tags["ffexp.run_key"] for r in children)
        print(f"after ffexp-sync: {len(children)} children of parent {parent_id}: "
              f"{dict(by_status)}, {len(keys)} distinct run keys; parent "
              f"{parent.info.status}: {parent.data.tags.get('ffexp.summary')}")
        assert len(children) == JOBS and by_status == {"FINISHED": JOBS}
        assert len(keys) == JOBS and len({r.data.tags["ffexp.config_hash"]
                                          for r in children}) == JOBS
        for run in children:
            history = client.get_metric_history(run.info.run_id, "train/cost")
            assert sorted(m.step for m in history) == list(range(41)), run.info.run_name
        assert parent.data.tags["ffexp.summary"].startswith(f"{JOBS} jobs: {JOBS} finished")
        assert parent.data.metrics["sweep/finished"] == JOBS
        assert parent.info.status == "FINISHED"
        statuses = [json.loads(p.read_text()) for p in sweep_dir.rglob("ffexp_status.json")]
        assert Counter(s["status"] for s in statuses) == {"ok": JOBS}

        again = subprocess.run([SYNC, str(sweep_dir)], capture_output=True, text=True,
                               timeout=600, env=env)
        print(again.stdout.splitlines()[-1])
        assert again.returncode == 0 and " 0 uploaded" in again.stdout.splitlines()[-1]
        assert len(_children(client, parent)) == JOBS
        assert sum(len(client.get_metric_history(r.info.run_id, "train/cost"))
                   for r in _children(client, parent)) == 41 * JOBS
    finally:
        server.stop()


@pytest.mark.slow
def test_jobs_whose_server_dies_mid_run_are_completed_by_the_sync(tmp_path):
    """The server is killed once the first job's run exists: that run (and any other created
    before the kill) is left RUNNING in the store and its job spools the rest; the sync
    completes those runs (the same ids) without storing a value twice and creates the
    others."""
    server = MlflowServer(tmp_path / "server", *SERVER_OPTS).start()
    sweep_dir = tmp_path / "sweep"
    env = _spooling_env(server)
    try:
        # 500 epochs x 28 values: more than a job writes at its end, so the metrics helper
        # process streams them (ffexp.tracking.buffer) and meets the outage too
        proc = ffexp_command.start(
            tmp_path, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TINY,
            "train.epochs=500", "tracking.snapshots=2", "seed=0,1,2,3",
            f"hydra.sweep.dir={sweep_dir}", env=env)
        client = MlflowClient(server.uri)
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            if (sweep_dir / "mlflow_sweep.json").exists():
                handed = json.loads((sweep_dir / "mlflow_sweep.json").read_text())
                if client.search_runs([handed["experiment_id"]], "tags.`mlflow.parentRunId` = "
                                      f"'{handed['parent_run_id']}'"):
                    break
            time.sleep(0.2)
        server.stop(signal.SIGKILL)
        out, err = proc.communicate(timeout=900)
        print("\n" + "\n".join(x for x in out.splitlines() if x.startswith("[job ")))
        assert proc.returncode == 0, (out[-3000:], err[-3000:])
        statuses = [json.loads(p.read_text()) for p in sweep_dir.rglob("ffexp_status.json")]
        created = {s["run_id"] for s in statuses if s["status"] == "spooled" and s["run_id"]}
        first = Counter(s["status"] for s in statuses)
        print(f"first pass: {dict(first)}; {len(created)} spooled job(s) had created their run")
        assert len(statuses) == 4 and first["spooled"] == 4 and created

        server.start()
        sync = subprocess.run([SYNC, str(sweep_dir)], capture_output=True, text=True,
                              timeout=900, env=env)
        print(sync.stdout)
        assert sync.returncode == 0, sync.stdout + sync.stderr
        for run_id in created:
            assert f"completed run {run_id}" in sync.stdout
        parent_id = json.loads((sweep_dir / "mlflow_sweep.json").read_text())["parent_run_id"]
        children = _children(client, client.get_run(parent_id))
        assert len(children) == 4 and {r.info.status for r in children} == {"FINISHED"}
        assert created <= {r.info.run_id for r in children}
        for run in children:
            for key in run.data.metrics:
                history = client.get_metric_history(run.info.run_id, key)
                idents = [(m.step, m.timestamp, m.value) for m in history]
                assert len(idents) == len(set(idents)), (run.info.run_name, key)
            steps = sorted(m.step for m in client.get_metric_history(run.info.run_id,
                                                                     "train/cost"))
            assert steps == list(range(501)), run.info.run_name
    finally:
        server.stop()


@pytest.mark.slow
def test_the_resume_uploads_the_spools_first_and_retrains_nothing(tmp_path):
    """The same sweep run again with tracking.skip_existing=true once the server is back, in a
    new folder (the default multirun/<date>/<time>): it finds the earlier sweep's folder
    through its parent run, uploads its spools, and skips every job."""
    server = MlflowServer(tmp_path / "server", *SERVER_OPTS).start()
    env = _spooling_env(server)
    args = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TINY, "train.epochs=20",
            "tracking.snapshots=0", "seed=0,1,2,3"]
    try:
        proc = ffexp_command.start(tmp_path, *args, "hydra.sweep.dir=first", env=env)
        deadline = time.monotonic() + 300
        while not (tmp_path / "first" / "mlflow_sweep.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        server.stop(signal.SIGKILL)
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, (out[-3000:], err[-3000:])
        spooled = sum(": spooled " in x for x in out.splitlines())
        server.start()
        again = ffexp_command.run(tmp_path, *args, "tracking.skip_existing=true", env=env,
                                  timeout=900)
        print("\n" + again.stdout)
        assert again.returncode == 0, again.stdout + again.stderr
        uploaded = [x for x in again.stdout.splitlines() if x.startswith("ffexp-sync: ")
                    and "/first/" in x and " run " in x]
        skipped = [x for x in again.stdout.splitlines() if x.startswith("[job ")
                   and ": skipped " in x]
        print(f"first pass: {spooled} spooled; resume: {len(uploaded)} uploaded, "
              f"{len(skipped)} skipped")
        assert spooled >= 2 and len(uploaded) == spooled and len(skipped) == 4
        client = MlflowClient(server.uri)
        first = json.loads((tmp_path / "first" / "mlflow_sweep.json").read_text())
        children = _children(client, client.get_run(first["parent_run_id"]))
        assert sorted(r.data.params["seed"] for r in children) == ["0", "1", "2", "3"]
        # closed by the resume's stale check (its submitter was gone), then as the sweep ended
        assert client.get_run(first["parent_run_id"]).info.status == "FINISHED"
        assert {r.info.status for r in children} == {"FINISHED"}
        jobs = client.search_runs([first["experiment_id"]], "attributes.status = 'FINISHED'")
        assert len([r for r in jobs if r.data.tags.get("ffexp.kind") != "sweep"]) == 4
    finally:
        server.stop()
