"""One job through the real ``ffexp`` command, read back through MLflow's client."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from helpers_tracking import FAST, all_runs, run_ffexp

EPOCHS = 12
HEADLINE = ("dataset", "task", "activation", "init", "loss", "optimizer", "lr", "batch_size",
            "hidden_sizes", "epochs", "seed")


@pytest.fixture(scope="module")
def single(tmp_path_factory, template_db):
    """One run on the default store: ./mlflow.db in the directory ffexp starts from."""
    cwd = tmp_path_factory.mktemp("single")
    shutil.copy(template_db, cwd / "mlflow.db")  # schema ready: spares the test 3 s
    proc = run_ffexp(cwd, *FAST, f"train.epochs={EPOCHS}", "seed=3")
    uri = f"sqlite:///{cwd / 'mlflow.db'}"
    (run,) = all_runs(uri)
    return proc, uri, run


def test_default_store_and_ui_command(single):
    proc, uri, run = single
    assert f"mlflow ui --backend-store-uri {uri}" in proc.stdout
    # the last thing a single run prints: after the summary, where the user's eye lands; the
    # address opens the runs table (MLflow 3.17 would open its GenAI overview)
    exp = run.info.experiment_id
    assert proc.stdout.rstrip().endswith(
        f"mlflow ui --backend-store-uri {uri}\n  then open "
        f"http://127.0.0.1:5000/#/experiments/{exp}?workflowType=machine_learning")
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "relu·he·minibatch·s3"  # moons is the experiment
    exp = MlflowClient(uri).get_experiment(run.info.experiment_id)
    assert exp.name == "moons"


def test_params(single):
    _, _, run = single
    p = run.data.params
    assert {k: p[k] for k in HEADLINE} == {
        "dataset": "moons", "task": "binary", "activation": "relu", "init": "he", "loss": "bce",
        "optimizer": "minibatch", "lr": "0.1", "batch_size": "32", "hidden_sizes": "[8,8]",
        "epochs": str(EPOCHS), "seed": "3"}
    assert p["dataset.params.n_samples"] == "200" and p["dataset.params.noise"] == "0.2"
    assert p["init.scale"] == "0.01" and p["dataset.seed"] == "0"
    assert p["loss.name"] == "auto"   # as configured; the headline `loss` is the one resolved
    # each value once: no dotted alias repeats a short name
    assert not {"activation.name", "init.name", "optimizer.name", "optimizer.lr", "dataset.name",
                "dataset.task", "optimizer.batch_size", "model.hidden_sizes",
                "train.epochs"} & set(p)
    assert not any(k.startswith(("tracking.", "hydra.")) for k in p)


def test_tags(single):
    _, _, run = single
    t = run.data.tags
    assert "ffexp.git_commit" not in t  # MLflow's own tag says it
    assert len(t["mlflow.source.git.commit"]) == 40 and t["ffexp.git_dirty"] in ("true", "false")
    assert "train.epochs=12" in t["ffexp.overrides"]
    assert len(t["ffexp.config_hash"]) == 12 and t["ffexp.version"]
    assert t["ffexp.outcome"] == "finished"
    assert "mlflow.parentRunId" not in t
    diag = {k for k in t if k.startswith("ffexp.diag.")}
    assert {"ffexp.diag.vanishing_gradients", "ffexp.diag.dead_units",
            "ffexp.diag.symmetry_not_broken", "ffexp.diag.stalled_cost"} <= diag
    assert all(t[k] in ("true", "false") for k in diag)


def test_metric_histories(single):
    _, uri, run = single
    client = MlflowClient(uri)
    names = set(run.data.metrics)
    per_epoch = {"train/cost", "val/cost", "val/accuracy", "val/f1", "val/roc_auc", "time/epoch",
                 "time/elapsed"}
    per_epoch |= {f"{m}{l}" for m in ("grad_norm/W", "grad_norm/b", "grad_norm/Z",
                                      "weight_norm/W") for l in (1, 2, 3)}
    per_epoch |= {f"{m}/{l}" for m in ("act_mean", "act_std", "act_saturated", "act_dead")
                  for l in (1, 2)}
    final = {"train/accuracy", "train/f1", "train/roc_auc", "test/cost", "test/accuracy",
             "test/f1", "test/roc_auc"}
    assert per_epoch | final == names
    for name in names:
        history = client.get_metric_history(run.info.run_id, name)
        steps = sorted(m.step for m in history)
        # every per-epoch metric from step 0 (at initialization, before any update) on
        assert steps == (list(range(0, EPOCHS + 1)) if name in per_epoch else [EPOCHS]), name
        assert all(math.isfinite(m.value) for m in history), name


def test_artifacts(single):
    _, uri, run = single
    client = MlflowClient(uri)
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"history.csv", "hydra", "plots", "config", "model_npz"} <= top
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == {
        "plots/learning_curves.png", "plots/gradient_norms.png", "plots/gradient_flow.png",
        "plots/decision_boundary.png"}
    assert {"hydra/config.yaml", "hydra/overrides.yaml"} <= {
        a.path for a in client.list_artifacts(run.info.run_id, "hydra")}
    history = pd.read_csv(client.download_artifacts(run.info.run_id, "history.csv"))
    assert list(history["epoch"]) == list(range(0, EPOCHS + 1))


def _step_images(client, run_id) -> dict[str, dict[int, tuple[str, str]]]:
    """{key: {step: (png path, webp path)}}, parsed as MLflow's UI parses the file names:
    <key>+step+<step>+timestamp+<ms>+<uuid>[+compressed].<ext>."""
    found: dict[str, dict[int, dict[str, str]]] = {}
    for a in client.list_artifacts(run_id, "images"):
        stem, ext = Path(a.path).name.rsplit(".", 1)
        key, step_word, step, ts_word, timestamp, _uuid, *compressed = stem.split("+")
        assert (step_word, ts_word, timestamp.isdigit()) == ("step", "timestamp", True), a.path
        assert (ext, compressed) in [("png", []), ("webp", ["compressed"])], a.path
        found.setdefault(key, {}).setdefault(int(step), {})[ext] = a.path
    return {key: {step: (f["png"], f["webp"]) for step, f in steps.items()}
            for key, steps in found.items()}


def test_snapshots_are_step_images(single):
    """tracking.snapshots (default 10): the boundary and the gradient flow at 10 epochs, as
    MLflow step images (each a .png and its +compressed.webp thumbnail); the last boundary frame
    is the logged model's boundary, pixel for pixel."""
    from PIL import Image

    from ffexp.job.data import load_dataset
    from ffexp.nn import Network
    from ffexp.plots.figures import boundary_frames
    _, uri, run = single
    client, run_id = MlflowClient(uri), run.info.run_id
    images = _step_images(client, run_id)
    assert set(images) == {"decision_boundary", "gradient_flow"}
    for key, steps in images.items():
        assert len(steps) == 10 and {0, EPOCHS} <= set(steps) <= set(range(0, EPOCHS + 1)), key
    assert run.data.tags["mlflow.loggedImages"] == "True"

    def read(path):
        return np.asarray(Image.open(client.download_artifacts(run_id, path)).convert("RGB"))
    net = Network.load(client.download_artifacts(run_id, "model_npz/network.npz"))
    data = load_dataset("moons", params={"n_samples": 200})
    png, webp = images["decision_boundary"][EPOCHS]
    title = f"moons · {run.info.run_name}"
    (expected,) = boundary_frames(net, data, [(net.weights, net.biases)], [EPOCHS], title)
    np.testing.assert_array_equal(read(png), expected)
    assert min(expected.shape[:2]) >= 400
    assert read(webp).shape == (expected.shape[0] // 2, expected.shape[1] // 2, 3)  # halved
    first, last = (read(images["gradient_flow"][s][0]) for s in (0, EPOCHS))
    assert first.shape == last.shape and min(first.shape[:2]) >= 400
    assert (np.abs(first.astype(int) - last).max(axis=-1) > 40).mean() > 0.002  # moved
    thumb = read(images["gradient_flow"][EPOCHS][1])
    assert max(thumb.shape[:2]) <= 256 and thumb.shape[1] == first.shape[1] // 2


def test_no_snapshots_with_0(tmp_path, template_db):
    shutil.copy(template_db, tmp_path / "mlflow.db")
    run_ffexp(tmp_path, *FAST, "train.epochs=3", "tracking.snapshots=0", "tracking.log_model=false")
    (run,) = all_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert client.list_artifacts(run.info.run_id, "images") == []
    assert "mlflow.loggedImages" not in run.data.tags


def test_pyfunc_predicts_like_the_network(single):
    import mlflow
    import mlflow.pyfunc

    from ffexp.job.data import load_dataset
    from ffexp.nn import Network
    _, uri, run = single
    client = MlflowClient(uri)
    net = Network.load(client.download_artifacts(run.info.run_id, "model_npz/network.npz"))
    data = load_dataset("moons", params={"n_samples": 200})
    raw = data.feature_scaler.inverse_transform(data.X_test.T)      # the data's own units
    df = pd.DataFrame(raw, columns=list(data.feature_names))
    (output,) = run.outputs.model_outputs
    # models:/ URIs resolve on the fluent store, which another in-process test may have set
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        model = mlflow.pyfunc.load_model(f"models:/{output.model_id}")
    finally:
        mlflow.set_tracking_uri(previous)
    assert model.metadata.signature is not None
    predicted = model.predict(df)
    np.testing.assert_allclose(predicted.to_numpy(), net.forward(data.X_test).T, rtol=1e-9, atol=1e-12)
    # the model is the trained one: its test accuracy is the logged one
    accuracy = np.mean((predicted.to_numpy()[:, 0] > 0.5) == (data.Y_test[0] > 0.5))
    assert accuracy == pytest.approx(run.data.metrics["test/accuracy"])


def test_no_validation_split_and_per_layer_activations_in_mlflow(tmp_path, store):
    run_ffexp(tmp_path, *FAST, "train.epochs=3", "dataset.val_fraction=0",
              "model.activations=[tanh,relu]", "tracking.log_plots=false",
              "tracking.log_model=false", uri=store)
    (run,) = all_runs(store)
    assert run.info.run_name == "tanh,relu·he·minibatch·s0"  # moons is the experiment
    assert run.data.params["activation"] == "tanh,relu"
    assert not any(k.startswith("val/") for k in run.data.metrics)
    assert {"train/accuracy", "test/accuracy", "train/cost"} <= set(run.data.metrics)
    history = MlflowClient(store).get_metric_history(run.info.run_id, "act_mean/1")
    assert sorted(m.step for m in history) == [0, 1, 2, 3]


def test_model_is_named_linked_and_stored_without_pickle(single):
    _, uri, run = single
    client = MlflowClient(uri)
    (output,) = run.outputs.model_outputs
    model = client.get_logged_model(output.model_id)
    assert model.name == "moons-relu-he-minibatch-s3" and model.source_run_id == run.info.run_id
    linked = {m.key: m.value for m in model.metrics}
    assert linked["test/accuracy"] == run.data.metrics["test/accuracy"]
    assert {"test/cost", "train/accuracy"} <= set(linked)
    assert model.params["activation"] == "relu"
    files = [f.path for f in client.list_logged_model_artifacts(model.model_id)]
    files += [f.path for f in client.list_logged_model_artifacts(model.model_id, "artifacts")]
    assert "model_code.py" in files and "artifacts/network.npz" in files
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".cloudpickle"))]


