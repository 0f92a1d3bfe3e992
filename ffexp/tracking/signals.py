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


#: signals turned into exceptions by this process (read when closing a sweep at exit)
RECEIVED: list[int] = []


def _raise(signum, frame) -> None:
    RECEIVED.append(signum)
    raise Terminated()


def _interrupt(signum, frame) -> None:
    RECEIVED.append(signum)
    raise KeyboardInterrupt()


def install_process_handlers() -> dict:
    """SIGTERM raises Terminated and Ctrl-C KeyboardInterrupt, both remembered in RECEIVED;
    returns the previous handlers (main thread only, else {})."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signal.SIGTERM: signal.signal(signal.SIGTERM, _raise),
            signal.SIGINT: signal.signal(signal.SIGINT, _interrupt)}


def restore_handlers(previous: dict) -> None:
    if threading.current_thread() is threading.main_thread():
        for signum, handler in previous.items():
            signal.signal(signum, handler)


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
