"""FFRegressor: one or several real-valued targets (see ffexp.sklearn)."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils.validation import validate_data

from ffexp._compat.sklearn_params import StrOptions, fit_context

from ._base import _COMMON, _FFBase


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
                 init_scale=0.01, bias_init=0.0, epoch_gradients="full", bookkeeping=True,
                 callbacks=None, random_state=None, dtype="float64",
                 blas_threads=1):
        self.hidden_layer_sizes, self.activation, self.init = hidden_layer_sizes, activation, init
        self.loss, self.optimizer, self.learning_rate = loss, optimizer, learning_rate
        self.batch_size, self.epochs, self.slope = batch_size, epochs, slope
        self.tol, self.tol_on, self.patience = tol, tol_on, patience
        self.init_distribution, self.init_scale = init_distribution, init_scale
        self.bias_init, self.epoch_gradients, self.bookkeeping = bias_init, epoch_gradients, bookkeeping
        self.callbacks, self.random_state, self.dtype = callbacks, random_state, dtype
        self.blas_threads = blas_threads

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

    @fit_context(prefer_skip_nested_validation=True)
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
