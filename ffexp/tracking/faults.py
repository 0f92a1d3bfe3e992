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
"""

from __future__ import annotations

import errno
import logging

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
STALE_HINT = "ffexp-stale, or the next sweep with tracking.skip_existing=true, closes it"


def _chain(err: BaseException | None):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def cause(err: BaseException) -> str | None:
    """``the disk is full (database or disk is full)`` and the like if ``err`` (or an error
    that led to it) is a failure of the store itself, else None."""
    for e in _chain(err):
        if isinstance(e, OSError) and e.errno in _ERRNOS:
            where = f" writing {e.filename}" if e.filename else ""
            return f"{_ERRNOS[e.errno]} ({e.strerror or e}{where})"
        text = str(e).lower()
        for needle, meaning in _CAUSES:
            if needle in text:
                return f"{meaning} ({needle})"
    return None


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
