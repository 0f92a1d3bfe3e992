"""The joblib launcher's worker processes, started while the launching process checks the
sweep.

Hydra's joblib launcher (``hydra/launcher=joblib``) calls ``joblib.Parallel`` once the sweep
is checked and the store opened; only then does loky start the workers, and each imports
ffexp, Hydra and scikit-learn (tracked: MLflow and matplotlib too, ~1-3 s) before its first
job. joblib keeps one pool of loky workers per process and reuses it for a ``Parallel`` with
the same arguments, so ``start`` calls ``Parallel`` with the arguments the launcher will use
(``hydra_plugins.hydra_joblib_launcher._core.launch``: ``hydra.launcher`` without
``_target_``, backend ``loky``, the sizes as integers), in a thread, on one task per worker
that imports what a job imports first (``job_modules``), while the sweeper's check composes
the jobs; ``wait`` joins it before the launcher's ``Parallel``, which then finds the workers
ready; a sweep refused before its launch ends them at once (``stop``). Another launcher is
left as it was.

Private parts: ``process_joblib_cfg`` (the launcher's private module) and joblib's reuse of
its loky pool for equal arguments (its behaviour, not its contract). Gated on the tested
hydra-joblib-launcher and joblib series; elsewhere the launcher starts its workers itself, as
it does without ffexp (one warning).
"""

from __future__ import annotations

import importlib
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

from ffexp._compat.gate import supported

log = logging.getLogger(__name__)

#: Hydra's joblib launcher
JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"

#: the joblib series whose pool reuse ``start`` is tested against (tests/app/test_workers.py)
TESTED_JOBLIB = ((1, 6),)

#: the thread starting this process's workers, while it runs
_STARTING: list[threading.Thread] = []


def _is_joblib(config) -> bool:
    return (config.hydra.get("launcher") or {}).get("_target_") == JOBLIB


def parallel_args(config) -> dict | None:
    """The arguments Hydra's joblib launcher gives ``joblib.Parallel`` for this sweep, or None
    when the sweep has another launcher."""
    from omegaconf import OmegaConf
    launcher = config.hydra.get("launcher") or {}
    if launcher.get("_target_") != JOBLIB:
        return None
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
    args = {k: v for k, v in OmegaConf.to_container(launcher, resolve=True).items()
            if k != "_target_"}
    args["backend"] = "loky"
    process_joblib_cfg(args)
    return args


def job_modules(config) -> list[str]:
    """What a job of this sweep imports before it trains: the app, scikit-learn's datasets and
    splits; tracked, MLflow's client, its SQL store (unless the store is a tracking server),
    the plots and, with ``tracking.log_model``, the pyfunc model."""
    modules = ["ffexp.launch.main", "sklearn.datasets", "sklearn.model_selection",
               "sklearn.preprocessing"]
    tracking = config.get("tracking") or {}
    if tracking.get("enabled"):
        modules += ["ffexp.tracking.run", "mlflow.tracking", "ffexp.plots.figures"]
        if not str(tracking.get("uri") or "").startswith(("http://", "https://")):
            modules.append("mlflow.store.tracking.sqlalchemy_store")
        if tracking.get("log_model"):
            modules.append("ffexp.tracking.model")
    return modules


def freeze_imports() -> None:
    """Move every object alive now (the imported modules: ~380,000 objects in a tracked
    worker, ~140,000 untracked) out of the garbage collector's reach (``gc.freeze``, public
    since Python 3.7). Without psutil, loky runs a full ``gc.collect()`` after each task that
    ends over a second after the previous collection, and Python runs its own full
    collections as a job allocates: each traversed all of them, ~0.22 s of CPU a tracked job
    (~0.08 s untracked); frozen, a few ms. What a job allocates is collected as before."""
    import gc
    gc.collect()
    gc.freeze()


#: jobs this worker process started (``settle``)
_JOBS: list[int] = []


def settle() -> None:
    """At the start of each of a worker's jobs: at the second, ``freeze_imports`` (what the
    first job imported and cached on its way too: Hydra's plugins, MLflow's store and engine,
    the SQLite dialect, ~100 modules; the worker's first task froze the imports before). Not
    at the first (a process that runs one job, as submitit's, pays no collection for it),
    nor later, so that later jobs' garbage is never frozen (the second job's arguments, alive
    then, are: once)."""
    _JOBS.append(os.getpid())
    if len(_JOBS) == 2:
        freeze_imports()


#: how long a worker's first task waits for the others to start (they may be fewer)
MEET_SECONDS = 10.0


def _ready(modules: list[str], meeting: str, workers: int) -> int:
    """A worker's first task: import what its first job would import first, then wait until
    ``workers`` tasks have started (each leaves a file in the ``meeting`` folder), so that
    every worker takes one (a worker done with its imports would take the next task)."""
    for module in modules:
        importlib.import_module(module)
    freeze_imports()
    Path(meeting, str(os.getpid())).touch()
    end = time.monotonic() + MEET_SECONDS
    while len(os.listdir(meeting)) < workers and time.monotonic() < end:
        time.sleep(0.01)
    return os.getpid()


def start(config, modules: list[str] | None = None) -> None:
    """Start the sweep's joblib workers in a thread, if its launcher is joblib's; they import
    ``modules`` (``job_modules(config)``) meanwhile."""
    if _STARTING or not _is_joblib(config) or not (
            supported("the joblib workers started ahead", "hydra-joblib-launcher", ((1, 2),))
            and supported("the joblib workers started ahead", "joblib", TESTED_JOBLIB)):
        return
    args = parallel_args(config)
    modules = job_modules(config) if modules is None else modules
    if args is None:
        return

    def run() -> None:
        from joblib import Parallel, delayed, effective_n_jobs
        n = effective_n_jobs(args.get("n_jobs"))
        with tempfile.TemporaryDirectory(prefix="ffexp-workers-") as meeting:
            try:
                pids = Parallel(**{**args, "verbose": 0})(
                    delayed(_ready)(modules, meeting, n) for _ in range(n))
                log.debug("joblib workers ready before the launch: pids %s",
                          " ".join(map(str, sorted(set(pids)))))
            except Exception as err:  # noqa: BLE001 - the launcher starts its own workers
                log.debug("joblib workers not started ahead: %s", err)

    thread = threading.Thread(target=run, name="ffexp-start-workers", daemon=True)
    thread.start()
    _STARTING.append(thread)


def wait() -> None:
    """Until the workers ``start`` asked for are ready (at once if it did not)."""
    while _STARTING:
        _STARTING[-1].join()
        _STARTING.pop()


def stop() -> None:
    """End at once the workers ``start`` asked for if nothing ``wait``-ed for them: the sweep
    was refused before its launch (the process would wait on exit for them to finish
    starting, ~2 s). After a launch, a no-op."""
    if not _STARTING:
        return
    from joblib.externals.loky import get_reusable_executor
    get_reusable_executor(reuse=True).shutdown(wait=False, kill_workers=True)
    thread = _STARTING.pop()
    thread.join(timeout=5)
