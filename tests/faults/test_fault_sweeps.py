"""Sweep identity: two sweeps never share a directory or a parent run.

A live sweep holds its directory (a lock in it); a second sweep told to use that directory is
refused in one line, one that got it by default runs next to it; a job checks that the
directory's handoff is its own sweep's before it attaches to the parent."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from faults_helpers import FAST, jobs, ffexp, ok, parents, runs, start

from ffexp.tracking import handoff


def _one_line_error(proc: subprocess.CompletedProcess, status: int = 2) -> str:
    assert proc.returncode == status, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ffexp: error: "), proc.stderr
    return lines[0]


def _children(uri: str, parent) -> list:
    return [r for r in jobs(uri) if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]


def test_a_sweep_in_a_directory_held_by_a_live_sweep_is_refused_without_a_run(tmp_path, store):
    sweep_dir = tmp_path / "shared"
    assert handoff.claim(sweep_dir, "the-other-sweep") is None  # held, as a live sweep does
    try:
        proc = ffexp(tmp_path, "-m", *FAST, "train.epochs=3", "seed=0,1",
                     f"hydra.sweep.dir={sweep_dir}", uri=store)
    finally:
        handoff.release(sweep_dir)
    line = _one_line_error(proc)
    assert line.startswith(f"ffexp: error: hydra.sweep.dir={sweep_dir}: another sweep is running")
    assert "the-other-sweep" in line and "hydra.sweep.dir=<dir>" in line
    assert runs(store) == []
    assert not (sweep_dir / "mlflow_sweep.json").exists() and not (sweep_dir / "0").exists()


def test_a_job_never_attaches_to_another_sweeps_parent(tmp_path, store):
    """The handoff is rewritten by "another sweep" before each job: the jobs fail, naming it,
    and no run is recorded under the other parent (nor anywhere)."""
    proc = ffexp(tmp_path, "-m", *FAST, "train.epochs=3", "seed=0,1", uri=store,
                 FFEXP_TEST_FOREIGN_HANDOFF="1")
    assert proc.returncode == 1, proc.stderr
    failed = [x for x in proc.stdout.splitlines() if ": FAILED " in x]
    assert len(failed) == 2 and all("belongs to another sweep (someone-elses-sweep" in x
                                    for x in failed), proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert jobs(store) == []
    (parent,) = parents(store)
    # the parent counts its own jobs that failed without a run (ffexp.tracking.tally)
    assert parent.info.status == "FINISHED"
    assert (parent.data.metrics["sweep/jobs"], parent.data.metrics["sweep/failed_without_run"]) \
        == (2, 2)


def _two_sweeps(tmp_path: Path, store: str, *args: str, **extra: str):
    """Two sweeps started at the same instant (different seeds, long enough to overlap)."""
    base = ["-m", *FAST, "train.epochs=200", "tracking.flush_seconds=0.3", *args]
    a = start(tmp_path, *base, "seed=0,1", uri=store, **extra)
    b = start(tmp_path, *base, "seed=2,3", uri=store, **extra)
    done = []
    for proc in (a, b):
        out, err = proc.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_two_sweeps_at_once_in_the_same_sweep_dir_one_is_refused(tmp_path, store, launcher):
    extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    a, b = _two_sweeps(tmp_path, store, f"hydra.sweep.dir={tmp_path / 'same'}", *extra)
    refused, ran = (a, b) if a.returncode == 2 else (b, a)
    ok(ran)
    line = _one_line_error(refused)
    assert f"hydra.sweep.dir={tmp_path / 'same'}: another sweep is running" in line
    (parent,) = parents(store)
    kids = _children(store, parent)
    assert len(kids) == len(jobs(store)) == 2  # the refused sweep recorded nothing
    assert {k.data.tags["ffexp.sweep_uid"] for k in kids} == {parent.data.tags["ffexp.sweep_uid"]}
    seeds = {k.data.params["seed"] for k in kids}
    assert seeds in ({"0", "1"}, {"2", "3"})
    statuses = [json.loads(p.read_text()) for p in (tmp_path / "same").rglob("ffexp_status.json")]
    assert sorted(s["run_id"] for s in statuses) == sorted(k.info.run_id for k in kids)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_two_sweeps_in_the_same_second_without_a_sweep_dir_run_apart(tmp_path, store, launcher):
    extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    # both compute multirun/2026-01-31/12-00-00 (Hydra's ${now:...} pinned)
    a, b = _two_sweeps(tmp_path, store, *extra, FFEXP_TEST_NOW="2026-01-31T12:00:00")
    ok(a), ok(b)
    dirs = sorted(p.name for p in (tmp_path / "multirun" / "2026-01-31").iterdir())
    assert dirs == ["12-00-00", "12-00-00-2"]
    moved = [p for p in (a, b) if "is in use by another sweep; this one runs in" in p.stdout]
    assert len(moved) == 1
    first, second = parents(store)
    assert first.data.tags["ffexp.sweep_uid"] != second.data.tags["ffexp.sweep_uid"]
    for parent in (first, second):
        kids = _children(store, parent)
        assert len(kids) == 2 and parent.data.metrics["sweep/finished"] == 2
        assert len({k.data.params["seed"] for k in kids}) == 2
        assert {k.data.tags["ffexp.sweep_id"] for k in kids} == {parent.data.tags["ffexp.sweep_id"]}
        assert {k.data.tags["ffexp.sweep_uid"] for k in kids} == \
            {parent.data.tags["ffexp.sweep_uid"]}
        seeds = {k.data.params["seed"] for k in kids}
        assert seeds in ({"0", "1"}, {"2", "3"})
    for d in dirs:
        statuses = list((tmp_path / "multirun" / "2026-01-31" / d).rglob("ffexp_status.json"))
        assert len(statuses) == 2