def test_experiment_dataset_and_description(single):
    _, uri, run = single
    client = MlflowClient(uri)
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert exp.tags["mlflow.experiment.primaryMetric.name"] == "val/accuracy"
    (data,) = run.inputs.dataset_inputs
    assert data.dataset.name == "moons" and len(data.dataset.digest) == 12
    assert [(t.key, t.value) for t in data.tags] == [("mlflow.data.context", "train")]
    profile = json.loads(data.dataset.profile)
    assert profile["task"] == "binary" and sum(profile["splits"].values()) == profile["rows"] == 200
    assert json.loads(data.dataset.source)["tags"]["params"]["n_samples"] == 200
    note = run.data.tags["mlflow.note.content"]
    accuracy = run.data.metrics["test/accuracy"]
    assert note.startswith("**relu·he·minibatch·s3** on moons: finished after 12 epochs")
    assert f"test/accuracy {accuracy:.4g}" in note and "Diagnoses: " in note


def test_typo_creates_no_run(tmp_path):
    """A misspelled option is refused before anything touches the store."""
    proc = run_ffexp(tmp_path, "activation=rleu", check=False)
    assert proc.returncode != 0
    proc = run_ffexp(tmp_path, "optimizer.lr=-1", check=False)
    assert proc.returncode == 2 and "optimizer.lr" in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()
    assert not (tmp_path / "mlartifacts").exists()


