"""What a sweeper that optimizes reads from a job: the direction of the task's main metric and
a skipped job's recorded value. ffexp's own Optuna search (``hydra/sweeper: optuna``,
``+hparams_search=optuna``) is ffexp.launch.optuna_search.

The task function's return value (``ffexp.launch.main.run``) is the task's main validation
metric ``val/<MAIN_METRIC[task]>``, so the direction follows from the task:

    direction(task) = minimize  if MAIN_METRIC[task] is a cost (…cost, …loss, mse, mae, …)
                      maximize  otherwise (accuracy, r2, f1_micro)

A failed or diverged job returns None; a skipped job (``tracking.skip_existing=true``) the value
its earlier run recorded.
"""

from __future__ import annotations

import logging

from omegaconf import OmegaConf

log = logging.getLogger("ffexp")

RESOLVER = "ffexp.direction"


def direction(task: str) -> str:
    """``maximize`` or ``minimize``: the way the task's main validation metric improves."""
    from ffexp.job.metrics import MAIN_METRIC
    from ffexp.job.metrics import lower_is_better
    if task not in MAIN_METRIC:
        raise ValueError(f"dataset.task={task!r}: no main metric; accepted: "
                         f"{', '.join(MAIN_METRIC)}")
    return "minimize" if lower_is_better(MAIN_METRIC[task]) else "maximize"


def register_resolver() -> None:
    """``${ffexp.direction:<task>}`` in configs (a config can name its task's direction so)."""
    from ffexp.launch.config import add_resolver
    add_resolver(RESOLVER, direction)


def recorded_value(sweep_dir: str | None, run_id: str, metric: str) -> float | None:
    """The value of ``metric`` that run ``run_id`` recorded (a skipped job's objective)."""
    from ffexp.tracking import handoff, store
    target = handoff.read(sweep_dir)
    if target is None:
        return None
    return store.client(target.tracking_uri).get_run(run_id).data.metrics.get(metric)
