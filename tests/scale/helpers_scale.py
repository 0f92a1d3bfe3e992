"""Helpers of the scale-out tests: a real ``mlflow server`` on 127.0.0.1, sweeps of tiny jobs
through the real ``ffexp -m`` and their runs read back through MLflow's client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import ffexp_command

FFEXP = ffexp_command.FFEXP
MLFLOW = str(Path(sys.executable).with_name("mlflow"))
#: the test servers' options: one uvicorn process. With several, uvicorn's supervisor restarts
#: a worker that misses its health ping, and on this loaded 2-core machine (load average
#: above 20) the workers of a starting server were restarted over and over
SERVER_OPTS = ("--workers", "1")
#: a tiny job: 200 samples, two hidden layers of 8 units
TINY = ["model.hidden_sizes=[8,8]", "dataset.params.n_samples=200"]


def env_without_mlflow(**extra: str) -> dict:
    return ffexp_command.command_env(**extra)


def free_port(lo: int = 5600, hi: int = 5700) -> int:
    """A free port on 127.0.0.1 in [lo, hi) (this project's scale-out tests: 5600-5699), tried
    in random order so that tests running at once rarely pick the same one."""
    import random
    for port in random.sample(range(lo, hi), hi - lo):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {lo}-{hi - 1}")


class MlflowServer:
    """``mlflow server`` bound to 127.0.0.1 on a free port, SQLite backend (or ``backend``, a
    database URI) and artifacts in ``root``; its own process group, so ``stop`` ends its
    workers too."""

    def __init__(self, root: Path, *extra: str, port: int | None = None,
                 db: Path | None = None, backend: str | None = None,
                 env: dict | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.db = db or self.root / "server.db"
        self.backend = backend or f"sqlite:///{self.db}"
        self.extra = list(extra)
        #: the server's own environment variables (MLFLOW_AUTH_ADMIN_PASSWORD, ...)
        self.env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.log = self.root / "server.log"

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> "MlflowServer":
        cmd = [MLFLOW, "server", "--host", "127.0.0.1", "--port", str(self.port),
               "--backend-store-uri", self.backend,
               "--artifacts-destination", str(self.root / "artifacts"), *self.extra]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.root, stdout=log, stderr=log,
                                         env=env_without_mlflow(**self.env),
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited {self.proc.returncode}:\n"
                                   f"{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    if r.status == 200 and self.proc.poll() is None:
                        return self  # (not another process's server on this port)
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"mlflow server not up after {timeout} s:\n"
                           f"{self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """End the server's process group (SIGKILL if it does not end within 5 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        except ProcessLookupError:
            pass

    def __enter__(self) -> "MlflowServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


PG_BIN = Path("/usr/lib/postgresql/15/bin")
ENSURE_PACKAGES = Path(__file__).resolve().parents[2] / "scripts" / "ensure-packages"


def ensure_packages(*packages: str) -> str | None:
    """Install the missing Debian ``packages`` (scripts/ensure-packages: nothing to do when
    they are installed); None when done, else why they could not be installed."""
    import shutil
    if shutil.which("dpkg-query") is None:
        return "not a Debian system"
    proc = subprocess.run([str(ENSURE_PACKAGES), *packages], capture_output=True, text=True,
                          timeout=1800)
    return None if proc.returncode == 0 else (proc.stderr.strip() or proc.stdout.strip())


def ensure_postgres() -> str | None:
    """PostgreSQL 15's server (PG_BIN), installed when missing; None when there, else why not."""
    if (PG_BIN / "initdb").exists():
        return None
    return ensure_packages("postgresql-15")


class Postgres:
    """A throwaway PostgreSQL 15 cluster: ``initdb`` into a fresh directory under /tmp (owned
    by the ``postgres`` user: initdb refuses root), listening on 127.0.0.1:<free port> only
    (and a Unix socket in that directory), password authentication over TCP; one database
    ``mlflow`` owned by the role ``mlflow``, as in docs/scaling.md's recipe."""

    USER = "postgres"

    def __init__(self) -> None:
        import tempfile
        self.root = Path(tempfile.mkdtemp(prefix="ffexp-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.password = "mlflow-test"
        self.uri = (f"postgresql+psycopg://mlflow:{self.password}@127.0.0.1:{self.port}/mlflow")

    def _as_postgres(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        prefix = [] if os.geteuid() != 0 else ["runuser", "-u", self.USER, "--"]
        return subprocess.run([*prefix, *cmd], cwd=self.root, capture_output=True, text=True,
                              check=check)

    def init(self) -> "Postgres":
        if os.geteuid() == 0:
            subprocess.run(["chown", self.USER, str(self.root)], check=True)
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                          "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8")
        return self

    def start(self) -> "Postgres":
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
                          str(self.root / "postgres.log"), "-w", "start")
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                              "stop", check=False)

    def psql(self, sql: str, database: str = "postgres") -> str:
        return self._as_postgres(str(PG_BIN / "psql"), "-h", str(self.root), "-p",
                                 str(self.port), "-U", "postgres", "-d", database,
                                 "-v", "ON_ERROR_STOP=1", "-At", "-c", sql).stdout

    def create_mlflow_database(self) -> "Postgres":
        self.psql(f"CREATE ROLE mlflow LOGIN PASSWORD '{self.password}'")
        self.psql("CREATE DATABASE mlflow OWNER mlflow")
        return self

    def __enter__(self) -> "Postgres":
        try:
            return self.init().start().create_mlflow_database()
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
        import shutil
        shutil.rmtree(self.root, ignore_errors=True)


def sweep_args(n_jobs: int, workers: int = 2, launcher: str = "joblib") -> list[str]:
    """A sweep of ``n_jobs`` (even) tiny jobs: seeds 0..n/2-1 x 1 and 3 epochs."""
    assert n_jobs % 2 == 0, n_jobs
    args = ["-m", f"seed=range(0,{n_jobs // 2})", "train.epochs=1,3", *TINY]
    if launcher == "joblib":
        args += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={workers}"]
    elif launcher:
        args += [f"hydra/launcher={launcher}"]
    return args


def run_ffexp(cwd: Path, args: list[str], uri: str | None, timeout: float = 1800,
              check: bool = True, env: dict | None = None) -> tuple[subprocess.CompletedProcess,
                                                                     float]:
    """The real command (with ``tracking.uri=<uri>`` unless None: the default store); returns
    (process, wall seconds)."""
    t0 = time.perf_counter()
    proc = ffexp_command.run(cwd, *args, *([f"tracking.uri={uri}"] if uri else []),
                             env=env_without_mlflow(**(env or {})), timeout=timeout, check=check)
    return proc, time.perf_counter() - t0


def check_sweep_store(uri: str, n_jobs: int, exclude_tag: str | None = None):
    """One experiment (besides MLflow's Default) holding one FINISHED parent and ``n_jobs``
    FINISHED children, each with a complete ``train/cost`` history (one value per epoch) and
    its test metrics. Returns (parent, children)."""
    from mlflow import MlflowClient
    client = MlflowClient(uri)
    experiments = [e for e in client.search_experiments() if e.name != "Default"]
    assert len(experiments) == 1, [e.name for e in experiments]  # no duplicated experiment
    runs = client.search_runs([experiments[0].experiment_id], max_results=50000)
    runs = [r for r in runs if not (exclude_tag and exclude_tag in r.data.tags)]
    parents = [r for r in runs if r.data.tags.get("ffexp.kind") == "sweep"]
    assert len(parents) == 1, [p.info.run_name for p in parents]
    parent = parents[0]
    children = [r for r in runs if r is not parent]
    assert len(children) == n_jobs, (len(children), n_jobs)
    assert {c.data.tags.get("mlflow.parentRunId") for c in children} == {parent.info.run_id}
    assert len({c.info.run_name for c in children}) == n_jobs  # every job once
    assert [c.info.status for c in children] == ["FINISHED"] * n_jobs
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["sweep/finished"] == n_jobs
    for c in children:
        epochs = int(c.data.params["epochs"])
        history = client.get_metric_history(c.info.run_id, "train/cost")
        assert sorted(m.step for m in history) == list(range(0, epochs + 1)), c.info.run_name
        assert "test/accuracy" in c.data.metrics and "val/accuracy" in c.data.metrics
    return parent, children


def lock_retries(cwd: Path, proc: subprocess.CompletedProcess) -> int:
    """How many times a call met a locked SQLite database and was retried (job logs, and the
    metrics helpers' stderr)."""
    logs = "".join(p.read_text() for p in Path(cwd).rglob("ffexp.log"))
    return (logs + proc.stderr).count("MLflow store busy")
