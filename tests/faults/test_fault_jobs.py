"""Jobs that break: one raising mid-training, a sweep terminated (SIGTERM) or killed (SIGKILL);
each time nothing recorded is lost and rerunning the command with tracking.skip_existing=true
completes the sweep without duplicates."""

from __future__ import annotations

import math
import signal

import pytest
from mlflow import MlflowClient

from faults_helpers import FAST, ffexp, jobs, ok, parents, runs, start, wait_for_history


def _finished_per_config(uri: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in jobs(uri):
        if r.info.status == "FINISHED":
            h = r.data.tags["ffexp.config_hash"]
            counts[h] = counts.get(h, 0) + 1
    return counts


def _complete_without_duplicates(uri: str, n: int) -> None:
    counts = _finished_per_config(uri)
    assert len(counts) == n and set(counts.values()) == {1}, counts


@pytest.mark.slow
def test_a_job_raising_mid_training_fails_alone_and_a_rerun_completes_the_sweep(tmp_path, store):
    sweep = ["-m", *FAST, "train.epochs=4", "seed=0,1,2", "tracking.skip_existing=true"]
    proc = ffexp(tmp_path, *sweep, uri=store, FFEXP_TEST_RAISE="1:2")
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ffexp: 1 of 3 jobs failed: [job 1] ") and "seed=1" in last
    by_seed = {r.data.params["seed"]: r for r in jobs(store)}
    failed = by_seed["1"]
    assert failed.info.status == "FAILED" and failed.data.tags["ffexp.outcome"] == "failed"
    assert failed.data.tags["ffexp.error"] == "RuntimeError: injected fault at epoch 2"
    client = MlflowClient(store)
    # the epochs before the failing one are kept (the fault strikes before epoch 2 is logged)
    assert [m.step for m in client.get_metric_history(failed.info.run_id, "train/cost")] == [0, 1]
    assert by_seed["0"].info.status == by_seed["2"].info.status == "FINISHED"
    (parent,) = parents(store)
    assert parent.data.metrics["sweep/failed"] == 1 and parent.data.metrics["sweep/finished"] == 2

    again = ok(ffexp(tmp_path, *sweep, uri=store))  # the same command, without the fault
    assert "3 job(s) done (2 skipped: finished before; 1 rerun)" in again.stdout
    _complete_without_duplicates(store, 3)
    rerun = [r for r in jobs(store) if r.data.tags.get("ffexp.rerun_of")]
    assert [r.data.tags["ffexp.rerun_of"] for r in rerun] == [failed.info.run_id]
    new = parents(store)[-1]
    assert (new.data.metrics["sweep/skipped"], new.data.metrics["sweep/rerun"]) == (2, 1)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_during_a_sweep_kills_the_running_job_and_a_rerun_completes_it(tmp_path, store,
                                                                               signum):
    # long enough jobs that the signal lands in the second one
    sweep = ["-m", *FAST, "train.epochs=1500", "tracking.flush_seconds=0.3", "seed=0,1,2",
             "tracking.skip_existing=true"]
    proc = start(tmp_path, *sweep, uri=store)
    try:
        wait_for_history(proc, store, n_runs=2, timeout=240)
        proc.send_signal(signum)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    # SIGTERM: exit status 143; Ctrl-C: Python ends an uncaught KeyboardInterrupt by SIGINT
    assert proc.returncode == (128 + signal.SIGTERM if signum == signal.SIGTERM else -signum)
    first = {r.data.params["seed"]: r for r in jobs(store)}
    assert first["0"].info.status == "FINISHED" and first["1"].info.status == "KILLED"
    assert first["1"].data.tags["ffexp.outcome"] == "killed" and "2" not in first
    assert parents(store)[0].info.status == "KILLED"
    client = MlflowClient(store)
    finished_history = client.get_metric_history(first["0"].info.run_id, "train/cost")
    assert len(finished_history) == 1501  # intact: step 0 and 1500 epochs

    again = ok(ffexp(tmp_path, *sweep, uri=store, timeout=600))
    assert "3 job(s) done (1 skipped: finished before; 1 rerun)" in again.stdout
    _complete_without_duplicates(store, 3)
    assert len(jobs(store)) == 4  # the killed attempt stays, as KILLED
    assert client.get_metric_history(first["0"].info.run_id, "train/cost") == finished_history


@pytest.mark.slow
def test_sigkill_leaves_a_running_run_that_the_next_sweep_closes_as_stale(tmp_path, store):
    import mlflow

    from ffexp.report.aggregate import outcomes_of
    sweep = ["-m", *FAST, "train.epochs=1500", "tracking.flush_seconds=0.3", "seed=0,1",
             "tracking.skip_existing=true"]
    proc = start(tmp_path, *sweep, uri=store)
    try:
        (victim,) = wait_for_history(proc, store, n_runs=1, timeout=240)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = MlflowClient(store).get_run(victim.info.run_id)
    assert left.info.status == "RUNNING"
    assert {"ffexp.host", "ffexp.pid", "ffexp.heartbeat"} <= set(left.data.tags)
    assert parents(store)[0].info.status == "RUNNING"  # nothing can help that

    again = ok(ffexp(tmp_path, *sweep, uri=store, timeout=600))
    assert "2 stale run(s) closed" in again.stdout
    client = MlflowClient(store)
    old = client.get_run(victim.info.run_id)
    assert old.info.status == "KILLED" and old.data.tags["ffexp.outcome"] == "stale"
    assert "has ended" in old.data.tags["ffexp.error"]
    old_parent = client.get_run(parents(store)[0].info.run_id)
    assert old_parent.info.status == "KILLED" and old_parent.data.tags["ffexp.outcome"] == "stale"
    _complete_without_duplicates(store, 2)
    rerun = [r for r in jobs(store) if r.data.tags.get("ffexp.rerun_of")]
    assert [r.data.tags["ffexp.rerun_of"] for r in rerun] == [victim.info.run_id]
    # the report counts the stale run as killed, not finished (nor running)
    mlflow.set_tracking_uri(store)
    df = mlflow.search_runs([old.info.experiment_id])
    outcome = dict(zip(df["run_id"], outcomes_of(df)))
    assert outcome[victim.info.run_id] == "killed"


@pytest.mark.slow
def test_diverging_jobs_in_a_sweep_are_finished_diverged_with_only_finite_metrics(tmp_path,
                                                                                  store):
    ok(ffexp(tmp_path, "-m", "dataset=diabetes", "init=random", "init.scale=10",
             "model.hidden_sizes=[32,32,32,32]", "optimizer.lr=1,0.001", "train.epochs=15",
             "tracking.log_plots=false", "tracking.log_model=false", uri=store))
    by_lr = {r.data.params["lr"]: r for r in jobs(store)}
    diverged = by_lr["1.0"] if "1.0" in by_lr else by_lr["1"]
    assert diverged.info.status == "FINISHED"
    assert diverged.data.tags["ffexp.outcome"] == "diverged"
    assert int(diverged.data.tags["ffexp.diverged_epoch"]) >= 1
    client = MlflowClient(store)
    for run in jobs(store):
        for name in run.data.metrics:
            values = [m.value for m in client.get_metric_history(run.info.run_id, name)]
            assert values and all(math.isfinite(v) for v in values), (name, values)
    (parent,) = parents(store)
    assert parent.data.metrics["sweep/diverged"] >= 1
    assert all(math.isfinite(v) for r in runs(store) for v in r.data.metrics.values())


@pytest.mark.slow
def test_sigkill_of_a_joblib_worker_is_resumed_without_duplicates(tmp_path, store):
    """loky gives up the whole pool when a worker dies; every run left RUNNING is stale (its
    process is gone) and the same command finishes the sweep."""
    import os
    sweep = ["-m", *FAST, "train.epochs=1500", "tracking.flush_seconds=0.3", "seed=0,1,2",
             "tracking.skip_existing=true", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    proc = start(tmp_path, *sweep, uri=store)
    try:
        (victim, *_) = wait_for_history(proc, store, n_runs=1, timeout=240)
        os.kill(int(victim.data.tags["ffexp.pid"]), signal.SIGKILL)
        proc.stdout_text, proc.stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    # (the metrics helper processes of the dead pool may add their own complaints after it)
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("ffexp: error: ")]
    assert line.startswith("ffexp: error: the sweep stopped: TerminatedWorkerError")
    assert "tracking.skip_existing=true" in line
    left = [r for r in jobs(store) if r.info.status == "RUNNING"]
    assert victim.info.run_id in {r.info.run_id for r in left}

    again = ok(ffexp(tmp_path, *sweep, uri=store, timeout=600))
    assert f"{len(left)} stale run(s) closed" in again.stdout
    _complete_without_duplicates(store, 3)
    client = MlflowClient(store)
    for r in left:
        old = client.get_run(r.info.run_id)
        assert old.info.status == "KILLED" and old.data.tags["ffexp.outcome"] == "stale"
    assert not [r for r in runs(store) if r.info.status == "RUNNING"]
