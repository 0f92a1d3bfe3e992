"""When the store itself fails: a full disk, a damaged or read-only SQLite file, no space for
artifacts.

Such a failure is not the job's fault and not a user's typo, and MLflow reports it as a
SQLAlchemy error with the SQL statement and its parameters. ffexp turns it into one line:

    the MLflow store sqlite:////data/mlflow.db failed: the disk is full (database or disk is
    full); run 3f2a... closed FAILED

``cause(err)`` recognizes it anywhere in an exception's chain; ``escalate`` (called by
ffexp.tracking.run when a job's run is closed after an error) raises a ``StoreFault`` saying
whether the run could still be closed FAILED or is left RUNNING for the stale check
(ffexp.tracking.stale). The full exception goes to the job's log. ``quiet_store_loggers``
keeps MLflow's, SQLAlchemy's and alembic's own log records (tracebacks, SQL) off the console:
they go to the job's log file only.

How an error is recognized, the most precise first, anywhere in the exception's chain:

- SQLite's result code (``sqlite3.Error.sqlite_errorcode``, its primary code: SQLITE_FULL,
  SQLITE_CORRUPT, SQLITE_BUSY, ...), for a store this process opens;
- PostgreSQL's SQLSTATE (``sqlstate`` of psycopg's errors: ``53100`` disk full, class ``08``
  connection exception, ...);
- the errno of an OSError;
- a tracking server's answer: its HTTP status (``RestException.get_http_status_code``, from the
  MLflow error code the server sent), and the ``requests`` exception for a server that did not
  answer (refused, timed out, too many 5xx);
- the text of the error, last: a server's answer carries its database's error as text only
  (``(sqlite3.OperationalError) database or disk is full``), so the store failures of
  ``_CAUSES`` are also matched in the message.

``transient(err, remote)`` says whether ``err`` is worth trying again (ffexp.tracking.retry):
SQLite's lock contention, a database that went away (PostgreSQL restarting), a server that
answers 408, 429 or 5xx or does not answer; never a failure of the store itself (``cause``).
"""

from __future__ import annotations

import errno
import logging
import sqlite3

#: (text in the error, what it means), the most telling first
_CAUSES = (
    ("database or disk is full", "the disk is full"),
    ("no space left on device", "the disk is full"),
    ("disk quota exceeded", "the disk quota is exceeded"),
    ("database disk image is malformed", "the database file is damaged"),
    ("file is not a database", "the database file is damaged"),
    ("attempt to write a readonly database", "the store is read-only"),
    ("read-only file system", "the store is read-only"),
    ("unable to open database file", "the database file cannot be opened"),
)
_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
           errno.EROFS: "the store is read-only"}
#: SQLite's primary result codes of a failed store, and what they mean
_SQLITE_CAUSES = {sqlite3.SQLITE_FULL: "the disk is full",
                  sqlite3.SQLITE_CORRUPT: "the database file is damaged",
                  sqlite3.SQLITE_NOTADB: "the database file is damaged",
                  sqlite3.SQLITE_READONLY: "the store is read-only",
                  sqlite3.SQLITE_CANTOPEN: "the database file cannot be opened"}
#: PostgreSQL's SQLSTATEs of a failed store (disk_full, out_of_memory, read_only_sql_transaction,
#: data_corrupted, index_corrupted)
_SQLSTATE_CAUSES = {"53100": "the disk is full", "53200": "the database is out of memory",
                    "25006": "the store is read-only", "XX001": "the database file is damaged",
                    "XX002": "the database file is damaged"}
#: SQLite's primary result codes that a later attempt can get past: another writer holds the
#: lock (BUSY, LOCKED), another connection changed the schema (SCHEMA)
_SQLITE_TRANSIENT = {sqlite3.SQLITE_BUSY: "the database is locked",
                     sqlite3.SQLITE_LOCKED: "the database is locked",
                     sqlite3.SQLITE_SCHEMA: "the database schema changed"}
#: SQLSTATE classes and codes a later attempt can get past: connection exception (08),
#: insufficient resources (53: too many connections; 53100 disk full is a cause, above),
#: operator intervention (57P01-57P03: the server shut down, crashed or is starting),
#: serialization failure and deadlock (40001, 40P01)
_SQLSTATE_TRANSIENT_CLASSES = ("08",)
_SQLSTATE_TRANSIENT = {"53300": "too many connections", "57P01": "the database shut down",
                       "57P02": "the database crashed", "57P03": "the database is starting",
                       "40001": "a serialization failure", "40P01": "a deadlock"}
