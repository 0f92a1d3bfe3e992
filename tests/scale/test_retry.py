"""ffexp.tracking.retry and faults.transient: what is retried, judged from real errors (SQLite's
result code, a server's answer, a refused connection), for how long, and a run created once."""

from __future__ import annotations

import socket
import sqlite3

import pytest
import sqlalchemy
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

from ffexp.tracking import faults, retry, store
from ffexp.tracking.tags import RUN_KEY, run_key


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    waits = []
    monkeypatch.setattr(retry.time, "sleep", waits.append)
    monkeypatch.setattr(retry, "_DOWN", {})
    return waits


def locked_error(tmp_path) -> MlflowException:
    """SQLite's real "database is locked" (another connection holds the write lock, no busy
    wait), raised through SQLAlchemy and wrapped as MLflow's SQL store wraps an
    OperationalError (mlflow.store.db.utils: TEMPORARILY_UNAVAILABLE, from the error)."""
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path)
    holder.execute("create table t(x)")
    holder.commit()
    holder.execute("begin exclusive")
    engine = sqlalchemy.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("insert into t values (1)")
    except sqlalchemy.exc.OperationalError as err:
        try:
            raise MlflowException(message=err, error_code=TEMPORARILY_UNAVAILABLE) from err
        except MlflowException as wrapped:
            return wrapped
    finally:
        engine.dispose()
        holder.close()
    raise AssertionError("no lock error")


def full_disk_error() -> sqlite3.OperationalError:
    """SQLite's real SQLITE_FULL: a database whose page count is capped."""
    conn = sqlite3.connect(":memory:")
    conn.execute("pragma max_page_count = 2")
    conn.execute("create table t(x)")
    try:
        conn.executemany("insert into t values (?)", [("x" * 1000,)] * 100)
    except sqlite3.OperationalError as err:
        return err
    raise AssertionError("no full-disk error")


def refused_error() -> MlflowException:
    """What MLflow's REST client raises for a server that refuses the connection."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    import os
    old = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    try:
        MlflowClient(f"http://127.0.0.1:{port}").get_run("0" * 32)
    except MlflowException as err:
        return err
    finally:
        if old is None:
            os.environ.pop("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
        else:
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = old
    raise AssertionError("the request did not fail")


#: a tracking server's answer while its database is down (the JSON body MLflow's server sends)
UNAVAILABLE = RestException({"error_code": "TEMPORARILY_UNAVAILABLE",
                             "message": "(psycopg.OperationalError) connection failed: "
                                        "Connection refused"})


def test_classification_by_code_status_and_error_type(tmp_path):
    assert faults.transient(locked_error(tmp_path)) == "the database is locked"
    assert faults.transient(UNAVAILABLE, remote=True) == "HTTP 503 TEMPORARILY_UNAVAILABLE"
    assert faults.transient(UNAVAILABLE, remote=False) is None  # not a server's answer
    assert faults.transient(refused_error(), remote=True) == "the server could not be reached"
    full = full_disk_error()
    assert full.sqlite_errorname == "SQLITE_FULL"
    assert faults.transient(full) is None
    assert faults.cause(full) == "the disk is full (database or disk is full)"
    assert faults.transient(RestException({"error_code": "RESOURCE_ALREADY_EXISTS",
                                           "message": "x"}), remote=True) is None
    assert faults.transient(MlflowException("Run 'abc' not found")) is None


def test_a_locked_database_is_retried_with_growing_pauses(tmp_path, no_sleep):
    error, calls = locked_error(tmp_path), []

    def fn(x, *, y):
        calls.append(x)
        if len(calls) <= 5:
            raise error
        return x + y
    assert retry.call_with_retries(fn, 1, y=2) == 3
    assert len(calls) == 6 and len(no_sleep) == 5
    assert all(0 <= w <= retry.MAX_PAUSE for w in no_sleep)


def test_gives_up_at_the_end_of_the_window(no_sleep):
    calls = []

    def fn():
        calls.append(1)
        raise UNAVAILABLE
    with pytest.raises(RestException, match="TEMPORARILY_UNAVAILABLE"):
        retry.call_with_retries(fn, remote=True, window=30)
    assert 30 <= sum(no_sleep) < 30 + retry.MAX_PAUSE
    assert len(calls) == len(no_sleep) + 1


def test_other_errors_are_not_retried(no_sleep):
    calls = []

    def fn():
        calls.append(1)
        raise MlflowException("Run 'abc' not found")
    with pytest.raises(MlflowException, match="not found"):
        retry.call_with_retries(fn, remote=True)
    assert len(calls) == 1 and not no_sleep


def test_a_create_whose_answer_was_lost_creates_one_run(store):
    """The server committed the run and answered 503: the retried create finds it by its key."""
    real = MlflowClient(store)
    experiment = real.create_experiment("key")

    class LostAnswer:
        tracking_uri = "http://127.0.0.1:9"  # treated as a server: its statuses count
        creates = 0

        def create_run(self, *args, **kwargs):
            LostAnswer.creates += 1
            run = real.create_run(*args, **kwargs)
            if LostAnswer.creates == 1:
                raise UNAVAILABLE
            return run

        def search_runs(self, *args, **kwargs):
            return real.search_runs(*args, **kwargs)

    key = run_key("20250101-000000-abcdef12", 3)
    run = retry.RetryingClient(LostAnswer()).create_run(experiment, tags={RUN_KEY: key})
    assert LostAnswer.creates == 1
    runs = real.search_runs([experiment])
    assert [r.info.run_id for r in runs] == [run.info.run_id]
    assert runs[0].data.tags[RUN_KEY] == "20250101-000000-abcdef12/3"


def test_store_client_wraps_every_method(monkeypatch):
    import os
    env = {k: v for k, v in os.environ.items() if k not in retry.HTTP_DEFAULTS}
    env["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "7"  # the user's choice is kept
    monkeypatch.setattr(os, "environ", env)
    client = store.client("http://127.0.0.1:9")
    assert isinstance(client, retry.RetryingClient)
    assert client.tracking_uri == "http://127.0.0.1:9"
    assert env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    assert env["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"


def test_an_unreachable_server_fails_fast_until_it_answers(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(retry.time, "monotonic", lambda: clock[0])
    down = refused_error()

    class Fake:
        tracking_uri = "http://127.0.0.1:9"
        calls = 0
        fail = True

        def get_run(self):
            Fake.calls += 1
            if Fake.fail:
                raise down
            return "run"

    client = retry.RetryingClient(Fake())
    with pytest.raises(MlflowException, match="Max retries"):
        client.get_run()   # retried through the window (the pauses count: sleep is a no-op)
    tried = Fake.calls
    assert tried > 1
    clock[0] += 5
    with pytest.raises(retry.TrackingServerUnreachable,
                       match="127.0.0.1:9 is unreachable .the server could not be reached"):
        client.get_run()  # no new request while the server is known to be down
    assert Fake.calls == tried
    clock[0] += retry.DOWN_SECONDS
    Fake.fail = False
    assert client.get_run() == "run" and Fake.calls == tried + 1 and not retry._DOWN
