"""Calls to the store that meet a lock or an outage are made again, for up to ``WINDOW``
seconds; a run is never created twice.

What is retried (ffexp.tracking.faults.transient says it, from SQLite's result code,
PostgreSQL's SQLSTATE, the server's HTTP status or the ``requests`` error, never from the
message): SQLite's lock contention (MLflow's SQL store waits up to 20 s for the lock, but
SQLite gives up at once when waiting could deadlock), a database that went away (PostgreSQL
restarting: the server answers 503 TEMPORARILY_UNAVAILABLE or 500), a server that answers 408,
429 or 5xx or does not answer (refused, timed out). The store rolled the transaction back, or
the request was not processed, so the call can be made again: ``RetryingClient`` does that for
every MlflowClient method, with tenacity (exponential backoff with full jitter: before attempt
k+1 a random pause of up to ``FIRST_PAUSE`` × 2^k s, at most ``MAX_PAUSE``), until ``WINDOW``
seconds after the first attempt (``$FFEXP_RETRY_WINDOW`` sets another window). A
failure of the store itself (a full disk, ffexp.tracking.faults.cause) and every other error
pass through at once.

Creating a run is not idempotent: a server can commit the run and fail to answer (MLflow's own
HTTP client therefore retries a ``runs/create`` only on 408 and 429). ffexp's runs carry a key
of their own, the tag ``ffexp.run_key`` (ffexp.tracking.tags.RUN_KEY: the sweep's unique id
and the job number, or a random id for a single run); before a create is made again,
``RetryingClient`` looks the key up in the experiment and returns the run it finds. Every
other write of a job is safe to repeat (tags, params and metrics are upserts or identical
rows; an artifact is uploaded to the same path again; closing the run sets its status again).

For a tracking server, MLflow's own HTTP layer retries too (connection errors for every call,
429 and 5xx for reads and idempotent writes); its defaults (7 retries, backoff factor 2, 120 s
timeout) let a dead server hang one call for minutes. ``configure_http`` lowers them, unless
the user set them: 2 retries, backoff factor 1 (waits of about 1 and 2 s) and a 30 s timeout
per request, so that ffexp's window sets how long an outage is ridden out, for every call
alike. Once a call has failed beyond the window (the server is unreachable, or keeps
answering 5xx), every call of this process to that server fails at once for
``DOWN_SECONDS`` instead of waiting again: a job that was closing its run (a dozen calls, and
the metric batches queued in the helper process) fails with one clear error rather than after
many windows.
"""

from __future__ import annotations

import functools
import logging
import os
import time

from tenacity import (RetryCallState, Retrying, retry_if_exception, stop_after_delay,
                      wait_random_exponential)

from .faults import TrackingServerUnreachable, transient

log = logging.getLogger("ffexp")

#: MLflow's HTTP retry/timeout settings, as ffexp sets them when the user did not
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
                 "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
                 # MLflow prints two "View run/experiment at" lines per run closed on a server,
                 # between the sweep's one line per job; ffexp prints where the runs are
                 "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}

#: seconds after a call's first attempt during which a transient failure is tried again
WINDOW = 60.0
#: the environment variable that sets another window (seconds; tests, a site that would rather
#: spool a job's record sooner, ffexp.tracking.spool)
WINDOW_ENV = "FFEXP_RETRY_WINDOW"
#: the first pause (seconds, doubling) and the longest pause between two attempts
FIRST_PAUSE = 0.1
MAX_PAUSE = 4.0
#: after an unreachable-server failure, calls to that server fail at once for this long
DOWN_SECONDS = 30.0
#: tracking URI -> (time.monotonic(), reason) of its last unreachable-server failure
_DOWN: dict[str, tuple[float, str]] = {}

__all__ = ["HTTP_DEFAULTS", "WINDOW", "WINDOW_ENV", "RetryingClient", "TrackingServerUnreachable",
           "call_with_retries", "configure_http", "transient", "window_seconds"]


def window_seconds() -> float:
    """The retry window: ``$FFEXP_RETRY_WINDOW`` seconds when set to a number >= 0, else
    ``WINDOW``."""
    try:
        value = float(os.environ.get(WINDOW_ENV, ""))
    except ValueError:
        return WINDOW
    return value if value >= 0 else WINDOW


