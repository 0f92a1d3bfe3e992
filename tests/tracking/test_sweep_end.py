"""A sweep's conclusion through the real ``ffexp -m``: the console ends with the result table
and the commands that open the parent and write the report; the parent run holds the
comparison figures (read back with MlflowClient) and shows them in its description."""

from __future__ import annotations

import json
import re

import numpy as np
from matplotlib.image import imread
from mlflow import MlflowClient

from helpers_tracking import FAST, run_ffexp
from test_sweep import parent_and_children

SWEEP = ["activation=relu,sigmoid", "seed=0,1,2", "train.epochs=3", "tracking.snapshots=2",
         "dataset.params.noise=0.2", *FAST]


def test_a_sweep_ends_with_its_table_and_its_comparison_figures(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = run_ffexp(tmp_path, "-m", *SWEEP, uri=uri)
    out = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(out) if line.startswith("ffexp: result by group"))
    header, *rows = out[start + 1:start + 3 + 1]
    assert header.split()[:3] == ["activation", "n", "val/accuracy"]
    assert sorted(r.split()[0] for r in rows[:2]) == ["relu", "sigmoid"]
    assert all(re.search(r"\s3/3\s+0\.\d{4} \[0\.\d{4}, [01]\.\d{4}\]\s+0\b", r) for r in rows[:2])
    assert any("★" in r for r in rows[:2])          # a best set, as the report marks it
    assert out[-1].startswith("ffexp: 6 job(s) done")  # the verdict is last
    parent, children = parent_and_children(uri)
    pid = parent.info.run_id
    tail = "\n".join(out[start:])
    assert f"/runs/{pid}" in tail and "mlflow ui --backend-store-uri" in tail
    assert f"ffexp-report --sweep {pid}" in tail
    assert tail.count("mlflow ui") == 1                 # not repeated by the parent's closing
    client = MlflowClient(uri)
    names = sorted(a.path for a in client.list_artifacts(pid, "comparison"))
    assert names == ["comparison/decision_boundaries.png", "comparison/gradient_flow.png",
                     "comparison/learning_curves.png"]
    for name in names:
        image = imread(client.download_artifacts(pid, name, str(tmp_path)))
        assert image.shape[0] > 200 and image.shape[1] > 300 and np.ptp(image) > 0
    note = client.get_run(pid).data.tags["mlflow.note.content"]
    assert note.startswith("**Sweep**")                 # the summary stays, the figures follow
    assert f"get-artifact?path=comparison/gradient_flow.png&run_uuid={pid}" in note
    # the saved view of the children's step images (MLflow's Views menu), and its address
    view = json.loads(client.get_experiment(parent.info.experiment_id)
                      .tags[f"mlflow.sharedViewState.{pid}"])
    assert view["name"] == f"{parent.info.run_name}: step images"
    state = json.loads(view["state"])
    assert state["searchFilter"] == f"tags.`mlflow.parentRunId` = '{pid}'"
    assert state["orderByKey"] == "attributes.run_name"          # the children not nested
    cards = state["compareRunCharts"]
    assert [c["imageKeys"] for c in cards] == [["decision_boundary"], ["gradient_flow"]]
    assert all(c["step"] == 3 and c["showRunParams"] is False for c in cards)
    assert f"compareRunsMode=CHART&viewStateShareKey={pid}" in tail


def test_an_untracked_sweep_still_ends_with_its_table(tmp_path):
    proc = run_ffexp(tmp_path, "-m", "activation=relu,tanh", "train.epochs=2",
                     "tracking.enabled=false", *FAST)
    out = proc.stdout.splitlines()
    assert any(line.startswith("ffexp: result by group (val/accuracy") for line in out)
    assert any("no best set: the groups need 3 seeds" in line for line in out)
    assert not any("mlflow ui" in line or "comparison" in line for line in out)
    assert out[-1].startswith("ffexp: 2 job(s) done")


def test_a_single_runs_output_folder_holds_its_figures(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = run_ffexp(tmp_path, "train.epochs=2", *FAST, uri=uri)
    out = re.search(r"outputs in (\S+)", proc.stdout).group(1)
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("moons").experiment_id])
    logged = sorted(a.path.split("/")[-1] for a in client.list_artifacts(run.info.run_id, "plots"))
    from pathlib import Path
    assert sorted(p.name for p in (Path(out) / "plots").iterdir()) == logged
    assert "decision_boundary.png" in logged
