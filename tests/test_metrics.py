"""ffexp.job.metrics: worked examples by hand, agreement with sklearn, finiteness and errors."""

import numpy as np
import pytest
from sklearn import metrics as skm

from ffexp.job.data import DATASETS, load_dataset
from ffexp.job.metrics import MAIN_METRIC, METRICS, evaluate
from ffexp.nn import TASKS, make_loss


def test_every_task_has_metrics_and_a_main_one():
    assert set(METRICS) == set(MAIN_METRIC) == set(TASKS)
    assert all(MAIN_METRIC[t] in METRICS[t] for t in TASKS)
    assert MAIN_METRIC == {"regression": "r2", "binary": "accuracy", "multiclass": "accuracy",
                           "multilabel": "f1_micro"}


def test_regression_worked_example():
    # errors 0, 0, 0, 2 -> mse = 4/4 = 1, mae = 2/4 = 0.5
    # mean(y) = 2.5, SS_tot = 2.25 + 0.25 + 0.25 + 2.25 = 5, SS_res = 4 -> r2 = 1 - 4/5 = 0.2
    Y, Yhat = np.array([[1.0, 2.0, 3.0, 4.0]]), np.array([[1.0, 2.0, 3.0, 6.0]])
    assert evaluate("regression", Y, Yhat) == pytest.approx({"mse": 1.0, "mae": 0.5, "r2": 0.2})


def test_regression_averages_over_outputs_unlike_the_cost():
    # output 1: errors 0, 0, 1 -> mse 1/3, mae 1/3, r2 = 1 - 1/2 (SS_tot = 1 + 0 + 1 = 2)
    # output 2: exact -> mse 0, mae 0, r2 1.   Averages: mse 1/6, mae 1/6, r2 0.75
    Y = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]])  # (k=2 outputs, m=3), column-major
    Yhat = np.array([[1.0, 2.0, 4.0], [2.0, 4.0, 6.0]])
    got = evaluate("regression", Y, Yhat)
    assert got == pytest.approx({"mse": 1 / 6, "mae": 1 / 6, "r2": 0.75})
    assert got["mse"] == pytest.approx(skm.mean_squared_error(Y.T, Yhat.T))
    assert got["r2"] == pytest.approx(skm.r2_score(Y.T, Yhat.T))
    # the cost J = ½ Σ_k (mean over examples) = (k/2) · mse = 1 · 1/6
    assert make_loss("mse").cost(Y, Yhat) == pytest.approx(Y.shape[0] / 2 * got["mse"])


def test_binary_worked_example():
    # ŷ > 0.5 -> predictions 0, 1, 0, 1, 1 for labels 0, 0, 1, 1, 1: 3 right -> accuracy 0.6
    # TP = 2, FP = 1, FN = 1 -> precision = recall = 2/3 -> f1 = 2/3
    # AUC: positives (.4, .8, .9) beat negative .1 three times, negative .6 twice -> 5/6
    Y, Yhat = np.array([[0.0, 0.0, 1.0, 1.0, 1.0]]), np.array([[0.1, 0.6, 0.4, 0.8, 0.9]])
    got = evaluate("binary", Y, Yhat)
    assert got == pytest.approx({"accuracy": 0.6, "f1": 2 / 3, "roc_auc": 5 / 6})
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(Y[0], Yhat[0]))


def test_binary_threshold_is_strictly_above_one_half():
    # ŷ = 0.5 predicts 0 (TASKS["binary"].predict): both right -> accuracy 1
    assert evaluate("binary", np.array([[0.0, 1.0]]), np.array([[0.5, 0.51]]))["accuracy"] == 1.0


@pytest.mark.filterwarnings("error")  # not computed then dropped: sklearn would warn
def test_binary_single_class_omits_roc_auc():
    # all positive; predictions 1, 0, 1 -> accuracy 2/3; TP 2, FN 1, FP 0 -> f1 = 2·1·⅔/(1+⅔) = 0.8
    got = evaluate("binary", np.array([[1.0, 1.0, 1.0]]), np.array([[0.9, 0.2, 0.7]]))
    assert got == pytest.approx({"accuracy": 2 / 3, "f1": 0.8})


