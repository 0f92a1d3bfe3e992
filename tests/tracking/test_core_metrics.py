"""ffexp's Core path for metric values (ffexp._compat.mlflow_metrics, through
ffexp.tracking.buffer.store_rows) against MLflow's log_batch: the same rows written both ways
into two real SQLite stores read back the same through MlflowClient, and the same table rows;
MLflow's errors; the fallback on a revision the tests do not cover; the line in the job's log."""

from __future__ import annotations

import logging
import shutil

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ffexp._compat import mlflow_metrics
from ffexp.tracking.buffer import store_rows

from helpers_metrics import (CASES, expected_latest, log_batch, new_run, random_batches,
                             read_back, table_rows, unsigned_zero)
from helpers_tracking import FAST, run_ffexp


@pytest.fixture
def two_stores(tmp_path, template_db):
    """(uri, client, run id) of a run in each of two fresh SQLite stores: Core, log_batch."""
    out = []
    for name in ("core", "batch"):
        shutil.copy(template_db, tmp_path / f"{name}.db")
        uri = f"sqlite:///{tmp_path / name}.db"
        client = MlflowClient(uri)
        out.append((uri, client, new_run(client)))
    return out


def write_both_ways(two_stores, batches) -> None:
    (core_uri, core, core_run), (_, batch, batch_run) = two_stores
    assert mlflow_metrics.choose(core, core_uri).writer is not None  # the Core path is taken
    for rows in batches:
        store_rows(core, core_uri, core_run, rows)
        log_batch(batch, batch_run, rows)


def assert_same(two_stores) -> dict:
    (core_uri, core, core_run), (batch_uri, batch, batch_run) = two_stores
    got, want = read_back(core, core_run), read_back(batch, batch_run)
    assert got == want
    assert table_rows(core_uri, core_run) == table_rows(batch_uri, batch_run)
    return got


def test_the_cases_read_back_as_log_batch_stores_them(two_stores):
    write_both_ways(two_stores, CASES)
    got = assert_same(two_stores)
    assert unsigned_zero(got["latest"]) == expected_latest(CASES)
    assert got["latest"]["same_step"] == "-1.0" and got["latest"]["out_of_order"] == "1.0"
    assert got["latest"]["nan"] == "nan" and got["latest"]["inf"] == "1.7976931348623157e+308"
    assert got["latest"]["neg_inf"] == "-1.7976931348623157e+308"
    assert len(got["histories"]["dup"]) == 1
    assert [v for _, v, _, _, _ in got["histories"]["tie"]] == ["1.0", "2.0", "4.0"]


@pytest.mark.parametrize("seed", range(4))
def test_random_batches_read_back_as_log_batch_stores_them(two_stores, seed):
    batches = random_batches(seed)
    write_both_ways(two_stores, batches)
    assert unsigned_zero(assert_same(two_stores)["latest"]) == expected_latest(batches)


