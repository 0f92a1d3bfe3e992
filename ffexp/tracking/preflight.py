"""Can the store be used? Asked before training, so that a wrong ``tracking.uri`` costs a second
and one line, not a trained job lost at its end (or minutes of MLflow's HTTP back-off).

Nothing is created here: an HTTP store gets one GET (any HTTP answer, even 401 behind an
authenticating proxy, means a server is there) and one read with the user's credentials
(MLflow's MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD: a 401 is refused here); a SQLite store needs its file, or the nearest
existing directory above it, to be writable (tested by writing, since permission bits do not
tell for root or read-only mounts), and an existing one to be a readable SQLite database (a
garbage or truncated file is found here by reading its header and schema, not in the middle of
a job).
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from . import store

TIMEOUT = 5.0
HINT = "set tracking.uri (or MLFLOW_TRACKING_URI), or tracking.enabled=false"


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


def check_store(uri: str) -> None:
    """StoreError (a ValueError naming tracking.uri) if the store at ``uri`` cannot be used."""
    if uri.startswith(("http://", "https://")):
        _http(uri)
        return
    db = store.sqlite_path(uri)
    if db is not None:
        _sqlite(uri, db)
