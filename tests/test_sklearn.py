"""The scikit-learn estimators: scikit-learn's own checks and tools, and agreement with the engine."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs, make_moons
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

import ffexp
from ffexp.sklearn import FFClassifier, FFRegressor

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(hidden_layer_sizes=(8, 8), epochs=20, random_state=0)


# -- scikit-learn's estimator checks -----------------------------------------------------------
# 32 hidden units instead of the default 100 keep the checks fast; every check applies and passes.
@parametrize_with_checks([FFClassifier(hidden_layer_sizes=(32,)),
                          FFRegressor(hidden_layer_sizes=(32,))])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


# -- data ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(200, noise=0.2, random_state=0)
    return StandardScaler().fit_transform(X), y


def _targets(kind: str):
    """(X, y) of each task the estimators infer from y."""
    X, labels = make_blobs(90, n_features=3, centers=3, random_state=1)
    X = StandardScaler().fit_transform(X)
    return X, {"binary": np.where(labels == 0, "a", "b"),
               "multiclass": labels + 10,
               "multilabel": np.stack([labels == 0, labels != 2], axis=1).astype(int),
               "regression": X @ [1.0, -2.0, 0.5],
               "multioutput": np.stack([X[:, 0], X[:, 1] * X[:, 2]], axis=1)}[kind]


# -- the task from the targets, and predictions that are the engine's forward pass ---------------
@pytest.mark.parametrize("kind, outputs, output_activation", [
    ("binary", 1, "sigmoid"), ("multiclass", 3, "softmax"), ("multilabel", 2, "sigmoid")])
def test_classifier_output_layer_and_predictions_are_the_networks_forward_pass(
        kind, outputs, output_activation):
    X, y = _targets(kind)
    clf = FFClassifier(**SMALL).fit(X, y)
    net = clf.network_
    assert net.layer_sizes == [3, 8, 8, outputs]
    assert net.activations[-1].name == output_activation
    Yhat = net.forward(X.T)                                   # (n[L], m)
    P = clf.predict_proba(X)
    Zs, _ = net.forward_all(X.T)
    if kind == "binary":
        np.testing.assert_array_equal(P, np.column_stack([1 - Yhat[0], Yhat[0]]))
        np.testing.assert_array_equal(clf.decision_function(X), Zs[-1][0])
        np.testing.assert_array_equal(clf.predict(X), np.where(Yhat[0] > 0.5, "b", "a"))
    elif kind == "multiclass":
        np.testing.assert_array_equal(P, Yhat.T)
        np.testing.assert_array_equal(clf.decision_function(X), Zs[-1].T)
        np.testing.assert_array_equal(clf.predict(X), 10 + Yhat.argmax(axis=0))
    else:
        np.testing.assert_array_equal(P, Yhat.T)
        np.testing.assert_array_equal(clf.predict(X), (Yhat.T > 0.5).astype(int))
    assert clf.score(X, y) > 0.9


@pytest.mark.parametrize("kind, outputs", [("regression", 1), ("multioutput", 2)])
def test_regressor_is_linear_and_predicts_the_networks_forward_pass(kind, outputs):
    X, y = _targets(kind)
    reg = FFRegressor(**SMALL).fit(X, y)
    assert reg.network_.layer_sizes[-1] == outputs
    assert reg.network_.activations[-1].name == "linear"
    pred = reg.predict(X)
    assert pred.shape == y.shape
    np.testing.assert_array_equal(pred.reshape(len(X), -1), reg.network_.forward(X.T).T)
    assert reg.score(X, y) > 0.5


@pytest.mark.parametrize("hidden, sizes", [((), [2, 1]), (5, [2, 5, 1]), ([4, 3], [2, 4, 3, 1])])
def test_hidden_layer_sizes_give_the_layers_between_input_and_output(moons, hidden, sizes):
    clf = FFClassifier(hidden_layer_sizes=hidden, epochs=2, random_state=0).fit(*moons)
    assert clf.network_.layer_sizes == sizes     # () is logistic regression: one sigmoid unit


def test_fit_trains_the_same_weights_as_the_engine_called_directly(moons):
    """A thin adapter: an int random_state is the engine's seed, y the 0/1 label row."""
    X, y = moons
    clf = FFClassifier(hidden_layer_sizes=(8, 8), activation="tanh", init="xavier",
                       learning_rate=0.2, batch_size=16, epochs=15, random_state=7).fit(X, y)
    net = ffexp.Network([2, 8, 8, 1], "tanh", "sigmoid", "xavier", seed=7)
    result = ffexp.train(net, X.T, y[None, :].astype(float), "bce", optimizer="minibatch",
                         lr=0.2, batch_size=16, epochs=15)
    for W, W_direct in zip(clf.network_.weights, net.weights):
        np.testing.assert_array_equal(W, W_direct)
    assert list(clf.history_.index) == [s.epoch for s in result.history]
    np.testing.assert_array_equal(clf.history_["train/cost"], [s.cost for s in result.history])


