"""Multiruns through the real ``ffexp -m``: one parent run, its children, the summary."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from mlflow import MlflowClient

from helpers_tracking import FAST, all_runs, ffexp_env, run_ffexp

SWEEP = ["activation=relu,tanh", "init=he,xavier", "train.epochs=4", *FAST]


def parent_and_children(uri: str):
    runs = all_runs(uri)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in parents]
    (parent,) = parents
    children = [r for r in runs if r is not parent]
    return parent, children


def check_sweep(uri: str, n_children: int = 4):
    parent, children = parent_and_children(uri)
    pid = parent.info.run_id
    assert len(children) == n_children
    assert all(c.data.tags["mlflow.parentRunId"] == pid for c in children)
    assert {c.info.experiment_id for c in children} == {parent.info.experiment_id}
    assert {c.data.tags["ffexp.sweep_id"] for c in children} == {parent.data.tags["ffexp.sweep_id"]}
    assert len({c.info.run_name for c in children}) == n_children  # names never collide
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name.startswith("sweep·moons·")
    assert parent.data.tags["ffexp.n_jobs"] == str(n_children)
    assert "-m" in parent.data.tags["ffexp.command_line"]
    return parent, children


def test_2x2_sweep_parent_children_summary(tmp_path, store):
    # a stray MLFLOW_RUN_ID would override the parent of every child (mlflow #15713)
    run_ffexp(tmp_path, "-m", *SWEEP, uri=store, env={"MLFLOW_RUN_ID": "0" * 32})
    parent, children = check_sweep(store)
    assert all(c.info.status == "FINISHED" for c in children)
    assert sorted(c.data.params["activation"] + c.data.params["init"] for c in children) == \
        ["reluhe", "reluxavier", "tanhhe", "tanhxavier"]
    # names lead with what varies: the varied factors only
    assert sorted(c.info.run_name for c in children) == \
        ["relu·he", "relu·xavier", "tanh·he", "tanh·xavier"]
    m = parent.data.metrics
    assert (m["sweep/jobs"], m["sweep/finished"], m["sweep/diverged"], m["sweep/failed"]) == \
        (4, 4, 0, 0)
    best = max(children, key=lambda c: c.data.metrics["val/accuracy"])
    assert m["best/val/accuracy"] == best.data.metrics["val/accuracy"]
    assert parent.data.tags["ffexp.best_metric"] == "val/accuracy"
    assert set(parent.data.tags["ffexp.best_run_id"].split(",")) <= {c.info.run_id for c in children}
    assert parent.data.tags["ffexp.summary"].startswith("4 jobs: 4 finished")
    # the description: counts, the top groups by the main metric, the best run
    note = parent.data.tags["mlflow.note.content"]
    assert note.startswith("**Sweep**: 4 jobs: 4 finished")
    assert "Top groups of 4 by val/accuracy" in note and f"**{best.info.run_name}**" in note
    first = note.split("1. ", 1)[1].split("\n")[0]
    top = max(children, key=lambda c: c.data.metrics["val/accuracy"])
    assert first.startswith(f"activation={top.data.params['activation']}, "
                            f"init={top.data.params['init']}: ")
    exp = MlflowClient(store).get_experiment(parent.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert exp.tags["mlflow.experiment.primaryMetric.name"] == "val/accuracy"


def test_run_names_show_what_a_sweep_varies():
    from types import SimpleNamespace as NS

    from ffexp.tracking.tags import run_name
    s = NS(dataset=NS(name="moons"), activation=NS(name="relu"), init=NS(name="he"),
           optimizer=NS(name="sgd"), seed=1, tracking=NS(experiment=None),
           model=NS(activations=None))
    assert run_name(s) == "relu·he·sgd·s1"  # the dataset is the experiment
    assert run_name(NS(**{**vars(s), "tracking": NS(experiment="study")})) == \
        "moons·relu·he·sgd·s1"
    # a sweep: the varied overrides only, in command-line order, the seed last
    overrides = ["seed=1", "optimizer.lr=0.5", "activation=relu", "train.epochs=4"]
    assert run_name(s, overrides, ("seed", "optimizer.lr", "activation")) == "lr=0.5·relu·s1"
    assert run_name(s, overrides, ("activation",)) == "relu"
    # an Optuna trial: its sampled overrides, numbers shortened
    trial = ["optimizer.lr=0.012345678901", "model.hidden_sizes=[8,8]", "init.name=xavier"]
    assert run_name(s, trial, ("optimizer.lr", "model.hidden_sizes", "init.name")) == \
        "lr=0.01235·hidden_sizes=[8,8]·xavier"
    # two varied keys with the same last part keep their full keys
    assert run_name(s, ["dataset.seed=2", "a.b.seed=3"], ("dataset.seed", "a.b.seed")) == \
        "dataset.seed=2·a.b.seed=3"


def test_sweep_typo_creates_no_run(tmp_path):
    """A misspelled sweep value is caught before the parent run (or the store) exists."""
    proc = run_ffexp(tmp_path, "-m", "activation=relu,tanhh", *FAST, check=False)
    assert proc.returncode != 0 and "tanhh" in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_2x2_sweep_joblib_two_workers_on_a_fresh_store(tmp_path):
    """Jobs in other processes; the store is created from scratch by the launching process
    before any job starts (parallel schema creation would break it)."""
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    run_ffexp(tmp_path, "-m", *SWEEP, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", uri=uri)
    parent, children = check_sweep(uri)
    assert all(c.info.status == "FINISHED" for c in children)
    assert parent.data.metrics["sweep/finished"] == 4
    client = MlflowClient(uri)
    for c in children:  # nothing missing: full histories in every child
        assert len(client.get_metric_history(c.info.run_id, "train/cost")) == 5  # steps 0-4


FAILING = textwrap.dedent("""
    import sys
    import ffexp
    import ffexp.launch.main as entry

    class Boom(ffexp.Callback):
        def on_epoch_end(self, net, stats):
            if stats.epoch == 2:
                raise RuntimeError("boom at epoch 2")

    real = entry.execute
    def execute(job, callbacks=()):
        extra = [Boom()] if job.settings.seed == 1 else []
        return real(job, [*callbacks, *extra])
    entry.execute = execute
    sys.argv = ["ffexp", *sys.argv[1:]]
    sys.exit(entry.main())
