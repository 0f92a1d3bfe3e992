"""ffexp's sweeper (ffexp.launch.sweeper, hydra_plugins/ffexp_sweeper) through the real command: a bad
value anywhere in a many-job sweep is refused before any job, run or folder, whatever the
launcher and tracking; the check composes one job per combination of group choices (counted
by the sweeper's own debug line), once per sweep; a job that composes only in its worker ends
the sweep in one line. Optuna's sweeper: tests/scale/test_optuna.py."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ffexp_command

from ffexp.launch.sweeper import plan

FFEXP = ffexp_command.FFEXP
#: a grid of 3 x 3 x 4 = 36 jobs; each case adds a swept key with one bad value last
GRID = ["activation=sigmoid,tanh,relu", "init=random,xavier,he", "seed=0,1,2,3",
        "train.epochs=2", "model.hidden_sizes=[4]"]
HYDRAS_OWN = "hydra.sweeper._target_=hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
#: (what is wrong, extra overrides, launcher, tracked, what the one line must contain)
BAD = [
    ("unknown option", ["optimizer=sgd,minibatch,adamm"], "basic", False,
     ["optimizer/adamm", "batch, minibatch, sgd"]),
    ("unknown key", ["train.epochz=3,4"], "joblib", True, ["train.epochz", "TrainSettings"]),
    ("wrong type", ["optimizer.lr=0.1,0.5,abc"], "joblib", False,
     ["optimizer.lr=abc", "Float"]),
    ("wrong type, last", ["train.patience=1,2.5"], "basic", True,
     ["train.patience=2.5", "Integer"]),
    ("malformed value", ["seed=0,1]"], "joblib", True, ["seed=0,1]", "extraneous input"]),
    # noise is a key of moons' params, not of iris': only jobs with both fail
    ("key of one option only", ["dataset=moons,iris", "dataset.params.noise=0.1,0.3"], "basic",
     False, ["dataset.params.noise", "not in struct"]),
    ("Hydra's own sweeper", ["optimizer.lr=0.1,abc", HYDRAS_OWN], "basic", True,
     ["optimizer.lr=abc", "Float"]),
]


def _env(**extra: str) -> dict:
    return ffexp_command.command_env(drop=("MLFLOW_", "FFEXP_"), **{"HYDRA_FULL_ERROR": "0",
                                                                    **extra})


def _start(cwd: Path, *args: str, **extra: str) -> subprocess.Popen:
    return ffexp_command.start(cwd, *args, env=_env(**extra))


def _run(cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return ffexp_command.run(cwd, *args, env=_env(**extra), timeout=600)


def _runs(uri: str) -> list:
    from mlflow import MlflowClient
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, max_results=1000) if ids else []


def _checked(stdout: str) -> list[tuple[int, int]]:
    """(jobs, configs composed) of every line the sweeper's check logged."""
    return [(int(a), int(b)) for a, b in re.findall(
        r"checked the configs of the sweep's (\d+) jobs by composing (\d+) of them", stdout)]


