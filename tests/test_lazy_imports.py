"""What a path does not need is not imported: ``ffexp --help`` and a refused command (one
``ffexp: error:`` line) load neither MLflow nor matplotlib; the process that launches an
untracked joblib sweep loads neither, nor scikit-learn (its workers load the data)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
sys.argv = ["ffexp", *json.loads(sys.argv[1])]
from ffexp.launch.main import main
try:
    code = main()
except SystemExit as exit:
    code = exit.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"mlflow", "matplotlib", "sklearn"})
print("\\nPROBE", json.dumps({"code": code, "heavy": heavy}))
"""


@pytest.mark.parametrize("args,code", [(["--help"], 0), (["optimizer.lr=-1"], 2)])
def test_help_and_refusals_import_neither_mlflow_nor_matplotlib(tmp_path, args, code):
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    probe = json.loads(proc.stdout.rsplit("PROBE", 1)[1])
    assert probe["code"] in (code, None if code == 0 else code), proc.stderr
    assert probe["heavy"] == []
    if code:
        assert proc.stderr.startswith("ffexp: error:") and proc.stderr.count("\n") == 1


def test_an_untracked_joblib_sweeps_launching_process_loads_no_data_library(tmp_path):
    args = ["-m", "seed=0,1", "train.epochs=1", "model.hidden_sizes=[4]",
            "tracking.enabled=false", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    probe = json.loads(proc.stdout.rsplit("PROBE", 1)[1])
    assert probe["code"] == 0, proc.stderr
    assert probe["heavy"] == [], proc.stdout
    assert len(list(tmp_path.rglob("ffexp_status.json"))) == 2
