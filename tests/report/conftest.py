"""Stores for the report tests, built once in a temporary directory.

``real_sweep``: the real ``ffexp -m`` command, 2 activations × 2 inits × 2 seeds, 3 epochs, into a
fresh SQLite store. ``mixed_store``: a sweep written by hand through MlflowClient exactly as the
contract says, where one job failed, one diverged and one ran from another commit with more
epochs — cases the real command cannot produce on demand (uncontrolled comparison, outcome counts).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import ffexp_command
import pytest
from mlflow import MlflowClient

from .contract_store import write_sweep

PY = sys.executable
REPORT = [PY, "-m", "ffexp.report.cli"]
FFEXP = shutil.which("ffexp", path=str(Path(PY).parent)) or "ffexp"
SWEEP = ["activation=relu,tanh", "init=he,xavier", "seed=0,1", "train.epochs=3"]


@pytest.fixture(scope="session")
def real_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    uri = f"sqlite:///{root}/mlflow.db"
    # the environment of a fresh shell: no store, switch or command line a test of this
    # process may have left in os.environ (an in-process ffexp sets FFEXP_COMMAND_LINE)
    done = subprocess.run([FFEXP, "-m", *SWEEP, f"tracking.uri={uri}"], cwd=root,
                          capture_output=True, text=True, timeout=600,
                          env=ffexp_command.command_env(drop=("MLFLOW_", "FFEXP_"),
                                                        HYDRA_FULL_ERROR="0"))
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parents = [r.info.run_id for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, "the sweep should have one parent run"
    children = sorted(r.info.run_id for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0])
    assert len(children) == 8
    return {"root": root, "uri": uri, "parent": parents[0], "children": children}


@pytest.fixture(scope="module")
def mixed_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    uri = f"sqlite:///{root}/mlflow.db"
    special = {("relu", "he", 1): {"status": "FAILED", "outcome": "failed"},
               ("tanh", "xavier", 0): {"outcome": "diverged"},
               ("tanh", "he", 1): {"commit": "def5678", "epochs": 7},
               ("relu", "xavier", 1): {"status": "RUNNING"}}
    parent, children = write_sweep(uri, (root / "artifacts").as_uri(), seeds=(0, 1, 2),
                                   special=special)
    return {"root": root, "uri": uri, "parent": parent, "children": children}
