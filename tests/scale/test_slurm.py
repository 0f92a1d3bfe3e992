"""A sweep on a real SLURM cluster: the single-node cluster of ``scripts/slurm-local``
(munge, slurmctld, slurmd, slurmdbd on MariaDB; 127.0.0.1), through
``hydra/launcher=ffexp_slurm``. The cluster is started here unless one already runs, and then
stopped. Slow: each test submits a SLURM array and waits for it.

    pytest -m slow tests/scale/test_slurm.py
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from helpers_scale import FFEXP, TINY, check_sweep_store, env_without_mlflow, run_ffexp

SLURM = ["hydra/launcher=ffexp_slurm", "hydra.launcher.timeout_min=10"]

pytestmark = pytest.mark.slow


def _sacct(job_id: str) -> dict[str, str]:
    """task id -> state, from SLURM's accounting."""
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", job_id],
                         capture_output=True, text=True, check=True).stdout
    return {task: state.split()[0]  # "CANCELLED by 0" -> CANCELLED
            for task, state in (line.split("|", 1) for line in out.splitlines())}


def _array_id(sweep_dir: Path) -> str:
    """The SLURM array job of a sweep, from submitit's files (<sweep>/.submitit/<id>_<task>)."""
    ids = {p.name.split("_")[0] for p in (sweep_dir / ".submitit").iterdir()
           if p.name[0].isdigit()}
    assert len(ids) == 1, ids
    return ids.pop()


def _runs(uri: str, cwd: Path | None = None) -> list:
    """The store's runs; while a sweep starts (``cwd``: no mlflow_sweep.json yet), none: a
    client opening the SQLite file while ffexp creates it would race its creation."""
    if cwd is not None and not list(cwd.glob("multirun/*/*/mlflow_sweep.json")):
        return []
    client = MlflowClient(uri)
    try:
        exps = [e.experiment_id for e in client.search_experiments()]
        return client.search_runs(exps, max_results=1000)
    except Exception:  # the store is not created yet
        return []


def _wait_until(predicate, proc: subprocess.Popen, what: str, timeout: float = 600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended before {what}: {proc.communicate()}")
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what}")


def _wait_for_empty_queue(job_id: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True)
        if not out.stdout.strip():
            return
        time.sleep(1)
    pytest.fail(f"SLURM job {job_id} still queued after {timeout} s")


def _sweep_dir(cwd: Path) -> Path:
    dirs = [p.parent for p in cwd.glob("multirun/*/*/mlflow_sweep.json")]
    return max(dirs, key=lambda p: p.stat().st_mtime)


@pytest.mark.integration
def test_sweep_on_slurm_against_a_tracking_server(tmp_path, cluster, server):
    """docs/scaling.md's command: one array job, one task per ffexp job, all recorded."""
    n = 4
    proc, _ = run_ffexp(tmp_path, ["-m", "seed=0,1", "train.epochs=1,3", *TINY, *SLURM],
                        server.uri)
    assert f"{n} job(s) done" in proc.stdout
    parent, children = check_sweep_store(server.uri, n)
    sweep_dir = tmp_path / parent.data.tags["ffexp.sweep_id"]
    array = _array_id(sweep_dir)
    _wait_for_empty_queue(array)  # a task's result can be read before SLURM sees it end
    states = _sacct(array)
    assert sorted(states.values()) == ["COMPLETED"] * n, states


def test_scancel_of_a_task_ends_the_sweep_and_the_rerun_completes(tmp_path, cluster):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["-m", "train.epochs=2,3000", *TINY, *SLURM, "tracking.flush_seconds=0.5"]
    proc = subprocess.Popen([FFEXP, *args, f"tracking.uri={uri}"], cwd=tmp_path,
                            env=env_without_mlflow(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        def long_job_running():  # its run is open: it trains (3,000 epochs take > 10 s here,
            # at the pace the store takes their values; 300 were over in a second)
            return [r for r in _runs(uri, tmp_path) if r.info.status == "RUNNING"
                    and r.data.params.get("epochs") == "3000"]
        running = _wait_until(long_job_running, proc, "the 300-epoch job's run opens")[0]
        sweep_dir = _sweep_dir(tmp_path)
        array = _array_id(sweep_dir)
        task = f"{array}_1"  # job 1: train.epochs=3000
        assert _sacct(array)[task] == "RUNNING"
        subprocess.run(["scancel", task], check=True)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    print(out[-3000:], err[-3000:])
    assert proc.returncode == 1
    assert _sacct(array)[task] == "CANCELLED"
    assert MlflowClient(uri).get_run(running.info.run_id).info.status == "KILLED"
    # the sweep names the task it lost and its state, in one line, and says how to finish
    lines = [line for line in err.splitlines() if line.startswith("ffexp: ")]
    assert len(lines) == 1, err
    assert f"Job {task}" in lines[0] and "CANCELLED" in lines[0], lines
    assert "tracking.skip_existing=true" in lines[0]
    _wait_for_empty_queue(array)

    proc, _ = run_ffexp(tmp_path, [*args, "tracking.skip_existing=true"], uri)
    assert "2 job(s) done (1 skipped: finished before; 1 rerun)" in proc.stdout
    finished = {r.data.params["epochs"] for r in _runs(uri)
                if r.info.status == "FINISHED" and "mlflow.parentRunId" in r.data.tags}
    assert finished == {"2", "3000"}


def test_time_limit_closes_the_run_as_killed_timeout(tmp_path, cluster):
    """timeout_min=3, USR2 90 s before it (SLURM may send it up to 60 s early; the margin is for
    this loaded machine, where a job's main thread can wait a minute for its metric writes
    before Python runs the signal handler): the job stops training, its run is KILLED with
    ffexp.outcome=timeout, the sweep names it; the other job of the sweep finishes."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["-m", "train.epochs=2,1000000", *TINY, "hydra/launcher=ffexp_slurm",
            "hydra.launcher.timeout_min=3", "hydra.launcher.signal_delay_s=90"]
    proc, _ = run_ffexp(tmp_path, args, uri, check=False, timeout=600)
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    assert proc.returncode == 1
    runs = {r.data.params["epochs"]: r for r in _runs(uri) if "mlflow.parentRunId" in r.data.tags}
    assert runs["2"].info.status == "FINISHED"
    stopped = runs["1000000"]
    assert stopped.info.status == "KILLED"
    assert stopped.data.tags["ffexp.outcome"] == "timeout"
    assert "time limit" in stopped.data.tags["ffexp.error"]
    assert "UncompletedJobError" not in proc.stdout + proc.stderr
    assert "1 of 2 jobs failed: [job 1] train.epochs=1000000" in proc.stderr
    array = _array_id(_sweep_dir(tmp_path))
    # the job's own line, in its SLURM log
    log = next((_sweep_dir(tmp_path) / ".submitit" / f"{array}_1").glob("*_log.out")).read_text()
    assert "[job 1] train.epochs=1000000" in log and ": TIMEOUT" in log, log
    _wait_for_empty_queue(array)
    states = _sacct(array)
    # the stopped job ended by itself; SLURM says TIMEOUT if its step outlived the limit
    assert states[f"{array}_0"] == "COMPLETED" and states[f"{array}_1"] in ("COMPLETED",
                                                                          "TIMEOUT"), states
