"""Train through an outage, record afterwards (ffexp.tracking.spool, ffexp-sync): a real single
run whose tracking server is gone (a closed port on 127.0.0.1; the check before training
passes as if the server had gone away right after it, plugin FFEXP_TEST_SKIP_PREFLIGHT) trains,
spools its record and exits 0; ``ffexp-sync`` uploads it into a real SQLite store, where it
reads back like the same seed's run recorded normally; a second sync uploads nothing; a run
that partly exists is completed without a value twice; a sync stopped half-way is completed by
the next one."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

import ffexp_command
from faults_helpers import ffexp, ok

ARGS = ["seed=3", "train.epochs=12", "dataset.params.n_samples=200", "model.hidden_sizes=[8,8]",
        "tracking.snapshots=3"]
SYNC = str(Path(sys.executable).with_name("ffexp-sync"))
#: tags that differ between any two runs of one config (its key, process, time of day)
VOLATILE = {"ffexp.run_key", "ffexp.pid", "ffexp.host", "ffexp.heartbeat", "ffexp.start_time"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sync(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SYNC, *args], capture_output=True, text=True, timeout=300,
                          env=ffexp_command.command_env())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(the normal run's store, the spooled run's folder) of the same config."""
    root = tmp_path_factory.mktemp("spool")
    normal = f"sqlite:///{root / 'normal.db'}"
    ok(ffexp(root, *ARGS, f"hydra.run.dir={root / 'normal'}", uri=normal))
    dead = f"http://127.0.0.1:{closed_port()}"
    proc = ffexp(root, *ARGS, f"hydra.run.dir={root / 'away'}", uri=dead,
                 FFEXP_TEST_SKIP_PREFLIGHT="1", FFEXP_RETRY_WINDOW="1",
                 MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    ok(proc)
    return normal, root / "away", proc


def _copy(folder: Path, where: Path) -> Path:
    shutil.copytree(folder, where)
    return where


def _only_run(uri: str):
    client = MlflowClient(uri)
    found = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(found) == 1, [r.info.run_id for r in found]
    return client, found[0]


def _histories(client, run) -> dict:
    return {k: [(m.step, m.value) for m in sorted(client.get_metric_history(run.info.run_id, k),
                                                 key=lambda m: (m.step, m.timestamp))]
            for k in run.data.metrics if not k.startswith("time/")}


def _artifacts(client, run_id: str, path: str = "") -> list[str]:
    out = []
    for f in client.list_artifacts(run_id, path or None):
        out += _artifacts(client, run_id, f.path) if f.is_dir else [f.path]
    return out


def _stem(path: str) -> str:
    """An artifact path without a step image's timestamp and uuid."""
    if path.startswith("images/"):
        key, _, step, *_rest = Path(path).name.split("+")
        return f"images/{key}+{step}+{path.endswith('compressed.webp')}"
    return path


def test_a_spooled_run_trains_and_says_where_its_record_is(runs):
    _, folder, proc = runs
    warnings = [x for x in proc.stderr.splitlines() if x.startswith("ffexp: warning:")]
    assert len(warnings) == 1 and "unreachable" in warnings[0] and \
        f"ffexp-sync {folder}" in warnings[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    status = json.loads((folder / "ffexp_status.json").read_text())
    assert status["status"] == "spooled" and status["run_id"] is None
    spool = folder / "mlflow_spool"
    record = json.loads((spool / "run.json").read_text())
    assert record["complete"] and record["status"] == "FINISHED" and record["run_id"] is None
    assert record["create_tags"]["ffexp.run_key"].startswith("single/")
    assert {"history.csv", "config", "hydra", "plots", "images"} <= \
        {p.name for p in (spool / "artifacts").iterdir()}
    assert {p.name for p in (spool / "model").iterdir()} == \
        {"network.npz", "scaling.npz", "model.json"}
    rows = [json.loads(x) for x in (spool / "metrics.jsonl").read_text().splitlines()]
    assert {r[3] for r in rows if r[0] == "train/cost"} == set(range(0, 13))


def test_sync_uploads_it_as_the_same_seed_recorded_normally_once(runs, tmp_path):
    normal, away, _ = runs
    folder = _copy(away, tmp_path / "away")
    uri = f"sqlite:///{tmp_path / 'later.db'}"
    first = sync(str(folder), "--tracking-uri", uri)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "1 uploaded" in first.stdout.splitlines()[-1], first.stdout
    a_client, a = _only_run(normal)
    b_client, b = _only_run(uri)
    assert b.info.status == "FINISHED" and b.info.run_name == a.info.run_name
    assert b.data.params == a.data.params
    differ = {k for k in set(a.data.tags) | set(b.data.tags)
              if a.data.tags.get(k) != b.data.tags.get(k)}
    assert differ <= VOLATILE | {"mlflow.note.content"}, differ
    untimed = lambda run: re.sub(r"updates, [0-9.]+ s\)", "", run.data.tags["mlflow.note.content"])
    assert untimed(a) == untimed(b)   # the description differs in the training's seconds only
    history_a, history_b = _histories(a_client, a), _histories(b_client, b)
    assert history_a == history_b and len(history_a) > 20
    assert sorted(map(_stem, _artifacts(a_client, a.info.run_id))) == \
        sorted(map(_stem, _artifacts(b_client, b.info.run_id)))
    # the same LoggedModel: loadable, the same predictions, the final metrics linked to it
    import mlflow
    models = []
    for client, run, store in ((a_client, a, normal), (b_client, b, uri)):
        [output] = run.outputs.model_outputs
        mlflow.set_tracking_uri(store)
        models.append(mlflow.pyfunc.load_model(f"models:/{output.model_id}"))
        linked = client.get_logged_model(output.model_id).metrics
        assert "test/accuracy" in {m.key for m in linked}
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(20, 2)), columns=["x0", "x1"])
    assert np.array_equal(models[0].predict(X).to_numpy(), models[1].predict(X).to_numpy())
    assert (folder / "mlflow_spool" / "synced.json").is_file()
    assert not (folder / "mlflow_spool" / "run.json").exists()
    assert json.loads((folder / "ffexp_status.json").read_text())["status"] == "ok"
    # a second sync uploads nothing
    again = sync(str(tmp_path), "--tracking-uri", uri)
    assert again.returncode == 0 and "0 uploaded, 1 uploaded before" in again.stdout
    _, b2 = _only_run(uri)
    assert _histories(b_client, b2) == history_b
    assert len(b_client.search_logged_models([b.info.experiment_id])) == 1


