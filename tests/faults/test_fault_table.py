"""The fault suite's tables: each case is one line, run through the real ``ffexp`` command
against a real SQLite store read back with MLflow's client.

- ``REFUSED``: a command that cannot work (a tracking URI MLflow cannot record in or that does
  not answer, an experiment name over MLflow's limit, ``n_jobs`` below 1, a network that cannot
  fit in memory) ends in one ``ffexp: error:`` line naming the key and what is accepted, exit
  status 2, no traceback, and nothing created: no ``outputs/`` or ``multirun/`` folder, no
  store file, no run.
- ``SIGNALS``: a signal to a running single run or to a joblib sweep's launcher (SIGINT as
  Ctrl-C, SIGTERM, SIGKILL): every run of the jobs in flight ends KILLED, no worker outlives
  the launcher, and the console says which run was left in which state in one line.
- ``TOGETHER``: commands started at the same instant against one store (single runs and
  sweeps): every run keeps its own output folder, and each run's params are those of its own
  Hydra record.

To add a case, add a line to a table.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from faults_helpers import FAST, ffexp, jobs, ok, parents, runs, start

LONG_NAME = "x" * 501
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]

#: (id, arguments, what the one line must contain)
REFUSED = [
    ("uri-ftp", ["tracking.uri=ftp://x"],
     ["tracking.uri=ftp://x: not a store", "the scheme ftp://", "accepted: sqlite:///"]),
    ("uri-file", ["tracking.uri=file:///tmp/ffexp-mlruns"],
     ["tracking.uri=file:///tmp/ffexp-mlruns: not a store", "file store", "accepted: "]),
    ("uri-path", ["tracking.uri=./mlruns"], ["tracking.uri=./mlruns: not a store", "accepted: "]),
    ("uri-words", ["tracking.uri=not a uri"], ["tracking.uri=not a uri: not a store"]),
    ("uri-db-down", ["tracking.uri=postgresql://u:secret@127.0.0.1:1/db"],
     ["tracking.uri=postgresql://u:***@127.0.0.1:1/db: the database does not answer"]),
    ("uri-db-down-sweep", ["-m", "seed=0,1", "tracking.uri=postgresql://u:secret@127.0.0.1:1/db"],
     ["tracking.uri=postgresql://u:***@127.0.0.1:1/db: the database does not answer"]),
    ("uri-ftp-sweep", ["-m", "seed=0,1", "tracking.uri=ftp://x"],
     ["tracking.uri=ftp://x: not a store"]),
    ("long-name", [f"tracking.experiment={LONG_NAME}"],
     ["tracking.experiment=xxx", "1 to 500 characters", "this one has 501"]),
    ("long-name-sweep", ["-m", "seed=0,1", f"tracking.experiment={LONG_NAME}"],
     ["tracking.experiment=xxx", "1 to 500 characters"]),
    ("n-jobs-0", ["-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=0"],
     ["hydra.launcher.n_jobs=0", "positive integer, or -1"]),
    ("n-jobs-negative", ["-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=-3"],
     ["hydra.launcher.n_jobs=-3", "accepted: 1, 2, 3, ... or -1"]),
    ("too-big", ["model.hidden_sizes=[100000,100000]"],
     ["model.hidden_sizes=[100000,100000]", "10,000,", "parameters", "memory available"]),
]


def _command(*args: str) -> list[str]:
    """The arguments in order, a case's overriding the defaults before it, with ``-m`` first
    (Hydra's parser takes no flag after an override)."""
    return ["-m"] * ("-m" in args) + [a for a in args if a != "-m"]


@pytest.mark.parametrize("args, needles", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_in_one_line_with_nothing_created(tmp_path, store, args, needles):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    # the timeout only guards against a hang (an unreachable database: MLflow retries 2 min)
    proc = ffexp(cwd, *_command(*FAST, "train.epochs=3", *args), uri=store, timeout=300)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ffexp: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "secret" not in lines[0]           # a password is never printed
    assert list(cwd.iterdir()) == []          # no outputs/, multirun/, mlflow.db
    assert runs(store) == []


# ---- signals ---------------------------------------------------------------------------------

#: (id, arguments, signal, exit status, the one line's start)
SIGNALS = [
    ("run-ctrl-c", [], signal.SIGINT, -signal.SIGINT, "ffexp: interrupted (Ctrl-C): run "),
    ("run-sigterm", [], signal.SIGTERM, 128 + signal.SIGTERM,
     "ffexp: interrupted (SIGTERM): run "),
    ("joblib-sigterm", ["-m", "seed=0,1,2", *JOBLIB], signal.SIGTERM, 128 + signal.SIGTERM,
     "ffexp: interrupted (SIGTERM): sweep run "),
    ("joblib-ctrl-c", ["-m", "seed=0,1,2", *JOBLIB], signal.SIGINT, -signal.SIGINT,
     "ffexp: interrupted (Ctrl-C): sweep run "),
    ("joblib-sigkill", ["-m", "seed=0,1,2", *JOBLIB], signal.SIGKILL, -signal.SIGKILL, None),
]
#: how long a worker may outlive a launcher killed by SIGKILL (its watch looks every second)
ORPHAN_SECONDS = 60


def _in_flight(proc: subprocess.Popen, uri: str, n: int, timeout: float = 300) -> list:
    """Wait until ``n`` job runs exist and each has logged an epoch; those runs."""
    client = MlflowClient(uri)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            found = jobs(uri)
            if len(found) >= n and all(client.get_metric_history(r.info.run_id, "train/cost")
                                       for r in found):
                return found
        except Exception:  # noqa: BLE001 - the store is being created
            pass
        time.sleep(0.5)
    raise AssertionError(f"{n} jobs never logged an epoch")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.integration
@pytest.mark.parametrize("args, signum, status, line", [c[1:] for c in SIGNALS],
                         ids=[c[0] for c in SIGNALS])
def test_a_signal_leaves_every_run_closed_and_no_worker_behind(tmp_path, store, args, signum,
                                                               status, line):
    sweep = "-m" in args
    proc = start(tmp_path, *_command(*FAST, "train.epochs=100000", "tracking.flush_seconds=0.3",
                                     *args), uri=store)
    try:
        in_flight = _in_flight(proc, store, 2 if sweep else 1)
        pids = {int(r.data.tags["ffexp.pid"]) for r in in_flight}
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, (proc.returncode, out, err)
    assert "Traceback" not in out + err
    if line is not None:
        (said,) = [x for x in err.splitlines() if x.startswith("ffexp: interrupted")]
        assert said.startswith(line) and " is KILLED" in said, err
        if sweep:
            assert "its jobs' runs: 2 KILLED" in said and "skip_existing=true" in said
    deadline = time.monotonic() + ORPHAN_SECONDS
    while any(_alive(p) for p in pids - {proc.pid}) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [p for p in pids - {proc.pid} if _alive(p)], "a worker outlived its launcher"
    closed = {r.info.run_id: r for r in jobs(store)}
    for run in in_flight:
        assert closed[run.info.run_id].info.status == "KILLED", run.info.run_name
        assert closed[run.info.run_id].data.tags["ffexp.outcome"] == "killed"
    if sweep and signum != signal.SIGKILL:
        (parent,) = parents(store)
        assert parent.info.status == "KILLED"


# ---- the metrics helper killed ---------------------------------------------------------------


@pytest.mark.integration
def test_a_run_whose_metrics_helper_was_killed_says_how_many_values_it_lost(tmp_path, store):
    """The helper stores two batches and is SIGKILLed by the third: the run still ends
    FINISHED (its training did), but tag, description and console say how many values are
    missing, and that number is the history's cells minus the values stored."""
    proc = ok(ffexp(tmp_path, *FAST, "train.epochs=600", "tracking.flush_seconds=0.2",
                    uri=store, FFEXP_TEST_SENDER_SIGKILL="2"))
    (run,) = jobs(store)
    assert run.info.status == "FINISHED"
    lost = int(run.data.tags["ffexp.metrics_lost"])
    client = MlflowClient(store)
    with open(client.download_artifacts(run.info.run_id, "history.csv", str(tmp_path))) as f:
        rows = list(csv.DictReader(f))
    keys = [k for k in rows[0] if k != "epoch"]
    expected = sum(1 for row in rows for k in keys if row[k] != "")
    stored = sum(len(client.get_metric_history(run.info.run_id, k)) for k in keys)
    assert lost == expected - stored > 0
    assert f"{lost} metric value(s) could not be stored" in \
        run.data.tags["mlflow.note.content"]
    assert f"ffexp: warning: {lost} metric value(s) of run {run.info.run_id} could not be " \
           f"stored" in proc.stderr


# ---- together --------------------------------------------------------------------------------

#: (id, [commands started at once]); each command's seeds are its own
TOGETHER = [
    ("three-runs-one-second", [["seed=10"], ["seed=11"], ["seed=12"]]),
    ("runs-and-sweeps", [["seed=10"], ["seed=11"], ["-m", "seed=20,21"], ["-m", "seed=30,31"]]),
]


@pytest.mark.parametrize("commands", [c[1] for c in TOGETHER], ids=[c[0] for c in TOGETHER])
def test_commands_at_the_same_instant_keep_their_runs_apart(tmp_path, store, commands):
    """Every command computes the same default folder (Hydra's ``${now:...}`` pinned to one
    second): each single run gets its own ``outputs/<date>/<time>[-n]``, each run's seed is
    the one its Hydra record (the ``hydra/overrides.yaml`` artifact) says, and each status
    file names its own run."""
    procs = [start(tmp_path, *_command(*FAST, "train.epochs=3", "tracking.log_plots=false",
                                       *args), uri=store, FFEXP_TEST_NOW="2026-01-31T12:00:00")
             for args in commands]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, (p.args, out, err)
    singles = sum("-m" not in args for args in commands)
    folders = sorted(p.name for p in (tmp_path / "outputs" / "2026-01-31").iterdir())
    assert folders == ["12-00-00", *(f"12-00-00-{n}" for n in range(2, singles + 1))]
    client = MlflowClient(store)
    seeds = [v for args in commands for a in args if a.startswith("seed=")
             for v in a.split("=", 1)[1].split(",")]
    found = jobs(store)
    assert sorted(r.data.params["seed"] for r in found) == sorted(seeds)
    for run in found:
        path = client.download_artifacts(run.info.run_id, "hydra/overrides.yaml", str(tmp_path /
                                         run.info.run_id))
        overrides = yaml.safe_load(Path(path).read_text())
        assert f"seed={run.data.params['seed']}" in overrides, (run.data.params, overrides)
        assert run.info.status == "FINISHED"
    statuses = [yaml.safe_load(p.read_text()) for p in tmp_path.rglob("ffexp_status.json")]
    assert sorted(s["run_id"] for s in statuses) == sorted(r.info.run_id for r in found)


def test_numerically_equal_values_are_one_config_for_skip_existing(tmp_path, store):
    """``noise=1`` and ``noise=1.0`` train the same thing: the second is skipped."""
    ok(ffexp(tmp_path, *FAST, "train.epochs=3", "dataset.params.noise=1",
             "tracking.skip_existing=true", uri=store))
    again = ok(ffexp(tmp_path, *FAST, "train.epochs=3", "dataset.params.noise=1.0",
                     "tracking.skip_existing=true", uri=store))
    (run,) = jobs(store)
    assert f"ffexp: skipped: run {run.info.run_id} already finished this config" in again.stdout
