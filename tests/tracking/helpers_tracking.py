"""Helpers of the tracking tests: the real ``ffexp`` command in a subprocess, and the runs of a
store read back through MLflow's client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FFEXP = str(Path(sys.executable).with_name("ffexp"))
#: a small, fast job; tests add what they vary
FAST = ["model.hidden_sizes=[8,8]", "dataset.params.n_samples=200"]


def ffexp_env(uri: str | None = None, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    if uri:
        env["MLFLOW_TRACKING_URI"] = uri
    return {**env, **extra}


def run_ffexp(cwd: Path, *args: str, uri: str | None = None, check: bool = True,
              timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([FFEXP, *args], cwd=cwd, env=ffexp_env(uri, **(env or {})),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"ffexp {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def all_runs(uri: str) -> list:
    from mlflow import MlflowClient
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, max_results=1000) if ids else []
