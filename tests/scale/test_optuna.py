"""A real small Optuna study through the shipped search (``+hparams_search=optuna``, the
``ffexp[optuna]`` extra): one child run per trial, named by its sampled values; the parent
records the best trial and Optuna's trials table; a failing trial is a FAIL trial and the
study goes on; a resumed study gets the skipped trials' recorded values. Slow.
"""

from __future__ import annotations

import io

import pandas as pd
import pytest
from mlflow import MlflowClient

from helpers_scale import TINY, run_ffexp

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="the ffexp[optuna] extra")

N_TRIALS = 4
#: batch_size 0 is refused before training (a failed job): the study must go on
ARGS = ["-m", "+hparams_search=optuna", f"hydra.sweeper.n_trials={N_TRIALS}",
        "optimizer.batch_size=choice(0,32)", "train.epochs=3", *TINY]


def _study(uri: str, parent_id: str | None = None):
    client = MlflowClient(uri)
    exps = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(exps, max_results=1000)
    parents = [r for r in runs if r.data.tags.get("ffexp.kind") == "sweep"]
    parent = max(parents, key=lambda r: r.info.start_time)
    children = [r for r in runs
                if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    text = client.download_artifacts(parent.info.run_id, "optuna/trials.csv")
    return parent, children, pd.read_csv(io.StringIO(open(text).read()))


@pytest.mark.slow
@pytest.mark.integration
def test_optuna_study_records_trials_best_and_failures(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc, _ = run_ffexp(tmp_path, ARGS, uri, check=False)
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    parent, children, trials = _study(uri)

    # the direction came from the task (moons: val/accuracy), nobody said "maximize"
    assert parent.data.tags["ffexp.optuna.direction"] == "maximize"
    assert len(trials) == N_TRIALS
    failed = trials[trials["params_optimizer.batch_size"] == 0]
    ok = trials[trials["params_optimizer.batch_size"] == 32]
    assert len(failed) and len(ok), trials  # the sampler (seed 0) tried both
    assert set(failed["state"]) == {"FAIL"} and set(ok["state"]) == {"COMPLETE"}
    assert proc.returncode == 1 and "FAILED" in proc.stdout  # the sweep names its failures

    # one child per trial that got past its checks, each named by its sampled values
    assert len(children) == len(ok)
    names = [c.info.run_name for c in children]
    assert len(set(names)) == len(names), names
    for c in children:
        assert "batch_size=32" in c.info.run_name and "lr=" in c.info.run_name, c.info.run_name
        assert c.data.params["activation"] in c.info.run_name
        assert c.data.params["hidden_sizes"].replace(" ", "") in c.info.run_name.replace(" ", "")
        assert f"lr={float(c.data.params['lr']):.4g}" in c.info.run_name, c.info.run_name

    # the best trial: Optuna's value is the best child's val/accuracy, and it points at it
    values = {c.info.run_id: c.data.metrics["val/accuracy"] for c in children}
    best = max(values.values())
    assert parent.data.metrics["optuna/best_value"] == best == ok["value"].max()
    assert values[parent.data.tags["ffexp.optuna.best_run_id"]] == best
    assert parent.data.metrics["optuna/trials_failed"] == len(failed)

    # resume: the same command with skip_existing samples the same trials (same seed, same
    # values told); those that finished are skipped and told the values they recorded
    proc, _ = run_ffexp(tmp_path, [*ARGS, "tracking.skip_existing=true"], uri, check=False)
    again, _, trials_again = _study(uri)
    assert again.info.run_id != parent.info.run_id
    assert "skipped" in proc.stdout
    pd.testing.assert_series_equal(trials_again["value"], trials["value"])
    assert list(trials_again["state"]) == list(trials["state"])
