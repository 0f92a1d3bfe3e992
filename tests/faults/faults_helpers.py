"""The real ``ffexp`` command in subprocesses, with the test-only faults of plugin/ on its
PYTHONPATH, and the store read back through MLflow's client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ffexp_command

FFEXP = ffexp_command.FFEXP
PLUGIN = str(Path(__file__).with_name("plugin"))
#: a small, fast job; tests add what they vary
FAST = ["model.hidden_sizes=[8,8]", "dataset.params.n_samples=200", "tracking.log_plots=false",
        "tracking.log_model=false"]


def env(uri: str | None = None, **extra: str) -> dict:
    path = os.pathsep.join(p for p in (PLUGIN, os.environ.get("PYTHONPATH")) if p)
    return ffexp_command.command_env(uri, drop=("MLFLOW_", "FFEXP_"),
                                     **{"PYTHONPATH": path, **extra})


def default_sigint() -> None:
    """In a child about to start: Ctrl-C (SIGINT) acts as at a terminal. A process started
    with SIGINT ignored (pytest run in the background by a non-interactive shell, ``cmd &``)
    passes that on, and Python then installs no KeyboardInterrupt handler: a test's SIGINT
    would be ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(cwd: Path, *args: str, uri: str | None = None, **extra: str) -> subprocess.Popen:
    return ffexp_command.start(cwd, *args, env=env(uri, **extra), preexec_fn=default_sigint)


def ffexp(cwd: Path, *args: str, uri: str | None = None, timeout: float = 300,
          **extra: str) -> subprocess.CompletedProcess:
    return ffexp_command.run(cwd, *args, env=env(uri, **extra), timeout=timeout)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def runs(uri: str) -> list:
    from mlflow import MlflowClient
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, max_results=1000) if ids else []


def jobs(uri: str) -> list:
    """The job runs (not the sweep parents)."""
    return [r for r in runs(uri) if r.data.tags.get("ffexp.kind") != "sweep"]


def parents(uri: str) -> list:
    """Sweep parent runs, oldest first."""
    return sorted((r for r in runs(uri) if r.data.tags.get("ffexp.kind") == "sweep"),
                  key=lambda r: r.info.start_time)


def wait_for_history(proc: subprocess.Popen, uri: str, n_runs: int = 1,
                     timeout: float = 120) -> list:
    """Wait until ``n_runs`` job runs exist and the last has logged an epoch; their runs."""
    from mlflow import MlflowClient
    client = MlflowClient(uri)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(jobs(uri), key=lambda r: r.info.start_time)
        if len(found) >= n_runs and \
                client.get_metric_history(found[-1].info.run_id, "train/cost"):
            return found
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.3)
    raise AssertionError("the job never logged an epoch")


def histories(uri: str, run_id: str) -> dict[str, list[tuple[int, float]]]:
    """Every metric's history (step, value), except time/*."""
    from mlflow import MlflowClient
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    return {k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k))
            for k in run.data.metrics if not k.startswith("time/")}
