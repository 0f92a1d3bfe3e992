"""Gradient descent in the article's three forms, and the training loop (MATH.md [148-154], [224-237]).

Update with learning rate α:  W[l] ← W[l] − α ∂J/∂W[l],  b[l] ← b[l] − α ∂J/∂b[l].

- ``batch``: the gradient of J over all m examples, one update per epoch.
- ``sgd``: reshuffle every epoch, one update per example (m per epoch).
- ``minibatch``: reshuffle every epoch, one update per batch of s examples (⌈m/s⌉ per epoch,
  the last batch smaller when s does not divide m). With s ≥ m it is batch gradient descent.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import checks
from .history import Callback, EpochStats, TrainResult
from .losses import Loss, make_loss
from .network import Network
from .rng import stream

#: name -> (batch size from (m, s), reshuffle every epoch)
OPTIMIZERS: dict[str, tuple] = {
    "batch": (lambda m, s: m, False),
    "sgd": (lambda m, s: 1, True),
    "minibatch": (lambda m, s: min(s, m), True),
}
#: where the per-epoch gradient norms come from
EPOCH_GRADIENTS = ("mean", "full")
TOL_ON = ("cost", "params")


@dataclass(frozen=True)
class Schedule:
    """A gradient-descent variant resolved for m examples."""

    optimizer: str
    batch_size: int
    shuffle: bool

    @classmethod
    def of(cls, optimizer: str, m: int, batch_size: int = 32) -> "Schedule":
        checks.one_of("optimizer", optimizer, OPTIMIZERS)
        size, shuffle = OPTIMIZERS[optimizer]
        return cls(optimizer, size(m, batch_size), shuffle)

    def updates_per_epoch(self, m: int) -> int:
        return math.ceil(m / self.batch_size)


def _finite_params(net: Network) -> str:
    """'' if every parameter is finite, else the name of the first that is not."""
    for l, (W, b) in enumerate(zip(net.weights, net.biases), 1):
        if not np.isfinite(W).all():
            return f"W[{l}]"
        if not np.isfinite(b).all():
            return f"b[{l}]"
    return ""


def _norms(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([math.sqrt(np.vdot(a, a)) for a in arrays])


def _epoch_end_stats(net: Network, X, Y, loss: Loss, full_gradients: bool):
    """One forward pass over the training set: the cost, activation statistics and, with
    ``full_gradients``, the norms of the full-cost gradient."""
    Zs, As = net.forward_all(X)
    J = loss.cost(Y, As[-1])
    hidden = range(1, net.L)
    acts = net.activations
    act = (np.array([As[l].mean() for l in hidden]), np.array([As[l].std() for l in hidden]),
           np.array([acts[l - 1].saturated(As[l]) for l in hidden]),
           np.array([acts[l - 1].dead(Zs[l]) for l in hidden]))
    grads = None
    if full_gradients:
        dW, db, dZ = net.backward(Zs, As, Y, loss)
        grads = (_norms(dW), _norms(db), _norms(dZ))
    return J, act, grads


def train(net: Network, X: np.ndarray, Y: np.ndarray, loss: "str | Loss" = "bce", *,
          optimizer: str = "minibatch", lr: float = 0.1, batch_size: int = 32, epochs: int = 100,
          tol: float | None = None, tol_on: str = "cost", patience: int = 1,
          seed: int | None = None, callbacks: Sequence[Callback] = (),
          epoch_gradients: str = "mean", bookkeeping: bool = True) -> TrainResult:
    """Train ``net`` in place on X (n[0], m) and Y (n[L], m) by gradient descent.

    Args:
        loss: name of the cost (``mse``, ``bce``, ``cce``) or a Loss.
        optimizer: ``batch``, ``sgd`` or ``minibatch`` (with ``batch_size`` s).
        lr: the learning rate α.
        epochs: the maximum number of passes over the training set.
        tol: stop (``converged``) once the change of the cost (``tol_on="cost"``) or the
            largest change of any parameter (``tol_on="params"``) over an epoch stays below
            tol for ``patience`` consecutive epochs. None: run all epochs.
        seed: the seed of the shuffling stream (default: the network's seed).
        callbacks: called after every epoch with an EpochStats (see ``Callback``).
        epoch_gradients: ``mean`` — the per-layer gradient norms are the mean over the
            epoch's updates of the mini-batch norms (no extra pass); ``full`` — the norms of
            the full training cost's gradient, from an extra pass at the epoch's end.
        bookkeeping: False skips the cost, the norms and the activation statistics (the
            EpochStats then hold NaN there) for the fastest possible training.

    Divergence (a non-finite cost, gradient or parameter) stops training at the end of that
    epoch: the result's outcome is ``diverged``, the network keeps its last finite parameters,
    and the diverged epoch is not in the history.
    """
    loss = make_loss(loss)
    checks.check_pair(net.activations[-1], loss)
    X = np.asarray(X, dtype=net.dtype)
    Y = np.asarray(Y, dtype=net.dtype)
    checks.check_data(X, Y, net.layer_sizes[0], net.layer_sizes[-1], loss)
    checks.positive_float("lr", lr)
    checks.positive_int("batch_size", batch_size)
    checks.positive_int("epochs", epochs)
    checks.one_of("epoch_gradients", epoch_gradients, EPOCH_GRADIENTS)
    checks.one_of("tol_on", tol_on, TOL_ON)
    checks.positive_int("patience", patience)
    if tol is not None:
        checks.positive_float("tol", tol)
    blocked = [l for l, a in enumerate(net.activations, 1) if a.blocks_gradient]
    if blocked:
        warnings.warn(f"layer(s) {blocked} use the step activation: its derivative is 0, so no "
                      f"gradient flows through and the layers before it never change",
                      UserWarning, stacklevel=2)

    m, L = X.shape[1], net.L
    plan = Schedule.of(optimizer, m, batch_size)
    s = plan.batch_size
    starts = range(0, m, s)
    rng = stream(net.seed if seed is None else seed, "shuffle")
    info = {"optimizer": optimizer, "lr": lr, "batch_size": s, "epochs": epochs, "m": m,
            "loss": loss.name, "updates_per_epoch": len(starts)}
    for cb in callbacks:
        cb.on_train_begin(net, info)

    weights, biases = net.weights, net.biases
    full = epoch_gradients == "full"
    per_update_norms = bookkeeping and not full
    nan_L = np.full(L, np.nan)
    nan_h = np.full(L - 1, np.nan)
    history: list[EpochStats] = []
    outcome, message, diverged_epoch, calm = "finished", "", None, 0
    last_good = net.get_params()
    prev_cost = math.nan
    t_start = time.perf_counter()
    updates = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            if plan.shuffle:
                perm = rng.permutation(m)
                Xe, Ye = X[:, perm], Y[:, perm]
            else:
                Xe, Ye = X, Y
            acc = np.zeros((3, L))
            for i in starts:
                Zs, As = net.forward_all(Xe[:, i:i + s])
                dW, db, dZ = net.backward(Zs, As, Ye[:, i:i + s], loss)
                if per_update_norms:
                    for l in range(L):
                        acc[0, l] += math.sqrt(np.vdot(dW[l], dW[l]))
                        acc[1, l] += math.sqrt(np.vdot(db[l], db[l]))
                        acc[2, l] += math.sqrt(np.vdot(dZ[l], dZ[l]))
                for l in range(L):
                    weights[l] -= lr * dW[l]
                    biases[l] -= lr * db[l]
            updates += len(starts)

            bad = _finite_params(net)
            if bookkeeping:
                J, act, grads = _epoch_end_stats(net, X, Y, loss, full)
                gW, gb, gZ = grads if full else acc / len(starts)
                if not bad and not math.isfinite(J):
                    bad = "cost"
                if not bad and not (np.isfinite(gW).all() and np.isfinite(gb).all() and np.isfinite(gZ).all()):
                    bad = "gradient"
            else:
                J, act, (gW, gb, gZ) = math.nan, (nan_h,) * 4, (nan_L,) * 3
            if bad:
                outcome, diverged_epoch = "diverged", epoch
                message = f"diverged at epoch {epoch}: {bad} became non-finite (NaN or inf)"
                net.set_params(last_good)
                break
            now = time.perf_counter()
            stats = EpochStats(epoch, J, gW, gb, gZ, _norms(weights), *act,
                               seconds=now - t0, elapsed=now - t_start, updates=updates)
            history.append(stats)
            params = net.get_params()
            if tol is not None:
                change = abs(J - prev_cost) if tol_on == "cost" else \
                    max(float(np.max(np.abs(p - q))) for p, q in zip(params, last_good))
                calm = calm + 1 if change < tol else 0
            last_good, prev_cost = params, J
            stop = False
            for cb in callbacks:
                stop = bool(cb.on_epoch_end(net, stats)) or stop
            if tol is not None and calm >= patience:
                outcome = "converged"
                message = f"converged at epoch {epoch}: the {tol_on} changed by less than {tol} " \
                          f"for {patience} epoch(s)"
                break
            if stop:
                outcome, message = "stopped", f"stopped by a callback at epoch {epoch}"
                break
    if outcome == "finished":
        message = f"finished {epochs} epochs"
    result = TrainResult(history, outcome, len(history), updates, time.perf_counter() - t_start,
                         message, diverged_epoch)
    for cb in callbacks:
        cb.on_train_end(net, result)
    return result
