"""The chaos probe: a job rebuilt from its logged params reruns to the bits MLflow holds; the
rule that marks a group chaotic; ``ffexp-report --probe-chaos`` through the real command on the
real sweep (conftest.real_sweep)."""

from __future__ import annotations

import csv
import math

import pytest
from mlflow import MlflowClient

from ffexp.report.cli import main
from ffexp.report.probe import is_chaotic, rerun, settings_from_params


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_run_rebuilt_from_its_params_reruns_to_its_logged_bits(real_sweep):
    client = MlflowClient(tracking_uri=real_sweep["uri"])
    run = client.get_run(real_sweep["children"][0])
    settings = settings_from_params(run.data.params)
    assert settings.seed == int(run.data.params["seed"])
    assert settings.activation.name == run.data.params["activation"]
    assert not settings.tracking.enabled
    for metric in ("val/accuracy", "val/cost"):
        assert rerun(settings, metric, "final") == run.data.metrics[metric]  # exactly
    logged = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "val/cost")}
    assert rerun(settings, "val/cost", "epoch 2") == logged[2]
    assert rerun(settings, "val/cost", "best") == min(logged.values())
    # 1e-12 of the weights moves a smooth cost by about as much, not by its seeds' spread
    moved = abs(rerun(settings, "val/cost", "final", 1e-12) - run.data.metrics["val/cost"])
    assert 0 < moved < 1e-9


def test_the_rule():
    # moved by more than 0.1 × the seeds' std and more than rounding: chaotic
    assert is_chaotic(0.5625, 0.8875, 0.137) is True       # initialization's tanh N(0, 1)
    assert is_chaotic(0.90, 0.91, 0.2) is False            # 0.01 < 0.1 × 0.2
    assert is_chaotic(0.90, 0.93, 0.2) is True
    assert is_chaotic(0.25711038638192374, 0.25711038638185035, 0.0) is False  # rounding
    assert is_chaotic(0.5, 0.5, 0.0) is False
    assert is_chaotic(0.5, 0.5125, 0.0) is True            # seeds agree, the probe does not
    assert is_chaotic(0.5, 0.5125, math.nan) is True       # one seed: no spread to hide in
    assert is_chaotic(0.9, math.nan, 0.01) is True         # one rerun diverged
    assert is_chaotic(math.nan, math.nan, 0.01) is None    # neither has a value


@pytest.fixture(scope="module")
def probed(real_sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("probe") / "r"
    assert main(["--tracking-uri", real_sweep["uri"], "--output", str(out), "--no-log-artifact",
                 "--probe-chaos"]) == 0
    return out


def test_probe_chaos_fills_the_groups_columns(probed, real_sweep):
    groups = _rows(probed / "groups.csv")
    assert len(groups) == 4
    client = MlflowClient(tracking_uri=real_sweep["uri"])
    logged = {(r.data.params["activation"], r.data.params["init"], r.data.params["seed"]):
              r.data.metrics["val/accuracy"] for r in map(client.get_run, real_sweep["children"])}
    for g in groups:
        assert g["chaotic"] in ("True", "False") and g["probe_seed"] == "0"
        # the unperturbed rerun is the logged run of seed 0, to the bits
        assert float(g["probe_value"]) == logged[(g["activation"], g["init"], "0")]
        change = abs(float(g["probe_perturbed"]) - float(g["probe_value"]))
        assert float(g["probe_change"]) == pytest.approx(change, abs=1e-15)
        assert (g["chaotic"] == "True") == is_chaotic(float(g["probe_value"]),
                                                      float(g["probe_perturbed"]),
                                                      float(g["std"]))
    md = (probed / "report.md").read_text()
    assert "Chaos probe (`--probe-chaos`): one seed per group rerun" in md
    regen = (probed / "provenance.md").read_text().split("```\n")[1]
    assert "--probe-chaos" in regen


def test_without_the_probe_the_column_is_there_and_empty(real_sweep, tmp_path):
    out = tmp_path / "r"
    assert main(["--tracking-uri", real_sweep["uri"], "--output", str(out),
                 "--no-log-artifact"]) == 0
    groups = _rows(out / "groups.csv")
    assert all(g["chaotic"] == "" for g in groups) and "probe_seed" not in groups[0]
    assert "Chaos probe" not in (out / "report.md").read_text()


def test_the_ffexp_report_command_probes(real_sweep, tmp_path):
    """The console command, in a fresh interpreter: the settings of a run are rebuilt there
    without the structured-config classes that earlier imports in a test process leave behind."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    command = shutil.which("ffexp-report", path=str(Path(sys.executable).parent)) or "ffexp-report"
    out = tmp_path / "r"
    done = subprocess.run([command, "--tracking-uri", real_sweep["uri"], "--output", str(out),
                           "--no-log-artifact", "--probe-chaos"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert all(g["chaotic"] in ("True", "False") for g in _rows(out / "groups.csv"))
