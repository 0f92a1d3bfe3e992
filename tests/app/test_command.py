"""The real `ffexp` command in a subprocess, run from a temporary working directory."""

from __future__ import annotations

import pytest

from conftest import ffexp, statuses

OFF = "tracking.enabled=false"


def test_default_command_end_to_end(tmp_path):
    run = ffexp(OFF, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    for part in ("dataset=moons (binary", "activation=relu", "init=he", "loss=bce (auto)",
                 "optimizer=minibatch (lr=0.1, batch_size=32)", "val   cost", "test  cost",
                 "accuracy", "finished: finished 200 epochs"):
        assert part in out
    [status] = statuses(tmp_path / "outputs")
    assert status["status"] == "ok" and status["metrics"]["val/accuracy"] >= 0.95
    assert (next((tmp_path / "outputs").rglob("ffexp.log"))).exists()
    assert "Traceback" not in run.stderr


def test_two_by_two_multirun_makes_four_jobs(tmp_path):
    run = ffexp("-m", OFF, "train.epochs=3", "activation=tanh,relu", "seed=0,1", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    jobs = statuses(tmp_path / "multirun")
    assert [j["job_num"] for j in jobs] == [0, 1, 2, 3]
    assert {tuple(j["overrides"][-2:]) for j in jobs} == {
        (f"activation={a}", f"seed={s}") for a in ("tanh", "relu") for s in (0, 1)}
    assert all(j["status"] == "ok" for j in jobs)
    assert run.stdout.count("[job ") == 4 and "4 job(s) done" in run.stdout


def test_an_impossible_job_fails_alone_and_is_named(tmp_path):
    run = ffexp("-m", OFF, "train.epochs=3", "dataset=diabetes", "loss=mse,cce,auto",
                cwd=tmp_path)
    assert run.returncode == 1
    jobs = statuses(tmp_path / "multirun")
    assert [j["status"] for j in jobs] == ["ok", "failed", "ok"]
    assert "categorical cross-entropy needs a softmax output" in jobs[1]["error"]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("ffexp: 1 of 3 jobs failed: [job 1]") and "loss=cce" in last
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("args,message,code", [
    (["optimizer.lr=abc"], "Value 'abc' of type 'str' could not be converted to Float", 2),
    (["activation=swish"], "Available options in 'activation': leaky_relu, linear", 2),
    (["dataset=diabetes", "loss=cce"],
     "ffexp: error: loss=cce: categorical cross-entropy needs a softmax output", 2),
    (["model.activations=[tanh]"],
     "ffexp: error: model.activations=[tanh]: needs one name per hidden layer", 2),
    (["dataset.standardize=maybe"], "ffexp: error: Error merging override "
     "dataset.standardize=maybe; Value 'maybe' is not a valid bool", 2),
])
def test_user_mistakes_exit_nonzero_without_traceback(tmp_path, args, message, code):
    run = ffexp(OFF, *args, cwd=tmp_path)
    assert run.returncode == code
    assert message in run.stderr and "Traceback" not in run.stderr
    assert run.stdout == ""


def test_the_article_choices_run_from_the_command_line(tmp_path):
    """Softmax/sigmoid β, per-layer activations, raw features, no validation split, Glorot's
    standard init with a saturating output gain, a tolerance on the parameters."""
    run = ffexp(OFF, "train.epochs=5", "model.beta=2", "model.activations=[tanh,relu]",
                "dataset.standardize=false", "dataset.val_fraction=0", "init=standard",
                "init.output_gain=2", "train.tol_on=params", "train.tol=1e-9", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "activation=tanh,relu" in run.stdout and "train/val/test 320/0/80" in run.stdout
    assert "(no validation split: dataset.val_fraction=0)" in run.stdout
    [status] = statuses(tmp_path / "outputs")
    assert status["status"] == "ok" and status["metric"] == "train/accuracy"
    assert status["metrics"] and not any(k.startswith("val/") for k in status["metrics"])


def test_same_command_twice_gives_identical_metrics(tmp_path):
    args = (OFF, "train.epochs=20", "dataset=iris", "seed=7")
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    assert ffexp(*args, cwd=first).returncode == 0
    assert ffexp(*args, cwd=second, module=True).returncode == 0
    [a], [b] = statuses(first), statuses(second)
    assert a["metrics"] == b["metrics"] and len(a["metrics"]) == 9


def test_cfg_shows_the_job_config_and_runs_nothing(tmp_path):
    # --help: tests/app/test_cli.py
    cfg = ffexp("--cfg", "job", "optimizer=sgd", cwd=tmp_path)
    assert cfg.returncode == 0 and "name: sgd" in cfg.stdout and "hydra" not in cfg.stdout
    assert not (tmp_path / "outputs").exists()


def test_sweep_defined_in_a_users_file(tmp_path):
    (tmp_path / "mine" / "experiment").mkdir(parents=True)
    (tmp_path / "mine" / "experiment" / "seeds.yaml").write_text(
        "# @package _global_\nhydra:\n  sweeper:\n    params:\n      seed: 0,1,2\n"
        "train:\n  epochs: 2\n")
    run = ffexp("-m", "-cd", "mine", OFF, "+experiment=seeds", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    seeds = [[o for o in j["overrides"] if o.startswith("seed=")] for j in
             statuses(tmp_path / "multirun")]
    assert seeds == [["seed=0"], ["seed=1"], ["seed=2"]]


def test_joblib_launcher_runs_jobs_in_parallel_processes(tmp_path):
    run = ffexp("-m", OFF, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "train.epochs=3",
                "dataset=diabetes", "loss=mse,cce", "seed=0,1", cwd=tmp_path)
    assert run.returncode == 1
    jobs = statuses(tmp_path / "multirun")
    assert [j["status"] for j in jobs] == ["ok", "ok", "failed", "failed"]
    assert "ffexp: 2 of 4 jobs failed: [job 2]" in run.stderr
