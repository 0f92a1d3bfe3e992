"""Can the store be used? Asked before training, so that a wrong ``tracking.uri`` costs a second
and one line, not a trained job lost at its end (or minutes of MLflow's HTTP back-off).

Nothing is created here. The URI must name a store MLflow records runs in: ``sqlite:///<file>``,
``http(s)://`` (a tracking server) or a database (``postgresql``, ``mysql``, ``mssql``, with an
optional ``+driver``); anything else (``file://``, a plain path such as ``./mlruns``: MLflow's
file store refuses to open, ``ftp://``, a typo) is refused naming the accepted forms. An HTTP
store gets one GET (any HTTP answer, even 401 behind an authenticating proxy, means a server
is there) and one read with the user's credentials (MLflow's MLFLOW_TRACKING_USERNAME and
MLFLOW_TRACKING_PASSWORD: a 401 is refused here); a database gets one connection with a
CONNECT_TIMEOUT (a database that does not answer costs seconds, not MLflow's two minutes of
retries); a SQLite store needs its file, or the nearest existing directory above it, to be
writable (tested by writing, since permission bits do not tell for root or read-only mounts),
and an existing one to be a readable SQLite database (a garbage or truncated file is found here
by reading its header and schema, not in the middle of a job).
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from . import store

TIMEOUT = 5.0
#: seconds a database server gets to accept one connection
CONNECT_TIMEOUT = 5
HINT = "set tracking.uri (or MLFLOW_TRACKING_URI), or tracking.enabled=false"
#: the database schemes of MLflow's SQL store (each with an optional ``+driver``)
DATABASES = ("postgresql", "mysql", "mssql")
ACCEPTED = ("accepted: sqlite:///<file>, http(s)://<server>[:<port>], or a database "
            "postgresql|mysql|mssql[+driver]://<user>:<password>@<host>[:<port>]/<database>")
#: MLflow's limit on an experiment's name (mlflow.utils.validation.MAX_EXPERIMENT_NAME_LENGTH)
MAX_EXPERIMENT_NAME = 500


class StoreError(ValueError):
    """The tracking store cannot be used: a user's mistake, reported as one line."""


def unreachable(uri: str) -> str | None:
    """Why no server answers at the http(s) ``uri`` (one GET, TIMEOUT seconds), else None."""
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=TIMEOUT).close()
    except urllib.error.HTTPError:
        return None  # a server answered
    except (urllib.error.URLError, OSError, ValueError) as err:
        return str(getattr(err, "reason", err))
    return None


#: MLflow's own environment variables for a server's basic authentication
CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


def refused(uri: str) -> str | None:
    """Why the server at ``uri`` refuses this user (HTTP 401 to one read, sent with the
    credentials of MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD when set), else None."""
    import base64
    request = urllib.request.Request(uri.rstrip("/") +
                                     "/api/2.0/mlflow/experiments/search?max_results=1")
    user, password = (os.environ.get(k) for k in CREDENTIALS)
    if user:
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        urllib.request.urlopen(request, timeout=TIMEOUT).close()
    except urllib.error.HTTPError as err:
        if err.code == 401:
            return (f"the server refused the credentials of {user!r} (HTTP 401)" if user else
                    "the server asks for credentials (HTTP 401)")
    except (urllib.error.URLError, OSError, ValueError):
        return None  # not this check's business: the calls report it
    return None


def _http(uri: str) -> None:
    reason = unreachable(uri)
    if reason is not None:
        raise StoreError(f"tracking.uri={uri}: no MLflow tracking server answers there "
                         f"({reason}); start it, or {HINT}")
    reason = refused(uri)
    if reason is not None:
        raise StoreError(f"tracking.uri={uri}: {reason}; set {CREDENTIALS[0]} and "
                         f"{CREDENTIALS[1]} to your account on it")


def _writable(directory: Path) -> OSError | None:
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as err:
        return err
    return None


def damaged(db: Path) -> str | None:
    """Why the existing file ``db`` cannot be read as a SQLite database (not one, truncated),
    else None. Cheap: the header, the page count against the file's size and the schema."""
    import sqlite3
    try:
        size = db.stat().st_size
        if size == 0:
            return None  # an empty file is a new database to SQLite
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
            (page_size,), (pages,) = (con.execute(f"PRAGMA {p}").fetchone()
                                      for p in ("page_size", "page_count"))
        finally:
            con.close()
    except (sqlite3.Error, OSError) as err:
        return str(err)
    if size < page_size * pages:
        return (f"database disk image is malformed: the file has {size} of the "
                f"{page_size * pages} bytes it declares")
    return None


