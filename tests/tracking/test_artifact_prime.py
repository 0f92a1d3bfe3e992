"""ffexp._compat.mlflow_artifacts: a run's and a LoggedModel's artifact store handed to MLflow's
client at their creation; the uploads make no read of the run or model and land where MLflow
puts them without it (a real SQLite store, read back with MlflowClient)."""

from __future__ import annotations

from pathlib import Path

from ffexp._compat import mlflow_artifacts
from ffexp.tracking import store as stores


def _files(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "hydra").mkdir(parents=True)
    (src / "history.csv").write_text("epoch,train/cost\n1,0.5\n")
    (src / "hydra" / "config.yaml").write_text("seed: 0\n")
    return src


def _reads(client, monkeypatch) -> list[str]:
    """The ids the store is asked to read back as a run or a LoggedModel, from now on."""
    store, calls = client.unwrapped._tracking_client.store, []
    for name in ("get_run", "get_logged_model"):
        method = getattr(store, name)
        monkeypatch.setattr(store, name, lambda i, *a, _m=method, **k: calls.append(i) or
                            _m(i, *a, **k))
    return calls


def test_a_primed_run_uploads_without_reading_itself_back_to_the_same_place(tmp_path, store,
                                                                            monkeypatch):
    client = stores.client(store)
    experiment = client.create_experiment("prime", artifact_location=(tmp_path / "art").as_uri())
    primed, plain = (client.create_run(experiment) for _ in range(2))
    assert mlflow_artifacts.prime(client, primed.info.run_id, primed.info.artifact_uri)
    src = _files(tmp_path)
    reads = _reads(client, monkeypatch)
    client.log_artifacts(primed.info.run_id, str(src))
    client.log_artifact(primed.info.run_id, str(src / "history.csv"), "again")
    assert reads == []
    client.log_artifacts(plain.info.run_id, str(src))   # unprimed: MLflow reads the run
    assert reads == [plain.info.run_id]

    def listing(run):
        out = []
        for top in client.list_artifacts(run.info.run_id):
            out += [f.path for f in client.list_artifacts(run.info.run_id, top.path)] \
                if top.is_dir else [top.path]
        return sorted(out)
    assert listing(primed) == ["again/history.csv", "history.csv", "hydra/config.yaml"]
    assert [p for p in listing(plain)] == ["history.csv", "hydra/config.yaml"]
    where = Path(primed.info.artifact_uri.removeprefix("file://"))
    assert (where / "hydra" / "config.yaml").read_text() == "seed: 0\n"


def test_a_primed_logged_model_uploads_without_reading_itself_back(tmp_path, store, monkeypatch):
    client = stores.client(store)
    experiment = client.create_experiment("prime", artifact_location=(tmp_path / "art").as_uri())
    model = client.create_logged_model(experiment, name="m")
    assert mlflow_artifacts.prime(client, model.model_id, model.artifact_location)
    reads = _reads(client, monkeypatch)
    client.log_model_artifacts(model.model_id, str(_files(tmp_path)))
    assert reads == []
    assert sorted(f.path for f in client.list_logged_model_artifacts(model.model_id)) == \
        ["history.csv", "hydra"]


def test_nothing_is_primed_without_a_location(store):
    assert not mlflow_artifacts.prime(stores.client(store), "0" * 32, None)