def test_sync_completes_a_run_that_partly_exists(runs, tmp_path):
    """The run exists (created before the outage, or by a sync that stopped) with some params
    and the first half of every history: the sync finds it by its key and adds the rest."""
    from mlflow.entities import Metric, Param
    _, away, _ = runs
    folder = _copy(away, tmp_path / "away")
    record = json.loads((folder / "mlflow_spool" / "run.json").read_text())
    rows = [json.loads(x) for x in
            (folder / "mlflow_spool" / "metrics.jsonl").read_text().splitlines()]
    uri = f"sqlite:///{tmp_path / 'partial.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("moons")
    run = client.create_run(experiment, start_time=record["start_time"],
                            tags=record["create_tags"], run_name=record["run_name"])
    params = list(record["params"].items())[:10]
    client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params])
    early = [r for r in rows if r[4] is None and r[3] <= 6]
    client.log_batch(run.info.run_id, metrics=[Metric(k, v, ts, step)
                                               for k, v, ts, step, _ in early])
    done = sync(str(folder), "--tracking-uri", uri)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"completed run {run.info.run_id}" in done.stdout
    _, found = _only_run(uri)
    assert found.info.status == "FINISHED" and found.data.params == record["params"]
    for key in {r[0] for r in rows}:
        history = [(m.step, m.timestamp, m.value)
                   for m in client.get_metric_history(run.info.run_id, key)]
        expected = [(step, ts, v) for k, v, ts, step, _ in rows if k == key]
        assert sorted(history) == sorted(expected), key


def test_a_sync_stopped_half_way_is_completed_by_the_next(runs, tmp_path, monkeypatch):
    """The first sync stops when the model is half logged (the LoggedModel exists, its files
    not yet); the next one completes that model and the rest, with nothing twice."""
    from ffexp.tracking import model, sync as syncing
    _, away, _ = runs
    folder = _copy(away, tmp_path / "away")
    uri = f"sqlite:///{tmp_path / 'crash.db'}"
    real = model.log_saved_network

    def crash(client, run_id, uri, experiment_id, folder, names, step, name, params,
              on_created=None, model_id=None):
        logged = client.create_logged_model(experiment_id, name="half", source_run_id=run_id)
        on_created(logged.model_id)
        raise RuntimeError("the sync was killed here")

    monkeypatch.setattr(model, "log_saved_network", crash)
    results, _ = syncing.sync([folder], uri)
    assert [r.state for r in results] == ["failed"]
    monkeypatch.setattr(model, "log_saved_network", real)
    results, _ = syncing.sync([folder], uri)
    assert [r.state for r in results] == ["uploaded"]
    client, run = _only_run(uri)
    assert run.info.status == "FINISHED"
    models = client.search_logged_models([run.info.experiment_id])
    assert len(models) == 1 and models[0].model_id == run.outputs.model_outputs[0].model_id
    rows = (folder / "mlflow_spool" / "metrics.jsonl").read_text().splitlines()
    stored = sum(len(client.get_metric_history(run.info.run_id, k)) for k in run.data.metrics)
    assert stored == len(rows)
    assert [r.state for r in syncing.sync([folder], uri)[0]] == ["already"]
