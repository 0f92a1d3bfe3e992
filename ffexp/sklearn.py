"""scikit-learn estimators on the engine: ``FFClassifier`` and ``FFRegressor``.

Thin adapters over ``ffexp.Network`` and ``ffexp.train``, no numerics of their own. X is
(n_samples, n_features) as in scikit-learn; the engine's examples are columns, so ``fit``
trains on the transposes X[0] = Xᵀ (n[0] × m) and Yᵀ (n[L] × m), and ``predict_proba`` /
``predict`` of the regressor is ``network_.forward(Xᵀ)ᵀ``. The task follows from y:

| y                              | task       | output layer g[L]   | loss="auto" |
|--------------------------------|------------|---------------------|-------------|
| two classes                    | binary     | 1 sigmoid unit      | bce         |
| three or more classes          | multiclass | c softmax units (β) | cce         |
| 0/1 indicator matrix (n, c)    | multilabel | c sigmoid units     | bce         |
| real values, (n,) or (n, k)    | regression | k linear units      | mse         |

Hyperparameters are stored as given and checked at ``fit`` against ``_parameter_constraints``
(scikit-learn's ``InvalidParameterError``, naming the parameter). Learned state: ``network_``,
``classes_``, ``n_features_in_``, ``n_outputs_``, ``history_`` (a DataFrame indexed by epoch,
columns named as the MLflow metrics: ``train/cost``, ``grad_norm/W{l}``, ``grad_norm/Z{l}``,
``act_mean/{l}``, ...), ``outcome_`` (finished | converged | diverged | stopped), ``n_iter_``.
An int ``random_state`` is the engine's seed: ``FFClassifier(random_state=s)`` trains the same
weights as ``Network(..., seed=s)`` with ``train(...)``.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ffexp.nn import HIDDEN_ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS, TASKS, Network, train
from ffexp.nn.checks import check_pair
from ffexp.nn.initializers import DISTRIBUTIONS
from ffexp.nn.losses import make_loss
from ffexp.nn.network import DTYPES
from ffexp.nn.optim import EPOCH_GRADIENTS, TOL_ON

__all__ = ["FFClassifier", "FFRegressor"]

_POSITIVE = Interval(Real, 0, None, closed="neither")   # 0 < x < inf
_FINITE = Interval(Real, None, None, closed="neither")   # -inf < x < inf
_COUNT = Interval(Integral, 1, None, closed="left")


def _seed(random_state) -> int:
    """The engine's seed: an int random_state as it is, else one draw from it."""
    if isinstance(random_state, Integral):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _history(result, offset: int = 0) -> pd.DataFrame:
    """One row per epoch of a TrainResult, epochs numbered from ``offset``."""
    cols = result.columns()
    epochs = np.asarray(cols.pop("epoch"), dtype=np.int64) + offset
    return pd.DataFrame(cols, index=pd.Index(epochs, name="epoch"))


