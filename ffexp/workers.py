"""The joblib launcher's worker processes, started while the launching process checks the
sweep (issue 15).

Hydra's joblib launcher (``hydra/launcher=joblib``) calls ``joblib.Parallel`` once the sweep
is checked and the store opened; only then does loky start the workers, and each imports
ffexp, Hydra and scikit-learn (~1.2 s) before its first job. joblib keeps one pool of loky
workers per process and reuses it for a ``Parallel`` with the same arguments, so ``start``
calls ``Parallel`` with the arguments the launcher will use
(``hydra_plugins.hydra_joblib_launcher._core.launch``: ``hydra.launcher`` without
``_target_``, backend ``loky``, the sizes as integers) on a few tasks that import the app's
module, in a thread, while the sweeper's check composes the jobs; ``wait`` joins it before
the launcher's ``Parallel``, which then finds the workers ready; a sweep refused before its
launch ends them at once (``stop``). Another launcher is left as it was.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading

log = logging.getLogger(__name__)

#: Hydra's joblib launcher
JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"

#: the thread starting this process's workers, while it runs
_STARTING: list[threading.Thread] = []


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


def _ready(module: str) -> int:
    """A worker's first task: import the app (what its first job would do first)."""
    importlib.import_module(module)
    return os.getpid()


def start(config, module: str = "ffexp.__main__") -> None:
    """Start the sweep's joblib workers in a thread, if its launcher is joblib's."""
    args = parallel_args(config)
    if args is None or _STARTING:
        return

    def run() -> None:
        from joblib import Parallel, delayed, effective_n_jobs
        try:
            pids = Parallel(**{**args, "verbose": 0})(
                delayed(_ready)(module) for _ in range(effective_n_jobs(args.get("n_jobs"))))
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