def test_a_bad_value_in_a_many_job_sweep_is_refused_before_any_job_run_or_folder(
        tmp_path, template_db):
    """All cases at once (concurrent processes). Tracked cases against a real store."""
    import shutil
    procs = []
    for i, (_, extra, launcher, tracked, _) in enumerate(BAD):
        cwd = tmp_path / f"case{i}"
        cwd.mkdir()
        env = {}
        if tracked:
            shutil.copy(template_db, cwd / "mlflow.db")
            env["MLFLOW_TRACKING_URI"] = f"sqlite:///{cwd / 'mlflow.db'}"
        args = [*GRID, *extra, f"hydra/launcher={launcher}"]
        args += ["hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
        args += [] if tracked else ["tracking.enabled=false"]
        procs.append(_start(cwd, "-m", *args, **env))
    for i, ((what, _, _, tracked, needles), proc) in enumerate(zip(BAD, procs)):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 2, (what, proc.returncode, out, err)
        assert out == "" and "Traceback" not in err, (what, out, err)
        [line] = err.strip().splitlines()
        assert line.startswith("ffexp: error: "), (what, line)
        for needle in needles:
            assert needle in line, (what, line)
        cwd = tmp_path / f"case{i}"
        assert sorted(p.name for p in cwd.iterdir()) == (["mlflow.db"] if tracked else []), \
            (what, list(cwd.rglob("*")))  # no multirun/ folder, no outputs/
        if tracked:
            assert _runs(f"sqlite:///{cwd / 'mlflow.db'}") == [], what


def test_the_check_composes_one_job_per_combination_of_groups_once_per_sweep(tmp_path, store):
    """3 activations x 2 inits x 2 seeds, tracked: the callback checks before it writes the
    store, by composing 6 jobs (each combination with one seed, so both seeds are covered);
    the sweeper composes nothing more (one line: the count is the sweeper's own)."""
    proc = _run(tmp_path, "-m", "activation=sigmoid,tanh,relu", "init=xavier,he", "seed=0,1",
                "train.epochs=2", "model.hidden_sizes=[4]", "dataset.params.n_samples=100",
                "tracking.log_plots=false", "tracking.log_model=false",
                "hydra.verbose=ffexp.launch.sweeper", MLFLOW_TRACKING_URI=store)
    assert proc.returncode == 0, proc.stderr
    assert _checked(proc.stdout) == [(12, 6)]
    assert "ffexp: 12 job(s) done" in proc.stdout
    assert len(_runs(store)) == 13  # the jobs and the parent
    # without the verbose flag, the check says nothing (as Hydra's own check does not)
    quiet = _run(tmp_path, "-m", "activation=tanh,relu", "train.epochs=1",
                 "tracking.enabled=false")
    assert quiet.returncode == 0 and "checked the configs" not in quiet.stdout + quiet.stderr


@pytest.mark.slow
def test_a_5x4x5_sweep_composes_20_configs_before_its_100_jobs(tmp_path):
    """The sweep of issue 15 (untracked, joblib): Hydra composed 100 configs before the
    first job; ffexp's sweeper composes 20, one per activation x init, the 5 seeds among them."""
    proc = _run(tmp_path, "-m", "activation=sigmoid,tanh,relu,leaky_relu,linear",
                "init=random,xavier,he,standard", "seed=range(5)", "train.epochs=1",
                "model.hidden_sizes=[4]", "dataset.params.n_samples=100",
                "tracking.enabled=false", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                "hydra.verbose=ffexp.launch.sweeper")
    assert proc.returncode == 0, proc.stderr
    assert _checked(proc.stdout) == [(100, 20)]
    assert "ffexp: 100 job(s) done" in proc.stdout


def test_plan_covers_every_combination_and_every_value_with_real_jobs():
    groups = {"activation", "init", "+experiment"}
    jobs = [[f"activation={a}", f"init={i}", f"seed={s}", "train.epochs=3"]
            for a, i, s in itertools.product("abcde", "wxyz", range(5))]
    picked = [jobs[i] for i in plan(jobs, lambda key: key in groups)]
    assert len(picked) == 20
    assert {(j[0], j[1]) for j in picked} == {(j[0], j[1]) for j in jobs}
    assert {j[2] for j in picked} == {f"seed={s}" for s in range(5)}
    # more values than combinations: jobs in order until every value is covered
    seeds = [["activation=relu", f"seed={s}", f"optimizer.lr={lr}"]
             for s in range(6) for lr in (0.1, 0.5)]
    picked = [seeds[i] for i in plan(seeds, lambda key: key in groups)]
    assert {o for j in picked for o in j} == {o for j in seeds for o in j}
    assert len(picked) == 7  # seeds 0..5, and lr=0.5 with seed 0
    assert plan([[]], lambda key: False) == [0]  # `ffexp -m` without a sweep: the one job


@pytest.mark.parametrize("launcher,tracked", [("basic", True), ("joblib", False)])
def test_a_job_that_composes_only_in_its_worker_ends_the_sweep_in_one_line(
        tmp_path, template_db, launcher, tracked):
    """The pair the check cannot see (ffexp.launch.sweeper): ``+model.extra=2`` appends to a null
    key but not to 1; each value composes with the other's first value, so only the last
    job fails, where the launcher composes it. (The other jobs fail in ffexp's own check of
    the settings, model.extra being no key of ffexp's.)"""
    import shutil
    env = {}
    if tracked:
        shutil.copy(template_db, tmp_path / "mlflow.db")
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = _run(tmp_path, "-m", "++model.extra=null,1", "+model.extra=[1],2", "train.epochs=2",
                f"hydra/launcher={launcher}", *([] if tracked else ["tracking.enabled=false"]),
                **env)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("ffexp: error: a job of the sweep does not compose: Could not "
                           "append to config. An item is already at 'model.extra'"), line
    assert "'model.extra=2'" in line and "outputs in multirun/" in line
    if tracked:
        [parent] = [r for r in _runs(env["MLFLOW_TRACKING_URI"])
                    if r.data.tags.get("ffexp.kind") == "sweep"]
        assert parent.info.status == "FAILED"


OTHER_APP = '''
import ffexp.launch.sweeper
import hydra
from hydra.core.hydra_config import HydraConfig
ffexp.launch.sweeper.register()   # as Hydra's plugin scan does in a non-editable install


@hydra.main(version_base=None, config_path=None, config_name=None)
def main(cfg):
    print("job", cfg.x, HydraConfig.get().sweeper._target_.rsplit(".", 1)[-1])


main()
'''


def test_another_hydra_app_keeps_hydras_own_sweep(tmp_path):
    """ffexp's sweeper has its own name (``hydra/sweeper=ffexp``) and never replaces Hydra's
    ``basic``: another Hydra app of the environment, with ffexp's sweeper registered, still
    sweeps with Hydra's basic sweeper, which validates every job."""
    (tmp_path / "app.py").write_text(OTHER_APP)
    proc = subprocess.run([sys.executable, "app.py", "-m", "+x=1,2", "hydra.verbose=true"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = proc.stdout + proc.stderr
    assert "Validated configs of 2 jobs" in log              # Hydra's per-batch check ran
    assert "checked the configs of the sweep" not in log     # and ffexp's did not
    assert [line for line in proc.stdout.splitlines() if line.startswith("job")] == [
        "job 1 BasicSweeper", "job 2 BasicSweeper"]


def test_ffexp_chooses_its_own_sweeper_by_name(hydra_conf):
    """ffexp's primary config chooses ``hydra/sweeper=ffexp`` (through ``search: grid``), and
    ``+hparams_search=optuna`` still switches the sweeper to Optuna's."""
    from ffexp.launch.sweeper import FFEXP_SWEEPER
    cfg = hydra_conf([], return_hydra_config=True)
    assert cfg.hydra.runtime.choices["hydra/sweeper"] == "ffexp"
    assert cfg.hydra.sweeper._target_ == FFEXP_SWEEPER
