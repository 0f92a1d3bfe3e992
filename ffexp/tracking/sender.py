"""A helper process that writes metric batches to MLflow while training goes on.

MLflow's SQL store spends 60-200 µs of Python (its ORM) per metric value; a run logs ~40 values
an epoch, which in the training thread (or in a thread sharing its GIL) would slow a small
network's training by half. One helper process per ffexp process (started at the first run,
reused by every later job of a sweep or of a reused joblib worker) takes the batches over a
pipe and calls ``log_batch`` on the other core.

Protocol on the helper's stdin/stdout, pickled tuples:
``("batch", uri, run_id, [(key, value, timestamp, step), ...])`` and
``("sync", token)`` -> ``(token, errors)``: the helper answers once everything sent before is
stored, with the errors since the last sync (as text). Its client (ffexp.tracking.store.client)
retries SQLite's "database is locked", so the helpers of parallel jobs can share one SQLite file.
The helper ignores SIGINT and SIGTERM (a Ctrl-C reaches the whole process group; the parent
decides) and ends at EOF on its stdin, so it dies with its parent, however the parent ends.
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

    def send(self, uri: str, run_id: str, rows: list) -> None:
        """Queue rows (key, value, timestamp ms, step) for the run (blocks while the pipe is
        full: call it from a writer thread)."""
        with self._lock:
            pickle.dump(("batch", uri, run_id, rows), self.proc.stdin, protocol=5)
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


def shared() -> SenderProcess:
    """This process's helper, started on first use (and again if it died)."""
    global _PROCESS
    with _PROCESS_LOCK:
        if _PROCESS is None or not _PROCESS.alive():
            _PROCESS = SenderProcess()
            atexit.register(_PROCESS.close)
        return _PROCESS


# ---- the helper -----------------------------------------------------------------------------


def _serve(stdin, stdout) -> None:
    from mlflow.entities import Metric

    from ffexp.tracking import store
    clients: dict = {}
    errors: list[str] = []
    while True:
        try:
            message = pickle.load(stdin)
        except EOFError:
            return
        if message[0] == "batch":
            _, uri, run_id, rows = message
            try:
                client = clients.get(uri) or clients.setdefault(uri, store.client(uri))
                metrics = [Metric(k, v, ts, step) for k, v, ts, step in rows]
                for i in range(0, len(metrics), BATCH_LIMIT):
                    client.log_batch(run_id, metrics=metrics[i:i + BATCH_LIMIT], synchronous=True)
            except Exception as err:  # reported at the next sync
                errors.append(f"{type(err).__name__}: {err}")
        elif message[0] == "sync":
            pickle.dump((message[1], errors), stdout, protocol=5)
            stdout.flush()
            errors = []


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # the protocol gets the real stdout; anything printed goes to stderr instead
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _serve(sys.stdin.buffer, protocol_out)
