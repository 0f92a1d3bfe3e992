"""At scale (issue 30, item 6): the reliability issue's sweep of tiny jobs (seeds x 1 and 3
epochs, tests/scale/helpers_scale.sweep_args) on the local SLURM cluster
(scripts/slurm-local, accounting on: two tasks at once) against ``mlflow server`` on
PostgreSQL 15; PostgreSQL is stopped for 20 s while the array runs and two running array
tasks are ``scancel``led; then the documented resume (the same command with
``tracking.skip_existing=true``). It must end with every config FINISHED exactly once, no run
created twice (one run per ``ffexp.run_key``, one FINISHED run per ``ffexp.config_hash``),
and both parents' summaries counting what happened. Prints jobs per minute of both passes
with the load average.

    pytest -m slow -s tests/scale/test_at_scale.py                       # 40 jobs
    FFEXP_SCALE_JOBS=1000 pytest -m slow -s tests/scale/test_at_scale.py  # docs/scaling.md
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow import MlflowClient

from helpers_scale import FFEXP, SERVER_OPTS, MlflowServer, env_without_mlflow, sweep_args

pytestmark = pytest.mark.slow

N_JOBS = int(os.environ.get("FFEXP_SCALE_JOBS", "40"))
#: the array's own limit on this machine, and the tiny jobs' pace under load: an hour per 100
TIMEOUT = 600 + 36 * N_JOBS
OUTAGE_S = 20


def _statuses(sweep_dir: Path) -> dict[int, dict]:
    """job number -> its status record (those written so far)."""
    out = {}
    for p in sweep_dir.glob("*/ffexp_status.json"):
        try:
            record = json.loads(p.read_text())
        except (OSError, ValueError):
            continue  # being written
        out[int(p.parent.name)] = record
    return out


def _sweep_dir(cwd: Path, proc: subprocess.Popen, timeout: float = 600) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(cwd.glob("multirun/*/*/mlflow_sweep.json"))
        if found:
            return found[0].parent
        assert proc.poll() is None, "the sweep ended before it wrote mlflow_sweep.json"
        time.sleep(1)
    pytest.fail("no mlflow_sweep.json")


def _wait(predicate, proc: subprocess.Popen | None, what: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the sweep ended (exit {proc.returncode}) before {what}")
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what}")


def _array_id(sweep_dir: Path) -> str | None:
    ids = {p.name.split("_")[0] for p in (sweep_dir / ".submitit").glob("[0-9]*")}
    return ids.pop() if len(ids) == 1 else None


def _squeue(array: str, *states: str) -> list[str]:
    """The array's tasks in SLURM's queue (in ``states``), as ``<array>_<k>``."""
    out = subprocess.run(["squeue", "-h", "-r", "-j", array, "-o", "%i",
                          *(["-t", ",".join(states)] if states else [])],
                         capture_output=True, text=True).stdout
    return out.split()


def _sacct(array: str) -> dict[str, str]:
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", array],
                         capture_output=True, text=True, check=True).stdout
    return {task: state.split()[0] for task, state in (ln.split("|", 1)
                                                       for ln in out.splitlines())}


def _scancel_a_training_task(sweep_dir: Path, array: str, proc, exclude: set[str]) -> str:
    """``scancel`` one RUNNING task whose job has started (its log says its settings) and not
    ended (no status file yet); its id."""
    def started(k: int) -> bool:
        try:
            return "settings:" in (sweep_dir / str(k) / "ffexp.log").read_text()
        except OSError:
            return False

    def candidate():
        ended = _statuses(sweep_dir)
        for task in _squeue(array, "RUNNING"):
            k = int(task.split("_")[1])
            if task not in exclude and k not in ended and started(k):
                return task
        return None
    task = _wait(candidate, proc, "a running task to cancel")
    subprocess.run(["scancel", task], check=True)
    return task


def _loads() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _run_key_and_hash_counts(uri: str):
    client = MlflowClient(uri)
    exps = [e.experiment_id for e in client.search_experiments() if e.name != "Default"]
    assert len(exps) == 1, exps
    runs = client.search_runs(exps, max_results=50000)
    parents = [r for r in runs if r.data.tags.get("ffexp.kind") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def test_sweep_at_scale_on_slurm_and_postgres_with_an_outage_and_two_scancels(
        tmp_path, postgres, cluster):
    n = N_JOBS
    args = [*sweep_args(n, launcher="ffexp_slurm"), "hydra.launcher.timeout_min=60",
            "tracking.log_model=false", "tracking.log_plots=false", "tracking.snapshots=0"]
    print(f"\nat scale: {n} jobs on SLURM (2 tasks at once), mlflow server on PostgreSQL 15; "
          f"load average at start {_loads()}")
    with MlflowServer(tmp_path / "server", *SERVER_OPTS, backend=postgres.uri) as server:
        cmd = [FFEXP, *args, f"tracking.uri={server.uri}"]
        out1 = open(tmp_path / "pass1.out", "w")
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env_without_mlflow(), stdout=out1,
                                stderr=subprocess.STDOUT, text=True)
        try:
            sweep = _sweep_dir(tmp_path, proc)
            array = _wait(lambda: _array_id(sweep), proc, "the SLURM array")
            # PostgreSQL stopped for 20 s once a tenth of the jobs ended
            _wait(lambda: len(_statuses(sweep)) >= max(2, n // 10), proc, "a tenth of the jobs")
            postgres.stop()
            t_down = time.monotonic()
            time.sleep(OUTAGE_S)
            postgres.start()
            down = time.monotonic() - t_down
            print(f"PostgreSQL down {down:.1f} s, {len(_statuses(sweep))} jobs ended before, "
                  f"at {t_down - t0:.0f} s")
            # two scancels of running tasks, once a third of the jobs ended
            _wait(lambda: len(_statuses(sweep)) >= max(4, n // 3), proc, "a third of the jobs")
            first = _scancel_a_training_task(sweep, array, proc, set())
            # (the submitter may stop at the first one meanwhile: the array runs on)
            second = _scancel_a_training_task(sweep, array, None, {first})
            cancelled = {first, second}
            print(f"scancel {first}, scancel {second} at {time.monotonic() - t0:.0f} s")
            code = proc.wait(timeout=TIMEOUT)
            t_submitter = time.monotonic() - t0
            # the array's other tasks run on after the submitter stopped; then it is empty
            _wait(lambda: not _squeue(array), None, "the array to end")
            pass1_s = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
            out1.close()
        text1 = (tmp_path / "pass1.out").read_text()
        errors = [ln for ln in text1.splitlines() if ln.startswith("ffexp: error")]
        states = _sacct(array)
        ended = _statuses(sweep)
        ok1 = sum(r["status"] == "ok" for r in ended.values())
        parents, children = _run_key_and_hash_counts(server.uri)
        (parent1,) = parents
        pm = parent1.data.metrics
        summary1 = MlflowClient(server.uri).get_run(parent1.info.run_id).data.tags[
            "ffexp.summary"]
        print(f"first pass: submitter exited {code} after {t_submitter:.0f} s ({errors}); "
              f"array ended after {pass1_s:.0f} s; {len(ended)} status files, {ok1} ok: "
              f"{ok1 / pass1_s * 60:.1f} jobs/min; load average {_loads()}")
        print(f"first parent: {summary1}")
        finished1 = [c for c in children if c.info.status == "FINISHED"]

        # the documented resume: the same command with tracking.skip_existing=true
        t1 = time.monotonic()
        proc2 = subprocess.run([*cmd, "tracking.skip_existing=true"], cwd=tmp_path,
                               env=env_without_mlflow(), capture_output=True, text=True,
                               timeout=TIMEOUT)
        pass2_s = time.monotonic() - t1
        assert proc2.returncode == 0, proc2.stdout[-3000:] + proc2.stderr[-3000:]
        rerun = n - ok1
        assert (f"{n} job(s) done ({ok1} skipped: finished before; "
                in proc2.stdout), proc2.stdout[-2000:]
        parents, children = _run_key_and_hash_counts(server.uri)
        parent2 = next(p for p in parents if p.info.run_id != parent1.info.run_id)
        summary2 = parent2.data.tags["ffexp.summary"]
        print(f"resume: {rerun} jobs run, {ok1} skipped before submission, {pass2_s:.0f} s: "
              f"{rerun / pass2_s * 60:.1f} jobs/min; load average {_loads()}")
        print(f"resume's parent: {summary2}")

    # every config FINISHED once; no run created twice
    finished = [c for c in children if c.info.status == "FINISHED"]
    by_hash = Counter(c.data.tags["ffexp.config_hash"] for c in finished)
    by_key = Counter(c.data.tags["ffexp.run_key"] for c in children)
    by_status = Counter(c.info.status for c in children)
    twice = sum(v > 1 for v in by_hash.values())

    def under(parent) -> int:
        return sum(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in finished)
    print(f"at scale: {len(finished)} FINISHED runs of {len(by_hash)} configs "
          f"({twice} config(s) FINISHED twice); {len(children)} child runs "
          f"({dict(by_status)}); {sum(v > 1 for v in by_key.values())} run key(s) on two "
          f"runs; FINISHED under the first parent {under(parent1)}, under the resume's "
          f"{under(parent2)}")
    assert len(finished) == len(by_hash) == n and twice == 0
    assert max(by_key.values()) == 1
    # the cancelled jobs' runs (if they had one yet) are KILLED; nothing else is left over
    killed = by_status.get("KILLED", 0)
    assert killed <= 2 and len(children) == n + killed, dict(by_status)
    m2 = parent2.data.metrics
    assert (m2["sweep/finished"], m2["sweep/skipped"], m2["sweep/failed"],
            m2["sweep/killed"]) == (rerun, ok1, 0, 0)
    assert parent2.info.status == "FINISHED"
    # the first pass: the submitter stopped at the first cancelled task, in one line
    assert code == 1, text1[-3000:]
    assert len(errors) == 1 and "CANCELLED" in errors[0], errors
    assert "Traceback" not in text1, text1[-3000:]
    assert sorted(t for t, s in states.items() if s == "CANCELLED") == sorted(cancelled)
    # the first parent's count is the store's: every ended job, the cancelled ones killed
    assert pm["sweep/finished"] == len(finished1) == ok1
    assert pm["sweep/ended"] + pm["sweep/not_ended"] == n
    assert pm["sweep/ended"] == len(ended)
    assert pm["sweep/failed"] == 0
    assert pm["sweep/killed"] == sum(r["status"] == "killed" for r in ended.values()) == 2
    assert {int(t.split("_")[1]) for t in cancelled} == {k for k, r in ended.items()
                                                        if r["status"] == "killed"}
