"""Reproducibility across launchers: a job run alone and the same job inside a parallel sweep
(joblib, 2 workers, reused processes) log bit-identical metric histories."""

from __future__ import annotations

import shutil

import pytest

from faults_helpers import FAST, ffexp, histories, jobs, ok


@pytest.mark.slow
def test_same_job_alone_and_in_a_joblib_sweep_logs_identical_histories(tmp_path, template_db):
    alone, swept = tmp_path / "alone", tmp_path / "swept"
    for d in (alone, swept):
        d.mkdir()
        shutil.copy(template_db, d / "mlflow.db")
    job = [*FAST, "train.epochs=25", "activation=tanh"]
    ok(ffexp(alone, *job, "seed=1", uri=f"sqlite:///{alone / 'mlflow.db'}"))
    ok(ffexp(swept, "-m", *job, "seed=0,1,2,3", "hydra/launcher=joblib",
             "hydra.launcher.n_jobs=2", uri=f"sqlite:///{swept / 'mlflow.db'}"))
    (a,) = jobs(f"sqlite:///{alone / 'mlflow.db'}")
    (b,) = [r for r in jobs(f"sqlite:///{swept / 'mlflow.db'}") if r.data.params["seed"] == "1"]
    assert a.data.tags["ffexp.config_hash"] == b.data.tags["ffexp.config_hash"]
    ha = histories(f"sqlite:///{alone / 'mlflow.db'}", a.info.run_id)
    hb = histories(f"sqlite:///{swept / 'mlflow.db'}", b.info.run_id)
    assert len(ha) > 20 and "grad_norm/Z1" in ha and "val/accuracy" in ha
    assert ha.keys() == hb.keys()
    for name in ha:  # bit-identical: == on floats, not approx
        assert ha[name] == hb[name], name
    # step 0 (the network before any update), then the 25 epochs
    assert [step for step, _ in ha["train/cost"]] == list(range(26))