# -- reproducibility -----------------------------------------------------------------------------
def test_same_random_state_gives_identical_results_and_another_differs(moons):
    X, y = moons
    a = FFClassifier(**SMALL).fit(X, y)
    b = clone(a).fit(X, y)
    c = clone(a).set_params(random_state=1).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    pd.testing.assert_frame_equal(a.history_.drop(columns=["time/epoch", "time/elapsed"]),
                                  b.history_.drop(columns=["time/epoch", "time/elapsed"]))
    assert not np.array_equal(a.network_.weights[0], c.network_.weights[0])


# -- scikit-learn's tools ------------------------------------------------------------------------
def test_cross_val_score_and_a_pipeline_with_standard_scaler(moons):
    X, y = moons
    X_raw = 50.0 * X + 200.0    # far from standardized: the scaler is what makes it trainable
    pipe = make_pipeline(StandardScaler(), FFClassifier(**SMALL))
    scores = cross_val_score(pipe, X_raw, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.8
    pipe.fit(X_raw, y)
    scaler, clf = pipe
    np.testing.assert_array_equal(pipe.predict_proba(X_raw)[:, 1],
                                  clf.network_.forward(scaler.transform(X_raw).T)[0])


def test_grid_search_over_activation_and_init_finds_zeros_init_untrainable(moons):
    """Zero weights leave every hidden unit identical and, here, without gradient: the grid's
    zeros rows score at chance, below every other initialization."""
    X, y = moons
    grid = GridSearchCV(FFClassifier(**SMALL), {"activation": ["relu", "tanh"],
                                                "init": ["he", "xavier", "zeros"]}, cv=3)
    grid.fit(X, y)
    res = pd.DataFrame(grid.cv_results_["params"]).assign(score=grid.cv_results_["mean_test_score"])
    assert len(res) == 6
    zeros, others = res[res.init == "zeros"].score, res[res.init != "zeros"].score
    assert zeros.max() < 0.6 < 0.8 < others.min()
    assert grid.best_params_["init"] != "zeros"
    assert grid.best_estimator_.network_.init == grid.best_params_["init"]


# -- history, callbacks, partial_fit -------------------------------------------------------------
def test_history_is_a_dataframe_of_the_engines_per_epoch_metrics(moons):
    X, y = moons
    clf = FFClassifier(**SMALL).fit(X, y)
    h = clf.history_
    # epochs 1..20 (after a step 0 where the engine records one; see the test above)
    assert list(h.index)[-20:] == list(range(1, 21)) and h.index.name == "epoch"
    layers = {f"grad_norm/{t}{l}" for t in "WbZ" for l in (1, 2, 3)}
    hidden = {f"act_{s}/{l}" for s in ("mean", "std", "saturated", "dead") for l in (1, 2)}
    assert {"train/cost", *layers, *hidden} <= set(h.columns)
    assert h["train/cost"].iloc[-1] < h["train/cost"].iloc[0]
    assert clf.outcome_ == "finished" and clf.n_iter_ == 20
    # the default epoch_gradients="full": the full cost's gradient at every epoch, no means
    assert clf.epoch_gradients == "full" and h[sorted(layers)].notna().all().all()
    assert not any(c.startswith("grad_norm_mean/") for c in h.columns)


class _StopAt(ffexp.Callback):
    def __init__(self, epoch):
        self.epoch, self.seen = epoch, []

    def on_epoch_end(self, net, stats):
        self.seen.append(stats.epoch)
        return stats.epoch >= self.epoch


def test_callbacks_see_every_epoch_and_can_stop_training(moons):
    X, y = moons
    stop = _StopAt(5)
    clf = FFClassifier(**SMALL, callbacks=[stop]).fit(X, y)
    assert stop.seen[-5:] == [1, 2, 3, 4, 5] and list(clf.history_.index) == stop.seen
    assert clf.outcome_ == "stopped" and clf.n_iter_ == 5


def _blas_threads() -> set[int]:
    from threadpoolctl import threadpool_info
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


class _BlasProbe(ffexp.Callback):
    def __init__(self):
        self.seen = set()

    def on_epoch_end(self, net, stats):
        self.seen |= _blas_threads()


def test_blas_threads_limits_blas_while_training_only(moons):
    before = _blas_threads()
    if before == {1}:
        pytest.skip("BLAS already runs one thread here: nothing to limit")
    probe = _BlasProbe()
    FFClassifier(**{**SMALL, "epochs": 2}, blas_threads=1, callbacks=[probe]).fit(*moons)
    assert probe.seen == {1} and _blas_threads() == before


def test_partial_fit_continues_one_epoch_at_a_time(moons):
    X, y = moons
    one = FFClassifier(**{**SMALL, "epochs": 1}).fit(X, y)
    inc = FFClassifier(**SMALL).partial_fit(X, y, classes=[0, 1])
    np.testing.assert_array_equal(inc.predict_proba(X), one.predict_proba(X))   # 1 call = 1 epoch
    before = inc.network_.get_params()
    for _ in range(3):
        inc.partial_fit(X, y)
    assert list(inc.history_.index)[-4:] == [1, 2, 3, 4] and inc.history_.index.is_unique
    assert inc.n_iter_ == 4
    assert not np.array_equal(before[0], inc.network_.weights[0])
    with pytest.raises(ValueError, match="classes must be passed"):
        FFClassifier(**SMALL).partial_fit(X, y)
    with pytest.raises(ValueError, match=r"classes \[7\] not in classes_"):
        inc.partial_fit(X[:3], [0, 1, 7])


# -- bad hyperparameters -------------------------------------------------------------------------
@pytest.mark.parametrize("params, name", [
    ({"activation": "softmax"}, "activation"),     # output layer only
    ({"learning_rate": np.inf}, "learning_rate"),
    ({"hidden_layer_sizes": (8, 0)}, "hidden_layer_sizes"),
    ({"batch_size": 0}, "batch_size"),
    ({"init": "glorot"}, "init"),
])
def test_bad_hyperparameters_raise_invalid_parameter_error_at_fit(moons, params, name):
    clf = FFClassifier(**params)     # stored as given: nothing is checked before fit
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of FFClassifier"):
        clf.fit(*moons)


def test_a_loss_the_task_cannot_use_is_refused_naming_loss(moons):
    with pytest.raises(ValueError, match=r"loss='cce' cannot train a binary target.*softmax"):
        FFClassifier(loss="cce").fit(*moons)
    with pytest.raises(InvalidParameterError, match="'loss' parameter of FFRegressor"):
        FFRegressor(loss="bce").fit(*moons)


# -- the module's edges and its docs ------------------------------------------------------------
def test_importing_ffexp_sklearn_loads_neither_mlflow_nor_hydra():
    code = "import sys, ffexp.sklearn; print(sorted({m.split('.')[0] for m in sys.modules} & " \
           "{'mlflow', 'hydra', 'omegaconf', 'matplotlib'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _readme_blocks() -> list[str]:
    """The Python blocks of docs/python-api.md's "scikit-learn estimators" section."""
    text = (ROOT / "docs" / "python-api.md").read_text()
    section = text.split("## scikit-learn estimators", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_example_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    example = _readme_blocks()[0]
    exec(compile(example, "docs/python-api.md", "exec"), {})
    out = capsys.readouterr().out
    assert "best" in out and "train/cost" in out


@pytest.mark.slow
def test_readme_mlflow_example_records_every_epoch(tmp_path, monkeypatch):
    """The docs' tracking example, run as written, against a real SQLite store read back."""
    from mlflow import MlflowClient
    monkeypatch.chdir(tmp_path)
    first, tracking = _readme_blocks()[:2]
    namespace: dict = {}
    exec(compile(first + tracking, "docs/python-api.md", "exec"), namespace)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(namespace["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["ffexp.outcome"] == namespace["clf"].outcome_
    assert run.data.params["activation"] == namespace["clf"].activation
    costs = client.get_metric_history(run.info.run_id, "train/cost")
    assert [m.step for m in costs] == list(namespace["clf"].history_.index)
    assert [m.value for m in costs] == namespace["clf"].history_["train/cost"].tolist()
