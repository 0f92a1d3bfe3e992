"""SIGTERM as an exception, so that a terminated job closes its MLflow run as KILLED.

Python turns Ctrl-C (SIGINT) into KeyboardInterrupt by itself; SIGTERM's default action kills
the process without unwinding, which leaves a run RUNNING forever. While ``sigterm_raises`` is
active, SIGTERM raises ``Terminated`` (a SystemExit with the conventional status 143) in the
main thread instead.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


class Terminated(SystemExit):
    """The process received SIGTERM."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


def _raise(signum, frame) -> None:
    raise Terminated()


@contextmanager
def sigterm_raises():
    """Within the block, SIGTERM raises Terminated (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def deferred_sigterm():
    """Within the block (closing a run), a SIGTERM is held back and re-raised at its end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGTERM, lambda s, f: received.append(s))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
    if received:
        raise Terminated()


def killed(exc: BaseException) -> bool:
    """Whether an exception means the job was interrupted rather than broken."""
    return isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit))
