"""Can the store be used? Asked before training, so that a wrong ``tracking.uri`` costs a second
and one line, not a trained job lost at its end (or minutes of MLflow's HTTP back-off).

Nothing is created here: an HTTP store gets one GET (any HTTP answer, even 401 behind an
authenticating proxy, means a server is there); a SQLite store needs its file, or the nearest
existing directory above it, to be writable (tested by writing, since permission bits do not
tell for root or read-only mounts).
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


def _http(uri: str) -> None:
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=TIMEOUT).close()
    except urllib.error.HTTPError:
        return  # a server answered
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise StoreError(f"tracking.uri={uri}: no MLflow tracking server answers there "
                         f"({reason}); start it, or {HINT}") from None


def _writable(directory: Path) -> OSError | None:
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as err:
        return err
    return None


def _sqlite(uri: str, db: Path) -> None:
    if db.exists():
        if not os.access(db, os.W_OK) or _writable(db.parent) is not None:
            raise StoreError(f"tracking.uri={uri}: the store {db} cannot be written; {HINT}")
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
