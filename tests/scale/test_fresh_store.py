"""Independent ``ffexp`` processes started at once on a fresh default store: without a lock,
MLflow's schema migration races (mlflow #4123; 3 of 4 failed here, in alembic)."""

from __future__ import annotations

import subprocess

import pytest
from mlflow import MlflowClient

from helpers_scale import FFEXP, TINY, env_without_mlflow


@pytest.mark.slow
def test_single_runs_started_at_once_on_a_fresh_store(tmp_path):
    procs = [subprocess.Popen([FFEXP, f"seed={i}", "train.epochs=2", *TINY], cwd=tmp_path,
                              env=env_without_mlflow(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(3)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n".join(o[-2000:] for o in outputs)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiments = [e for e in client.search_experiments() if e.name != "Default"]
    assert [e.name for e in experiments] == ["moons"]  # one experiment, not one per process
    runs = client.search_runs([experiments[0].experiment_id])
    assert sorted(r.data.params["seed"] for r in runs) == ["0", "1", "2"]
    assert {r.info.status for r in runs} == {"FINISHED"}
