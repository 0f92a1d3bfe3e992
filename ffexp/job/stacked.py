"""Several prepared jobs of one shape trained as one stacked computation (ffexp.nn.stack).

``execute_stacked(jobs, callbacks)`` is ``[execute(job, cbs) for job, cbs in ...]`` with the
trainings done by one ``train_stacked`` call: each job keeps its own validation callback,
callbacks, network, data, seed, learning rate, epochs and stopping rule, and its JobResult
equals the one ``execute`` gives (the history bit for bit but its wall-clock times, the same
``train/``, ``val/``, ``test/`` metrics, the same network). ffexp.tracking.stacked.record_stacked does the same
inside each job's MLflow run (ffexp.tracking.record_job): each job is its own run with its own
params, metrics, status, model and pictures, as if it had run alone.

Jobs train together when their ``stack_key`` is equal: the network's layer sizes and dtype,
the resolved loss, the optimizer and its batch size, ``train.epoch_gradients``,
``train.blas_threads`` and the training set's shape. Anything else may differ between them:
the seed, the init, the activations (name, slope, β), the learning rate, the epochs, the
tolerance, ``train.eval_every``, the data's own values (``dataset.seed``).

Failure isolation: a callback of job k that raises an Exception stops network k at that
epoch, and job k's entry is that exception (the others train on); divergence stops only its
own network, as in a separate run. An interrupt or a time limit (BaseException) stops them all.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from ffexp.job.app import Job, JobResult, Validation, split_metrics
from ffexp.nn import Callback, Network, TrainResult
from ffexp.nn.stack import train_stacked

#: what jobs of one stack share (``stack_key``), by config key
STACK_KEYS = ("model.hidden_sizes (the layer sizes)", "model.dtype", "loss", "optimizer",
              "optimizer.batch_size", "train.epoch_gradients", "train.blas_threads",
              "the training set's shape")


def stack_key(job: Job) -> tuple:
    """What jobs trained as one stack must share (STACK_KEYS)."""
    s = job.settings
    return (tuple(job.net.layer_sizes), str(job.net.dtype), job.loss, s.optimizer.name,
            s.optimizer.batch_size, s.train.epoch_gradients, s.train.blas_threads,
            job.dataset.X_train.shape, job.dataset.Y_train.shape)


def stack_groups(jobs: Sequence[Job]) -> list[list[int]]:
    """The jobs' indices in groups of equal ``stack_key``, each in job order, the groups in the
    order of their first job."""
    groups: dict[tuple, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(stack_key(job), []).append(i)
    return list(groups.values())


class _Isolated(Callback):
    """A job's callbacks, called in order as ``train`` calls them; the first Exception one
    raises is kept in ``error`` and stops the job's network (its later hooks are skipped)."""

    def __init__(self, callbacks: Sequence[Callback]):
        self.callbacks, self.error = list(callbacks), None

    def _each(self, hook: str, *args) -> bool:
        if self.error is not None:
            return True
        stop = False
        try:
            for cb in self.callbacks:
                stop = bool(getattr(cb, hook)(*args)) or stop
        except Exception as err:
            self.error = err
            return True
        return stop

    def on_train_begin(self, net: Network, info: dict) -> None:
        self._each("on_train_begin", net, info)

    def on_epoch_end(self, net: Network, stats) -> bool:
        return self._each("on_epoch_end", net, stats)

    def on_train_end(self, net: Network, result: TrainResult) -> None:
        self._each("on_train_end", net, result)


def _shared(arrays: list[np.ndarray]):
    """One array if all are equal (the same values train the same), else the list."""
    first = arrays[0]
    return first if all(a is first or np.array_equal(a, first) for a in arrays) else arrays


def execute_stacked(jobs: Sequence[Job], callbacks: Sequence[Sequence[Callback]] | None = None
                    ) -> list[JobResult | Exception]:
    """Train the jobs' networks as one stack (validation callback first, then each job's
    ``callbacks[k]``) and evaluate each on its three splits: per job its JobResult, or the
    Exception one of its callbacks raised. ``seconds`` is the stack's wall time (all jobs
    together). ValueError naming the keys if the jobs' ``stack_key`` differ."""
    jobs = list(jobs)
    if not jobs:
        return []
    keys = {stack_key(j) for j in jobs}
    if len(keys) > 1:
        raise ValueError(f"jobs trained as one stack must share {', '.join(STACK_KEYS)}; "
                         f"these have {len(keys)} different combinations")
    t0 = time.perf_counter()
    extra = [[] for _ in jobs] if callbacks is None else [list(c) for c in callbacks]
    if len(extra) != len(jobs):
        raise ValueError(f"callbacks has {len(extra)} lists for {len(jobs)} jobs")
    guards = [_Isolated([*([Validation(j)] if j.dataset.has_validation else []), *cbs])
              for j, cbs in zip(jobs, extra)]
    first = jobs[0].settings
    trains = train_stacked(
        [j.net for j in jobs], _shared([j.dataset.X_train for j in jobs]),
        _shared([j.dataset.Y_train for j in jobs]), jobs[0].loss,
        optimizer=first.optimizer.name, batch_size=first.optimizer.batch_size,
        lr=[j.settings.optimizer.lr for j in jobs],
        epochs=[j.settings.train.epochs for j in jobs],
        tol=[j.settings.train.tol for j in jobs], tol_on=[j.settings.train.tol_on for j in jobs],
        patience=[j.settings.train.patience for j in jobs],
        seeds=[j.settings.seed for j in jobs], callbacks=[[g] for g in guards],
        epoch_gradients=first.train.epoch_gradients)
    seconds = time.perf_counter() - t0
    out: list[JobResult | Exception] = []
    for job, guard, result in zip(jobs, guards, trains):
        if guard.error is not None:
            out.append(guard.error)
            continue
        metrics = {k: v for split in ("train", "val", "test")
                   for k, v in split_metrics(job, split).items()}
        out.append(JobResult(result, metrics, seconds, job.net, job.dataset))
    return out
