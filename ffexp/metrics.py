"""Task metrics on column-major labels and outputs, computed by scikit-learn.

``evaluate(task, Y, Yhat)`` takes Y and Ŷ of shape (n_outputs, m) as the Network produces them
(Ŷ are outputs / probabilities, turned into labels by ``TASKS[task].predict``) and returns
finite floats keyed by the names below (no prefix; the caller adds ``val/`` etc.).

| task        | metrics                                        | main (higher is better) |
|-------------|------------------------------------------------|-------------------------|
| regression  | mse, mae, r2 (each averaged over the outputs)  | r2                      |
| binary      | accuracy, f1, roc_auc                          | accuracy                |
| multiclass  | accuracy, f1_macro                             | accuracy                |
| multilabel  | hamming_loss, subset_accuracy, f1_micro        | f1_micro                |

``mse`` is sklearn's mean_squared_error: (1 / (m·k)) Σ (ŷ − y)² over k outputs and m examples,
a mean over both; the cost ``mse`` of ffexp.nn.losses is ½ Σ over outputs, mean over examples,
so cost = (k / 2) · mse. ``f1_macro`` averages over the classes present in Y or in the
predictions (sklearn's default). F1 scores use ``zero_division=0``.

A metric that is undefined on the given data is omitted, never NaN: ``roc_auc`` when Y holds a
single class, ``r2`` with fewer than two examples, and any value that overflows. Non-finite Ŷ
raise ValueError.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from sklearn import metrics as skm

from ffexp.nn import TASKS
from ffexp.nn.checks import one_of

METRICS: dict[str, tuple[str, ...]] = {
    "regression": ("mse", "mae", "r2"),
    "binary": ("accuracy", "f1", "roc_auc"),
    "multiclass": ("accuracy", "f1_macro"),
    "multilabel": ("hamming_loss", "subset_accuracy", "f1_micro"),
}

MAIN_METRIC: dict[str, str] = {
    "regression": "r2",
    "binary": "accuracy",
    "multiclass": "accuracy",
    "multilabel": "f1_micro",
}


def _regression(Y: np.ndarray, Yhat: np.ndarray) -> dict[str, float]:
    y, yhat = Y.T, Yhat.T  # (m, k), sklearn's layout
    out = {"mse": skm.mean_squared_error(y, yhat), "mae": skm.mean_absolute_error(y, yhat)}
    if y.shape[0] >= 2:
        out["r2"] = skm.r2_score(y, yhat)
    return out


def _binary(Y: np.ndarray, Yhat: np.ndarray) -> dict[str, float]:
    y, pred = Y[0].astype(np.int64), TASKS["binary"].predict(Yhat)[0]
    out = {"accuracy": skm.accuracy_score(y, pred),
           "f1": skm.f1_score(y, pred, zero_division=0)}
    if np.unique(y).size == 2:
        out["roc_auc"] = skm.roc_auc_score(y, Yhat[0])
    return out


def _multiclass(Y: np.ndarray, Yhat: np.ndarray) -> dict[str, float]:
    y = np.argmax(Y, axis=0)  # one-hot (c, m) -> class index (m,)
    pred = np.argmax(TASKS["multiclass"].predict(Yhat), axis=0)
    return {"accuracy": skm.accuracy_score(y, pred),
            "f1_macro": skm.f1_score(y, pred, average="macro", zero_division=0)}


def _multilabel(Y: np.ndarray, Yhat: np.ndarray) -> dict[str, float]:
    y, pred = Y.T.astype(np.int64), TASKS["multilabel"].predict(Yhat).T  # (m, c) multi-hot
    return {"hamming_loss": skm.hamming_loss(y, pred),
            "subset_accuracy": skm.accuracy_score(y, pred),
            "f1_micro": skm.f1_score(y, pred, average="micro", zero_division=0)}


_BY_TASK: dict[str, Callable[[np.ndarray, np.ndarray], dict[str, float]]] = {
    "regression": _regression, "binary": _binary,
    "multiclass": _multiclass, "multilabel": _multilabel,
}


def _check(task: str, Y: np.ndarray, Yhat: np.ndarray) -> None:
    """Y and Ŷ both (n_outputs, m), finite; classification labels in {0, 1}."""
    if Y.ndim != 2 or Y.shape != Yhat.shape or Y.shape[1] == 0:
        raise ValueError(f"Y and Yhat must both have shape (n_outputs, m) with m > 0, got "
                         f"{Y.shape} and {Yhat.shape}")
    if task == "binary" and Y.shape[0] != 1:
        raise ValueError(f"binary labels Y must have one row, got shape {Y.shape}")
    for what, arr in (("Y", Y), ("Yhat", Yhat)):
        if not np.all(np.isfinite(arr)):
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"{what} contains {bad} non-finite value(s) (NaN or inf)")
    if TASKS[task].is_classification and not np.isin(Y, (0.0, 1.0)).all():
        raise ValueError(f"{task} labels Y must be in {{0, 1}}, got values such as "
                         f"{np.unique(Y[(Y != 0) & (Y != 1)])[:5].tolist()}")


def evaluate(task: str, Y: np.ndarray, Yhat: np.ndarray) -> dict[str, float]:
    """Metrics of ``task`` (names in METRICS[task]) for labels Y and outputs Ŷ, (n_outputs, m)."""
    one_of("task", task, TASKS)
    Y, Yhat = np.asarray(Y, dtype=np.float64), np.asarray(Yhat, dtype=np.float64)
    _check(task, Y, Yhat)
    with np.errstate(over="ignore", invalid="ignore"):
        values = _BY_TASK[task](Y, Yhat)
    return {name: float(v) for name, v in values.items() if np.isfinite(v)}
