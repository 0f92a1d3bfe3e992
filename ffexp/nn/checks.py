"""Checks made once, before any training, at the engine's public boundary.

Each raises ValueError with a message that names the offending value and what is accepted,
so that the numerics never see a bad name, shape or number.
"""

from __future__ import annotations

import numbers

import numpy as np

from .activations import Activation
from .losses import Loss


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def finite_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def one_of(name: str, value, accepted) -> str:
    if value not in accepted:
        raise ValueError(f"unknown {name} {value!r}; expected one of {sorted(accepted)}")
    return value


def check_pair(output: Activation, loss: Loss) -> None:
    """Refuse an output activation / loss pair that the article's math does not allow."""
    if loss.name == "cce" and output.name != "softmax":
        raise ValueError(
            f"loss 'cce' (categorical cross-entropy) needs a softmax output layer, "
            f"got output activation {output.name!r}; use output 'softmax', or loss 'bce'/'mse'")
    if loss.needs_probabilities:
        lo, hi = output.output_range
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"loss {loss.name!r} (cross-entropy) needs outputs in [0, 1], but output "
                f"activation {output.name!r} ranges over [{lo}, {hi}]; use 'sigmoid' or "
                f"'softmax' outputs, or loss 'mse'")


def check_data(X: np.ndarray, Y: np.ndarray | None, n_in: int, n_out: int,
               loss: Loss | None = None) -> None:
    """X must be (n[0], m) and finite; Y (n[L], m), finite, in {0, 1} for cross-entropy."""
    if X.ndim != 2 or X.shape[0] != n_in:
        raise ValueError(f"X must have shape (n[0]={n_in}, m) with examples as columns, "
                         f"got shape {X.shape}")
    if X.shape[1] == 0:
        raise ValueError("X has no examples (0 columns)")
    if not np.all(np.isfinite(X)):
        bad = int(np.size(X) - np.count_nonzero(np.isfinite(X)))
        raise ValueError(f"X contains {bad} non-finite value(s) (NaN or inf); clean the data")
    if Y is None:
        return
    if Y.ndim != 2 or Y.shape != (n_out, X.shape[1]):
        raise ValueError(f"labels Y must have shape (n[L]={n_out}, m={X.shape[1]}) to match the "
                         f"output layer, got shape {Y.shape}")
    if not np.all(np.isfinite(Y)):
        raise ValueError("labels Y contain non-finite values (NaN or inf)")
    if loss is not None and loss.needs_probabilities:
        bad = np.unique(Y[(Y != 0) & (Y != 1)])
        if bad.size:
            raise ValueError(f"loss {loss.name!r} needs labels in {{0, 1}}, got values such as "
                             f"{bad[:5].tolist()}")
    if loss is not None and loss.name == "cce":
        # the shortcut dZ[L] = (Ŷ − Y)/m holds only when every column of Y sums to 1
        sums = Y.sum(axis=0)
        cols = np.flatnonzero(sums != 1)
        if cols.size:
            raise ValueError(f"loss 'cce' needs one-hot label columns (exactly one 1 each), but "
                             f"column(s) {cols[:5].tolist()} sum to {sums[cols[:5]].tolist()}; "
                             f"use loss 'bce' for multi-label targets")
