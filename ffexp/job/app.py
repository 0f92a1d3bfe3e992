"""One job of the experiment app: typed Settings in, a trained and evaluated network out.

``prepare(settings)`` loads the data, resolves the ``auto`` choices and makes every check the
engine would make, before any training: a user's mistake ends here as one ValueError whose
message names the config key. ``execute(job, callbacks)`` trains with a validation callback
first (``val/cost`` and ``val/<metric>`` every epoch, so later callbacks such as the tracker
see them), then evaluates ``train/``, ``val/`` and ``test/`` metrics.

No Hydra and no MLflow here: the composition root (ffexp.launch.main) wires those around.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ffexp.job.footprint import check_fits
from ffexp.job.settings import Settings
from ffexp.job.data import DATASETS, Dataset, dataset_task, load_dataset
from ffexp.job.metrics import MAIN_METRIC, evaluate
from ffexp.nn import (ACTIVATIONS, HIDDEN_ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS, TASKS,
                      Callback, EpochStats, Network, TrainResult, make_activation, make_loss,
                      train)
from ffexp.nn.checks import check_data, check_pair
from ffexp.nn.initializers import DISTRIBUTIONS
from ffexp.nn.losses import output_cost
from ffexp.nn.network import DTYPES
from ffexp.nn.optim import EPOCH_GRADIENTS, TOL_ON

AUTO = "auto"
#: what each loss asks of the output layer and the labels, for error messages
LOSS_NEEDS = {
    "mse": "the quadratic cost needs real-valued outputs",
    "bce": "binary cross-entropy needs outputs in [0, 1] (sigmoid) and labels in {0, 1}",
    "cce": "categorical cross-entropy needs a softmax output and one-hot labels",
}
#: output activations that take model.beta
BETA_OUTPUTS = ("softmax", "sigmoid")


@dataclass(frozen=True)
class Job:
    """A prepared job: the settings, the data and the untrained network, all checked."""
    settings: Settings
    dataset: Dataset
    net: Network
    task: str               # the data's task (ffexp.nn.TASKS)
    output_activation: str  # resolved from model.output_activation
    loss: str               # resolved from loss.name
    main_metric: str        # MAIN_METRIC[task], without prefix

    @property
    def main_key(self) -> str:
        """``val/<main metric>``, or ``train/<main metric>`` without a validation split."""
        return f"{'val' if self.dataset.has_validation else 'train'}/{self.main_metric}"


@dataclass
class JobResult:
    """What a job produced: ``metrics`` are the final ``train/``, ``val/``, ``test/`` values."""
    train: TrainResult
    metrics: dict[str, float]
    seconds: float
    net: Network
    dataset: Dataset


# ---- prepare -------------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A value as a user writes it in an override."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return str(value)


def _require(ok: bool, key: str, value: Any, what: str) -> None:
    if not ok:
        raise ValueError(f"{key}={_show(value)}: {what}")


def _choice(key: str, value: str, accepted: Sequence[str]) -> None:
    _require(value in accepted, key, value, f"unknown; accepted: {', '.join(accepted)}")


def _positive(value: Any, integer: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if integer and not isinstance(value, int):
        return False
    return math.isfinite(value) and value > 0


def _fraction(value: Any, also: float | None = None) -> bool:
    """A number in (0, 1), or exactly ``also``."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and \
        (0.0 < value < 1.0 or value == also)


def _check_choices(s: Settings) -> None:
    """The keys whose values the engine would refuse, each named."""
    _check_network(s)
    _check_training(s)
    d = s.dataset
    _require(_fraction(d.val_fraction, 0.0), "dataset.val_fraction", d.val_fraction,
             "must be a number in [0, 1) (0: no validation split)")
    _require(_fraction(d.test_fraction), "dataset.test_fraction", d.test_fraction,
             "must be a number in (0, 1)")
    _require(s.seed >= 0, "seed", s.seed, "must be a non-negative integer")
    _require(_positive(s.tracking.flush_seconds), "tracking.flush_seconds",
             s.tracking.flush_seconds, "must be a positive number of seconds")
    _require(_positive(s.tracking.stale_seconds), "tracking.stale_seconds",
             s.tracking.stale_seconds, "must be a positive number of seconds")
    _require(s.tracking.snapshots >= 0, "tracking.snapshots", s.tracking.snapshots,
             "must be a non-negative integer (0: no step images)")


