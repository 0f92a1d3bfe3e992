"""Bad input through the real command: each refused before training with one line that names
the key (and the accepted values where there is a list), exit status 2, no traceback, no run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from faults_helpers import FAST, FFEXP, env, ffexp, runs, start

#: (overrides, what the one line must contain)
BAD = [
    (["optimizer.lr=abc"], ["optimizer.lr", "could not be converted to Float"]),
    (["train.epochs=2.5"], ["train.epochs", "Integer"]),
    (["train.epochs=0"], ["train.epochs=0", "positive integer"]),
    (["optimizer.lr=-0.1"], ["optimizer.lr=-0.1", "positive"]),
    (["optimizer.batch_size=0"], ["optimizer.batch_size=0", "positive integer"]),
    (["model.hidden_sizes=[8,-1]"], ["model.hidden_sizes=[8,-1]", "positive integer"]),
    (["dataset.params.n_samples=0"], ["dataset=moons", "n_samples"]),
    (["tracking.stale_seconds=0"], ["tracking.stale_seconds=0", "positive"]),
    (["activation=swish"], ["activation", "relu, sigmoid, step, tanh"]),
    (["init.name=orthogonal"], ["init.name=orthogonal", "accepted: "]),
    (["optimizer=adam"], ["optimizer", "batch, minibatch, sgd"]),
    (["dataset.name=mnist"], ["dataset.name=mnist", "accepted: "]),
    (["+train.epoch=3"], ["train.epoch", "accepted keys"]),
    (["loss=cce"], ["loss=cce", "accepted losses for binary with output sigmoid: mse, bce"]),
    (["model.output_activation=softmax"], ["model.output_activation=softmax", "sigmoid"]),
    (["init=random", "init.scale=0"], ["init.scale=0", "positive"]),
]


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ffexp: error: "), proc.stderr
    return lines[0]


#: one case of each kind of check, in the default test run: a type Hydra refuses, a value
#: ffexp refuses, an unknown group option, an unknown key, a loss that cannot train the task
SAMPLE = [BAD[0], BAD[3], BAD[8], BAD[12], BAD[13]]


def test_bad_configurations_are_refused_in_one_line_before_any_run(tmp_path, store):
    """One case of each kind at once (concurrent processes), against a real store that must
    stay empty."""
    _refused(tmp_path, store, SAMPLE)


@pytest.mark.slow
def test_every_bad_configuration_is_refused_in_one_line_before_any_run(tmp_path, store):
    _refused(tmp_path, store, BAD)


def _refused(tmp_path, store, cases) -> None:
    procs = []
    for i, (args, _) in enumerate(cases):
        cwd = tmp_path / f"case{i}"
        cwd.mkdir()
        procs.append(start(cwd, *FAST, "train.epochs=3", *args, uri=store))
    for (args, needles), proc in zip(cases, procs):
        out, err = proc.communicate(timeout=300)
        line = _one_line_error(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        for needle in needles:
            assert needle in line, (args, line)
    assert runs(store) == []


def test_a_sweep_with_one_bad_value_is_refused_before_the_parent_exists(tmp_path, store):
    proc = ffexp(tmp_path, "-m", *FAST, "train.epochs=3", "optimizer.lr=0.1,abc", uri=store)
    line = _one_line_error(proc)
    assert "optimizer.lr=abc" in line and "Float" in line
    assert runs(store) == []


@pytest.mark.parametrize("multirun", [False, True], ids=["run", "sweep"])
def test_unreachable_tracking_uri_fails_fast_naming_it(tmp_path, multirun):
    # the subprocess timeout only guards against a hang (MLflow's default retries take minutes)
    proc = ffexp(tmp_path, *(["-m"] if multirun else []), *FAST, "train.epochs=3",
                 "tracking.uri=http://127.0.0.1:1", timeout=300)
    line = _one_line_error(proc)
    assert line.startswith("ffexp: error: tracking.uri=http://127.0.0.1:1: ")
    assert "no MLflow tracking server answers" in line
    assert not any(tmp_path.rglob("ffexp_status.json")) or \
        all('"failed"' in p.read_text() for p in tmp_path.rglob("ffexp_status.json"))
    assert not (tmp_path / "mlflow.db").exists()


def _read_only_dir(tmp_path: Path) -> Path:
    """A directory this process cannot write into (root ignores permission bits, so then a
    read-only system directory), or skip."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    candidates = [ro, Path("/sys/kernel"), Path("/proc/self")]
    for d in candidates:
        try:
            (d / ".ffexp-probe").touch()
        except OSError:
            return d
        (d / ".ffexp-probe").unlink()
    pytest.skip("no read-only directory available")


def test_read_only_directory_for_the_default_store(tmp_path):
    cwd = _read_only_dir(tmp_path)
    out = tmp_path / "out"
    proc = subprocess.run([FFEXP, *FAST, "train.epochs=3", f"hydra.run.dir={out}"], cwd=cwd,
                          env=env(), capture_output=True, text=True, timeout=120)
    (tmp_path / "ro").chmod(0o755)
    line = _one_line_error(proc)
    assert f"tracking.uri=sqlite:///{cwd.resolve()}/mlflow.db" in line
    assert "not writable" in line and "MLFLOW_TRACKING_URI" in line
    assert not (cwd / "mlflow.db").exists()


def test_nan_in_a_datasets_features_is_refused(tmp_path, store):
    proc = ffexp(tmp_path, *FAST, "train.epochs=3", "dataset.name=nan_moons", uri=store,
                 FFEXP_TEST_NAN_DATASET="1")
    line = _one_line_error(proc)
    assert "dataset=nan_moons" in line and "finite" in line.lower()
    assert runs(store) == []
