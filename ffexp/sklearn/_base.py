"""What FFClassifier and FFRegressor share: the parameter constraints and docs, building the
network, training it through ffexp.train, and the per-epoch history."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ffexp._compat.sklearn_params import Interval, InvalidParameterError, StrOptions, fit_context
from ffexp.job import blas
from ffexp.nn import HIDDEN_ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS, TASKS, Network, train
from ffexp.nn.checks import check_pair
from ffexp.nn.initializers import DISTRIBUTIONS
from ffexp.nn.losses import make_loss
from ffexp.nn.network import DTYPES
from ffexp.nn.optim import EPOCH_GRADIENTS, TOL_ON

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
    values = np.array(list(cols.values()), dtype=np.float64).reshape(len(cols), len(epochs))
    return pd.DataFrame(values.T, columns=list(cols), index=pd.Index(epochs, name="epoch"))


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
        "blas_threads": [_COUNT, None],
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
        with blas.limit(self.blas_threads):   # as ffexp.train and the command do
            result = train(self.network_, X.T, Y.T, self._loss, optimizer=self.optimizer,
                           lr=self.learning_rate, batch_size=self.batch_size, epochs=epochs,
                           tol=self.tol, tol_on=self.tol_on, patience=self.patience, seed=seed,
                           callbacks=list(self.callbacks or ()),
                           epoch_gradients=self.epoch_gradients, bookkeeping=self.bookkeeping)
        rows = _history(result, offset=self.n_iter_)
        if self.history_ is not None:   # a continuation's step 0 is the last epoch's θ again
            rows = rows[rows.index > self.n_iter_]
            rows = pd.concat([self.history_, rows])
        self.history_ = rows
        self.outcome_, self.n_iter_ = result.outcome, self.n_iter_ + result.epochs
        self._calls += 1
        if result.outcome == "diverged":
            warnings.warn(f"{type(self).__name__}: {result.message}; the network keeps its last "
                          f"finite parameters (try a smaller learning_rate)", ConvergenceWarning,
                          stacklevel=3)

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Validate the parameters, then train a new network for ``epochs`` epochs on X
        (n_samples, n_features) and y."""
        X, Y = self._targets(X, y, first=True)
        self._train(X, Y, self.epochs)
        return self

    def _checked(self, X) -> np.ndarray:
        """X (n_samples, n[0]) of the fitted network's width and dtype."""
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=self.network_.dtype)

    def _forward(self, X) -> np.ndarray:
        """Ŷᵀ = forward(Xᵀ)ᵀ, (n_samples, n[L])."""
        X = self._checked(X)
        return self.network_.forward(X.T).T


_COMMON = """
    hidden_layer_sizes : sequence of int, default=(100,)
        n[1], ..., n[L-1]; ``()`` gives no hidden layer.
    activation : {'step', 'linear', 'sigmoid', 'tanh', 'relu', 'leaky_relu'}, default='relu'
        g[l] of the hidden layers.
    init : {'random', 'xavier', 'he', 'zeros'}, default='he'
    loss : {'auto', 'mse', 'bce', 'cce'}, default='auto'
        The cost J; 'auto' is the task's (bce, cce, bce, mse); other allowed pairs train through the
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
    epoch_gradients : {'full', 'mean'}, default='full'
        Where ``history_``'s gradient norms come from (see ``ffexp.train``): ``full``, the
        full training cost's gradient (``grad_norm/*``); ``mean``, the mean of the updates'
        norms (``grad_norm_mean/*`` after step 0).
    bookkeeping : bool, default=True
        False skips the per-epoch cost, norms and activation statistics (history_ then holds
        only the timings).
    callbacks : list of ffexp.Callback, default=None
        Called by ``ffexp.train`` every epoch (e.g. ffexp.tracking's MLflow MetricsBuffer).
    random_state : int, RandomState instance or None, default=None
        An int is the engine's seed (initial weights and shuffling, independent streams).
    blas_threads : int or None, default=1
        BLAS threads while training, as ``ffexp.train`` and the CLI's ``train.blas_threads``
        (one: extra threads slow down matrices this small); None leaves the library's default.
    dtype : {'float64', 'float32'}, default='float64'
"""
