"""The Hydra callback of a tracked sweep (``hydra.callbacks.mlflow_sweep``): before any job,
the sweep's configs are checked to compose (ffexp.launch.sweeper), then ffexp.tracking.sweep
creates the parent run; at the end it closes it."""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback

from ffexp.tracking.sweep import begin, close_open_sweep


class MlflowSweep(Callback):
    """Registered in conf/config.yaml under ``hydra.callbacks``."""

    def on_multirun_start(self, config, **kwargs: Any) -> None:
        from ffexp.launch.guards import launcher_problem
        problem = launcher_problem(config)
        if problem:  # before a worker starts or the store is touched
            print(f"ffexp: error: {problem}", file=sys.stderr, flush=True)
            raise SystemExit(2)
        jobs = _sweep_jobs(config) if config.tracking.enabled else None
        if jobs is not None or (config.tracking.enabled and _is_search(config)):
            try:
                _check_composes(config, jobs if jobs is not None else _search_jobs(config))
            except Exception as err:  # Hydra would only warn: end the sweep with one line
                from ffexp.launch.config import hydra_error_line
                print(f"ffexp: error: {hydra_error_line(err)}", file=sys.stderr, flush=True)
                raise SystemExit(2) from None
        searched = ()
        if jobs is None and config.tracking.enabled and _is_search(config):
            from ffexp.launch.optuna_search import searched_keys
            searched = tuple(searched_keys(config))
        from pathlib import Path

        from ffexp.launch.lifeline import STOPPING
        (Path(str(config.hydra.sweep.dir)) / STOPPING).unlink(missing_ok=True)  # a reused dir
        begin(config, jobs, searched)
        from ffexp.launch.lifeline import stop_jobs
        from ffexp.tracking import signals
        if stop_jobs not in signals.BEFORE_RAISE:  # SIGTERM, Ctrl-C: the jobs end first
            signals.BEFORE_RAISE.append(stop_jobs)

    def on_multirun_end(self, config, **kwargs: Any) -> None:
        close_open_sweep("FINISHED", hint=False)   # report_sweep prints it with the result


def _sweep_jobs(config) -> list[list[str]] | None:
    """Every job's overrides, as the basic sweeper (or ffexp's, its subclass) will expand them;
    None for other sweepers (Optuna samples its jobs as it goes)."""
    from ffexp.launch.sweeper import expand, is_basic
    try:
        if not is_basic(config):
            return None
        from hydra.core.global_hydra import GlobalHydra
        return expand(config, GlobalHydra.instance().config_loader())
    except Exception:  # counting is a courtesy; Hydra reports malformed overrides itself
        return None


def _is_search(config) -> bool:
    from ffexp.launch.optuna_search import SWEEPER
    return str(config.hydra.sweeper.get("_target_")) == SWEEPER


def _search_jobs(config) -> list[list[str]]:
    """ffexp's Optuna search: its settings checked and jobs covering its space to compose."""
    from ffexp.launch.optuna_search import check
    return check(config)


def _check_composes(config, jobs: list[list[str]]) -> None:
    """Compose, before anything is written, the jobs that ffexp.launch.sweeper.plan picks (a
    misspelled option or a wrong type fails here). ffexp's sweeper then knows the sweep is
    checked and composes nothing more before launching; Hydra's own basic sweeper (chosen
    with ``hydra.sweeper._target_``) composes every job again."""
    from ffexp.launch.sweeper import check
    check(config, jobs)
