"""Store faults on a real small filesystem (tmpfs of a few MiB, mounted here; skipped where
mounting is not allowed): a full disk under the SQLite store or under the artifacts, and a
read-only store. Each job ends in one line naming the store and the cause, no traceback or SQL
reaches the console, no run is left RUNNING without the line saying so, and after space is
freed the same command with tracking.skip_existing=true completes the sweep."""

from __future__ import annotations

import re
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
from mlflow import MlflowClient

from faults_helpers import FAST, ffexp, jobs, ok


@contextmanager
def small_fs(where: Path, size: str, *options: str):
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]),
                           "tmpfs", str(where)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(folder: Path, leave: int) -> Path:
    """A filler file that leaves about ``leave`` bytes free in ``folder``'s filesystem."""
    free = shutil.disk_usage(folder).free
    filler = folder / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


def _console_is_clean(proc) -> None:
    text = proc.stdout + proc.stderr
    for bad in ("Traceback", "[SQL:", "INSERT INTO", "sqlalche.me", "[parameters:"):
        assert bad not in text, (bad, text[-3000:])


@pytest.mark.slow
def test_a_full_disk_under_the_sqlite_store(tmp_path, template_db):
    with small_fs(tmp_path / "small", "16m") as small:
        shutil.copy(template_db, small / "mlflow.db")
        uri = f"sqlite:///{small / 'mlflow.db'}"
        filler = _fill(small, leave=300 * 1024)
        sweep = ["-m", *FAST, "tracking.snapshots=0", "train.epochs=30", "seed=0,1,2,3,4,5",
                 "tracking.skip_existing=true"]
        proc = ffexp(tmp_path, *sweep, uri=uri, timeout=900)
        assert proc.returncode == 1, (proc.stdout[-3000:], proc.stderr[-3000:])
        _console_is_clean(proc)
        failed = [x for x in proc.stdout.splitlines() if re.match(r"\[job \d+\] .*: FAILED ", x)]
        assert failed, proc.stdout
        for line in failed:
            assert f"the MLflow store {uri} failed: the disk is full" in line, line
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith(f"ffexp: {len(failed)} of 6 jobs failed: [job ")
        # a run left RUNNING is one the line said so of; the others are closed
        said_running = set(re.findall(r"run (\w{32}) left RUNNING", proc.stdout))
        for run in jobs(uri):
            if run.info.status == "RUNNING":
                assert run.info.run_id in said_running
        for run_id in set(re.findall(r"run (\w{32}) closed FAILED", proc.stdout)):
            closed = MlflowClient(uri).get_run(run_id)
            assert closed.info.status == "FAILED"

        filler.unlink()  # space freed: the same command completes the sweep
        again = ok(ffexp(tmp_path, *sweep, uri=uri, timeout=900))
        _console_is_clean(again)
        finished = [r for r in jobs(uri) if r.info.status == "FINISHED"]
        assert sorted(r.data.params["seed"] for r in finished) == [str(s) for s in range(6)]
        assert not [r for r in jobs(uri) if r.info.status == "RUNNING"]


@pytest.mark.slow
def test_no_space_for_the_artifacts_closes_the_run_failed_with_the_cause(tmp_path, store):
    with small_fs(tmp_path / "tiny", "256k") as tiny:
        client = MlflowClient(store)
        client.create_experiment("tiny_artifacts", artifact_location=tiny.as_uri())
        _fill(tiny, leave=0)
        proc = ffexp(tmp_path, *FAST[:2], "train.epochs=5", "tracking.experiment=tiny_artifacts",
                     uri=store)
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        _console_is_clean(proc)
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith(f"ffexp: error: the MLflow store {store} failed: the disk is full")
        (run,) = jobs(store)
        assert line.endswith(f"run {run.info.run_id} closed FAILED")
        assert run.info.status == "FAILED"
        assert run.data.tags["ffexp.error"].startswith("the MLflow store failed: the disk is full")


@pytest.mark.slow
def test_a_read_only_store_is_refused_before_any_run(tmp_path, template_db):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(template_db, src / "mlflow.db")
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "--bind", str(src), str(ro)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)],
                          capture_output=True).returncode:
            pytest.skip("cannot remount read-only here")
        uri = f"sqlite:///{ro / 'mlflow.db'}"
        for args in ([], ["-m", "seed=0,1"]):
            proc = ffexp(tmp_path, *args, *FAST, "train.epochs=2", uri=uri)
            assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
            (line,) = proc.stderr.strip().splitlines()
            assert line.startswith(f"ffexp: error: tracking.uri={uri}: the store ") and \
                "cannot be written" in line
        assert jobs(f"sqlite:///{src / 'mlflow.db'}") == []
    finally:
        subprocess.run(["umount", "-l", str(ro)], capture_output=True)
