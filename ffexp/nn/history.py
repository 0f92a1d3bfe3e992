"""What training hands to its callbacks at step 0 and after every epoch, and what it returns.

Pure data: the engine fills these; tracking, progress bars and plots read them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: how a training ended
OUTCOMES = ("finished", "converged", "diverged", "stopped")
#: the metric names' prefix of the gradient norms by their source (``EpochStats.gradients``):
#: ``grad_norm/*`` is always the full training cost's gradient, never the mean over updates
GRAD_PREFIX = {"full": "grad_norm", "mean": "grad_norm_mean"}


@dataclass
class EpochStats:
    """One record of the history: step 0 (before any update) or the end of epoch e ≥ 1.

    Per-layer arrays are indexed 0..L-1 for layers 1..L (hidden-layer arrays 0..L-2 for
    layers 1..L-1). What each number is measured on — θ_0 is the initial parameters, θ_e
    those after epoch e's updates (so θ_e is θ_0 in step 0's record), J(θ) = (1/m) Σ_i L(y(i), ŷ(i)) the mean cost over the m
    training examples:

    - ``cost`` = J(θ_e) over the whole training set.
    - ``grad_norm_W[l-1]`` = ‖∂J/∂W[l]‖_F, ``grad_norm_b[l-1]`` = ‖∂J/∂b[l]‖,
      ``grad_norm_Z[l-1]`` = ‖∂J/∂Z[l]‖_F, from where ``gradients`` says:
      ``full`` — the gradient of the full cost J at θ_e (all m examples; ∂J/∂Z[l] is
      n[l] × m, its columns carrying 1/m); this is step 0, batch gradient descent, and
      every epoch with ``epoch_gradients="full"`` (the default; metric names ``grad_norm/*``).
      ``mean`` (metric names ``grad_norm_mean/*``) — the mean over the epoch's U updates of the norms of each mini-batch gradient, the gradient of the batch's mean
      cost (over its s examples, so ∂J/∂Z[l] is n[l] × s with columns carrying 1/s and its
      norm grows like √(m/s) against the full one), each taken at the parameters its update
      started from (θ_{e-1} for the first, then each update's result): they describe the
      epoch's path from θ_{e-1} to θ_e, not θ_e, and gradient noise adds to them (SGD and
      mini-batch). ``""`` — no bookkeeping (NaN).
    - ``weight_norm_W[l-1]`` = ‖W[l]‖_F at θ_e.
    - Activation statistics of hidden layer l over the n[l] × m activations A[l] of the
      training set at θ_e: mean and standard deviation, fraction saturated (sigmoid outside
      [0.01, 0.99], |tanh| > 0.99) and fraction of dead units (ReLU/leaky ReLU units with
      z ≤ 0 for every one of the m examples).
    - ``seconds``: the epoch's wall time, updates and bookkeeping (at step 0 the
      measurement's); ``elapsed``: since training began; ``updates``: so far (0 at step 0).
    - ``metrics``: what callbacks add, e.g. ``val/cost`` at θ_e over the validation set.
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
    #: where the gradient norms come from: ``full`` (the full cost at this record's θ),
    #: ``mean`` (over the epoch's updates) or ``""`` (no bookkeeping)
    gradients: str = "full"

    def flat(self) -> dict[str, float]:
        """All values under their metric names (layers numbered 1..L), finite ones only; the
        gradient norms under ``grad_norm/*`` when they are the full cost's, under
        ``grad_norm_mean/*`` when they are the mean over the epoch's updates."""
        out = {"train/cost": self.cost, "time/epoch": self.seconds, "time/elapsed": self.elapsed}
        grad = GRAD_PREFIX.get(self.gradients, "grad_norm")
        for name, values in ((f"{grad}/W", self.grad_norm_W), (f"{grad}/b", self.grad_norm_b),
                             (f"{grad}/Z", self.grad_norm_Z), ("weight_norm/W", self.weight_norm_W)):
            out.update({f"{name}{l}": float(v) for l, v in enumerate(values, 1)})
        for name, values in (("act_mean/", self.act_mean), ("act_std/", self.act_std),
                             ("act_saturated/", self.act_saturated), ("act_dead/", self.act_dead)):
            out.update({f"{name}{l}": float(v) for l, v in enumerate(values, 1)})
        out.update(self.metrics)
        return {k: float(v) for k, v in out.items() if math.isfinite(v)}


@dataclass
class TrainResult:
    """How training went: the history and how it ended.

    ``history[0]`` is step 0 (θ_0, before any update), ``history[e]`` the end of epoch e;
    ``epochs`` counts the training epochs kept (``len(history) - 1``), ``updates`` the
    updates made (those of a diverged epoch included).

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
        """Called with step 0 (``stats.epoch == 0``, before any update) and after every
        finite epoch; return True to stop training (at step 0: before any update)."""

    def on_train_end(self, net, result: TrainResult) -> None:
        """Called once, whatever the outcome."""
