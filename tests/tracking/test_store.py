"""A new SQLite store starts as a copy of MLflow's own migrated, empty schema (made once per
machine and MLflow version): the same database MLflow makes itself, read back through MLflow."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from ffexp.tracking import store


def _statement(sql: str) -> tuple[str, ...]:
    """A CREATE statement as the set of its lines: alembic's batch migrations write a table's
    constraints in an order that varies from one process to the next (two stores MLflow made
    itself differ so too)."""
    return tuple(sorted(line.strip().rstrip(",").strip() for line in sql.splitlines()))


def _schema(db: Path) -> tuple[list[tuple[str, ...]], list[tuple]]:
    con = sqlite3.connect(db)
    try:
        sql = sorted(_statement(r[0]) for r in con.execute("SELECT sql FROM sqlite_master")
                     if r[0])
        return sql, con.execute("SELECT * FROM alembic_version").fetchall()
    finally:
        con.close()


def test_a_new_store_has_the_schema_mlflow_makes_itself(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ours, theirs = tmp_path / "ours" / "mlflow.db", tmp_path / "theirs.db"
    client, experiment_id = store.open_store(f"sqlite:///{ours}", "moons")
    MlflowClient(f"sqlite:///{theirs}").create_experiment("moons")
    template = tmp_path / "cache" / "ffexp" / f"mlflow-{mlflow.__version__}-schema.db"
    assert template.is_file()
    assert _schema(ours) == _schema(theirs)
    # MLflow made its Default experiment on first open, as in any store; ours is the 2nd
    names = {e.name: e for e in MlflowClient(f"sqlite:///{ours}").search_experiments()}
    assert set(names) == {"Default", "moons"}
    assert names["moons"].experiment_id == experiment_id
    assert names["moons"].artifact_location == (ours.parent / "mlartifacts").as_uri()
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "train/cost", 0.5, step=0)
    assert MlflowClient(f"sqlite:///{ours}").get_run(run.info.run_id).data.metrics == {
        "train/cost": 0.5}


def test_the_template_is_made_once_and_an_existing_store_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = tmp_path / "a.db"
    client, experiment_id = store.open_store(f"sqlite:///{first}", "moons")
    client.create_run(experiment_id)
    template = store.schema_template()
    made = template.stat().st_mtime_ns
    store.open_store(f"sqlite:///{tmp_path / 'b.db'}", "moons")
    assert template.stat().st_mtime_ns == made
    # reopening a store with runs keeps them (the copy is only for an empty or missing file)
    client, _ = store.open_store(f"sqlite:///{first}", "moons")
    assert len(client.search_runs([experiment_id])) == 1


def test_without_a_usable_cache_mlflow_creates_the_store_itself(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert store.schema_template() is None
    db = tmp_path / "mlflow.db"
    client, experiment_id = store.open_store(f"sqlite:///{db}", "moons")
    assert client.get_experiment(experiment_id).name == "moons"
    assert _schema(db)[1]  # migrated by MLflow: an alembic version is recorded