def test_disabled_tracking_writes_nothing(tmp_path):
    run_ffexp(tmp_path, *FAST, "train.epochs=2", "tracking.enabled=false")
    assert not (tmp_path / "mlflow.db").exists()


def test_fresh_store_is_quiet(tmp_path):
    """No MLflow/alembic INFO lines when the run creates the store."""
    proc = run_ffexp(tmp_path, *FAST, "train.epochs=2", "tracking.log_model=false",
                     "tracking.snapshots=0")
    assert (tmp_path / "mlflow.db").exists()
    assert " INFO " not in proc.stdout + proc.stderr, proc.stderr


def test_short_error_drops_sql_text():
    from ffexp.tracking.tags import short_error
    text = ("OperationalError: (sqlite3.OperationalError) database is locked\n"
            "[SQL: INSERT INTO metrics (key, value) VALUES (?, ?)]\n[parameters: ('a', 1.0)]\n"
            "(Background on this error at: https://sqlalche.me/e/20/e3q8)")
    assert short_error(text) == "OperationalError: (sqlite3.OperationalError) database is locked"


def test_a_dataset_another_job_stores_meanwhile_is_linked_not_a_failure(store, tmp_path):
    """Two jobs log a dataset new to the experiment at the same moment (a joblib sweep's first
    jobs): here the other job's insert lands, through a connection of its own, between this
    one's lookup and its insert, as it does in a real race. The run gets the dataset input."""
    import sqlite3
    import uuid

    from sqlalchemy import event

    from ffexp.job.data import load_dataset
    from ffexp.tracking.inputs import dataset_input, log_dataset
    from ffexp.tracking.retry import RetryingClient

    data = load_dataset("moons", params={"n_samples": 60})
    client = RetryingClient(MlflowClient(store))
    experiment = client.create_experiment("race")
    run = client.create_run(experiment)
    entity = dataset_input(data, "binary").dataset
    engine = client.unwrapped._tracking_client.store.engine
    other = []

    def other_job_inserts_first(conn, cursor, statement, *args):
        if statement.lstrip().startswith("INSERT INTO datasets") and not other:
            with sqlite3.connect(store.removeprefix("sqlite:///")) as db:
                db.execute("INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (uuid.uuid4().hex, int(experiment), entity.name, entity.digest,
                            entity.source_type, entity.source, entity.schema, entity.profile))
            other.append(statement)

    event.listen(engine, "before_cursor_execute", other_job_inserts_first)
    try:
        log_dataset(client, run.info.run_id, data, "binary")
    finally:
        event.remove(engine, "before_cursor_execute", other_job_inserts_first)
    assert other   # the race happened
    (linked,) = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert (linked.dataset.name, linked.dataset.digest) == (entity.name, entity.digest)
