"""Where runs go: the tracking URI, the experiment, and the command that opens the UI.

Default store: ``sqlite:///<start dir>/mlflow.db``, an embedded SQLite file in the directory
ffexp was started from (resolved to an absolute path once, at import, because Hydra may change
the working directory before a job runs). ``MLFLOW_TRACKING_URI`` overrides it, and
``tracking.uri`` overrides both. A relative ``sqlite:///file.db`` is taken relative to the
start directory as well.

A fresh SQLite file needs its schema created (MLflow runs its ~60 alembic migrations on first
open, ~1.5-3 s of CPU); two processes doing that at once corrupt it (mlflow #4123; measured
here: 3 of 4 single runs started at once on a fresh store failed in alembic). ``open_store``
does it, and creates the experiment, once: in a sweep, in the launching process before any job
starts; and it holds an exclusive lock (flock on the database's directory) meanwhile, so that
independent ``ffexp`` processes started at once on one host take turns. The migrations run once
per machine and MLflow version: a new store starts as a copy of an empty, migrated database
that MLflow made (``schema_template``, in the user's cache directory); MLflow then verifies its
schema and creates its Default experiment on first open as for any store.

Clients come from ``client(uri)``: an MlflowClient wrapped in ffexp.tracking.retry's
RetryingClient (SQLite's "database is locked" under parallel jobs is retried with backoff), with
ffexp's HTTP retry/timeout defaults in the environment (a dead tracking server fails a call
in about 30 s, not minutes).
"""

from __future__ import annotations

import os
import shlex
from contextlib import contextmanager
from pathlib import Path

#: the directory ffexp was started from (before Hydra could change it)
START_DIR = Path.cwd().resolve()
DEFAULT_DB = "mlflow.db"
#: artifacts of an embedded store live next to its database file
ARTIFACTS_DIR = "mlartifacts"


def _absolute_sqlite(uri: str, base: Path) -> str:
    """sqlite:///relative.db -> sqlite:////abs/relative.db (other URIs unchanged)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return uri
    path = uri[len(prefix):]
    if path == ":memory:" or path.startswith("/"):
        return uri
    return prefix + str((base / path).resolve())


def resolve_uri(configured: str | None = None, base: Path | None = None) -> str:
    """The tracking URI: ``tracking.uri``, else $MLFLOW_TRACKING_URI, else the default file."""
    base = base or START_DIR
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_DB}"
    return _absolute_sqlite(uri, base)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite:/// URI, else None."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and uri != prefix + ":memory:":
        return Path(uri[len(prefix):])
    return None


def artifact_location(uri: str) -> str | None:
    """Artifact root for new experiments: next to the SQLite file (absolute, so that a job in
    another working directory or the UI finds it); None lets a server decide."""
    db = sqlite_path(uri)
    return (db.parent / ARTIFACTS_DIR).as_uri() if db else None


#: loggers that narrate a fresh store's schema creation at INFO (not ffexp's user's business)
QUIET_LOGGERS = ("mlflow.store.db.utils", "alembic")


def _quiet() -> None:
    import logging
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger(name).level))


def client(uri: str):
    """An MlflowClient for ``uri`` whose calls retry SQLite lock contention."""
    from mlflow import MlflowClient
    from .faults import quiet_store_loggers
    from .retry import RetryingClient, configure_http
    _quiet()
    configure_http()
    quiet_store_loggers()
    return RetryingClient(MlflowClient(tracking_uri=uri))


@contextmanager
def flocked(path: Path, flags: int = os.O_RDONLY, mode: int = 0o644):
    """An exclusive flock on ``path`` (opened with ``flags``) among this host's processes
    while the block runs; a no-op where the file cannot be opened or flock is unavailable."""
    try:
        import fcntl
        fd = os.open(path, flags, mode)
    except (ImportError, OSError):
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # e.g. a filesystem without flock
            pass
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def creation_lock(db: Path | None):
    """An exclusive lock on the SQLite file's directory among this host's processes, for the
    schema migration and the experiment's creation (no-op for servers, or without flock:
    MLflow's own locking remains)."""
    if db is None:
        yield
        return
    with flocked(db.parent):
        yield


def cache_dir() -> Path:
    """ffexp's cache: $XDG_CACHE_HOME/ffexp, else ~/.cache/ffexp."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ffexp"


def schema_template() -> Path | None:
    """An empty SQLite database with the schema of the installed MLflow (tables created and
    migrated by MLflow itself, no experiment), made once per MLflow version; None if it cannot
    be made (an unwritable cache, a MLflow whose internals moved): the store is then created
    the usual way."""
    import mlflow
    path = cache_dir() / f"mlflow-{mlflow.__version__}-schema.db"
    if path.is_file():
        return path
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        import sqlalchemy
        from mlflow.store.db.utils import _initialize_tables
        _quiet()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        engine = sqlalchemy.create_engine(f"sqlite:///{tmp}")
        try:
            _initialize_tables(engine)
        finally:
            engine.dispose()
        os.replace(tmp, path)  # atomic: a concurrent maker's copy is as good
        return path
    except Exception:
        try:
            tmp.unlink(missing_ok=True)  # no half-made template is left in the cache
        except OSError:
            pass
        return None


def _seed_schema(db: Path) -> None:
    """A new store file starts as a copy of the schema template (the migrations are paid once
    per machine); an existing or non-empty file is left alone."""
    if db.exists() and db.stat().st_size > 0:
        return
    template = schema_template()
    if template is None:
        return
    import shutil
    tmp = db.with_name(f".{db.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(template, tmp)
        os.replace(tmp, db)
    except OSError:  # a full disk, say: MLflow's own creation meets it and reports it
        tmp.unlink(missing_ok=True)


def open_store(uri: str, experiment: str, tags: dict[str, str] | None = None):
    """(client, experiment_id): creates the schema (first open) and the experiment if needed
    (with ``tags``)."""
    db = sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    with creation_lock(db):
        if db is not None:
            _seed_schema(db)
        return _open_store(uri, experiment, tags)


def _open_store(uri: str, experiment: str, tags: dict[str, str] | None = None):
    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            c.restore_experiment(exp.experiment_id)
        return c, exp.experiment_id
    try:
        return c, c.create_experiment(experiment, artifact_location=artifact_location(uri),
                                      tags=tags)
    except Exception:
        # another process created it between our lookup and our create
        exp = c.get_experiment_by_name(experiment)
        if exp is None:
            raise
        return c, exp.experiment_id


def ui_command(uri: str) -> str:
    """The one command that opens the MLflow UI on this store."""
    return f"mlflow ui --backend-store-uri {shlex.quote(uri)}"


#: MLflow 3.17's UI opens experiments on its GenAI overview unless asked for model training
RUNS_VIEW = "?workflowType=machine_learning"


def runs_page(base: str, experiment_id: str | None) -> str:
    """The experiment's runs table in the UI at ``base`` (e.g. http://127.0.0.1:5000)."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}{RUNS_VIEW}" if experiment_id \
        else base


def ui_hint(uri: str, experiment_id: str | None = None) -> str:
    """Where to look at the runs: the UI command for a local store, the server's address; with
    the experiment, the address of its runs table."""
    if uri.startswith(("http://", "https://")):
        return f"MLflow: runs are on the tracking server {runs_page(uri, experiment_id)}"
    hint = f"MLflow: view the runs with\n  {ui_command(uri)}"
    return hint + (f"\n  then open {runs_page('http://127.0.0.1:5000', experiment_id)}"
                   if experiment_id else "")


def print_ui_command(uri: str, experiment_id: str | None = None) -> None:
    print(ui_hint(uri, experiment_id), flush=True)
