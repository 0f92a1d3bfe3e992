"""ffexp._compat.joblib_workers: a joblib sweep's jobs run in the worker processes started while the
launching process checked the sweep (joblib reused its pool), through the real command; a
sweep refused before its launch ends them; another launcher starts none."""

from __future__ import annotations

import importlib.util
import os
import re
import time
from pathlib import Path

import pytest

from ffexp._compat import joblib_workers as workers

from conftest import ffexp, statuses

SWEEP = ["-m", "activation=sigmoid,tanh", "init=random,xavier", "seed=0", "train.epochs=2",
         "model.hidden_sizes=[4]", "tracking.enabled=false", "hydra/launcher=joblib",
         "hydra.launcher.n_jobs=2", "hydra.verbose=ffexp._compat.joblib_workers"]


def test_a_joblib_sweeps_jobs_run_in_the_workers_started_during_its_check(tmp_path):
    done = ffexp(*SWEEP, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ready = re.search(r"joblib workers ready before the launch: pids ([\d ]+)",
                      done.stdout + done.stderr)
    assert ready, done.stdout + done.stderr
    started = {int(p) for p in ready.group(1).split()}
    ran = {record["pid"] for record in statuses(tmp_path / "multirun")}
    assert len(statuses(tmp_path / "multirun")) == 4
    # the launcher's Parallel reused the pool: a job ran in every process that started ahead
    assert started <= ran and len(ran) <= 2 and os.getpid() not in ran, (started, ran)


def _workers() -> set[int]:
    """This process's live loky workers (from /proc; not loky's resource trackers, which live
    as long as the process)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and b"LokyProcess" in command:
            found.add(int(stat.parent.name))
    return found


def _until(condition, seconds: float = 60.0) -> bool:
    """Whether ``condition()`` holds within ``seconds`` (a liveness bound, not a speed one)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_sweep_refused_before_its_launch_ends_the_workers(hydra_conf):
    before = _workers()
    config = hydra_conf(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                        return_hydra_config=True)
    workers.start(config, modules=["ffexp.job.app"])
    try:
        assert _until(lambda: len(_workers() - before) >= 2)
        started = _workers() - before
    finally:
        workers.stop()
    assert not workers._STARTING
    # idle loky workers would live on for 300 s; these are ended now
    assert _until(lambda: not (started & _workers())), started & _workers()


@pytest.mark.parametrize("launcher", ["basic", "submitit_local"])
def test_another_launcher_starts_no_worker(hydra_conf, launcher):
    config = hydra_conf([f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert workers.parallel_args(config) is None
    workers.start(config)
    assert not workers._STARTING


def test_a_workers_first_task_imports_what_a_job_of_the_sweep_imports(hydra_conf):
    untracked = workers.job_modules(hydra_conf(["tracking.enabled=false"]))
    tracked = workers.job_modules(hydra_conf([]))
    server = workers.job_modules(hydra_conf(["tracking.uri=http://127.0.0.1:5000"]))
    assert "ffexp.launch.main" in untracked and "sklearn.model_selection" in untracked
    assert not [m for m in untracked if m.startswith(("mlflow", "ffexp.plots.figures"))]
    assert {"mlflow.tracking", "ffexp.plots.figures", "mlflow.store.tracking.sqlalchemy_store"} <= \
        set(tracked)
    assert "mlflow.store.tracking.sqlalchemy_store" not in server and "ffexp.plots.figures" in server
    # a misspelled module would end the workers' start in the thread, with a debug line only
    assert all(importlib.util.find_spec(m) is not None for m in tracked)


def test_a_worker_freezes_its_imports_at_its_second_job_and_still_collects_a_jobs_garbage():
    """``settle`` (at the start of a worker's jobs): the objects alive at the second job's
    start leave the collector's reach, the imports of the first job included; the first and
    later jobs freeze nothing; cyclic garbage made after it is collected as before. In a fresh
    interpreter (freezing is for the whole process)."""
    import subprocess
    import sys
    code = """
import gc, weakref
from ffexp._compat import joblib_workers as workers
import ffexp.launch.main
counts = []
for _ in range(3):
    workers.settle()
    counts.append(gc.get_freeze_count())
    import sklearn.preprocessing   # what a first job imports on its way
class Node: pass
a, b = Node(), Node()
a.other, b.other = b, a        # a cycle: only the collector frees it
alive = weakref.ref(a)
del a, b
gc.collect()
print(counts, alive() is None)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    counts, collected = done.stdout.strip().rsplit(" ", 1)
    first, second, third = eval(counts)
    assert first == 0 and 10_000 < second == third, counts   # the second froze the imports
    assert collected == "True"
