"""What training hands to its callbacks after every epoch, and what it returns at the end.

Pure data: the engine fills these; tracking, progress bars and plots read them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: how a training ended
OUTCOMES = ("finished", "converged", "diverged", "stopped")


@dataclass
class EpochStats:
    """One epoch's record. Per-layer arrays are indexed 0..L-1 for layers 1..L (hidden-layer
    arrays 0..L-2 for layers 1..L-1).

    grad_norm_W[l-1] = ‖∂J/∂W[l]‖_F, grad_norm_b[l-1] = ‖∂J/∂b[l]‖, grad_norm_Z[l-1] = ‖∂J/∂Z[l]‖_F
    (by default the mean over the epoch's updates of the mini-batch norms; with
    ``epoch_gradients="full"`` those of the full training cost at the epoch's end);
    weight_norm_W[l-1] = ‖W[l]‖_F at the epoch's end. Activation statistics of hidden layer l
    over the training set: mean and standard deviation of A[l], fraction saturated (sigmoid
    outside [0.01, 0.99], |tanh| > 0.99) and fraction of dead units (ReLU/leaky ReLU units
    with z ≤ 0 for every example).
    """

    epoch: int
    cost: float
    grad_norm_W: np.ndarray
    grad_norm_b: np.ndarray
    grad_norm_Z: np.ndarray
    weight_norm_W: np.ndarray
    act_mean: np.ndarray
    act_std: np.ndarray
    act_saturated: np.ndarray
    act_dead: np.ndarray
    seconds: float
    elapsed: float
    updates: int
    #: further named values that callbacks add (e.g. ``val/accuracy``); logged as they are
    metrics: dict[str, float] = field(default_factory=dict)

    def flat(self) -> dict[str, float]:
        """All values under their metric names (layers numbered 1..L), finite ones only."""
        out = {"train/cost": self.cost, "time/epoch": self.seconds, "time/elapsed": self.elapsed}
        for name, values in (("grad_norm/W", self.grad_norm_W), ("grad_norm/b", self.grad_norm_b),
                             ("grad_norm/Z", self.grad_norm_Z), ("weight_norm/W", self.weight_norm_W)):
            out.update({f"{name}{l}": float(v) for l, v in enumerate(values, 1)})
        for name, values in (("act_mean/", self.act_mean), ("act_std/", self.act_std),
                             ("act_saturated/", self.act_saturated), ("act_dead/", self.act_dead)):
            out.update({f"{name}{l}": float(v) for l, v in enumerate(values, 1)})
        out.update(self.metrics)
        return {k: float(v) for k, v in out.items() if math.isfinite(v)}


@dataclass
class TrainResult:
    """How training went: the per-epoch history and how it ended.

    outcome is ``finished`` (max epochs), ``converged`` (tolerance reached), ``diverged``
    (a non-finite cost or parameter; ``diverged_epoch`` and ``message`` say where; the
    network is left with the last finite parameters) or ``stopped`` (a callback asked).
    """

    history: list[EpochStats]
    outcome: str
    epochs: int
    updates: int
    seconds: float
    message: str = ""
    diverged_epoch: int | None = None

    @property
    def final(self) -> EpochStats | None:
        return self.history[-1] if self.history else None

    def columns(self) -> dict[str, list[float]]:
        """The history as columns: ``epoch`` plus every metric name (NaN where missing)."""
        rows = [s.flat() for s in self.history]
        names = sorted({k for r in rows for k in r})
        cols: dict[str, list[float]] = {"epoch": [float(s.epoch) for s in self.history]}
        for k in names:
            cols[k] = [r.get(k, float("nan")) for r in rows]
        return cols


class Callback:
    """Hooks the training loop calls; subclass and override what you need."""

    def on_train_begin(self, net, info: dict) -> None:
        """``info`` holds the run's settings: optimizer, lr, batch_size, epochs, m, loss."""

    def on_epoch_end(self, net, stats: EpochStats) -> bool | None:
        """Called after every finite epoch; return True to stop training."""

    def on_train_end(self, net, result: TrainResult) -> None:
        """Called once, whatever the outcome."""
