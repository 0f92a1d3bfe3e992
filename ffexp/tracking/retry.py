"""Transient store errors, retried: SQLite's "database is locked" and sane HTTP limits.

SQLite takes one writer at a time. MLflow's SQL store waits up to 20 s for the lock
(``PRAGMA busy_timeout``), but SQLite gives up at once, without waiting, when waiting could
deadlock, and a long write (a fresh schema, a big ``log_batch`` on a slow disk) can outlast the
timeout; MLflow then raises an MlflowException (TEMPORARILY_UNAVAILABLE) that says "database is
locked". The store rolled the transaction back, so the call can simply be made again:
``RetryingClient`` does that, with exponential backoff and jitter, for every MlflowClient
method. Other errors pass through at once.

For a tracking server, MLflow's own HTTP layer retries (connection errors, 429 and 5xx); its
defaults (7 retries, backoff factor 2, 120 s timeout) let a dead server hang a job for minutes.
``configure_http`` lowers them, unless the user set them: 5 retries, backoff factor 1 (waits of
about 1, 2, 4, 8 and 16 s: a call fails about 30 s after the server went away, which rides out
a server restart) and a 30 s timeout per request.
And once a call has failed that way (the server is unreachable), every call of this process to
that server fails at once for ``DOWN_SECONDS`` instead of waiting again: a job that was closing
its run (a dozen calls, and the metric batches queued in the helper process) fails in about
30 s, with one clear error, rather than in many minutes.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import time

log = logging.getLogger("ffexp")

#: MLflow's HTTP retry/timeout settings, as ffexp sets them when the user did not
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5",
                 "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
                 # MLflow prints two "View run/experiment at" lines per run closed on a server,
                 # between the sweep's one line per job; ffexp prints where the runs are
                 "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}

#: attempts of a call that keeps meeting a locked database, and the longest pause between two
ATTEMPTS = 8
MAX_PAUSE = 4.0

_LOCKED = ("database is locked", "database table is locked", "database schema has changed")
#: how MLflow's HTTP layer reports a server it could not reach (after its own retries), the
#: most telling first
_UNREACHABLE = ("Connection refused", "Read timed out", "RemoteDisconnected",
                "Connection aborted", "Failed to establish a new connection",
                "Max retries exceeded")
#: after an unreachable-server failure, calls to that server fail at once for this long
DOWN_SECONDS = 30.0
#: tracking URI -> (time.monotonic(), reason) of its last unreachable-server failure
_DOWN: dict[str, tuple[float, str]] = {}


class TrackingServerUnreachable(ConnectionError):
    """The tracking server did not answer recently; raised without trying again."""


def configure_http() -> None:
    """Set ffexp's defaults for MLflow's HTTP client (retries, timeout, no run URLs printed) in
    this process's environment (inherited by the metrics helper and by launcher workers);
    values the user set are kept."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)


def transient(err: BaseException) -> bool:
    """Whether ``err`` is SQLite's lock contention (safe to retry: the store rolled back)."""
    text = str(err).lower()
    return any(s in text for s in _LOCKED)


def pause(attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): 0.1 s doubling, jittered, capped."""
    return min(MAX_PAUSE, 0.1 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)


def call_with_retries(fn, *args, attempts: int = ATTEMPTS, **kwargs):
    """``fn(*args, **kwargs)``, made again after a transient lock error (see the module doc)."""
    for attempt in range(1, attempts + 1):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            if attempt == attempts or not transient(err):
                raise
            wait = pause(attempt)
            log.warning("MLflow store busy (%s: %s); retry %d of %d in %.2f s",
                        type(err).__name__, str(err).splitlines()[0][:200], attempt,
                        attempts - 1, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


def unreachable(err: BaseException) -> bool:
    """Whether ``err`` says the server could not be reached (after MLflow's HTTP retries)."""
    return isinstance(err, ConnectionError) or any(s in str(err) for s in _UNREACHABLE)


def _guarded(uri: str, fn, *args, **kwargs):
    """``call_with_retries(fn, ...)`` for a call to a tracking server: fails at once while the
    server is known to be down, and marks it down when a call could not reach it."""
    down = _DOWN.get(uri)
    if down is not None:
        ago = time.monotonic() - down[0]
        if ago < DOWN_SECONDS:
            raise TrackingServerUnreachable(
                f"the tracking server {uri} is unreachable ({down[1]} after MLflow's retries, "
                f"{ago:.0f} s ago; no new attempt for {DOWN_SECONDS:.0f} s)")
    try:
        result = call_with_retries(fn, *args, **kwargs)
    except Exception as err:
        if unreachable(err):
            text = str(err)
            reason = next((s for s in _UNREACHABLE if s in text), type(err).__name__)
            _DOWN[uri] = (time.monotonic(), reason)
        raise
    _DOWN.pop(uri, None)
    return result


class RetryingClient:
    """An MlflowClient whose method calls go through ``call_with_retries`` (and, for a
    tracking server, fail fast while it is known to be unreachable)."""

    def __init__(self, client) -> None:
        self._client = client
        uri = str(getattr(client, "tracking_uri", "") or "")
        self._server = uri if uri.startswith(("http://", "https://")) else None

    @property
    def unwrapped(self):
        return self._client

    def __getattr__(self, name: str):
        attr = getattr(self._client, name)
        if name.startswith("_") or not callable(attr):
            return attr

        server = self._server

        @functools.wraps(attr)
        def retried(*args, **kwargs):
            if server:
                return _guarded(server, attr, *args, **kwargs)
            return call_with_retries(attr, *args, **kwargs)
        return retried

    def __repr__(self) -> str:
        return f"RetryingClient({self._client!r})"
