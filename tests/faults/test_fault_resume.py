"""Resume (tracking.skip_existing) and stale runs: the pieces in-process, the whole through the
real command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace as NS

from mlflow import MlflowClient

from faults_helpers import FAST, ffexp, jobs, ok, parents

from ffexp.tracking.stale import HEARTBEAT_TAG, HOST_TAG, PID_TAG, main as stale_main, why_stale


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _run(status="RUNNING", **tags):
    return NS(info=NS(status=status, start_time=int(time.time() * 1000), run_id="r",
                      experiment_id="0"), data=NS(tags=tags))


def test_why_stale_by_pid_on_this_host_and_by_silence_elsewhere():
    here, now = socket.gethostname(), time.time()
    fresh = str(int(now))
    assert "has ended" in why_stale(_run(**{HOST_TAG: here, PID_TAG: str(_dead_pid()),
                                           HEARTBEAT_TAG: fresh}), 300)
    assert why_stale(_run(**{HOST_TAG: here, PID_TAG: str(os.getpid()), HEARTBEAT_TAG: fresh}),
                     300) is None
    # another host: only the heartbeat tells
    assert why_stale(_run(**{HOST_TAG: "elsewhere", PID_TAG: "1", HEARTBEAT_TAG: fresh}),
                     300) is None
    old = str(int(now - 400))
    assert "no sign of life for 4" in why_stale(_run(**{HOST_TAG: "elsewhere", HEARTBEAT_TAG: old}),
                                                 300)
    assert why_stale(_run(**{HOST_TAG: "elsewhere", HEARTBEAT_TAG: old}), 500) is None
    assert why_stale(_run("FINISHED", **{HOST_TAG: here, PID_TAG: str(_dead_pid())}), 0) is None
    # no tags at all (a run of an older ffexp): its start time is its last sign of life
    assert why_stale(_run(), 300) is None and why_stale(_run(), -1) is not None


def test_ffexp_stale_marks_only_dead_runs_and_the_report_counts_them_killed(tmp_path, store,
                                                                            capsys):
    import mlflow

    from ffexp.report.aggregate import outcomes_of
    client = MlflowClient(store)
    exp = client.create_experiment("e", artifact_location=(tmp_path / "artifacts").as_uri())
    here, now = socket.gethostname(), int(time.time())
    made = {
        "dead_pid": {HOST_TAG: here, PID_TAG: str(_dead_pid()), HEARTBEAT_TAG: str(now)},
        "silent": {HOST_TAG: "elsewhere", PID_TAG: "1", HEARTBEAT_TAG: str(now - 1000)},
        "alive": {HOST_TAG: "elsewhere", PID_TAG: "1", HEARTBEAT_TAG: str(now)},
    }
    ids = {name: client.create_run(exp, run_name=name, tags=tags).info.run_id
           for name, tags in made.items()}
    done = client.create_run(exp, run_name="done", tags={HOST_TAG: here,
                                                         PID_TAG: str(_dead_pid())})
    client.set_terminated(done.info.run_id, "FINISHED")
    args = ["--tracking-uri", store, "--experiment", "e", "--older-than", "300"]
    assert stale_main([*args, "--dry-run"]) == 0
    assert "2 stale run(s)" in capsys.readouterr().out
    assert all(client.get_run(i).info.status == "RUNNING" for i in ids.values())
    assert stale_main(args) == 0
    out = capsys.readouterr().out
    assert "dead_pid" in out and "silent" in out and "alive" not in out
    status = {n: client.get_run(i) for n, i in ids.items()}
    for name in ("dead_pid", "silent"):
        run = status[name]
        assert run.info.status == "KILLED" and run.data.tags["ffexp.outcome"] == "stale"
        assert run.data.tags["ffexp.error"].startswith("stale: ")
        # ended at its last sign of life (not before it started)
        last = max(int(run.data.tags[HEARTBEAT_TAG]) * 1000, run.info.start_time)
        assert run.info.end_time <= last + 999
    assert status["alive"].info.status == "RUNNING"
    assert client.get_run(done.info.run_id).info.status == "FINISHED"
    mlflow.set_tracking_uri(store)
    df = mlflow.search_runs([exp])
    outcome = dict(zip(df["tags.mlflow.runName"], outcomes_of(df)))
    assert outcome == {"dead_pid": "killed", "silent": "killed", "alive": "running",
                       "done": "finished"}
    assert stale_main(["--tracking-uri", store, "--experiment", "nope"]) == 2
    assert "unknown experiment" in capsys.readouterr().err


def _statuses(sweep: str) -> list[dict]:
    found = [json.loads(p.read_text()) for p in Path(sweep).rglob("ffexp_status.json")]
    return sorted(found, key=lambda r: r["job_num"])


def _one_finished_per_config(uri: str, n: int) -> None:
    finished = [r for r in jobs(uri) if r.info.status == "FINISHED"]
    hashes = [r.data.tags["ffexp.config_hash"] for r in finished]
    assert len(hashes) == len(set(hashes)) == n, sorted(hashes)


def test_rerunning_a_sweep_with_skip_existing_runs_only_what_is_missing(tmp_path, store):
    base = ["-m", *FAST, "train.epochs=3", "tracking.skip_existing=true"]
    ok(ffexp(tmp_path, *base, "seed=0,1", uri=store))
    first = {r.data.params["seed"]: r.info.run_id for r in jobs(store)}
    proc = ok(ffexp(tmp_path, *base, "seed=0,1,2", uri=store))
    assert "3 job(s) done (2 skipped: finished before; 0 rerun)" in proc.stdout
    assert proc.stdout.count(": skipped") == 2
    _one_finished_per_config(store, 3)
    old, new = parents(store)
    kids = [r for r in jobs(store) if r.data.tags["mlflow.parentRunId"] == new.info.run_id]
    assert [k.data.params["seed"] for k in kids] == ["2"]
    assert set(new.data.tags["ffexp.skipped_run_ids"].split(",")) == set(first.values())
    m = new.data.metrics
    assert (m["sweep/jobs"], m["sweep/skipped"], m["sweep/rerun"]) == (1, 2, 0)
    assert "2 skipped (finished before), 0 rerun" in new.data.tags["ffexp.summary"]
    sweep = sorted((tmp_path / "multirun").glob("*/*"))[-1]
    skipped = [r for r in _statuses(str(sweep)) if r["status"] == "skipped"]
    assert sorted(r["run_id"] for r in skipped) == sorted(first.values())
    assert new.info.status == "FINISHED" and old.data.metrics["sweep/skipped"] == 0
    # the report of the resumed sweep covers its whole grid: the rerun job and the skipped ones
    from ffexp.report.cli import main as report
    assert report(["--tracking-uri", store, "--output", str(tmp_path / "report"),
                   "--no-log-artifact"]) == 0
    runs_csv = (tmp_path / "report" / "runs.csv").read_text().splitlines()
    assert len(runs_csv) == 1 + 3


def test_the_heartbeat_advances_from_the_flush_path_only_when_due(tmp_path, store, monkeypatch):
    from ffexp.tracking import buffer
    client = MlflowClient(store)
    exp = client.create_experiment("e", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(exp, tags={HEARTBEAT_TAG: "0"}).info.run_id
    buf = buffer.MetricsBuffer(client, run_id, store, flush_seconds=0, use_helper=False)
    buf.pending = [("train/cost", 1.0, 0, 1)]
    buf._send_pending()  # not due yet: the buffer was created just now
    buf.flush()
    assert client.get_run(run_id).data.tags[HEARTBEAT_TAG] == "0"
    monkeypatch.setattr(buffer, "HEARTBEAT_SECONDS", 0.0)
    buf.pending = [("train/cost", 0.5, 0, 2)]
    buf._send_pending()
    buf.flush()
    beat = int(client.get_run(run_id).data.tags[HEARTBEAT_TAG])
    assert abs(beat - time.time()) < 60
    assert [m.value for m in client.get_metric_history(run_id, "train/cost")] == [1.0, 0.5]
