"""Stores for the report tests, built once per module in a temporary directory.

``sweep_store``: a 2 activations × 2 inits × 2 seeds sweep written by hand through MlflowClient
as the contract says. ``mixed_store``: the same sweep where one job failed, one diverged and one
ran from another commit with more epochs — cases the real command cannot produce on demand.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .contract_store import write_sweep

PY = sys.executable
REPORT = [PY, "-m", "ffexp.report.cli"]


def run_report(*args: str, cwd: Path | None = None, env=None) -> subprocess.CompletedProcess:
    """ffexp-report in a subprocess (the real console entry point's code path)."""
    return subprocess.run([*REPORT, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def sweep_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    uri = f"sqlite:///{root}/mlflow.db"
    parent, children = write_sweep(uri, (root / "artifacts").as_uri())
    return {"root": root, "uri": uri, "parent": parent, "children": children}


@pytest.fixture(scope="module")
def mixed_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    uri = f"sqlite:///{root}/mlflow.db"
    special = {("relu", "he", 1): {"status": "FAILED", "outcome": "failed"},
               ("tanh", "xavier", 0): {"outcome": "diverged"},
               ("tanh", "he", 1): {"commit": "def5678", "epochs": 7}}
    parent, children = write_sweep(uri, (root / "artifacts").as_uri(), special=special)
    return {"root": root, "uri": uri, "parent": parent, "children": children}