def configure_http() -> None:
    """Set ffexp's defaults for MLflow's HTTP client (retries, timeout, no run URLs printed) in
    this process's environment (inherited by the metrics helper and by launcher workers);
    values the user set are kept."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)


def _slept_or_elapsed(window: float):
    """Stop once ``window`` seconds passed since the first attempt, counting the pauses
    (``idle_for``) when the clock says less (a test's sleep that does not sleep)."""
    elapsed = stop_after_delay(window)
    return lambda state: elapsed(state) or state.idle_for >= window


def _logger(window: float):
    """The job log's line before each new attempt."""
    def log_retry(state: RetryCallState) -> None:
        err = state.outcome.exception()
        why = getattr(err, "_ffexp_transient", "")
        first = (str(err).strip().splitlines() or [""])[0][:200]
        label = "busy" if "lock" in why or "schema" in why else "unavailable"
        log.warning("MLflow store %s (%s: %s: %s); attempt %d failed, next in %.2f s (gives "
                    "up %.0f s after the first)", label, why, type(err).__name__, first,
                    state.attempt_number,
                    state.next_action.sleep if state.next_action else 0.0, window)
    return log_retry


def _retryable(remote: bool):
    def test(err: BaseException) -> bool:
        why = transient(err, remote)
        if why:
            try:
                err._ffexp_transient = why
            except (AttributeError, TypeError):
                pass
        return bool(why)
    return test


def retrying(remote: bool = False, window: float | None = None) -> Retrying:
    """tenacity's loop for one call (see the module doc)."""
    window = window_seconds() if window is None else window
    return Retrying(retry=retry_if_exception(_retryable(remote)),
                    stop=_slept_or_elapsed(window),
                    wait=wait_random_exponential(multiplier=FIRST_PAUSE, max=MAX_PAUSE),
                    before_sleep=_logger(window), sleep=lambda s: time.sleep(s), reraise=True)


def call_with_retries(fn, *args, remote: bool = False, window: float | None = None, **kwargs):
    """``fn(*args, **kwargs)``, made again after a transient failure (see the module doc)."""
    return retrying(remote, window)(fn, *args, **kwargs)


def _unreachable(err: BaseException) -> str | None:
    """Why a call to a server still failed at the end of the window (it did not answer, or
    kept answering 5xx), else None."""
    return getattr(err, "_ffexp_transient", None) or transient(err, True)


def _guarded(uri: str, call):
    """``call()`` for a call to a tracking server: fails at once while the server is known to
    be down, and marks it down when a call could not reach it within the window."""
    down = _DOWN.get(uri)
    if down is not None:
        ago = time.monotonic() - down[0]
        if ago < DOWN_SECONDS:
            raise TrackingServerUnreachable(
                f"the tracking server {uri} is unreachable ({down[1]} for "
                f"{window_seconds():.0f} s, {ago:.0f} s ago; no new attempt for "
                f"{DOWN_SECONDS:.0f} s)")
    try:
        result = call()
    except Exception as err:
        reason = _unreachable(err)
        if reason:
            _DOWN[uri] = (time.monotonic(), reason)
        raise
    _DOWN.pop(uri, None)
    return result


def _find_run(client, experiment_id: str, key: str):
    """The run of ``experiment_id`` tagged ``ffexp.run_key = key``, else None."""
    from .tags import RUN_KEY
    found = client.search_runs([experiment_id], f"tags.`{RUN_KEY}` = '{key}'", max_results=2)
    return found[0] if found else None


class RetryingClient:
    """An MlflowClient whose method calls are retried (``call_with_retries``), whose
    ``create_run`` never creates a run twice (``ffexp.run_key``), and which, for a tracking
    server, fails fast while the server is known to be unreachable."""

    def __init__(self, client) -> None:
        self._client = client
        uri = str(getattr(client, "tracking_uri", "") or "")
        self._server = uri if uri.startswith(("http://", "https://")) else None

    @property
    def unwrapped(self):
        return self._client

    def _call(self, fn, *args, **kwargs):
        remote = self._server is not None
        call = functools.partial(call_with_retries, fn, *args, remote=remote, **kwargs)
        return _guarded(self._server, call) if remote else call()

    def create_run(self, experiment_id, *args, tags=None, **kwargs):
        """MlflowClient.create_run; with the tag ``ffexp.run_key`` in ``tags``, an attempt after
        a failed one first looks for the run an earlier attempt may have created."""
        from .tags import RUN_KEY
        key = (tags or {}).get(RUN_KEY)
        create = self._client.create_run
        if not key:
            return self._call(create, experiment_id, *args, tags=tags, **kwargs)
        attempts = [0]

        def once():
            attempts[0] += 1
            if attempts[0] > 1:
                found = _find_run(self._client, experiment_id, key)
                if found is not None:
                    log.info("run %s (%s=%s) was created by an attempt whose answer was "
                             "lost; not created again", found.info.run_id, RUN_KEY, key)
                    return found
            return create(experiment_id, *args, tags=tags, **kwargs)
        return self._call(once)

    def __getattr__(self, name: str):
        attr = getattr(self._client, name)
        if name.startswith("_") or not callable(attr):
            return attr

        @functools.wraps(attr)
        def retried(*args, **kwargs):
            return self._call(attr, *args, **kwargs)
        return retried

    def __repr__(self) -> str:
        return f"RetryingClient({self._client!r})"
