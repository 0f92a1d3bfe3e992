"""The processes that run a sweep's jobs end with the process that launched them, and their
runs end KILLED, not RUNNING.

The launcher's side, ``stop_jobs`` (a hook of ffexp.tracking.signals, run by the launcher's
SIGTERM and Ctrl-C handlers before they raise): joblib's ``Parallel`` answers the exception
by killing its workers with SIGKILL, which would leave the runs they were recording RUNNING,
and loky kills every worker as soon as one of them ends. So before that, the launcher sends
SIGTERM to the process of each RUNNING run of its sweep (the ``ffexp.pid`` tag: a child of the
launcher on this host, not the launcher itself), again for a job started meanwhile, until none
is left or STOP_SECONDS have passed, after leaving STOPPING in the sweep directory. Each such
job raises Terminated, closes its run as KILLED and then ``hold``s: it waits, without taking
another job, until the launcher's unwinding ends it. A worker between jobs is ended by that
unwinding. A job stopped by a signal sent to its worker alone (no STOPPING file, the launcher
alive) ends as before: its exception reaches the launcher.

The worker's side, ``watch_parent`` (started by a sweep job in a process other than its
launcher's): Ctrl-C at a terminal reaches the whole process group, and the launcher decides
(as above), so the worker ignores SIGINT; and a thread looks every POLL_SECONDS whether the
process's parent is still the one it started with. When the parent is gone (SIGKILL, a crash),
the worker sends itself SIGTERM (its run closes as KILLED) and ends, GRACE_SECONDS later at the
latest. Without it a loky worker outlives its launcher by its idle timeout (300 s) after
finishing the job it was running, holding the store open.

Processes are looked at in /proc (Linux); elsewhere ``stop_jobs`` signals nothing and the
workers end by the launcher's unwinding or by their own watch.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

#: how long the launcher waits for its jobs to close their runs
STOP_SECONDS = 60.0
#: in the sweep directory while its launcher stops its jobs: a job stopped by a signal then
#: ``hold``s; one stopped otherwise (a SIGTERM to the worker alone) ends as before, its
#: exception reaching the launcher
STOPPING = ".ffexp_stopping"
#: how often a worker looks for its parent
POLL_SECONDS = 1.0
#: how long a worker whose parent is gone may take to close its run
GRACE_SECONDS = 60.0

#: the parent this worker watches (``watch_parent``), once started
_WATCHING: list[int] = []


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of process ``pid`` from /proc, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def is_child(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) child process of this process."""
    stat = _stat(pid)
    return stat is not None and stat[1] == os.getpid() and stat[0] != "Z"


def _running_jobs(client, experiment_id: str, parent_id: str) -> set[int]:
    """The processes (children of this one, on this host) of the sweep's RUNNING runs."""
    from ffexp.tracking.stale import HOST_TAG, PID_TAG
    runs = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_id}' and "
                              f"attributes.status = 'RUNNING'", max_results=50000)
    host, pids = socket.gethostname(), set()
    for run in runs:
        pid = run.data.tags.get(PID_TAG, "")
        if run.data.tags.get(HOST_TAG) == host and pid.isdigit() and is_child(int(pid)):
            pids.add(int(pid))
    return pids


def stop_jobs(signum: int = signal.SIGTERM, seconds: float = STOP_SECONDS) -> list[int]:
    """SIGTERM to the process of every RUNNING run of this process's open sweep (the module
    doc), until their runs are closed (at most ``seconds``); returns the processes signalled.
    ``signum``: the signal the launcher received (its jobs get SIGTERM either way)."""
    from ffexp.tracking.sweep import open_parent
    parent = open_parent()
    if parent is None:
        return []
    client, parent_id, experiment_id = parent
    from ffexp.launch.status import SweepStatus
    if SweepStatus.sweep_dir:
        try:
            Path(SweepStatus.sweep_dir, STOPPING).touch()
        except OSError:
            pass
    signalled: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            running = _running_jobs(client, experiment_id, parent_id)
        except Exception:  # noqa: BLE001 - the store is gone: nothing more to wait for
            break
        if not running:
            break
        for pid in sorted(running - set(signalled)):
            try:
                os.kill(pid, signal.SIGTERM)
                signalled.append(pid)
            except OSError:
                pass
        time.sleep(0.2)
    return signalled


def in_worker() -> bool:
    """Whether this process runs a sweep's jobs for a launcher in another process (a joblib
    worker, a submitit job): not the launcher, and not a SLURM task (SLURM owns those)."""
    from ffexp.launch.status import SweepStatus
    return SweepStatus.sweep_dir is None and "SLURM_JOB_ID" not in os.environ


def watch_parent() -> None:
    """In a worker (main thread): ignore SIGINT, and start (once per process) the thread that
    ends the worker when its parent is gone."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _WATCHING:
        return
    _WATCHING.append(os.getppid())
    threading.Thread(target=_watch, args=(_WATCHING[0],), name="ffexp-watch-parent",
                     daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)  # a job closes its run as KILLED, then ``hold``s
    time.sleep(GRACE_SECONDS)
    os._exit(128 + signal.SIGTERM)


def launcher_stopping(sweep_dir: str | None) -> bool:
    """Whether this worker's launcher is stopping the sweep (``stop_jobs``'s file in the sweep
    directory) or is gone."""
    gone = bool(_WATCHING) and os.getppid() != _WATCHING[0]
    return gone or bool(sweep_dir and Path(sweep_dir, STOPPING).exists())


def hold() -> None:
    """In a worker whose job was stopped by its launcher's signal (its run closed): take no
    other job; wait until the launcher ends this process, or end it once the launcher is
    gone."""
    import logging
    logging.shutdown()
    for handler in ("SIGTERM", "SIGINT"):  # a second signal ends the worker at once
        signal.signal(getattr(signal, handler), signal.SIG_DFL)
    parent = _WATCHING[0] if _WATCHING else os.getppid()
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os._exit(128 + signal.SIGTERM)
