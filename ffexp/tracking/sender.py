"""A helper process that writes metric batches to MLflow while a long training goes on.

MLflow's SQL store spends 60-200 µs of Python (its ORM) per metric value through ``log_batch``
(ffexp's Core path, ffexp.tracking.buffer.store_rows, several times less); a run logs ~40 values
an epoch, which in the training thread (or in a thread sharing its GIL) would slow a small
network's training by half. One helper process per ffexp process (started by the first run
that outlives ``tracking.flush_seconds``, see ffexp.tracking.buffer, and reused by every later
job of a sweep or of a reused joblib worker) takes the batches over a pipe and stores them
(``store_rows``: the path the job's log names) on the other core. It is a second interpreter
that imports MLflow (~1-2 s of CPU): a short run, over before its first flush, writes its
metrics itself at the end instead.

Protocol on the helper's stdin/stdout, pickled tuples:
``("batch", uri, run_id, [(key, value, timestamp, step), ...], log)`` and
``("sync", token)`` -> ``(token, errors)``: the helper answers once everything sent before is
stored, with the errors since the last sync (as text). Its client (ffexp.tracking.store.client)
retries SQLite's "database is locked", so the helpers of parallel jobs can share one SQLite file.
The helper ignores SIGINT and SIGTERM (a Ctrl-C reaches the whole process group; the parent
decides) and ends at EOF on its stdin, so it dies with its parent, however the parent ends.
If the parent or the pipe goes away (SIGKILL, a joblib worker dropped by loky) it ends without
a word on the console; what it could not store (values whose write failed since the last sync,
a batch cut short) is counted in a line appended to the job's log (``log``: the log file of
the job that sent the last batch).
"""

from __future__ import annotations

import atexit
import itertools
import os
import pickle
import signal
import subprocess
import sys
import threading

BATCH_LIMIT = 1000


class SenderProcess:
    """The parent's end: ``send`` is non-blocking for the caller (a writer thread feeds the
    pipe), ``sync`` waits until the helper has stored everything."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        self.proc = subprocess.Popen([sys.executable, "-m", "ffexp.tracking.sender"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                     start_new_session=False)
        self._lock = threading.Lock()
        self._tokens = itertools.count()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, uri: str, run_id: str, rows: list, log: str | None = None) -> None:
        """Queue rows (key, value, timestamp ms, step) for the run (blocks while the pipe is
        full: call it from a writer thread); ``log``: the job's log file, for what the helper
        could not store if it is left alone."""
        with self._lock:
            pickle.dump(("batch", uri, run_id, rows, log), self.proc.stdin, protocol=5)
            self.proc.stdin.flush()

    def sync(self) -> list[str]:
        with self._lock:
            token = next(self._tokens)
            pickle.dump(("sync", token), self.proc.stdin, protocol=5)
            self.proc.stdin.flush()
            answer, errors = pickle.load(self.proc.stdout)
        if answer != token:
            raise RuntimeError(f"metrics helper answered {answer!r} to sync {token}")
        return errors

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()


_PROCESS: SenderProcess | None = None
_PROCESS_LOCK = threading.Lock()


def running() -> SenderProcess | None:
    """This process's helper if one is running (an earlier job started it), else None."""
    with _PROCESS_LOCK:
        return _PROCESS if _PROCESS is not None and _PROCESS.alive() else None


def shared() -> SenderProcess:
    """This process's helper, started on first use (and again if it died)."""
    global _PROCESS
    with _PROCESS_LOCK:
        if _PROCESS is None or not _PROCESS.alive():
            _PROCESS = SenderProcess()
            atexit.register(_PROCESS.close)
        return _PROCESS


# ---- the helper -----------------------------------------------------------------------------


class _Helper:
    """The helper's state: a client per store, the errors since the last sync, and what could
    not be stored, counted per run for the job's log."""

    def __init__(self) -> None:
        self.clients: dict = {}
        self.errors: list[str] = []
        self.unstored: dict[str, int] = {}  # run id -> values since the last sync
        self.log: str | None = None

    def store(self, uri: str, run_id: str, rows: list) -> None:
        from ffexp.tracking import store
        from ffexp.tracking.buffer import store_rows
        try:
            client = self.clients.get(uri) or self.clients.setdefault(uri, store.client(uri))
            store_rows(client, uri, run_id, rows)
        except Exception as err:  # reported at the next sync
            self.errors.append(f"{type(err).__name__}: {err}")
            self.unstored[run_id] = self.unstored.get(run_id, 0) + len(rows)

    def left_alone(self, why: str) -> None:
        """The parent is gone: one line in the job's log (nothing on the console)."""
        lost = ", ".join(f"{n} of run {run}" for run, n in self.unstored.items()) or "none"
        line = (f"ffexp.tracking.sender: the training process went away ({why}); metric "
                f"values not stored: {lost}"
                + (f" ({self.errors[0]})" if self.errors else "") + "\n")
        if self.log:
            try:
                with open(self.log, "a") as f:
                    f.write(line)
            except OSError:
                pass


def _serve(stdin, stdout) -> None:
    helper = _Helper()
    while True:
        try:
            message = pickle.load(stdin)
        except EOFError:  # the parent closed the pipe: it has synced what it needs
            if helper.unstored:
                helper.left_alone("end of input before a sync")
            return
        except Exception as err:  # a batch cut short: the parent was killed while sending
            helper.left_alone(f"{type(err).__name__}: {err}; an incomplete batch was dropped")
            return
        if message[0] == "batch":
            _, uri, run_id, rows, helper.log = message
            helper.store(uri, run_id, rows)
        elif message[0] == "sync":
            try:
                pickle.dump((message[1], helper.errors), stdout, protocol=5)
                stdout.flush()
            except OSError as err:  # the parent is gone before it read the answer
                helper.left_alone(f"{type(err).__name__}: {err}")
                return
            helper.errors, helper.unstored = [], {}


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # the protocol gets the real stdout; anything printed goes to stderr instead
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    try:
        _serve(sys.stdin.buffer, protocol_out)
    finally:
        os._exit(0)  # no flush of a broken pipe at exit, no "Exception ignored" on stderr