def test_one_transaction_of_many_rows_equals_log_batch_in_requests_of_1000(two_stores):
    rows = [(f"k{i % 28}", (i * 7919 % 1000) / 7.0, 1000 + i // 28, i // 28) for i in range(2800)]
    write_both_ways(two_stores, [rows])
    assert len(assert_same(two_stores)["histories"]["k0"]) == 100


def _error(fn) -> tuple:
    with pytest.raises(MlflowException) as info:
        fn()
    return info.value.error_code, str(info.value.message)


@pytest.mark.parametrize("rows", [[("ok", 1.0, 0, 0), ("ok", None, 0, 1)],
                                  [("ok", "1.5x", 0, 0)],
                                  [("bad//name", 1.0, 0, 0)],
                                  [("ok", 1.0, -5, 0)]],
                         ids=["none", "text", "name", "timestamp"])
def test_invalid_values_fail_as_in_log_batch_and_store_nothing(two_stores, rows):
    (core_uri, core, core_run), (_, batch, batch_run) = two_stores
    assert _error(lambda: store_rows(core, core_uri, core_run, rows)) == \
        _error(lambda: log_batch(batch, batch_run, rows))
    assert core.get_run(core_run).data.metrics == {}
    assert_same(two_stores)


def test_a_missing_or_deleted_run_fails_as_in_log_batch(two_stores):
    (core_uri, core, core_run), (_, batch, batch_run) = two_stores
    rows = [("k", 1.0, 0, 0)]
    core_code, core_text = _error(lambda: store_rows(core, core_uri, "0" * 32, rows))
    batch_code, batch_text = _error(lambda: log_batch(batch, "0" * 32, rows))
    assert (core_code, core_text) == (batch_code, batch_text) == \
        ("RESOURCE_DOES_NOT_EXIST", f"Run with id={'0' * 32} not found")
    core.delete_run(core_run)
    batch.delete_run(batch_run)
    core_code, core_text = _error(lambda: store_rows(core, core_uri, core_run, rows))
    batch_code, batch_text = _error(lambda: log_batch(batch, batch_run, rows))
    assert core_code == batch_code == "INVALID_PARAMETER_VALUE"
    assert core_text == batch_text.replace(batch_run, core_run)


def test_a_closed_run_takes_metrics_as_in_log_batch(two_stores):
    for _, client, run_id in two_stores:
        client.set_terminated(run_id, "FINISHED")
    write_both_ways(two_stores, CASES[:2])
    assert assert_same(two_stores)["latest"]["same_step"] == "3.0"


def test_an_alembic_revision_the_tests_do_not_cover_falls_back_to_log_batch(two_stores, caplog):
    (core_uri, core, core_run), _ = two_stores
    core.search_experiments()  # MLflow opened (and verified) the store at its head revision
    import sqlalchemy
    engine = sqlalchemy.create_engine(core_uri)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
    engine.dispose()
    with caplog.at_level(logging.INFO, logger="ffexp"):
        choice = mlflow_metrics.choose(core, core_uri)
    assert choice.writer is None
    assert choice.line == ("metrics are written by MLflow's log_batch (the store's alembic "
                           "revision ffffffffffff is not one the tests cover (f4a9b2c7d1e6))")
    assert "ffexp writes metrics with MLflow's log_batch: the store's alembic revision " \
        "ffffffffffff" in caplog.text
    write_both_ways_fallback = [("k", 1.0, 0, 0), ("k", float("nan"), 1, 1)]
    store_rows(core, core_uri, core_run, write_both_ways_fallback)
    assert [m.step for m in core.get_metric_history(core_run, "k")] == [0, 1]


def test_an_untested_mlflow_release_falls_back(two_stores, monkeypatch):
    (core_uri, core, _), _ = two_stores
    monkeypatch.setattr(mlflow_metrics, "TESTED_MLFLOW", frozenset({(2, 0)}))
    monkeypatch.setattr(mlflow_metrics, "_CHOICES", {})
    choice = mlflow_metrics.choose(core, core_uri)
    assert choice.writer is None and "is not a release the tests cover (2.0)" in choice.reason


def test_the_environment_switch_keeps_log_batch(two_stores, monkeypatch):
    (core_uri, core, _), _ = two_stores
    monkeypatch.setenv("FFEXP_MLFLOW_CORE", "0")
    monkeypatch.setattr(mlflow_metrics, "_CHOICES", {})
    assert mlflow_metrics.choose(core, core_uri).line == \
        "metrics are written by MLflow's log_batch (FFEXP_MLFLOW_CORE=0)"


def _job(tmp_path, uri, core: bool) -> tuple[str, str]:
    """(run id, job log) of one run of the real command."""
    cwd = tmp_path / ("core" if core else "batch")
    cwd.mkdir()
    run_ffexp(cwd, "train.epochs=4", *FAST, uri=uri,
              env={} if core else {"FFEXP_MLFLOW_CORE": "0"})
    log = next(cwd.glob("outputs/*/*/ffexp.log")).read_text()
    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id, log


def test_the_command_writes_the_same_values_both_ways_and_logs_which_path(tmp_path, store):
    core_run, core_log = _job(tmp_path, store, core=True)
    batch_run, batch_log = _job(tmp_path, store, core=False)
    assert ("metrics are written by SQLAlchemy Core into MLflow's tables (sqlite, alembic "
            f"revision f4a9b2c7d1e6, MLflow {mlflow.__version__})") in core_log
    assert "metrics are written by MLflow's log_batch (FFEXP_MLFLOW_CORE=0)" in batch_log
    assert core_log.count("metrics are written by") == 1
    client = MlflowClient(store)
    got, want = read_back(client, core_run), read_back(client, batch_run)
    # the same training twice; only its clock (time/…) and the timestamps differ
    measured = lambda latest: {k: v for k, v in latest.items() if not k.startswith("time/")}
    assert measured(got["latest"]) == measured(want["latest"]) and len(got["latest"]) > 20
    assert got["latest"].keys() == want["latest"].keys()
    for key, history in want["histories"].items():
        if key.startswith("time/"):
            continue
        assert [(k, v, step) for k, v, _, step, _ in got["histories"][key]] == \
            [(k, v, step) for k, v, _, step, _ in history]
