"""Helpers of the tracking tests: the real ``ffexp`` command in a subprocess, and the runs of a
store read back through MLflow's client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ffexp_command

FFEXP = ffexp_command.FFEXP
#: a small, fast job; tests add what they vary
FAST = ["model.hidden_sizes=[8,8]", "dataset.params.n_samples=200"]


def ffexp_env(uri: str | None = None, **extra: str) -> dict:
    return ffexp_command.command_env(uri, **extra)


def run_ffexp(cwd: Path, *args: str, uri: str | None = None, check: bool = True,
              timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    return ffexp_command.run(cwd, *args, env=ffexp_env(uri, **(env or {})), timeout=timeout,
                             check=check)


def all_runs(uri: str) -> list:
    from mlflow import MlflowClient
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, max_results=1000) if ids else []