class _FFBase(BaseEstimator):
    """What both estimators share: building the network, training it, the history."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", _COUNT],
        "activation": [StrOptions(set(HIDDEN_ACTIVATIONS))],
        "init": [StrOptions(set(INITIALIZERS))],
        "loss": [StrOptions({"auto", *LOSSES})],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "learning_rate": [_POSITIVE],
        "batch_size": [_COUNT],
        "epochs": [_COUNT],
        "slope": [_FINITE, None],
        "tol": [_POSITIVE, None],
        "tol_on": [StrOptions(set(TOL_ON))],
        "patience": [_COUNT],
        "init_distribution": [StrOptions(set(DISTRIBUTIONS))],
        "init_scale": [_POSITIVE],
        "bias_init": [_FINITE],
        "epoch_gradients": [StrOptions(set(EPOCH_GRADIENTS))],
        "bookkeeping": ["boolean"],
        "callbacks": [list, tuple, None],
        "random_state": ["random_state"],
        "dtype": [StrOptions(set(DTYPES))],
    }

    def _hidden_sizes(self) -> list[int]:
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes, dtype=object)).tolist()
        if any(isinstance(n, bool) or not isinstance(n, Integral) or n < 1 for n in sizes):
            raise InvalidParameterError(
                f"The 'hidden_layer_sizes' parameter of {type(self).__name__} must be a positive "
                f"int or a sequence of positive ints. Got {self.hidden_layer_sizes!r} instead.")
        return [int(n) for n in sizes]

    def _start(self, n_outputs: int) -> None:
        """A new ``network_`` for this task (the estimator's first fit or partial_fit)."""
        task = TASKS[self.task_]
        loss = task.loss if self.loss == "auto" else self.loss
        sizes = [self.n_features_in_, *self._hidden_sizes(), n_outputs]
        self._seed = _seed(self.random_state)
        self.network_ = Network(sizes, self.activation, task.output_activation, self.init,
                                self._seed, slope=self.slope, beta=getattr(self, "beta", 1.0),
                                init_distribution=self.init_distribution,
                                init_scale=self.init_scale, bias_init=self.bias_init,
                                dtype=self.dtype)
        try:   # the labels always fit the task's loss: the output/loss pair is what can fail
            check_pair(self.network_.activations[-1], make_loss(loss))
        except ValueError as err:
            raise ValueError(f"loss={self.loss!r} cannot train a {self.task_} target: {err}") from None
        self._loss, self.n_outputs_, self.n_iter_ = loss, n_outputs, 0
        self._calls, self.history_ = 0, None

    def _train(self, X: np.ndarray, Y: np.ndarray, epochs: int) -> None:
        """``epochs`` of ffexp.train on X (m, n[0]) and Y (m, n[L]), continuing the history.

        The first training shuffles with the seed's own stream (as ``train`` does by default);
        every later partial_fit with a stream of its own, so no two repeat one order."""
        seed = self._seed if self._calls == 0 else \
            int(np.random.SeedSequence([self._seed, self._calls]).generate_state(1)[0])
        result = train(self.network_, X.T, Y.T, self._loss, optimizer=self.optimizer, lr=self.learning_rate,
                       batch_size=self.batch_size, epochs=epochs, tol=self.tol,
                       tol_on=self.tol_on, patience=self.patience, seed=seed,
                       callbacks=list(self.callbacks or ()),
                       epoch_gradients=self.epoch_gradients, bookkeeping=self.bookkeeping)
        rows = _history(result, offset=self.n_iter_)
        self.history_ = rows if self.history_ is None else pd.concat([self.history_, rows])
        self.outcome_, self.n_iter_ = result.outcome, self.n_iter_ + result.epochs
        self._calls += 1
        if result.outcome == "diverged":
            warnings.warn(f"{type(self).__name__}: {result.message}; the network keeps its last "
                          f"finite parameters (try a smaller learning_rate)", ConvergenceWarning,
                          stacklevel=3)

    def _forward(self, X) -> np.ndarray:
        """Ŷᵀ = forward(Xᵀ)ᵀ, (n_samples, n[L])."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=self.network_.dtype)
        return self.network_.forward(X.T).T


_COMMON = """
    hidden_layer_sizes : sequence of int, default=(100,)
        n[1], ..., n[L-1]; ``()`` gives no hidden layer.
    activation : {'step', 'linear', 'sigmoid', 'tanh', 'relu', 'leaky_relu'}, default='relu'
        g[l] of the hidden layers.
    init : {'random', 'xavier', 'he', 'zeros'}, default='he'
    loss : {'auto', 'mse', 'bce', 'cce'}, default='auto'
        The cost J; 'auto' is the task's (table above); other allowed pairs train through the
        general chain rule dZ[L] = g'ᵀ ∂J/∂Ŷ instead of the shortcut (Ŷ − Y)/m.
    optimizer : {'batch', 'sgd', 'minibatch'}, default='minibatch'
    learning_rate : float, default=0.1
        The step α of W[l] ← W[l] − α ∂J/∂W[l].
    batch_size : int, default=32
        s of 'minibatch'.
    epochs : int, default=100
        The maximum number of passes over the training set (``partial_fit``: one pass).
    slope : float or None, default=None
        c of 'linear' and 'leaky_relu' hidden layers (None: 1 and 0.01).
    tol, tol_on, patience : default None, 'cost', 1
        Stop once the cost (or the largest parameter change) moved by less than tol for
        patience epochs; None runs every epoch.
    init_distribution : {'normal', 'uniform'}, default='normal'
    init_scale : float, default=0.01
        The scale of 'random' init.
    bias_init : float, default=0.0
    epoch_gradients : {'mean', 'full'}, default='mean'
        Where ``history_``'s gradient norms come from (see ``ffexp.train``).
    bookkeeping : bool, default=True
        False skips the per-epoch cost, norms and activation statistics (NaN in history_).
    callbacks : list of ffexp.Callback, default=None
        Called by ``ffexp.train`` every epoch (e.g. ffexp.tracking's MLflow MetricsBuffer).
    random_state : int, RandomState instance or None, default=None
        An int is the engine's seed (initial weights and shuffling, independent streams).
    dtype : {'float64', 'float32'}, default='float64'
"""


class FFClassifier(ClassifierMixin, _FFBase):
    __doc__ = """A feedforward network classifier trained by ``ffexp.train``.

    Binary y gets one sigmoid unit, multiclass y a softmax of β, a 2-D 0/1 indicator y
    (multi-label) one sigmoid unit per label. Predictions: Ŷ > 0.5 (sigmoid units) or the
    argmax (softmax), mapped back to ``classes_``.

    Parameters
    ----------""" + _COMMON + """    beta : float, default=1.0
        β of the softmax output, softmax(βz).
    """

    _parameter_constraints: dict = {**_FFBase._parameter_constraints, "beta": [_POSITIVE]}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", init="he", loss="auto",
                 optimizer="minibatch", learning_rate=0.1, batch_size=32, epochs=100,
                 beta=1.0, slope=None, tol=None, tol_on="cost", patience=1,
                 init_distribution="normal", init_scale=0.01, bias_init=0.0,
                 epoch_gradients="mean", bookkeeping=True, callbacks=None, random_state=None,
                 dtype="float64"):
        self.hidden_layer_sizes, self.activation, self.init = hidden_layer_sizes, activation, init
        self.loss, self.optimizer, self.learning_rate = loss, optimizer, learning_rate
        self.batch_size, self.epochs, self.beta, self.slope = batch_size, epochs, beta, slope
        self.tol, self.tol_on, self.patience = tol, tol_on, patience
        self.init_distribution, self.init_scale = init_distribution, init_scale
        self.bias_init, self.epoch_gradients, self.bookkeeping = bias_init, epoch_gradients, bookkeeping
        self.callbacks, self.random_state, self.dtype = callbacks, random_state, dtype

    def _targets(self, X, y, first: bool, classes=None):
        """X (m, n[0]) and the labels encoded as Y (m, n[L]): a 0/1 column, one-hot or
        multi-hot; on the first call also ``classes_``, the task and the network."""
        X, y = validate_data(self, X, y, reset=first, multi_output=True, dtype=self.dtype)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if first:
            multilabel = type_of_target(y) == "multilabel-indicator"
            self._binarizer = LabelBinarizer().fit(y if classes is None or multilabel else classes)
            self.classes_ = self._binarizer.classes_
            kind = self._binarizer.y_type_
            if kind != "multilabel-indicator" and len(self.classes_) < 2:
                raise ValueError(f"{type(self).__name__} needs at least 2 classes; y has 1 class "
                                 f"({self.classes_[0]!r})")
            self.task_ = {"binary": "binary", "multiclass": "multiclass",
                          "multilabel-indicator": "multilabel"}[kind]
            self._start(1 if self.task_ == "binary" else len(self.classes_))
        elif self.task_ != "multilabel":
            unseen = np.setdiff1d(unique_labels(y), self.classes_)
            if unseen.size:
                raise ValueError(f"y has classes {unseen.tolist()} not in classes_ "
                                 f"{self.classes_.tolist()}")
        return X, self._binarizer.transform(y)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train a new network for ``epochs`` epochs on X (n_samples, n_features), y."""
        X, Y = self._targets(X, y, first=True)
        self._train(X, Y, self.epochs)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None):
        """One epoch on (X, y), continuing the network (``classes`` needed on the first call,
        except for multi-label y)."""
        first = not hasattr(self, "network_")
        if first and classes is None and type_of_target(y) != "multilabel-indicator":
            raise ValueError("classes must be passed on the first call to partial_fit")
        X, Y = self._targets(X, y, first=first, classes=classes)
        self._train(X, Y, 1)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Ŷᵀ: (n_samples, 2) [1 − ŷ, ŷ] for binary y, else (n_samples, n_classes)."""
        P = self._forward(X)
        return np.hstack([1.0 - P, P]) if self.task_ == "binary" else P

    def predict_log_proba(self, X) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def decision_function(self, X) -> np.ndarray:
        """Z[L]ᵀ, the output layer's pre-activations (the logit for binary y, shape (n,))."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=self.network_.dtype)
        Zs, _ = self.network_.forward_all(X.T)
        return Zs[-1][0] if self.task_ == "binary" else Zs[-1].T

    def predict(self, X) -> np.ndarray:
        """The labels of the task's rule (ffexp.TASKS): Ŷ > 0.5, or argmax for softmax."""
        Yhat = self._forward(X)
        return self._binarizer.inverse_transform(TASKS[self.task_].predict(Yhat.T).T)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class FFRegressor(RegressorMixin, _FFBase):
    __doc__ = """A feedforward network regressor trained by ``ffexp.train``: linear outputs, one
    per target (y of shape (n,) or (n, k)), and the quadratic cost J = (1/2m) Σ ‖ŷ − y‖².

    Parameters
    ----------""" + _COMMON.replace("{'auto', 'mse', 'bce', 'cce'}", "{'auto', 'mse'}")

    _parameter_constraints: dict = {**_FFBase._parameter_constraints,
                                    "loss": [StrOptions({"auto", "mse"})]}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", init="he", loss="auto",
                 optimizer="minibatch", learning_rate=0.1, batch_size=32, epochs=100,
                 slope=None, tol=None, tol_on="cost", patience=1, init_distribution="normal",
                 init_scale=0.01, bias_init=0.0, epoch_gradients="mean", bookkeeping=True,
                 callbacks=None, random_state=None, dtype="float64"):
        self.hidden_layer_sizes, self.activation, self.init = hidden_layer_sizes, activation, init
        self.loss, self.optimizer, self.learning_rate = loss, optimizer, learning_rate
        self.batch_size, self.epochs, self.slope = batch_size, epochs, slope
        self.tol, self.tol_on, self.patience = tol, tol_on, patience
        self.init_distribution, self.init_scale = init_distribution, init_scale
        self.bias_init, self.epoch_gradients, self.bookkeeping = bias_init, epoch_gradients, bookkeeping
        self.callbacks, self.random_state, self.dtype = callbacks, random_state, dtype

    def _targets(self, X, y, first: bool):
        X, y = validate_data(self, X, y, reset=first, multi_output=True, y_numeric=True,
                             dtype=self.dtype)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if first:
            self.task_ = "regression"
            self._start(Y.shape[1])
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} target(s), the network {self.n_outputs_}")
        return X, Y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train a new network for ``epochs`` epochs on X (n_samples, n_features), y."""
        X, Y = self._targets(X, y, first=True)
        self._train(X, Y, self.epochs)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y):
        """One epoch on (X, y), continuing the network."""
        X, Y = self._targets(X, y, first=not hasattr(self, "network_"))
        self._train(X, Y, 1)
        return self

    def predict(self, X) -> np.ndarray:
        """Ŷᵀ = forward(Xᵀ)ᵀ: (n_samples,) for one target, else (n_samples, n_targets)."""
        Yhat = self._forward(X)
        return Yhat[:, 0] if self.n_outputs_ == 1 else Yhat

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
