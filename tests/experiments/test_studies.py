"""Smoke test of every study in experiments/: its sweep with a tiny budget, its report and its
analysis, through the real commands in a temporary working directory with a SQLite store there.

Each study runs a 2-job subset of its own grid (1 seed, 2 epochs): overrides given on the command
line win over the experiment's ``hydra.sweeper.params``, which is checked here too. A change that
breaks a study's config, its report or its analysis script fails here. Two studies run by
default; the others are marked slow (``pytest -m slow tests/experiments``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TINY = ["seed=0", "train.epochs=2"]

#: study -> (overrides picking 2 jobs of its grid, a group label the report must show)
STUDIES = {
    "non_linearity": (["dataset=circles", "activation=linear,step", "model.hidden_sizes=[16]"],
                      "step"),
    "losses": (["dataset=moons,blobs", "loss=mse", "init={name:he}", "optimizer.lr=0.1"], "blobs"),
    "vanishing_gradients": (["activation=sigmoid,relu", "init={name:xavier}", "model.hidden_sizes=[32,32]"],
                            "sigmoid"),
    "initialization": (["init={name:random,scale:1.0},{name:zeros}", "activation=relu"], "zeros"),
    "gradient_descent": (["optimizer={name:batch,lr:0.1},{name:sgd,lr:0.1}",
                          "dataset.params.n_samples=100"], "sgd"),
    "signal_propagation": (["init=xavier,he"], "xavier"),
    "learning_rate": (["activation=relu", "optimizer.lr=0.1,10.0"], "10"),
    "dead_relu": (["activation={name:relu}", "init.bias=0.0,-2.0"], "-2"),
    "stopping": (["train={tol:null},{tol:1e-3,tol_on:params}"], "params"),
    "softmax_beta": (["model.beta=1.0,100.0"], "100"),
    "biases": (["activation=relu", "init.bias=0.0,0.1"], "f1_micro"),
    "sigmoid_saturation": (["init={name:standard,distribution:uniform},{name:xavier}",
                            "model.hidden_sizes=[32,32,32,32]"], "standard"),
    "softmax_output": (["model.output_activation=softmax,sigmoid", "model.hidden_sizes=[8]"],
                       "sigmoid"),
    "relu_speed": (["activation=relu,sigmoid", "init=he", "optimizer.lr=0.1",
                    "model.hidden_sizes=[8]"], "sigmoid"),
    "large_training_set": (["optimizer={name:batch,lr:0.1,batch_size:60},{name:sgd,lr:0.1,batch_size:1}",
                            "dataset.params.n_samples=100"], "sgd"),
}
#: the study run end to end in the default test run (the others, and losses, are slow)
DEFAULT = ("non_linearity",)
#: ffexp-report options a study's command adds (losses mixes a binary and a multiclass task)
REPORT_ARGS = {"losses": ["--metric", "val/accuracy"]}


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "MPLBACKEND": "Agg"}
    env.pop("FFEXP_COMMAND_LINE", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, f"{' '.join(args)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def params():
    for name in STUDIES:
        marks = () if name in DEFAULT else (pytest.mark.slow,)
        yield pytest.param(name, id=name, marks=marks)


def test_every_study_folder_is_complete():
    """Each study: its config (reached through conf/experiment), a README, an analysis script,
    and a smoke test here."""
    studies = sorted(p.parent.name for p in (ROOT / "experiments").glob("*/*.yaml")
                     if p.stem == p.parent.name)
    assert sorted(STUDIES) == studies
    for name in STUDIES:
        folder = ROOT / "experiments" / name
        link = ROOT / "conf" / "experiment" / f"{name}.yaml"
        assert link.is_symlink() and link.resolve() == (folder / f"{name}.yaml").resolve()
        text = link.read_text()
        assert text.startswith("# @package _global_") and f"experiment: {name}" in text
        assert (folder / "README.md").is_file() and (folder / "analyze.py").is_file()
        assert f"ffexp -m +experiment={name}" in (folder / "README.md").read_text()


@pytest.mark.parametrize("name", list(STUDIES))
def test_study_config_composes_with_three_seeds_or_more(hydra_conf, name):
    """In-process, through pkg://ffexp.conf: the config composes, names its own experiment and
    store, and sweeps at least 3 seeds."""
    cfg = hydra_conf([f"+experiment={name}"], return_hydra_config=True)
    assert cfg.tracking.experiment == name
    assert cfg.tracking.uri == f"sqlite:///experiments/{name}/mlflow.db"
    sweep = cfg.hydra.sweeper.params
    assert len(str(sweep["seed"]).split(",")) >= 3 and len(sweep) >= 2


@pytest.mark.parametrize("name", list(params()))
def test_study_runs_end_to_end_with_a_tiny_budget(tmp_path, name):
    overrides, label = STUDIES[name]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = run([str(BIN / "ffexp"), "-m", f"+experiment={name}", *TINY, *overrides,
                 f"tracking.uri={uri}"], tmp_path)
    assert sweep.stdout.count("[job ") == 2, sweep.stdout  # the command line beat the grid

    report = tmp_path / "report"
    run([str(BIN / "ffexp-report"), "--tracking-uri", uri, *REPORT_ARGS.get(name, []),
         "--output", str(report)], tmp_path)
    text = (report / "report.md").read_text()
    assert "2 runs" in text and label in text

    run([sys.executable, str(ROOT / "experiments" / name / "analyze.py"),
         "--tracking-uri", uri, "--output", str(report)], tmp_path)
    analysis = (report / "analysis.md").read_text()
    assert analysis.startswith("# Study") and "| " in analysis
    for png in report.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_signal_propagation_measure_small(tmp_path):
    run([sys.executable, str(ROOT / "experiments" / "signal_propagation" / "measure.py"),
         "--output", str(tmp_path), "--layers", "6", "--width", "32"], tmp_path)
    text = (tmp_path / "measure.md").read_text()
    assert "| relu | he |" in text and (tmp_path / "measure.png").is_file()