def test_multiclass_worked_example():
    # labels 0, 1, 2, 2; argmax of the columns of Ŷ: 0, 2, 2, 2 -> accuracy 3/4
    # F1 per class: 0 -> 1; 1 -> 0 (never predicted); 2 -> TP 2, FP 1 -> p 2/3, r 1 -> 0.8
    # macro = (1 + 0 + 0.8) / 3 = 0.6
    Y = np.eye(3)[:, [0, 1, 2, 2]]
    Yhat = np.array([[0.7, 0.2, 0.1, 0.3],
                     [0.2, 0.3, 0.1, 0.3],
                     [0.1, 0.5, 0.8, 0.4]])
    got = evaluate("multiclass", Y, Yhat)
    assert got == pytest.approx({"accuracy": 0.75, "f1_macro": 0.6})
    assert got["f1_macro"] == pytest.approx(
        skm.f1_score([0, 1, 2, 2], [0, 2, 2, 2], average="macro"))


def test_multilabel_worked_example():
    # example 1: labels 1 0 1, ŷ .9 .2 .3 -> 1 0 0 (one bit wrong); example 2: 0 1 0 -> 0 1 0
    # hamming = 1 wrong bit / 6 bits; subset accuracy = 1/2
    # micro: TP 2, FP 0, FN 1 -> p 1, r 2/3 -> f1 0.8
    Y = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])       # (c=3 labels, m=2)
    Yhat = np.array([[0.9, 0.1], [0.2, 0.7], [0.3, 0.4]])
    got = evaluate("multilabel", Y, Yhat)
    assert got == pytest.approx({"hamming_loss": 1 / 6, "subset_accuracy": 0.5, "f1_micro": 0.8})
    assert got["hamming_loss"] == pytest.approx(skm.hamming_loss(Y.T, (Yhat > 0.5).T))


@pytest.mark.parametrize("task", sorted(TASKS))
def test_random_outputs_give_every_metric_finite(task):
    rng = np.random.default_rng(0)
    Y, Yhat = {
        "regression": (rng.normal(size=(2, 50)), rng.normal(size=(2, 50))),
        "binary": (np.arange(50)[None, :] % 2.0, rng.uniform(size=(1, 50))),
        "multiclass": (np.eye(4)[:, np.arange(50) % 4], rng.dirichlet(np.ones(4), 50).T),
        "multilabel": (rng.integers(0, 2, (3, 50)).astype(float), rng.uniform(size=(3, 50))),
    }[task]
    got = evaluate(task, Y, Yhat)
    assert tuple(got) == METRICS[task]
    assert all(isinstance(v, float) and np.isfinite(v) for v in got.values())


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_perfect_outputs_score_the_best_main_metric(name):
    d = load_dataset(name)
    got = evaluate(d.task, d.Y_val, d.Y_val)
    assert got[MAIN_METRIC[d.task]] == 1.0
    assert set(got) == set(METRICS[d.task])


def test_undefined_metrics_are_omitted_not_nan():
    assert set(evaluate("regression", np.array([[1.0]]), np.array([[2.0]]))) == {"mse", "mae"}
    # (1e200)² overflows: mse and r2 are dropped, mae is still finite
    got = evaluate("regression", np.array([[0.0, 1.0]]), np.array([[1e200, -1e200]]))
    assert set(got) == {"mae"} and got["mae"] == pytest.approx(1e200)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_outputs_or_labels_raise(bad):
    Y, Yhat = np.array([[0.0, 1.0, 1.0]]), np.array([[0.2, bad, 0.9]])
    with pytest.raises(ValueError, match=r"Yhat contains 1 non-finite"):
        evaluate("binary", Y, Yhat)
    with pytest.raises(ValueError, match=r"Y contains 1 non-finite"):
        evaluate("regression", Yhat, Y)


def test_bad_shapes_labels_and_task_raise():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(3, 2\)"):
        evaluate("regression", np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="one row"):
        evaluate("binary", np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match=r"\{0, 1\}.*\[2\.0\]"):
        evaluate("multilabel", np.array([[2.0, 0.0]]), np.array([[0.5, 0.5]]))
    with pytest.raises(ValueError, match="'ranking'"):
        evaluate("ranking", np.zeros((1, 2)), np.zeros((1, 2)))


# ---- agreement with scikit-learn, the reference (ffexp.job.metrics is numpy) -------------------


