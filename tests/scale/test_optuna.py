"""ffexp's Optuna search (``hydra/sweeper=optuna``, ``+hparams_search=optuna``; the ffexp[optuna]
extra) through the real ``ffexp`` command, a SQLite MLflow store and a SQLite Optuna storage,
read back with MlflowClient and optuna.load_study: every trial a child run of the sweep's
parent, named by its sampled values (a command-line space too) and tagged with its trial number
and state; trials the median pruner stops are FINISHED runs with ``ffexp.outcome=pruned`` and
the epoch they stopped at, their training shorter; the same command again resumes the study
without repeating its trials; two sweeping processes finish one study between them; a bad
search is one ``ffexp: error:`` line before anything is written. The joblib version (trials in
worker processes) and a killed sweep's resumption are slow.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import time

import pandas as pd
import pytest
from mlflow import MlflowClient

from ffexp.tracking.stale import PID_TAG
from helpers_scale import FFEXP, TINY, env_without_mlflow, run_ffexp

optuna = pytest.importorskip("optuna", reason="the ffexp[optuna] extra")

EPOCHS = 4
#: a command-line space: learning rates from hopeless (1e-5: chance) to good, two activations
SPACE = ["optimizer.lr=tag(log, interval(0.00001, 1.0))", "activation=relu,tanh"]


def _search(tmp_path, *extra: str, epochs: int = EPOCHS) -> list[str]:
    return ["-m", "hydra/sweeper=optuna", *SPACE, f"train.epochs={epochs}", *TINY,
            f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}",
            "hydra.sweeper.study_name=study", *extra]


def _study(tmp_path):
    return optuna.load_study(study_name="study", storage=f"sqlite:///{tmp_path / 'optuna.db'}")


def _sweeps(uri: str) -> list[tuple[object, list]]:
    """[(parent, children)], oldest parent first."""
    client = MlflowClient(uri)
    exps = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(exps, max_results=1000)
    parents = sorted((r for r in runs if r.data.tags.get("ffexp.kind") == "sweep"),
                     key=lambda r: r.info.start_time)
    return [(p, [r for r in runs if r.data.tags.get("mlflow.parentRunId") == p.info.run_id])
            for p in parents]


def _trials_csv(uri: str, parent) -> pd.DataFrame:
    path = MlflowClient(uri).download_artifacts(parent.info.run_id, "optuna/trials.csv")
    return pd.read_csv(io.StringIO(open(path).read()))


def _check_trial_runs(uri: str, children, study) -> None:
    """Each child is its trial: named by its sampled values, tagged with its number and
    state; a pruned one stopped at its last reported epoch, a complete one has its value."""
    client = MlflowClient(uri)
    trials = {t.number: t for t in study.trials}
    names = [c.info.run_name for c in children]
    assert len(set(names)) == len(names), names
    for c in children:
        trial = trials[int(c.data.tags["ffexp.optuna.trial"])]
        assert c.data.tags["ffexp.optuna.study"] == "study"
        assert c.data.tags["ffexp.optuna.state"] == trial.state.name
        assert trial.user_attrs["ffexp_run_id"] == c.info.run_id
        # the name shows the sampled values: lr=0.01235·tanh
        assert c.info.run_name.startswith("lr=") and \
            c.info.run_name.endswith(f"·{trial.params['activation']}"), c.info.run_name
        assert float(c.data.params["lr"]) == pytest.approx(trial.params["optimizer.lr"])
        steps = [m.step for m in client.get_metric_history(c.info.run_id, "train/cost")]
        assert c.info.status == "FINISHED"
        if trial.state == optuna.trial.TrialState.PRUNED:
            assert c.data.tags["ffexp.outcome"] == "pruned"
            assert c.data.tags["ffexp.pruned_epoch"] == str(trial.last_step)
            assert max(steps) == trial.last_step < EPOCHS   # it trained no further
            assert "pruned" in c.data.tags["ffexp.message"]
        else:
            assert trial.state == optuna.trial.TrialState.COMPLETE
            assert c.data.tags["ffexp.outcome"] == "finished"
            assert max(steps) == EPOCHS
            assert c.data.metrics["val/accuracy"] == trial.value
            # the reported curve is the run's validation curve
            history = {m.step: m.value for m in
                       client.get_metric_history(c.info.run_id, "val/accuracy")}
            assert trial.intermediate_values == {e: history[e] for e in range(1, EPOCHS + 1)}


def test_a_search_prunes_bad_trials_and_records_each_trial_as_a_named_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc, _ = run_ffexp(tmp_path, _search(tmp_path, "hydra.sweeper.n_trials=6",
                                          "hydra.sweeper.n_jobs=2", "hydra.sweeper.seed=0",
                                          "hydra.sweeper.sampler=random",
                                          "hydra.sweeper.startup_trials=1"), uri)
    study = _study(tmp_path)
    states = [t.state for t in study.trials]
    pruned = states.count(optuna.trial.TrialState.PRUNED)
    assert len(states) == 6 and states.count(optuna.trial.TrialState.COMPLETE) + pruned == 6
    assert pruned >= 1, study.trials_dataframe()   # seed 0 samples hopeless rates
    assert study.direction.name == "MAXIMIZE"        # from the task's val/accuracy
    [(parent, children)] = _sweeps(uri)
    assert len(children) == 6
    _check_trial_runs(uri, children, study)

    # the parent: counts apart (pruned is not failed), the best trial(s), the trials table
    tags, metrics = parent.data.tags, parent.data.metrics
    assert metrics["optuna/trials_pruned"] == metrics["sweep/pruned"] == pruned
    assert metrics["optuna/trials_failed"] == metrics["sweep/failed"] == 0
    assert metrics["sweep/finished"] == 6 - pruned
    assert f"{pruned} pruned" in tags["ffexp.summary"]
    best = max(t.value for t in study.trials if t.state.name == "COMPLETE")
    tied = [t for t in study.trials if t.state.name == "COMPLETE" and t.value == best]
    assert metrics["optuna/best_value"] == best
    assert tags["ffexp.optuna.best_trial"] == ",".join(str(t.number) for t in tied)
    assert tags["ffexp.optuna.best_run_id"] == ",".join(t.user_attrs["ffexp_run_id"]
                                                        for t in tied)
    assert tags["ffexp.optuna.direction"] == "maximize"
    table = _trials_csv(uri, parent)
    assert list(table["number"]) == list(range(6))
    assert list(table["state"]) == [s.name for s in states]
    assert f"{pruned} pruned" in proc.stdout


def test_the_same_command_resumes_its_study_and_two_sweeps_share_one(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = _search(tmp_path, epochs=2)
    run_ffexp(tmp_path, [*command, "hydra.sweeper.n_trials=2"], uri)
    before = {t.number: (t.params, t.value) for t in _study(tmp_path).trials}
    assert len(before) == 2

    # the same command with a budget of 6, twice at once on the one storage: they resume the
    # study and finish it between them, each trial run once
    args = [FFEXP, *command, "hydra.sweeper.n_trials=6", f"tracking.uri={uri}"]
    procs = [subprocess.Popen(args, cwd=tmp_path, env=env_without_mlflow(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    outputs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert all(re.search(r"holds [2-6] of its 6 trials", out) for out, _ in outputs), outputs
    study = _study(tmp_path)
    assert [t.number for t in study.trials] == list(range(6))
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    assert {t.number: (t.params, t.value) for t in study.trials[:2]} == before
    sweeps = _sweeps(uri)
    assert len(sweeps) == 3 and len(sweeps[0][1]) == 2
    new = [c for _, children in sweeps[1:] for c in children]
    assert sorted(int(c.data.tags["ffexp.optuna.trial"]) for c in new) == [2, 3, 4, 5]

    # and once more: the study is complete, nothing runs
    proc, _ = run_ffexp(tmp_path, [*command, "hydra.sweeper.n_trials=6"], uri)
    assert "holds 6 of its 6 trials" in proc.stdout and "[job" not in proc.stdout
    assert len(_study(tmp_path).trials) == 6


def test_a_search_with_skip_existing_does_not_launch_configs_finished_before(tmp_path):
    """``tracking.skip_existing=true``: a trial whose config a grid sweep already FINISHED is
    not launched; the study is told that run's value (the trial COMPLETE, its run id in
    ``ffexp_run_id``), the job is counted skipped on the console and on the parent, and only
    the new configs run."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = [f"train.epochs={EPOCHS}", *TINY, "tracking.skip_existing=true"]
    run_ffexp(tmp_path, ["-m", "activation=relu,tanh", "optimizer.lr=0.1,0.5", *common], uri)
    (grid, done), = _sweeps(uri)
    by_config = {(c.data.params["activation"], float(c.data.params["lr"])): c for c in done}
    assert len(by_config) == 4

    # the grid sampler over those 4 configs and 2 new ones, two trials at a time
    proc, _ = run_ffexp(tmp_path, [
        "-m", "hydra/sweeper=optuna", "hydra.sweeper.sampler=grid", "hydra.sweeper.n_trials=6",
        "hydra.sweeper.n_jobs=2", "activation=relu,tanh", "optimizer.lr=choice(0.1,0.5,0.9)",
        f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}",
        "hydra.sweeper.study_name=study", *common], uri)
    study = _study(tmp_path)
    assert sorted((t.params["activation"], t.params["optimizer.lr"]) for t in study.trials) == \
        sorted((a, lr) for a in ("relu", "tanh") for lr in (0.1, 0.5, 0.9))
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    skipped = [t for t in study.trials if t.user_attrs["ffexp_outcome"] == "skipped"]
    assert sorted(t.params["optimizer.lr"] for t in skipped) == [0.1, 0.1, 0.5, 0.5]
    for t in skipped:   # told the earlier run's value, never launched
        run = by_config[(t.params["activation"], t.params["optimizer.lr"])]
        assert t.user_attrs["ffexp_run_id"] == run.info.run_id
        assert t.value == run.data.metrics["val/accuracy"]
    (_, _), (parent, children) = _sweeps(uri)
    assert sorted(float(c.data.params["lr"]) for c in children) == [0.9, 0.9]  # launched
    sweep_dir = next(tmp_path.glob("multirun/*/*/optimization_results.yaml")).parent
    assert len([d for d in sweep_dir.iterdir() if (d / ".hydra").is_dir()]) == 2
    assert len(list(sweep_dir.glob("skipped/*/ffexp_status.json"))) == 4
    assert proc.stdout.count("finished it before") == 4
    assert parent.data.metrics["sweep/skipped"] == 4
    assert set(parent.data.tags["ffexp.skipped_run_ids"].split(",")) == \
        {t.user_attrs["ffexp_run_id"] for t in skipped}


