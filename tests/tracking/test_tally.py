"""The parent run counts the sweep's jobs as they end (ffexp.tracking.tally): every job that
ran, failed without a run or was skipped; ties share the best-run tag."""

from __future__ import annotations

import json

from mlflow import MlflowClient

from ffexp.tracking import handoff, tally
from helpers_tracking import FAST, all_runs, run_ffexp


def _status(sweep, job_num: int, status: str, outcome: str, run_id=None, value=None):
    d = sweep / str(job_num)
    d.mkdir(parents=True)
    record = {"job_num": job_num, "status": status, "outcome": outcome, "run_id": run_id,
              "metric": "val/accuracy" if value is not None else None, "value": value}
    (d / tally.STATUS_FILE).write_text(json.dumps(record))


def test_the_status_file_is_the_one_the_launcher_reads():
    from ffexp.launch.status import STATUS_FILE
    assert tally.STATUS_FILE == STATUS_FILE


def test_the_parent_is_recounted_by_each_job_even_after_the_submitter_closed_it(tmp_path, store):
    client = MlflowClient(store)
    exp = client.create_experiment("tally")
    parent = client.create_run(exp, run_name="sweep").info.run_id
    a, b = (client.create_run(exp, tags={"mlflow.parentRunId": parent}, run_name=n).info.run_id
            for n in ("a", "b"))
    sweep = tmp_path / "sweep"
    target = handoff.SweepTarget(store, exp, parent, "sweep", (), "uid", n_jobs=5)
    _status(sweep, 0, "ok", "finished", a, 0.9)
    _status(sweep, 1, "ok", "converged", b, 0.9)   # ties with job 0
    _status(sweep, 2, "failed", "failed")           # refused: no run
    assert tally.update_parent(sweep, target) == {
        "ended": 3, "finished": 2, "diverged": 0, "failed": 1, "killed": 0, "skipped": 0,
        "spooled": 0, "failed_without_run": 1, "not_ended": 2}
    run = client.get_run(parent)
    assert run.data.tags["ffexp.summary"] == \
        "5 jobs: 2 finished, 0 diverged, 1 failed (1 without a run), 0 killed; 2 not ended yet"
    assert run.data.tags["ffexp.best_run_id"] == f"{a},{b}"
    assert run.data.tags["ffexp.best_run_name"] == "a,b"
    assert run.data.metrics["best/val/accuracy"] == 0.9

    # the submitter is gone (scancel): the parent was closed; the array's jobs still end
    client.set_terminated(parent, "KILLED")
    _status(sweep, 3, "failed", "timeout", "c" * 32)
    _status(sweep, 4, "skipped", "skipped", "d" * 32)
    tally.update_parent(sweep, target)
    run = client.get_run(parent)
    assert run.info.status == "KILLED"
    assert run.data.tags["ffexp.summary"] == ("5 jobs: 2 finished, 0 diverged, 1 failed (1 "
                                              "without a run), 1 killed; 1 skipped (finished "
                                              "before)")
    assert run.data.metrics["sweep/not_ended"] == 0 and run.data.metrics["sweep/ended"] == 5


def test_a_job_that_spooled_its_record_is_counted_apart(tmp_path, store):
    """A job that trained while the store was unreachable (ffexp.tracking.spool) is neither
    finished in the store nor failed: the count says it waits for ffexp-sync."""
    client = MlflowClient(store)
    exp = client.create_experiment("spooled")
    parent = client.create_run(exp, run_name="sweep").info.run_id
    sweep = tmp_path / "sweep"
    target = handoff.SweepTarget(store, exp, parent, "sweep", (), "uid", n_jobs=2)
    _status(sweep, 0, "spooled", "finished")
    _status(sweep, 1, "spooled", "finished")
    counts = tally.update_parent(sweep, target)
    assert counts["spooled"] == 2 and counts["finished"] == counts["failed"] == 0
    run = client.get_run(parent)
    assert run.data.metrics["sweep/spooled"] == 2
    assert run.data.tags["ffexp.summary"] == (
        "2 jobs: 0 finished, 0 diverged, 0 failed, 0 killed; 2 spooled (trained while the "
        "store was unreachable, not uploaded yet: ffexp-sync)")


def test_the_best_runs_names_come_from_their_status_records_when_they_have_them(tmp_path,
                                                                                store):
    """A job's status record names its run (``run_name``): the tally does not read the run
    back; a record without one (an older ffexp) is looked up. The counts are metrics of the
    parent as log_batch would store them (history and latest value)."""
    client = MlflowClient(store)
    exp = client.create_experiment("tally")
    parent = client.create_run(exp, run_name="sweep").info.run_id
    a, b = (client.create_run(exp, run_name=n).info.run_id for n in ("a", "b"))
    sweep = tmp_path / "sweep"
    target = handoff.SweepTarget(store, exp, parent, "sweep", (), "uid", n_jobs=2)
    _status(sweep, 0, "ok", "finished", a, 0.9)
    record = json.loads((sweep / "0" / tally.STATUS_FILE).read_text())
    (sweep / "0" / tally.STATUS_FILE).write_text(json.dumps({**record, "run_name": "named"}))
    tally.update_parent(sweep, target)
    _status(sweep, 1, "ok", "finished", b, 0.9)
    tally.update_parent(sweep, target)
    run = client.get_run(parent)
    assert run.data.tags["ffexp.best_run_name"] == "named,b"
    assert [m.value for m in client.get_metric_history(parent, "sweep/ended")] == [1, 2]
    assert run.data.metrics["sweep/ended"] == 2 and run.data.metrics["sweep/not_ended"] == 0


def test_a_sweep_counts_refused_jobs_and_shares_a_tie(tmp_path, store):
    """Two jobs train the same config (tracking settings differ, not the result): a tie; two
    are refused before their run exists (a negative learning rate)."""
    proc = run_ffexp(tmp_path, "-m", "optimizer.lr=0.1,-1", "tracking.log_plots=true,false",
                     "train.epochs=2", "tracking.log_model=false", *FAST, uri=store,
                     check=False)
    assert proc.returncode == 1, proc.stderr
    runs = all_runs(store)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r is not parent]
    assert len(children) == 2
    m = parent.data.metrics
    assert (m["sweep/jobs"], m["sweep/finished"], m["sweep/failed"],
            m["sweep/failed_without_run"]) == (4, 2, 2, 2)
    assert parent.data.tags["ffexp.summary"].startswith(
        "4 jobs: 2 finished, 0 diverged, 2 failed (2 without a run), 0 killed; best ")
    assert "(tied with 1 more)" in parent.data.tags["ffexp.summary"]
    assert sorted(parent.data.tags["ffexp.best_run_id"].split(",")) == \
        sorted(c.info.run_id for c in children)
    # counted while the sweep ran: one recount per ended job, then the submitter's summary
    history = MlflowClient(store).get_metric_history(parent.info.run_id, "sweep/failed")
    assert len(history) == 5
