"""A shared tracking server with MLflow's basic-auth app (docs/scaling.md, "A shared server
with accounts"): users authenticate with MLflow's own MLFLOW_TRACKING_USERNAME and
MLFLOW_TRACKING_PASSWORD, each run records its user (``mlflow.user``), and a resume adopts
only the user's own runs. A real ``mlflow server --app-name basic-auth`` on 127.0.0.1. Slow."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from helpers_scale import SERVER_OPTS, TINY, MlflowServer, run_ffexp

pytestmark = pytest.mark.slow
pytest.importorskip("flask_wtf", reason="the ffexp[auth] extra (MLflow's auth app)")

ADMIN = ("admin", "admin-password-1")
USERS = {"alice": "alice-password-1", "bob": "bob-password-1"}
ARGS = ["-m", "seed=0,1", "train.epochs=2", "tracking.log_model=false",
        "tracking.log_plots=false", "tracking.experiment=lab", *TINY]


def _as(user: str, password: str | None = None) -> dict:
    return {"MLFLOW_TRACKING_USERNAME": user,
            "MLFLOW_TRACKING_PASSWORD": password or USERS[user]}


@pytest.fixture
def auth_server(tmp_path, monkeypatch):
    env = {"MLFLOW_AUTH_ADMIN_USERNAME": ADMIN[0], "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
           "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-secret-key"}
    with MlflowServer(tmp_path / "server", *SERVER_OPTS, "--app-name", "basic-auth",
                      env=env) as server:
        from mlflow.server.auth.client import AuthServiceClient
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
        admin = AuthServiceClient(server.uri)
        for user, password in USERS.items():
            admin.create_user(user, password)
        yield server, admin


def _runs(uri: str) -> list:
    client = MlflowClient(uri)  # the admin's credentials (the fixture's environment)
    exp = client.get_experiment_by_name("lab")
    return [r for r in client.search_runs([exp.experiment_id])
            if r.data.tags.get("ffexp.kind") != "sweep"]


def test_users_of_a_shared_server_are_kept_apart(tmp_path, auth_server):
    server, admin = auth_server
    # no credentials: refused before any job, in one line
    proc, _ = run_ffexp(tmp_path, ARGS, server.uri, check=False)
    assert proc.returncode != 0
    error = [x for x in proc.stderr.splitlines() if x.startswith("ffexp: error:")]
    assert len(error) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "401" in error[0] or "UNAUTHENTICATED" in error[0] or "credentials" in error[0]

    run_ffexp(tmp_path, ARGS, server.uri, env=_as("alice"))
    assert sorted(r.data.tags["mlflow.user"] for r in _runs(server.uri)) == ["alice", "alice"]
    # alice created the experiment (she manages it); the lab shares it with bob
    exp = MlflowClient(server.uri).get_experiment_by_name("lab")
    admin.grant_user_permission("bob", "experiment", exp.experiment_id, "EDIT")

    # bob's resume does not adopt alice's runs: he trains his own
    proc, _ = run_ffexp(tmp_path, [*ARGS, "tracking.skip_existing=true"], server.uri,
                        env=_as("bob"))
    assert "skipped" not in proc.stdout, proc.stdout
    assert sorted(r.data.tags["mlflow.user"] for r in _runs(server.uri)) == \
        ["alice", "alice", "bob", "bob"]
    # ... unless asked to; his own runs are adopted either way
    proc, _ = run_ffexp(tmp_path, [*ARGS, "tracking.skip_existing=true"], server.uri,
                        env=_as("bob"))
    assert proc.stdout.count(": skipped") == 2 and len(_runs(server.uri)) == 4
    proc, _ = run_ffexp(tmp_path, [*ARGS, "tracking.skip_existing=true",
                                   "tracking.skip_existing_any_user=true"], server.uri,
                        env=_as("bob"))
    assert proc.stdout.count(": skipped") == 2 and len(_runs(server.uri)) == 4

    # a wrong password: one line, nothing recorded
    proc, _ = run_ffexp(tmp_path, ARGS, server.uri, env=_as("bob", "wrong"), check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(_runs(server.uri)) == 4


def test_a_single_run_refused_after_the_preflight_ends_in_one_line(tmp_path, auth_server):
    """bob's credentials are good (the preflight passes) but the experiment is alice's, which
    he may only read: the server refuses his run (HTTP 403). One line naming what was refused
    and what to set, exit status 2, no run, no output folder; the same for his sweep."""
    server, _admin = auth_server
    run_ffexp(tmp_path, ARGS, server.uri, env=_as("alice"))  # alice's experiment "lab"
    single = ["train.epochs=2", "tracking.log_model=false", "tracking.log_plots=false",
              "tracking.experiment=lab", *TINY]
    before = {p.name for p in tmp_path.iterdir()}
    for args in (single, ARGS):
        proc, _ = run_ffexp(tmp_path, args, server.uri, env=_as("bob"), check=False)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
        (line,) = [x for x in proc.stderr.splitlines() if x.startswith("ffexp: ")]
        assert line.startswith(f"ffexp: error: tracking.uri={server.uri}: the server refused "
                               f"'bob'"), line
        print(line)
        assert "HTTP 403" in line and "experiment 'lab'" in line, line
        assert "MLFLOW_TRACKING_USERNAME" in line and "MLFLOW_TRACKING_PASSWORD" in line, line
    assert {r.data.tags["mlflow.user"] for r in _runs(server.uri)} == {"alice"}
    assert {p.name for p in tmp_path.iterdir()} - before <= {"multirun"}  # no outputs/
    assert not list(tmp_path.glob("outputs/*/*"))
