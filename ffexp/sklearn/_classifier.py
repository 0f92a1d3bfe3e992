"""FFClassifier: binary, multiclass and multi-label targets (see ffexp.sklearn)."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d, validate_data

from ffexp._compat.sklearn_params import fit_context
from ffexp.nn import TASKS

from ._base import _COMMON, _POSITIVE, _FFBase

#: scikit-learn's type of target -> the engine's task (ffexp.TASKS)
_TASK_OF = {"binary": "binary", "multiclass": "multiclass", "multilabel-indicator": "multilabel"}


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
                 epoch_gradients="full", bookkeeping=True, callbacks=None, random_state=None,
                 dtype="float64", blas_threads=1):
        self.hidden_layer_sizes, self.activation, self.init = hidden_layer_sizes, activation, init
        self.loss, self.optimizer, self.learning_rate = loss, optimizer, learning_rate
        self.batch_size, self.epochs, self.beta, self.slope = batch_size, epochs, beta, slope
        self.tol, self.tol_on, self.patience = tol, tol_on, patience
        self.init_distribution, self.init_scale = init_distribution, init_scale
        self.bias_init, self.epoch_gradients, self.bookkeeping = bias_init, epoch_gradients, bookkeeping
        self.callbacks, self.random_state, self.dtype = callbacks, random_state, dtype
        self.blas_threads = blas_threads

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
            self.task_ = _TASK_OF[kind]
            self._start(1 if self.task_ == "binary" else len(self.classes_))
        elif self.task_ != "multilabel":
            unseen = np.setdiff1d(unique_labels(y), self.classes_)
            if unseen.size:
                raise ValueError(f"y has classes {unseen.tolist()} not in classes_ "
                                 f"{self.classes_.tolist()}")
        return X, self._binarizer.transform(y)

    @fit_context(prefer_skip_nested_validation=True)
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
        X = self._checked(X)
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