@pytest.mark.parametrize("args,message", [
    (["hydra.sweeper.sampler=annealing"], "expected one of [tpe, random, grid, cmaes, nsga2]"),
    (["hydra.sweeper.sampler=grid"], "hydra.sweeper.sampler=grid: optimizer.lr is an interval"),
    (["activation=relu,tanhh"], "Could not find 'activation/tanhh'"),
    (["hydra.sweeper.objectives=[val/accuracy,val/cost]"],
     "hydra.sweeper.pruner=median: Optuna prunes single-objective studies only"),
])
def test_a_bad_search_is_one_line_before_anything_is_written(tmp_path, args, message):
    command = _search(tmp_path, *args)
    if args[0].startswith("activation="):
        command = [a for a in command if a != "activation=relu,tanh"] + args
    proc, _ = run_ffexp(tmp_path, command, f"sqlite:///{tmp_path / 'mlflow.db'}", check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("ffexp: error:") and proc.stderr.count("\n") == 1
    assert message in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []   # no store, no study, no sweep


def test_search_spaces_parse_as_optuna_distributions_and_back_into_overrides():
    from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                      IntDistribution)

    from ffexp.launch.optuna_search import parse_space, trial_overrides
    entries, space = parse_space(
        {"optimizer.lr": "tag(log, interval(0.001, 1.0))", "seed": "range(0, 10, 3)"},
        ["model.hidden_sizes=choice([8,8],[16,16])", "+extra=3", "seed=range(1,4)",
         "optimizer.batch_size=tag(log, range(1, 65))"])
    assert space == {
        "optimizer.lr": FloatDistribution(0.001, 1.0, log=True),
        "seed": IntDistribution(1, 3),                       # the command line's, stop excluded
        "model.hidden_sizes": CategoricalDistribution(["[8,8]", "[16,16]"]),
        "optimizer.batch_size": IntDistribution(1, 64, log=True)}
    params = {"optimizer.lr": 0.0123, "seed": 2, "model.hidden_sizes": "[16,16]",
              "optimizer.batch_size": 32}
    assert trial_overrides(entries, params) == [
        "optimizer.lr=0.0123", "seed=2", "model.hidden_sizes=[16,16]", "+extra=3",
        "optimizer.batch_size=32"]