#: HTTP statuses of a tracking server's answer that a later attempt can get past
HTTP_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
#: MLflow's error codes for a non-JSON answer of status 429, 503, 504
_NON_JSON_TRANSIENT = ("RESOURCE_EXHAUSTED", "TEMPORARILY_UNAVAILABLE", "DEADLINE_EXCEEDED")
STALE_HINT = "ffexp-stale, or the next sweep with tracking.skip_existing=true, closes it"


def _chain(err: BaseException | None):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _sqlite_code(e: BaseException) -> int | None:
    """SQLite's primary result code of a sqlite3 error, else None."""
    code = getattr(e, "sqlite_errorcode", None) if isinstance(e, sqlite3.Error) else None
    return code & 0xFF if isinstance(code, int) else None


def _sqlstate(e: BaseException) -> str | None:
    """PostgreSQL's SQLSTATE of a driver's error (psycopg 3: ``sqlstate``; psycopg2:
    ``pgcode``), else None (MLflow's own exceptions have a ``sqlstate`` of their own)."""
    if type(e).__module__.split(".")[0] not in ("psycopg", "psycopg2"):
        return None
    state = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
    return state if isinstance(state, str) else None


def cause(err: BaseException) -> str | None:
    """``the disk is full (database or disk is full)`` and the like if ``err`` (or an error
    that led to it) is a failure of the store itself, else None."""
    for e in _chain(err):
        if isinstance(e, OSError) and e.errno in _ERRNOS:
            where = f" writing {e.filename}" if e.filename else ""
            return f"{_ERRNOS[e.errno]} ({e.strerror or e}{where})"
        code, state = _sqlite_code(e), _sqlstate(e)
        if code in _SQLITE_CAUSES:
            return f"{_SQLITE_CAUSES[code]} ({e})"
        if state in _SQLSTATE_CAUSES:
            return f"{_SQLSTATE_CAUSES[state]} (SQLSTATE {state})"
    for e in _chain(err):  # the text, for an error that crossed HTTP as a message
        text = str(e).lower()
        for needle, meaning in _CAUSES:
            if needle in text:
                return f"{meaning} ({needle})"
    return None


def _requests_error(e: BaseException) -> str | None:
    """What a ``requests`` error says about a server that did not answer, else None."""
    import requests.exceptions as rx
    if isinstance(e, rx.SSLError):  # a certificate problem: no later attempt gets past it
        return None
    if isinstance(e, rx.RetryError):
        return "the server kept answering with errors"
    if isinstance(e, rx.Timeout):
        return "the server did not answer in time"
    if isinstance(e, (rx.ConnectionError, rx.ChunkedEncodingError)):
        return "the server could not be reached"
    return None


def transient(err: BaseException, remote: bool = False) -> str | None:
    """Why ``err`` may pass if the call is made again (``the database is locked``, ``HTTP
    503``, ``the server could not be reached``, ...), or None: a lock, a database or server
    that is away for a while. ``remote``: the call went to a tracking server (its MLflow error
    code is then the HTTP status it answered). A failure of the store itself (``cause``) is
    never transient."""
    if cause(err) is not None:
        return None
    from mlflow.exceptions import MlflowException, RestException
    for e in _chain(err):
        code, state = _sqlite_code(e), _sqlstate(e)
        if code is not None:
            return _SQLITE_TRANSIENT.get(code)
        if state is not None:
            reason = _SQLSTATE_TRANSIENT.get(state) or (
                "the database connection failed" if state[:2] in _SQLSTATE_TRANSIENT_CLASSES
                else None)
            return f"{reason} (SQLSTATE {state})" if reason else None
        if isinstance(e, TrackingServerUnreachable):
            return None  # known down: failing fast is the point
        if _is_dbapi_disconnect(e):
            return "the database could not be reached"
        if "requests" in type(e).__module__:
            reason = _requests_error(e)
            if reason:
                return reason
        if remote and isinstance(e, RestException):  # the server's answer, in JSON
            status = e.get_http_status_code()
            if status in HTTP_TRANSIENT:
                return f"HTTP {status} {e.error_code}"
        if remote and isinstance(e, MlflowException) and e.error_code in _NON_JSON_TRANSIENT:
            # an answer that was not MLflow's JSON (a proxy's page): MLflow keeps its status
            # as an error code only for 429, 503 and 504 (408, 500 and 502 become
            # INTERNAL_ERROR, as client-side errors do: not retried)
            return f"HTTP {e.get_http_status_code()} {e.error_code}"
    return None


def denied(err: BaseException) -> str | None:
    """``permission denied (HTTP 403): <the server's message>`` if a tracking server refused
    the user (401 or 403 in MLflow's answer: its JSON, or the basic-auth app's plain text,
    which MLflow's client raises as an MlflowException with the status's error code), else
    None."""
    from mlflow.exceptions import MlflowException, RestException
    codes = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403}
    for e in _chain(err):
        status = e.get_http_status_code() if isinstance(e, RestException) else \
            codes.get(getattr(e, "error_code", None)) if isinstance(e, MlflowException) \
            else None
        if status in (401, 403):
            what = "permission denied" if status == 403 else "not authenticated"
            text = str(e.message)
            text = text.split("Response body: ", 1)[-1].strip("'\" ")  # the server's words
            return f"{what} (HTTP {status}): {text}"
    return None


