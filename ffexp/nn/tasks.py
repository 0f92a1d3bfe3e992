"""The four task types of the article: their output layer, default cost and prediction rule.

| task        | labels Y (n[L] × m)           | output layer        | prediction            |
|-------------|-------------------------------|---------------------|-----------------------|
| regression  | real values                   | linear, 1 per target| Ŷ                     |
| binary      | {0, 1}, one row               | 1 sigmoid unit      | 1 where ŷ > 0.5       |
| multilabel  | multi-hot, c rows             | c sigmoid units     | bit k where ŷ_k > 0.5 |
| multiclass  | one-hot, c rows               | c softmax units     | one-hot of argmax     |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


def _threshold(Yhat: np.ndarray) -> np.ndarray:
    return (Yhat > 0.5).astype(np.int64)


def _one_hot_argmax(Yhat: np.ndarray) -> np.ndarray:
    out = np.zeros(Yhat.shape, dtype=np.int64)
    out[np.argmax(Yhat, axis=0), np.arange(Yhat.shape[1])] = 1
    return out


def _identity(Yhat: np.ndarray) -> np.ndarray:
    return Yhat


@dataclass(frozen=True)
class Task:
    name: str
    output_activation: str
    loss: str
    #: Ŷ (n[L] × m) -> predicted labels of Y's encoding
    predict: Callable[[np.ndarray], np.ndarray]
    is_classification: bool


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("regression", "linear", "mse", _identity, False),
        Task("binary", "sigmoid", "bce", _threshold, True),
        Task("multilabel", "sigmoid", "bce", _threshold, True),
        Task("multiclass", "softmax", "cce", _one_hot_argmax, True),
    )
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    return TASKS[name]
