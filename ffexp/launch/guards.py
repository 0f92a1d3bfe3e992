"""Checks of a sweep's launcher settings, in the launching process before anything is written
(called by the tracked-sweep callback, ffexp.launch.mlflow_sweep, tracked or not)."""

from __future__ import annotations

from ffexp._compat.joblib_workers import JOBLIB


def launcher_problem(config) -> str | None:
    """Why the sweep's launcher cannot run a job, as the one line's text, else None.

    ``hydra.launcher.n_jobs`` of the joblib launcher: the number of jobs run at once, a
    positive integer, or -1 (the launcher's default: one per CPU). joblib reads other
    negative values as "CPUs + 1 + n_jobs" and 0 as an error; ffexp accepts neither."""
    launcher = config.hydra.get("launcher") or {}
    if launcher.get("_target_") != JOBLIB:
        return None
    n_jobs = launcher.get("n_jobs")
    if n_jobs is None or (isinstance(n_jobs, int) and not isinstance(n_jobs, bool)
                          and (n_jobs >= 1 or n_jobs == -1)):
        return None
    return (f"hydra.launcher.n_jobs={n_jobs}: the number of jobs run at once must be a "
            f"positive integer, or -1 for one per CPU (accepted: 1, 2, 3, ... or -1)")