def _sqlite(uri: str, db: Path) -> None:
    if db.exists():
        if not os.access(db, os.W_OK) or _writable(db.parent) is not None:
            raise StoreError(f"tracking.uri={uri}: the store {db} cannot be written; {HINT}")
        reason = damaged(db)
        if reason:
            raise StoreError(f"tracking.uri={uri}: the store {db} is damaged ({reason}); move "
                             f"it aside (ffexp then creates a new one), or {HINT}")
        return
    existing = db.parent
    while not existing.exists():
        existing = existing.parent
    err = _writable(existing)
    if err is not None:
        default = "" if os.environ.get("MLFLOW_TRACKING_URI") else \
            " (the default store goes in the directory ffexp starts from)"
        raise StoreError(f"tracking.uri={uri}: cannot create the store, directory {existing} "
                         f"is not writable ({err.strerror or err}){default}; run ffexp from a "
                         f"writable directory, or {HINT}")


def shown(uri: str) -> str:
    """``uri`` with its password masked (``postgresql://u:***@host/db``), for a message."""
    import re
    return re.sub(r"^([a-z][\w+.-]*://[^:/@]*):[^@]*@", r"\1:***@", uri)


def scheme(uri: str) -> str:
    """``postgresql`` for ``postgresql+psycopg://...``; "" without a scheme."""
    head, sep, _ = uri.partition("://")
    return head.split("+", 1)[0].lower() if sep else ""


def _database(uri: str) -> None:
    """One connection with CONNECT_TIMEOUT; StoreError saying why none could be made."""
    import sqlalchemy
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
    options = {"connect_timeout": CONNECT_TIMEOUT} if scheme(uri) in ("postgresql", "mysql") \
        else {}
    try:
        engine = sqlalchemy.create_engine(uri, connect_args=options,
                                          poolclass=sqlalchemy.pool.NullPool)
    except (NoSuchModuleError, ModuleNotFoundError, ImportError) as err:
        extra = " (pip install 'ffexp[postgres]')" if scheme(uri) == "postgresql" else ""
        raise StoreError(f"tracking.uri={shown(uri)}: the database driver is not installed "
                         f"({type(err).__name__}: {str(err).splitlines()[0]}){extra}; "
                         f"{HINT}") from None
    except ArgumentError as err:
        raise StoreError(f"tracking.uri={shown(uri)}: not a database URI "
                         f"({str(err).splitlines()[0]}); {ACCEPTED}") from None
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as err:
        reason = " ".join(str(getattr(err, "orig", None) or err).split())
        raise StoreError(f"tracking.uri={shown(uri)}: the database does not answer "
                         f"({reason[:300]}); start it, or {HINT}") from None
    finally:
        engine.dispose()


def check_store(uri: str) -> None:
    """StoreError (a ValueError naming tracking.uri) if the store at ``uri`` cannot be used:
    a scheme MLflow cannot record runs in, no server or database answering, a SQLite file
    that cannot be written or is damaged."""
    if uri.startswith(("http://", "https://")):
        _http(uri)
        return
    db = store.sqlite_path(uri)
    if db is not None:
        _sqlite(uri, db)
        return
    if scheme(uri) in DATABASES:
        _database(uri)
        return
    kind = "a directory for MLflow's file store, which MLflow no longer opens" \
        if not scheme(uri) or scheme(uri) == "file" else f"the scheme {scheme(uri)}://"
    raise StoreError(f"tracking.uri={shown(uri)}: not a store ffexp can record runs in "
                     f"({kind}); {ACCEPTED}; or tracking.enabled=false")


def check_experiment_name(name: str | None) -> None:
    """StoreError naming tracking.experiment if MLflow would refuse the name (empty, or longer
    than MAX_EXPERIMENT_NAME characters)."""
    if name is None:
        return
    if not str(name).strip() or len(str(name)) > MAX_EXPERIMENT_NAME:
        short = name if len(name) <= 40 else f"{name[:37]}..."
        raise StoreError(f"tracking.experiment={short}: an experiment name must have 1 to "
                         f"{MAX_EXPERIMENT_NAME} characters (MLflow's limit), this one has "
                         f"{len(name)}")
