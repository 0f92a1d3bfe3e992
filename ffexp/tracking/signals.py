"""SIGTERM as an exception, so that a terminated job closes its MLflow run as KILLED.

Python turns Ctrl-C (SIGINT) into KeyboardInterrupt by itself; SIGTERM's default action kills
the process without unwinding, which leaves a run RUNNING forever. While ``sigterm_raises`` is
active, SIGTERM raises ``Terminated`` (a SystemExit with the conventional status 143) in the
main thread instead.

A scheduler's warning that the job's time limit is near (SLURM's ``--signal``, which
submitit's launcher sets to USR2 ``signal_delay_s`` before the limit) raises ``TimeLimit``
the same way, so the run closes as KILLED with ``ffexp.outcome=timeout`` before SLURM kills
the job (submitit's own USR2 handler would raise ``UncompletedJobError`` inside the job and
the run would close FAILED).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


class Terminated(SystemExit):
    """The process received SIGTERM."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


class TimeLimit(SystemExit):
    """The process received USR2: its scheduler's time limit is near."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGUSR2)

    def __str__(self) -> str:
        return "the job's time limit is near (USR2 from the scheduler): stopped"


#: signals turned into exceptions by this process (read when closing a sweep at exit)
RECEIVED: list[int] = []
#: called with the signal number by the process handlers (``install_process_handlers``)
#: before they raise, once per process: a sweep's launcher stops its jobs' processes there
#: (ffexp.launch.lifeline), before its launcher unwinds and kills them
BEFORE_RAISE: list = []


#: called with the signal number as soon as SIGTERM arrives (``on_sigterm``), before anything
#: unwinds: a sweep job writes its status file there, since a scheduler may SIGKILL it a few
#: seconds later (SLURM's KillWait), before its run is closed
ON_SIGTERM: list = []


def _notify(signum: int) -> None:
    for hook in list(ON_SIGTERM):
        try:
            hook(signum)
        except Exception:  # noqa: BLE001 - a note must not keep the process from ending
            pass


@contextmanager
def on_sigterm(hook):
    """Within the block, ``hook(signum)`` runs first when SIGTERM arrives (where SIGTERM
    raises, and where it is held back while a run closes)."""
    ON_SIGTERM.append(hook)
    try:
        yield
    finally:
        ON_SIGTERM.remove(hook)


def _before_raise(signum: int) -> None:
    """The hooks, on the first signal only (a second one, while they wait, raises at once)."""
    if len(RECEIVED) > 1:
        return
    for hook in list(BEFORE_RAISE):
        try:
            hook(signum)
        except Exception:  # noqa: BLE001 - stopping must not keep the process from ending
            pass


def _raise(signum, frame) -> None:
    RECEIVED.append(signum)
    _notify(signum)
    _before_raise(signum)
    raise Terminated()


def _time_limit(signum, frame) -> None:
    raise TimeLimit()


def _interrupt(signum, frame) -> None:
    RECEIVED.append(signum)
    _before_raise(signum)
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
    """Within the block, SIGTERM raises Terminated and USR2 TimeLimit (main thread only;
    elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _raise),
                signal.SIGUSR2: signal.signal(signal.SIGUSR2, _time_limit)}
    try:
        yield
    finally:
        restore_handlers(previous)


@contextmanager
def deferred_sigterm():
    """Within the block (closing a run), SIGTERM and USR2 are held back and re-raised at its
    end (as Terminated, SIGTERM first)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []

    def hold(signum, frame) -> None:
        received.append(signum)
        if signum == signal.SIGTERM:
            _notify(signum)

    previous = {s: signal.signal(s, hold) for s in (signal.SIGTERM, signal.SIGUSR2)}
    try:
        yield
    finally:
        restore_handlers(previous)
    if signal.SIGTERM in received:
        raise Terminated()
    if received:
        raise TimeLimit()


def killed(exc: BaseException) -> bool:
    """Whether an exception means the job was interrupted rather than broken."""
    return isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit))
