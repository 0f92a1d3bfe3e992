"""ffexp.tracking.retry: SQLite lock contention is retried, other errors are not; HTTP limits."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

from ffexp.tracking import retry, store


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    waits = []
    monkeypatch.setattr(retry.time, "sleep", waits.append)
    return waits


def flaky(failures: int, error: Exception):
    calls = []

    def fn(x, *, y):
        calls.append((x, y))
        if len(calls) <= failures:
            raise error
        return x + y
    return fn, calls


LOCKED = MlflowException("(sqlite3.OperationalError) database is locked",
                         error_code=TEMPORARILY_UNAVAILABLE)


def test_locked_database_is_retried_with_growing_pauses(no_sleep):
    fn, calls = flaky(3, LOCKED)
    assert retry.call_with_retries(fn, 1, y=2) == 3
    assert len(calls) == 4 and len(no_sleep) == 3
    assert all(0 < w <= retry.MAX_PAUSE for w in no_sleep)
    assert no_sleep[2] > no_sleep[0]  # 0.1 s doubling, jitter within x0.5..x1.5


def test_gives_up_after_the_last_attempt():
    fn, calls = flaky(100, LOCKED)
    with pytest.raises(MlflowException, match="database is locked"):
        retry.call_with_retries(fn, 1, y=2, attempts=3)
    assert len(calls) == 3


def test_other_errors_are_not_retried(no_sleep):
    fn, calls = flaky(1, MlflowException("Run 'abc' not found"))
    with pytest.raises(MlflowException, match="not found"):
        retry.call_with_retries(fn, 1, y=2)
    assert len(calls) == 1 and not no_sleep


def test_store_client_wraps_every_method(monkeypatch):
    import os
    env = {k: v for k, v in os.environ.items() if k not in retry.HTTP_DEFAULTS}
    env["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "7"  # the user's choice is kept
    monkeypatch.setattr(os, "environ", env)
    client = store.client("http://127.0.0.1:9")
    assert isinstance(client, retry.RetryingClient)
    assert client.tracking_uri == "http://127.0.0.1:9"
    assert env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"
    assert env["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"


def test_an_unreachable_server_fails_fast_until_it_answers(monkeypatch):
    monkeypatch.setattr(retry, "_DOWN", {})
    clock = [1000.0]
    monkeypatch.setattr(retry.time, "monotonic", lambda: clock[0])
    down = MlflowException("API request to http://127.0.0.1:9/api/2.0/mlflow/runs/create failed "
                           "with exception HTTPConnectionPool(host='127.0.0.1', port=9): Max "
                           "retries exceeded with url: /api/2.0/mlflow/runs/create (Caused by "
                           "NewConnectionError(...: [Errno 111] Connection refused))")

    class Fake:
        tracking_uri = "http://127.0.0.1:9"
        calls = 0
        fail = True

        def create_run(self):
            Fake.calls += 1
            if Fake.fail:
                raise down
            return "run"

    client = retry.RetryingClient(Fake())
    with pytest.raises(MlflowException, match="Max retries"):
        client.create_run()
    clock[0] += 5
    with pytest.raises(retry.TrackingServerUnreachable, match="127.0.0.1:9 is unreachable .Connection refused"):
        client.create_run()  # no new request while the server is known to be down
    assert Fake.calls == 1
    clock[0] += retry.DOWN_SECONDS
    Fake.fail = False
    assert client.create_run() == "run" and Fake.calls == 2 and not retry._DOWN
