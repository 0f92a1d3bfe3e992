"""Optuna search through Hydra's Optuna sweeper (the ``ffexp[optuna]`` extra;
``conf/hparams_search/optuna.yaml``, selected with ``ffexp -m +hparams_search=optuna``).

A trial is one ffexp job, one MLflow child run of the sweep's parent run. Its objective is the
task function's return value (``ffexp.launch.main.run``): the task's main validation metric
``val/<MAIN_METRIC[task]>``, so the study's direction follows from the task:

    direction(task) = minimize  if MAIN_METRIC[task] is a cost (…cost, …loss, mse, mae, …)
                      maximize  otherwise (accuracy, r2, f1_micro)

A failed or diverged trial returns None, which Hydra's sweeper tells Optuna as a FAIL trial
(the sampler ignores it); a skipped trial (``tracking.skip_existing=true``) returns the value
its earlier run recorded. After the study, the parent run records the best trial (tags
``ffexp.optuna.*``, metric ``optuna/best_value``) and Optuna's trials table
(``optuna/trials.csv``).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

log = logging.getLogger("ffexp")

RESOLVER = "ffexp.direction"
#: the study's storage in this process (hydra.sweeper.storage instantiates it)
_STORAGE: list = []


def direction(task: str) -> str:
    """``maximize`` or ``minimize``: the way the task's main validation metric improves."""
    from ffexp.job.metrics import MAIN_METRIC
    from ffexp.job.metrics import lower_is_better
    if task not in MAIN_METRIC:
        raise ValueError(f"dataset.task={task!r}: no main metric; accepted: "
                         f"{', '.join(MAIN_METRIC)}")
    return "minimize" if lower_is_better(MAIN_METRIC[task]) else "maximize"


def register_resolver() -> None:
    """``${ffexp.direction:<task>}`` in configs (the shipped search sets its direction so)."""
    from ffexp.launch.config import add_resolver
    add_resolver(RESOLVER, direction)


def study_storage():
    """An in-memory Optuna storage kept in this process, so that the parent run can read the
    finished study (Optuna 2.10, which hydra-optuna-sweeper 1.3 requires, cannot use
    SQLAlchemy 2 for a database storage)."""
    from optuna.storages import InMemoryStorage
    _STORAGE[:] = [InMemoryStorage()]
    return _STORAGE[0]


def recorded_value(sweep_dir: str | None, run_id: str, metric: str) -> float | None:
    """The value of ``metric`` that run ``run_id`` recorded (a skipped job's objective)."""
    from ffexp.tracking import handoff, store
    target = handoff.read(sweep_dir)
    if target is None:
        return None
    return store.client(target.tracking_uri).get_run(run_id).data.metrics.get(metric)


class RecordStudy(Callback):
    """At the end of an Optuna sweep (before MlflowSweep closes the parent run): the best
    trial and the trials table on the parent run."""

    def on_multirun_end(self, config, **kwargs: Any) -> None:
        from ffexp.tracking import handoff, store
        sweep_dir = (Path.cwd() / str(config.hydra.sweep.dir)).resolve()
        target = handoff.read(sweep_dir)
        study = _finished_study()
        if target is None or study is None:
            return
        record_study(store.client(target.tracking_uri), target.parent_run_id, study, sweep_dir)


def _finished_study():
    if not _STORAGE:
        return None
    import optuna
    summaries = _STORAGE[0].get_all_study_summaries()
    return optuna.load_study(study_name=summaries[-1].study_name, storage=_STORAGE[0]) \
        if summaries else None


def record_study(client, parent_run_id: str, study, sweep_dir: Path) -> None:
    """Tags ``ffexp.optuna.direction``, ``.best_trial``, ``.best_params`` (the best run is
    ``ffexp.best_run_id``, one tag for every sweep, ties shared: ffexp.tracking.summary),
    metrics ``optuna/best_value``, ``optuna/trials_complete``, ``optuna/trials_failed``, and
    the artifact ``optuna/trials.csv`` (``study.trials_dataframe()``; trial k is job k)."""
    import optuna
    from mlflow.entities import Metric, RunTag
    states = [t.state for t in study.trials]
    complete = states.count(optuna.trial.TrialState.COMPLETE)
    tags = {"ffexp.optuna.direction": study.direction.name.lower(),
            "ffexp.optuna.n_trials": str(len(states))}
    metrics = {"optuna/trials_complete": complete,
               "optuna/trials_failed": states.count(optuna.trial.TrialState.FAIL)}
    if complete:
        best = study.best_trial
        tags.update({"ffexp.optuna.best_trial": str(best.number),
                     "ffexp.optuna.best_params": " ".join(f"{k}={v}"
                                                          for k, v in best.params.items())})
        metrics["optuna/best_value"] = best.value
    now = int(time.time() * 1000)
    client.log_batch(parent_run_id,
                     metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()
                              if not math.isnan(v)],
                     tags=[RunTag(k, v) for k, v in tags.items()])
    table = study.trials_dataframe()
    client.log_text(parent_run_id, table.to_csv(index=False), "optuna/trials.csv")
    log.info("optuna: %d trials (%d complete), best %s", len(states), complete,
             tags.get("ffexp.optuna.best_params", "none"))
