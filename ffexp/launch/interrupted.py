"""Ctrl-C and SIGTERM: the runs end KILLED (ffexp.tracking.run, ffexp.tracking.sweep) and the
user reads one line saying which run it was and how it was left, not Python's traceback:

    ffexp: interrupted (Ctrl-C): run 3f2a… (relu·he·minibatch·s0) is KILLED; outputs in …
    ffexp: interrupted (SIGTERM): sweep run 9c1d… is KILLED, its jobs' runs: 2 FINISHED,
        2 KILLED; outputs in …; rerun the same command with tracking.skip_existing=true …

(each on one line). The state is read back from the store, so the line says what was
recorded. The exit status stays the signal's: Ctrl-C ends the process by SIGINT (as Python
does for an unhandled KeyboardInterrupt, so that a shell loop stops), SIGTERM with 143.
"""

from __future__ import annotations

import signal
import sys

from ffexp.tracking.signals import Terminated

#: ``main``'s code for "end by SIGINT" (ffexp.launch.main re-raises KeyboardInterrupt quietly)
CTRL_C = -signal.SIGINT


def what(err: BaseException) -> str:
    return "SIGTERM" if isinstance(err, Terminated) else "Ctrl-C"


def exit_code(err: BaseException) -> int:
    return 128 + signal.SIGTERM if isinstance(err, Terminated) else CTRL_C


def _shown(run) -> str:
    name = f" ({run.info.run_name})" if run.info.run_name else ""
    return f"{run.info.run_id}{name}"


def run_line(err: BaseException, uri: str | None, run_id: str | None, output_dir: str) -> str:
    """The line for a single run (``run_id``: the run it had opened, if any)."""
    head = f"ffexp: interrupted ({what(err)}):"
    if run_id is None:
        return f"{head} no run was recorded; outputs in {output_dir}"
    try:
        from ffexp.tracking.store import client
        run = client(uri).get_run(run_id)
        return f"{head} run {_shown(run)} is {run.info.status}; outputs in {output_dir}"
    except Exception as read_err:  # noqa: BLE001 - the store may be what failed
        return (f"{head} run {run_id}: its state could not be read back ({type(read_err).__name__}); "
                f"outputs in {output_dir}")


def sweep_line(err: BaseException, sweep_dir: str) -> str:
    """Close the sweep's parent run (KILLED) and say how it and its jobs' runs were left."""
    from ffexp.tracking import close_sweep
    from ffexp.tracking.sweep import open_parent
    head = f"ffexp: interrupted ({what(err)}):"
    tail = (f"outputs in {sweep_dir}; rerun the same command with "
            f"tracking.skip_existing=true to finish it")
    parent = open_parent()
    close_sweep(err, hint=False)
    if parent is None:
        return f"{head} the sweep is stopped (not tracked); {tail}"
    client, run_id, experiment_id = parent
    try:
        run = client.get_run(run_id)
        jobs = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{run_id}'",
                                  max_results=50000)
    except Exception as read_err:  # noqa: BLE001
        return (f"{head} sweep run {run_id}: its state could not be read back "
                f"({type(read_err).__name__}); {tail}")
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.info.status] = counts.get(job.info.status, 0) + 1
    states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none yet"
    return f"{head} sweep run {_shown(run)} is {run.info.status}, its jobs' runs: {states}; {tail}"


def quiet_exit_by_sigint() -> None:
    """Raise KeyboardInterrupt out of the console script without its traceback: Python then
    ends the process by SIGINT, after its atexit handlers."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        if not issubclass(kind, KeyboardInterrupt):
            previous(kind, value, tb)

    sys.excepthook = hook
    raise KeyboardInterrupt