""")


@pytest.mark.slow
def test_failing_job_is_failed_and_the_others_finish(tmp_path, store):
    proc = subprocess.run([sys.executable, "-c", FAILING, "-m", "seed=0,1,2", "train.epochs=4",
                           *FAST], cwd=tmp_path, env=ffexp_env(store), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    parent, children = check_sweep(store, 3)
    by_seed = {c.data.params["seed"]: c for c in children}
    failed = by_seed["1"]
    assert failed.info.status == "FAILED"
    assert failed.data.tags["ffexp.outcome"] == "failed"
    assert failed.data.tags["ffexp.error"] == "RuntimeError: boom at epoch 2"
    client = MlflowClient(store)
    text = open(client.download_artifacts(failed.info.run_id, "error/traceback.txt")).read()
    assert "boom at epoch 2" in text and "Traceback" in text
    assert len(client.get_metric_history(failed.info.run_id, "train/cost")) == 3  # 0-2 kept
    assert by_seed["0"].info.status == by_seed["2"].info.status == "FINISHED"
    assert (parent.data.metrics["sweep/failed"], parent.data.metrics["sweep/finished"]) == (1, 2)


@pytest.mark.slow
def test_sigterm_during_a_sweep_kills_the_job_and_closes_the_parent(tmp_path, store):
    import signal
    import time

    from helpers_tracking import FFEXP
    proc = subprocess.Popen([FFEXP, "-m", "seed=0,1", "train.epochs=1000000",
                             "tracking.flush_seconds=0.3", *FAST], cwd=tmp_path,
                            env=ffexp_env(store), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    client = MlflowClient(store)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            children = [r for r in all_runs(store) if "mlflow.parentRunId" in r.data.tags]
            if children and client.get_metric_history(children[0].info.run_id, "train/cost"):
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.3)
        else:
            pytest.fail("the first job never logged")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    parent, children = parent_and_children(store)
    assert [c.info.status for c in children] == ["KILLED"]
    assert parent.info.status == "KILLED"
    assert parent.data.metrics["sweep/killed"] == 1