def sklearn_metrics(task, Y, Yhat):
    """The same metrics by sklearn.metrics, undefined ones left out as ffexp does."""
    pred = TASKS[task].predict(Yhat) if task != "regression" else Yhat
    if task == "regression":
        out = {"mse": skm.mean_squared_error(Y.T, Yhat.T),
               "mae": skm.mean_absolute_error(Y.T, Yhat.T)}
        if Y.shape[1] >= 2:
            out["r2"] = skm.r2_score(Y.T, Yhat.T)
        return out
    if task == "binary":
        y, p = Y[0].astype(int), pred[0].astype(int)
        out = {"accuracy": skm.accuracy_score(y, p), "f1": skm.f1_score(y, p, zero_division=0)}
        if np.unique(y).size == 2:
            out["roc_auc"] = skm.roc_auc_score(y, Yhat[0])
        return out
    if task == "multiclass":
        y, p = np.argmax(Y, axis=0), np.argmax(pred, axis=0)
        return {"accuracy": skm.accuracy_score(y, p),
                "f1_macro": skm.f1_score(y, p, average="macro", zero_division=0)}
    y, p = Y.T.astype(int), pred.T.astype(int)
    return {"hamming_loss": skm.hamming_loss(y, p), "subset_accuracy": skm.accuracy_score(y, p),
            "f1_micro": skm.f1_score(y, p, average="micro", zero_division=0)}


def _cases():
    rng = np.random.default_rng(7)
    m = 60
    onehot = lambda idx, c: np.eye(c)[:, idx]
    yield "regression", "random", rng.normal(size=(3, m)), rng.normal(size=(3, m))
    yield "regression", "one example", np.array([[1.0]]), np.array([[3.0]])
    const = np.full((2, m), 2.0)
    yield "regression", "constant target, exact and off", const, np.vstack([const[0], const[1] + 1])
    yield "regression", "ties", np.round(rng.normal(size=(1, m))), np.round(rng.normal(size=(1, m)))
    yield "binary", "random", (rng.uniform(size=(1, m)) < 0.4) * 1.0, rng.uniform(size=(1, m))
    yield "binary", "tied scores", (rng.uniform(size=(1, m)) < 0.5) * 1.0, \
        np.round(rng.uniform(size=(1, m)), 1)
    yield "binary", "all tied", np.arange(m)[None] % 2.0, np.full((1, m), 0.7)
    yield "binary", "one class present (0), none predicted", np.zeros((1, m)), \
        rng.uniform(0, 0.5, size=(1, m))
    yield "binary", "one class present (1)", np.ones((1, m)), rng.uniform(size=(1, m))
    probs = rng.dirichlet(np.ones(4), m).T
    yield "multiclass", "random", onehot(rng.integers(0, 4, m), 4), probs
    yield "multiclass", "a class never seen nor predicted", onehot(rng.integers(0, 2, m), 4), \
        np.vstack([probs[:2], np.zeros((2, m))])
    yield "multiclass", "one class everywhere", onehot(np.zeros(m, int), 3), onehot(np.zeros(m, int), 3)
    yield "multilabel", "random", (rng.uniform(size=(3, m)) < 0.5) * 1.0, rng.uniform(size=(3, m))
    yield "multilabel", "nothing positive (zero division)", np.zeros((3, m)), np.zeros((3, m))
    yield "multilabel", "ties at the threshold", (rng.uniform(size=(2, m)) < 0.5) * 1.0, \
        np.full((2, m), 0.5)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
@pytest.mark.parametrize("task,case,Y,Yhat", list(_cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_equal_to_sklearn_to_1e_12(task, case, Y, Yhat):
    got, want = evaluate(task, Y, Yhat), sklearn_metrics(task, Y, Yhat)
    assert set(got) == set(want)
    for name, value in want.items():
        assert abs(got[name] - value) <= 1e-12, (name, got[name], value)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_equal_to_sklearn_on_every_dataset(name):
    d = load_dataset(name)
    rng = np.random.default_rng(1)
    noisy = d.Y_val + rng.normal(scale=0.3, size=d.Y_val.shape)
    Yhat = noisy if d.task == "regression" else np.clip(noisy, 0, 1)
    got, want = evaluate(d.task, d.Y_val, Yhat), sklearn_metrics(d.task, d.Y_val, Yhat)
    assert set(got) == set(want) == set(METRICS[d.task])
    assert max(abs(got[k] - want[k]) for k in want) <= 1e-12