def _check_network(s: Settings) -> None:
    """The activation, init and model keys."""
    _choice("activation.name", s.activation.name, HIDDEN_ACTIVATIONS)
    slope = s.activation.slope
    _require(slope is None or math.isfinite(slope), "activation.slope", slope,
             "the slope c must be a finite number or null")
    _choice("init.name", s.init.name, list(INITIALIZERS))
    _choice("init.distribution", s.init.distribution, DISTRIBUTIONS)
    _require(s.init.name != "random" or _positive(s.init.scale), "init.scale", s.init.scale,
             "the standard deviation of random init must be a positive number")
    _require(math.isfinite(s.init.bias), "init.bias", s.init.bias, "must be a finite number")
    _require(math.isfinite(s.init.output_gain), "init.output_gain", s.init.output_gain,
             "must be a finite number (W[L] is multiplied by it after the draw)")
    _choice("model.output_activation", s.model.output_activation, [AUTO, *ACTIVATIONS])
    _require(_positive(s.model.beta), "model.beta", s.model.beta,
             "the output's β (softmax temperature) must be a positive number")
    _choice("model.dtype", s.model.dtype, list(DTYPES))
    for size in s.model.hidden_sizes:
        _require(_positive(size, integer=True), "model.hidden_sizes", list(s.model.hidden_sizes),
                 "every hidden layer size must be a positive integer")
    _check_activations(s.model)


def _check_training(s: Settings) -> None:
    """The loss, optimizer and train keys."""
    _choice("loss.name", s.loss.name, [AUTO, *LOSSES])
    _choice("optimizer.name", s.optimizer.name, list(OPTIMIZERS))
    _require(_positive(s.optimizer.lr), "optimizer.lr", s.optimizer.lr,
             "the learning rate must be a positive number")
    _require(_positive(s.optimizer.batch_size, integer=True), "optimizer.batch_size",
             s.optimizer.batch_size, "must be a positive integer")
    t = s.train
    _require(_positive(t.epochs, integer=True), "train.epochs", t.epochs,
             "must be a positive integer")
    _require(t.tol is None or _positive(t.tol), "train.tol", t.tol,
             "must be a positive number, or null to run every epoch")
    _choice("train.tol_on", t.tol_on, TOL_ON)
    _require(_positive(t.patience, integer=True), "train.patience", t.patience,
             "must be a positive integer")
    _choice("train.epoch_gradients", t.epoch_gradients, EPOCH_GRADIENTS)
    _require(_positive(t.eval_every, integer=True), "train.eval_every", t.eval_every,
             "must be a positive integer (validation metrics every that many epochs)")
    _require(t.blas_threads is None or _positive(t.blas_threads, integer=True),
             "train.blas_threads", t.blas_threads,
             "must be a positive integer, or null for the BLAS library's default")


def _check_activations(model) -> None:
    """model.activations: null, or one hidden activation per hidden layer."""
    acts = model.activations
    if acts is None:
        return
    for name in acts:
        _require(name in HIDDEN_ACTIVATIONS, "model.activations", list(acts),
                 f"unknown hidden activation {name!r}; accepted: {', '.join(HIDDEN_ACTIVATIONS)}")
    _require(len(acts) == len(model.hidden_sizes), "model.activations", list(acts),
             f"needs one name per hidden layer: model.hidden_sizes="
             f"{_show(list(model.hidden_sizes))} has {len(model.hidden_sizes)}")


def _hidden_activations(s: Settings) -> list[str]:
    """The activation of each hidden layer: model.activations, else activation.name for all."""
    acts = s.model.activations
    return list(acts) if acts is not None else [s.activation.name] * len(s.model.hidden_sizes)


