"""Task metrics on column-major labels and outputs, in numpy (scikit-learn's definitions).

``evaluate(task, Y, Yhat)`` takes Y and Ŷ of shape (n_outputs, m) as the Network produces them
(Ŷ are outputs / probabilities, turned into labels by ``TASKS[task].predict``) and returns
finite floats keyed by the names below (no prefix; the caller adds ``val/`` etc.).

| task        | metrics                                        | main (higher is better) |
|-------------|------------------------------------------------|-------------------------|
| regression  | mse, mae, r2 (each averaged over the outputs)  | r2                      |
| binary      | accuracy, f1, roc_auc                          | accuracy                |
| multiclass  | accuracy, f1_macro                             | accuracy                |
| multilabel  | hamming_loss, subset_accuracy, f1_micro        | f1_micro                |

With labels y, predictions p over m examples (k outputs or c classes/labels):

- accuracy = (1/m) Σ [y_i = p_i]; subset_accuracy the same with whole label vectors;
  hamming_loss = (1/(m·c)) Σ_i Σ_j [y_ij ≠ p_ij];
- F1 of a class = 2·TP / (2·TP + FP + FN) = 2·TP / (|y = 1| + |p = 1|), 0 when nothing is
  positive in either (``zero_division=0``); ``f1`` is class 1's, ``f1_macro`` the mean over the
  classes present in y or p, ``f1_micro`` pools TP, FP, FN over every label;
- roc_auc = P(ŝ⁺ > ŝ⁻) + ½ P(ŝ⁺ = ŝ⁻) over positive/negative pairs (Mann-Whitney, ties
  counted half: the area under the ROC curve);
- per output j: mse_j = (1/m) Σ (ŷ − y)², mae_j = (1/m) Σ |ŷ − y|,
  r2_j = 1 − Σ (y − ŷ)² / Σ (y − ȳ)² (1 if both sums are 0, 0 if only the second is);
  each metric is the mean over the k outputs.

These are scikit-learn's ``accuracy_score``, ``f1_score``, ``roc_auc_score``, ``hamming_loss``,
``mean_squared_error``, ``mean_absolute_error`` and ``r2_score`` (equal to 1e-12, tested against
them), without their input validation: they are computed every epoch (``train.eval_every``),
where scikit-learn's few milliseconds a call would cost more than a small network's epoch.

``mse`` is a mean over both outputs and examples; the cost ``mse`` of ffexp.nn.losses is ½ Σ over
outputs, mean over examples, so cost = (k / 2) · mse.

A metric that is undefined on the given data is omitted, never NaN: ``roc_auc`` when Y holds a
single class, ``r2`` with fewer than two examples, and any value that overflows. Non-finite Ŷ
raise ValueError.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

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

#: metric names (without a ``split/`` prefix) of which less is better; every other metric of
#: ``evaluate`` (and every main metric) is better higher
LOWER_IS_BETTER = ("cost", "loss", "mse", "mae", "hamming_loss")


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` (``val/mse``, ``train/cost``, ``r2``) is better."""
    return metric.split("/")[-1].endswith(LOWER_IS_BETTER)


def f1(tp, true_sum, pred_sum):
    """2·TP / (|y = 1| + |p = 1|), elementwise; 0 where the denominator is 0."""
    tp, den = np.asarray(tp, dtype=float), np.asarray(true_sum + pred_sum, dtype=float)
    return np.divide(2 * tp, den, out=np.zeros_like(den), where=den > 0)


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of scores for labels y in {0, 1} (both present): for each group
    of equal scores, its positives beat the negatives below and tie with its own negatives."""
    order = np.argsort(score, kind="mergesort")
    s, pos = score[order], y[order] == 1
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])   # first index of each tie group
    pos_g = np.add.reduceat(pos.astype(np.int64), starts)
    neg_g = np.diff(np.r_[starts, s.size]) - pos_g
    neg_below = np.cumsum(neg_g) - neg_g
    n_pos, n_neg = pos_g.sum(), neg_g.sum()
    return float(np.sum(pos_g * (neg_below + 0.5 * neg_g)) / (n_pos * n_neg))


def _regression(Y: np.ndarray, Yhat: np.ndarray) -> dict[str, float]:
    err = Yhat - Y                                   # (k, m)
    out = {"mse": np.mean(np.mean(err ** 2, axis=1)), "mae": np.mean(np.mean(np.abs(err), axis=1))}
    if Y.shape[1] >= 2:
        num = np.sum(err ** 2, axis=1)
        den = np.sum((Y - np.mean(Y, axis=1, keepdims=True)) ** 2, axis=1)
        r2 = np.ones_like(num)
        r2[(num != 0) & (den == 0)] = 0.0
        ok = den != 0
        r2[ok] = 1 - num[ok] / den[ok]
        out["r2"] = np.mean(r2)
    return out


def _binary(Y: np.ndarray, Yhat: np.ndarray) -> dict[str, float]:
    y, pred = Y[0] == 1, TASKS["binary"].predict(Yhat)[0] == 1
    out = {"accuracy": np.mean(y == pred),
           "f1": f1(np.count_nonzero(y & pred), np.count_nonzero(y), np.count_nonzero(pred))}
    if 0 < np.count_nonzero(y) < y.size:
        out["roc_auc"] = roc_auc(y, Yhat[0])
    return out


def _multiclass(Y: np.ndarray, Yhat: np.ndarray) -> dict[str, float]:
    c = Y.shape[0]
    y = np.argmax(Y, axis=0)  # one-hot (c, m) -> class index (m,)
    pred = np.argmax(TASKS["multiclass"].predict(Yhat), axis=0)
    true_sum, pred_sum = np.bincount(y, minlength=c), np.bincount(pred, minlength=c)
    tp = np.bincount(y[y == pred], minlength=c)
    present = (true_sum + pred_sum) > 0
    return {"accuracy": np.mean(y == pred),
            "f1_macro": np.mean(f1(tp, true_sum, pred_sum)[present])}


def _multilabel(Y: np.ndarray, Yhat: np.ndarray) -> dict[str, float]:
    y, pred = Y == 1, TASKS["multilabel"].predict(Yhat) == 1  # (c, m) multi-hot
    return {"hamming_loss": np.mean(y != pred),
            "subset_accuracy": np.mean(np.all(y == pred, axis=0)),
            "f1_micro": f1(np.count_nonzero(y & pred), np.count_nonzero(y),
                           np.count_nonzero(pred))}


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
        if not np.isfinite(arr).all():
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"{what} contains {bad} non-finite value(s) (NaN or inf)")
    if TASKS[task].is_classification and not ((Y == 0) | (Y == 1)).all():
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
