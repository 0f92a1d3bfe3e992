"""Hydra's submitit launcher, local executor: the code path of a SLURM cluster without one.

Each job is pickled by submitit and run in its own process, reading the sweep's parent run from
``<sweep dir>/mlflow_sweep.json`` (on a cluster: a filesystem shared with the compute nodes).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from helpers_scale import check_sweep_store, run_ffexp, sweep_args

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_submitit_local_sweep_keeps_the_parent_child_structure(tmp_path):
    n = 4
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc, _ = run_ffexp(tmp_path, [*sweep_args(n, launcher="submitit_local"),
                                   "hydra.launcher.timeout_min=10"], uri)
    assert f"{n} job(s) done" in proc.stdout
    # the submitting console shows each job's line as it ends (ffexp.launch.watch)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("[job ")]
    assert sorted(int(x.split("]")[0][5:]) for x in lines) == list(range(n))
    parent, children = check_sweep_store(uri, n)
    sweep_dir = tmp_path / parent.data.tags["ffexp.sweep_id"]
    assert (sweep_dir / "mlflow_sweep.json").is_file()
    # every job ran in a submitit process of its own (its pickles and logs are here)
    assert len(list((sweep_dir / ".submitit").glob("*/*_result.pkl"))) == n
    assert {c.data.tags["ffexp.sweep_id"] for c in children} == {parent.data.tags["ffexp.sweep_id"]}


def test_slurm_template_composes(tmp_path):
    """conf/hydra/launcher/ffexp_slurm.yaml extends submitit_slurm (no cluster needed)."""
    proc, _ = run_ffexp(tmp_path, ["--cfg", "hydra", "-p", "hydra.launcher",
                                   "hydra/launcher=ffexp_slurm", "hydra.launcher.partition=cpu"],
                        uri=f"sqlite:///{tmp_path / 'unused.db'}")
    text = proc.stdout
    assert "SlurmLauncher" in text and "partition: cpu" in text
    assert "cpus_per_task: 1" in text and "array_parallelism: 64" in text
    assert not (tmp_path / "unused.db").exists()


def _job_process(root: int) -> int | None:
    """The pid of a job's own process (``python -m submitit.core._submit``) among ``root``'s
    descendants, None if there is none."""
    parent_of, cmdline = {}, {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            parent_of[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline[int(d.name)] = (d / "cmdline").read_text()
        except (OSError, IndexError, ValueError):
            continue

    def descends(pid: int) -> bool:
        while pid > 1:
            pid = parent_of.get(pid, 0)
            if pid == root:
                return True
        return False
    found = [p for p, cmd in cmdline.items() if "submitit.core._submit" in cmd and descends(p)]
    return found[0] if len(found) == 1 else None


@pytest.mark.slow
@pytest.mark.parametrize("sigkill_after", [None, 1.0], ids=["SIGTERM", "SIGTERM-then-SIGKILL"])
def test_a_job_stopped_by_sigterm_writes_its_status_and_counts_on_the_parent(tmp_path,
                                                                            sigkill_after):
    """What scancel does to a SLURM task, on submitit's local executor (the same job process:
    submitit's own handler ignores SIGTERM): SIGTERM mid-training. The job's status file says
    ``killed`` by SIGTERM, its run is closed KILLED, and the parent's summary counts it killed.
    With SIGKILL a second later (SLURM's KillWait, shortened), before the job could close its
    run: its status file, written the moment SIGTERM came, still counts it."""
    import json
    import signal
    import time

    from mlflow import MlflowClient

    from helpers_scale import FFEXP, TINY, env_without_mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["-m", "train.epochs=2,100000", *TINY, "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10", "tracking.flush_seconds=0.5", f"tracking.uri={uri}"]
    proc = subprocess.Popen([FFEXP, *args], cwd=tmp_path, env=env_without_mlflow(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, victim = time.monotonic() + 600, None
        while victim is None and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            done = list(tmp_path.glob("multirun/*/*/0/ffexp_status.json"))
            logs = list(tmp_path.glob("multirun/*/*/1/ffexp.log"))
            # job 0 ended; job 1 trains (its epochs are in its log's metrics helper, or its
            # run has values): the only job process left is job 1's
            if done and logs and _history(uri):
                victim = _job_process(proc.pid)
            time.sleep(0.5)
        assert victim is not None, "job 1 did not start training"
        os.kill(victim, signal.SIGTERM)
        if sigkill_after is not None:
            time.sleep(sigkill_after)
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out + err
    (status,) = tmp_path.glob("multirun/*/*/1/ffexp_status.json")
    record = json.loads(status.read_text())
    assert (record["status"], record["signal"]) == ("killed", "SIGTERM"), record
    assert "interrupted (SIGTERM)" in record["error"]
    client = MlflowClient(uri)
    runs = client.search_runs(["1"])
    parent = next(r for r in runs if r.data.tags.get("ffexp.kind") == "sweep")
    job1 = next(r for r in runs if r.data.params.get("epochs") == "100000")
    if sigkill_after is None:
        assert record["run_id"] == job1.info.run_id and job1.info.status == "KILLED"
    assert parent.data.tags["ffexp.summary"].startswith(
        "2 jobs: 1 finished, 0 diverged, 0 failed, 1 killed"), parent.data.tags["ffexp.summary"]
    assert (parent.data.metrics["sweep/killed"], parent.data.metrics["sweep/running"]) == (1, 0)


def _history(uri: str) -> bool:
    """Whether the long job's run has recorded some of its training."""
    from mlflow import MlflowClient
    try:
        client = MlflowClient(uri)
        runs = client.search_runs(["1"], "params.epochs = '100000'")
        return bool(runs) and bool(client.get_metric_history(runs[0].info.run_id, "train/cost"))
    except Exception:
        return False