@pytest.mark.slow
@pytest.mark.integration
def test_joblib_search_prunes_in_worker_processes_and_a_killed_sweep_resumes(tmp_path):
    """Two trials in flight in joblib workers: each worker reports to the study through the
    SQLite storage and the pruner stops it there. A sweep killed (SIGTERM) with trials in
    flight: the same command finishes the study; the finished trials are not run again."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["-m", "+hparams_search=optuna", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
            "hydra.sweeper.n_jobs=2", "hydra.sweeper.seed=0", "hydra.sweeper.startup_trials=2",
            "optimizer.lr=tag(log, interval(0.00001, 1.0))", f"train.epochs={EPOCHS}", *TINY,
            f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}",
            "hydra.sweeper.study_name=study"]
    run_ffexp(tmp_path, [*args, "hydra.sweeper.n_trials=6"], uri)
    study = _study(tmp_path)
    [(parent, children)] = _sweeps(uri)
    assert len(study.trials) == len(children) == 6
    pids = {c.data.tags[PID_TAG] for c in children}
    assert len(pids) == 2   # two joblib workers
    _check_trial_runs(uri, children, study)

    # kill a sweep of the same study (budget 12) once a trial of it is done, then resume
    proc = subprocess.Popen([FFEXP, *args, "hydra.sweeper.n_trials=12", f"tracking.uri={uri}"],
                            cwd=tmp_path, env=env_without_mlflow(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 600
    while sum(t.state.is_finished() for t in _study(tmp_path).trials) < 7:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=300)
    done = {t.number: t.params for t in _study(tmp_path).trials
            if t.state.name in ("COMPLETE", "PRUNED")}
    run_ffexp(tmp_path, [*args, "hydra.sweeper.n_trials=12"], uri)
    study = _study(tmp_path)
    counted = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(counted) == 12
    assert {t.number: t.params for t in counted if t.number in done} == done
    interrupted = [t for t in study.trials if t.state.name == "FAIL"]
    assert all(t.user_attrs.get("ffexp_outcome") == "interrupted" for t in interrupted)
    last_parent, last_children = _sweeps(uri)[-1]
    assert len(last_children) == 12 - len(done)