def _load(d) -> tuple[Dataset, str]:
    """The dataset and its task; load errors are reported against the dataset's keys."""
    _choice("dataset.name", d.name, sorted(DATASETS))
    try:
        task = dataset_task(d.name, d.params)
        data = load_dataset(d.name, seed=d.seed, params=d.params, val_fraction=d.val_fraction,
                            test_fraction=d.test_fraction, standardize=d.standardize,
                            standardize_targets=d.standardize_targets)
    except ValueError as err:
        raise ValueError(f"dataset={d.name}: {err}") from None
    # dataset.task describes the data; it may only differ when the task follows the params
    _require(d.task in (task, DATASETS[d.name].task), "dataset.task", d.task,
             f"dataset={d.name} is a {task} task; dataset.task describes the data, it does "
             f"not change it")
    return data, task


def _accepted_losses(output: str, data: Dataset) -> list[str]:
    """The losses the engine accepts with this output activation and these labels."""
    out = make_activation(output)
    ok = []
    for name in LOSSES:
        try:
            check_pair(out, make_loss(name))
            check_data(data.X_train, data.Y_train, data.n_features, data.n_outputs,
                       make_loss(name))
        except ValueError:
            continue
        ok.append(name)
    return ok


def _resolve_output(s: Settings, data: Dataset, task: str) -> str:
    out = s.model.output_activation
    if out == AUTO:
        out = TASKS[task].output_activation
    else:
        _require(not (out == "softmax" and data.n_outputs == 1), "model.output_activation",
                 out, f"a softmax over the single output of dataset={data.name} ({task}) is "
                      f"always 1; use sigmoid")
        trainable = [AUTO, *(n for n, c in ACTIVATIONS.items() if not c.blocks_gradient)]
        _require(not ACTIVATIONS[out].blocks_gradient, "model.output_activation", out,
                 f"its derivative is 0 everywhere, so no gradient reaches any weight and "
                 f"nothing can learn; accepted outputs: {', '.join(trainable)}")
    _require(s.model.beta == 1.0 or out in BETA_OUTPUTS, "model.beta", s.model.beta,
             f"β is the temperature of a softmax or sigmoid output, but the output of "
             f"dataset={data.name} ({task}) is {out}")
    return out


def _resolve_loss(s: Settings, data: Dataset, task: str, output: str) -> str:
    """The loss (``auto``: the task's), refused with the accepted ones if the pair is invalid."""
    loss = TASKS[task].loss if s.loss.name == AUTO else s.loss.name
    accepted = _accepted_losses(output, data)
    if loss in accepted:
        return loss
    chosen = f"loss=auto (= {loss})" if s.loss.name == AUTO else f"loss={loss}"
    where = (f"dataset={data.name} is a {task} task (output {output})"
             if s.model.output_activation == AUTO else
             f"model.output_activation={output} with dataset={data.name} ({task})")
    options = accepted + ([AUTO] if TASKS[task].loss in accepted else [])
    raise ValueError(f"{chosen}: {LOSS_NEEDS[loss]}, but {where}; accepted losses for "
                     f"{task} with output {output}: {', '.join(options) or 'none'}")


def _build(s: Settings, data: Dataset, output: str) -> Network:
    """The network; activation.slope is the c of every linear / leaky_relu hidden layer."""
    sizes = [data.n_features, *s.model.hidden_sizes, data.n_outputs]
    try:
        net = Network(sizes, init=s.init.name, seed=s.seed,
                      activations=[*_hidden_activations(s), output], slope=s.activation.slope,
                      beta=s.model.beta, init_distribution=s.init.distribution,
                      init_scale=s.init.scale, output_gain=s.init.output_gain,
                      bias_init=s.init.bias, dtype=s.model.dtype)
    except ValueError as err:
        raise ValueError(f"model: {err}") from None
    return net