def refused_line(err: BaseException, uri: str, experiment: str | None) -> str | None:
    """The one line for a request an authenticated tracking server refused (HTTP 401 or 403,
    ``denied``), naming who, where, and what to set; None if ``err`` is no such refusal."""
    refusal = denied(err)
    if refusal is None:
        return None
    from .tags import current_user
    user = current_user()
    where = f" in experiment {experiment!r}" if experiment else ""
    if " 401" in refusal.split(":", 1)[0]:
        return (f"tracking.uri={uri}: the server refused the request of {user!r}{where}: "
                f"{refusal}; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to "
                f"your account on that server")
    return (f"tracking.uri={uri}: the server refused {user!r}{where}: {refusal}; set "
            f"MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to an account with EDIT "
            f"permission on it (the experiment's manager grants it), or record into an "
            f"experiment of your own (tracking.experiment=<name>)")


def _is_dbapi_disconnect(e: BaseException) -> bool:
    """A database driver's OperationalError without a SQLSTATE (psycopg: the server refused or
    closed the connection), as SQLAlchemy wraps it."""
    import sqlalchemy.exc
    if not isinstance(e, sqlalchemy.exc.OperationalError):
        return False
    orig = e.orig
    return getattr(e, "connection_invalidated", False) or (
        type(orig).__module__.split(".")[0] in ("psycopg", "psycopg2")
        and _sqlstate(orig) is None)


class TrackingServerUnreachable(ConnectionError):
    """The tracking server did not answer recently; raised without trying again
    (ffexp.tracking.retry)."""


class StoreFault(RuntimeError):
    """The store failed a job; the message is the one line the user sees."""

    def __init__(self, uri: str, reason: str, run_id: str | None = None,
                 closed: bool = False) -> None:
        self.uri, self.reason, self.run_id, self.closed = uri, reason, run_id, closed
        if run_id is None:
            fate = "no run was recorded"
        elif closed:
            fate = f"run {run_id} closed FAILED"
        else:
            fate = f"run {run_id} left RUNNING (the store took no more writes): {STALE_HINT}"
        super().__init__(f"the MLflow store {uri} failed: {reason}; {fate}")


def note_run(exc: BaseException, run_id: str | None) -> None:
    """Remember on ``exc`` the run its job had created (for the job's status file)."""
    if run_id and getattr(exc, "ffexp_run_id", None) is None:
        try:
            exc.ffexp_run_id = run_id
        except (AttributeError, TypeError):
            pass


def run_id_of(exc: BaseException) -> str | None:
    """The run a failed job had created, if ``note_run`` or StoreFault recorded it."""
    return getattr(exc, "run_id", None) if isinstance(exc, StoreFault) else \
        getattr(exc, "ffexp_run_id", None)


def escalate(exc: BaseException, uri: str, run_id: str | None, closed: bool) -> None:
    """Raise a StoreFault (from ``exc``) if ``exc`` is a store failure; else note the run id."""
    note_run(exc, run_id)
    if isinstance(exc, Exception) and not isinstance(exc, StoreFault):
        reason = cause(exc)
        if reason is not None:
            raise StoreFault(uri, reason, run_id, closed) from exc


def as_fault(exc: BaseException, uri: str) -> StoreFault | None:
    """``exc`` as a StoreFault (None if it is not a store failure), for errors raised before a
    run existed (looking for finished runs, opening the store)."""
    if isinstance(exc, StoreFault):
        return exc
    reason = cause(exc)
    return StoreFault(uri, reason, run_id_of(exc)) if reason else None


class _JobLogOnly(logging.Handler):
    """Hands a record to the root logger's file handlers (the job's log), to nothing else."""

    def emit(self, record: logging.LogRecord) -> None:
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.FileHandler) and record.levelno >= handler.level:
                handler.handle(record)


def quiet_store_loggers() -> None:
    """MLflow's, SQLAlchemy's and alembic's records to the job's log file, not the console
    (MLflow logs a store error with its traceback and SQL to stderr by itself)."""
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logger = logging.getLogger(name)
        if any(isinstance(h, _JobLogOnly) for h in logger.handlers):
            continue
        for handler in list(logger.handlers):
            if isinstance(handler, logging.StreamHandler) and \
                    not isinstance(handler, logging.FileHandler):
                logger.removeHandler(handler)
        logger.addHandler(_JobLogOnly())
        logger.propagate = False