def prepare(settings: Settings, datasets: dict | None = None) -> Job:
    """Load, resolve and check everything a job needs; ValueError naming the key if not.

    ``datasets``: a memo of loaded datasets shared by several jobs (a stack's members, ffexp.
    launch.stacked), keyed by the ``dataset`` settings: jobs with equal ones get the same
    Dataset (its arrays are read, never written); None loads the job's own."""
    _check_choices(settings)
    if datasets is None:
        data, task = _load(settings.dataset)
    else:
        key = repr(settings.dataset)
        if key not in datasets:
            datasets[key] = _load(settings.dataset)
        data, task = datasets[key]
    output = _resolve_output(settings, data, task)
    loss = _resolve_loss(settings, data, task, output)
    check_fits(settings.model.hidden_sizes, [data.n_features, *settings.model.hidden_sizes,
               data.n_outputs], settings.model.dtype,
               max(data.X_train.shape[1], data.X_val.shape[1], data.X_test.shape[1]))
    net = _build(settings, data, output)
    check_pair(net.activations[-1], make_loss(loss))
    for X, Y in ((data.X_train, data.Y_train), (data.X_val, data.Y_val),
                 (data.X_test, data.Y_test)):
        if X.shape[1]:   # no validation split: nothing to check
            check_data(X, Y, data.n_features, data.n_outputs, make_loss(loss))
    return Job(settings, data, net, task, output, loss, MAIN_METRIC[task])


# ---- execute -------------------------------------------------------------------------------


def split_metrics(job: Job, split: str, net: Network | None = None,
                  task_metrics: bool = True) -> dict[str, float]:
    """``<split>/cost`` and (with ``task_metrics``) ``<split>/<metric>`` of the network on a
    split (none if Ŷ is not finite, e.g. after a divergence, or the split is empty)."""
    net = net or job.net
    X = getattr(job.dataset, f"X_{split}")
    Y = getattr(job.dataset, f"Y_{split}")
    if X.shape[1] == 0:
        return {}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        Z, Yhat = net.forward_output(X.astype(net.dtype, copy=False))
    if not np.all(np.isfinite(Yhat)):
        return {}
    out = {"cost": output_cost(make_loss(job.loss), net.activations[-1], Y, Z, Yhat),
           **(evaluate(job.task, Y, Yhat) if task_metrics else {})}
    return {f"{split}/{k}": v for k, v in out.items() if math.isfinite(v)}


class Validation(Callback):
    """Adds ``val/cost`` to every epoch's stats.metrics, and ``val/<metric>`` every
    ``train.eval_every`` epochs and at the last (ffexp.job.metrics, numpy: ~0.1 ms a call on the
    default run)."""

    def __init__(self, job: Job):
        self.job, self.every, self.last = job, job.settings.train.eval_every, 0

    def on_train_begin(self, net: Network, info: dict) -> None:
        self.last = info["epochs"]

    def on_epoch_end(self, net: Network, stats: EpochStats) -> None:
        due = stats.epoch % self.every == 0 or stats.epoch == self.last
        stats.metrics.update(split_metrics(self.job, "val", net, task_metrics=due))


def execute(job: Job, callbacks: Sequence[Callback] = ()) -> JobResult:
    """Train the job's network (validation callback first, if there is a validation split,
    then ``callbacks``) and evaluate it on the three splits."""
    s, data = job.settings, job.dataset
    t0 = time.perf_counter()
    first = [Validation(job)] if data.has_validation else []
    result = train(job.net, data.X_train, data.Y_train, job.loss, optimizer=s.optimizer.name,
                   lr=s.optimizer.lr, batch_size=s.optimizer.batch_size, epochs=s.train.epochs,
                   tol=s.train.tol, tol_on=s.train.tol_on, patience=s.train.patience,
                   seed=s.seed, callbacks=[*first, *callbacks],
                   epoch_gradients=s.train.epoch_gradients)
    metrics = {k: v for split in ("train", "val", "test") for k, v in split_metrics(job, split).items()}
    return JobResult(result, metrics, time.perf_counter() - t0, job.net, data)
