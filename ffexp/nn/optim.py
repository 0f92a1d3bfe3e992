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
from .network import FlatParams, Network, Workspace
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
        n = size(m, batch_size)
        # a single batch of all m examples is the same in any order: do not reshuffle, so that
        # mini-batch with s >= m is batch gradient descent bit for bit
        return cls(optimizer, n, shuffle and n < m)

    def updates_per_epoch(self, m: int) -> int:
        return math.ceil(m / self.batch_size)


def _non_finite(net: Network) -> str:
    """The name of the first parameter that is not finite ('' if all are)."""
    for l, (W, b) in enumerate(zip(net.weights, net.biases), 1):
        if not np.isfinite(W).all():
            return f"W[{l}]"
        if not np.isfinite(b).all():
            return f"b[{l}]"
    return ""


def _sq_norms(flat: np.ndarray, starts: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Squared Euclidean norms of the consecutive segments of ``flat`` starting at ``starts``."""
    np.multiply(flat, flat, out=scratch)
    return np.add.reduceat(scratch, starts)


def _norms(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([math.sqrt(np.vdot(a, a)) for a in arrays])


def _activation_stats(net: Network, Zs: list, As: list) -> tuple:
    """Mean, standard deviation, fraction saturated and fraction dead of each hidden layer."""
    hidden = range(1, net.L)
    g = net.activations
    mean = np.array([As[l].mean() for l in hidden])
    # std from E[a²] − E[a]² with a BLAS dot: one fast pass instead of np.std's three
    mean_sq = np.array([np.vdot(As[l], As[l]) / As[l].size for l in hidden])
    return (mean, np.sqrt(np.maximum(mean_sq - mean * mean, 0.0)),
            np.array([g[l - 1].saturated(As[l]) for l in hidden]),
            np.array([g[l - 1].dead(Zs[l]) for l in hidden]))


class _Trainer:
    """The state of one training: θ and its gradient as flat vectors (one update is one vector
    operation), preallocated workspaces per batch width (the last batch may be smaller; the
    full set for the epoch-end pass), and the epoch's two halves: the updates and the
    bookkeeping."""

    def __init__(self, net: Network, X, Y, loss: Loss, plan: Schedule, lr: float,
                 rng: np.random.Generator, bookkeeping: bool, full_gradients: bool):
        self.net, self.X, self.Y, self.loss, self.plan, self.lr, self.rng = net, X, Y, loss, plan, lr, rng
        self.bookkeeping, self.full = bookkeeping, full_gradients
        m, s = X.shape[1], plan.batch_size
        self.starts = range(0, m, s)
        self.layout = FlatParams(net)
        self.theta = self.layout.bind(net)
        self.grad, self.scratch = np.empty_like(self.theta), np.empty_like(self.theta)
        self.dW, self.db = self.layout.views(self.grad)
        widths = {s, m - (len(self.starts) - 1) * s} | ({m} if bookkeeping else set())
        self.spaces = {k: Workspace(net, k) for k in widths}
        self.cached = False   # the full-set workspace holds the forward pass at the current θ
        self.XT, self.YT = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)

    def updates(self) -> tuple[np.ndarray, np.ndarray]:
        """One pass of gradient descent; the sums over its updates of the per-tensor gradient
        norms ([W1, b1, W2, ...] and [Z1, Z2, ...]) when they are tracked."""
        net, loss, lr, s, L = self.net, self.loss, self.lr, self.plan.batch_size, self.net.L
        theta, grad, scratch, starts = self.theta, self.grad, self.scratch, self.layout.starts
        grads = (self.dW, self.db)
        norms = self.bookkeeping and not self.full
        if self.plan.shuffle:   # rows of the transposes: each batch of columns is contiguous
            perm = self.rng.permutation(self.X.shape[1])
            Xe, Ye = self.XT[perm].T, self.YT[perm].T
        else:
            Xe, Ye = self.X, self.Y
        acc_p, acc_z = np.zeros(2 * L), np.zeros(L)
        for i in self.starts:
            Xb, Yb = Xe[:, i:i + s], Ye[:, i:i + s]
            ws = self.spaces[Xb.shape[1]]
            if self.cached:   # batch gradient descent: the last epoch-end pass is this one
                Zs, As, self.cached = ws.Z, ws.A, False
            else:
                Zs, As = net.forward_all(Xb, ws)
            net.backward(Zs, As, Yb, loss, ws, grads)
            if norms:
                acc_p += np.sqrt(_sq_norms(grad, starts, scratch))
                acc_z += np.sqrt(_sq_norms(ws.dZ_flat, ws.dZ_starts, ws.scratch))
            np.multiply(grad, lr, out=scratch)
            theta -= scratch
        return acc_p, acc_z

    def bookkeep(self, acc_p: np.ndarray, acc_z: np.ndarray) -> tuple:
        """(J, activation stats, (‖dW‖, ‖db‖, ‖dZ‖) per layer, what went non-finite or '')
        from one forward pass over the training set (and one backward with full gradients)."""
        net, m = self.net, self.X.shape[1]
        ws = self.spaces[m]
        Zs, As = net.forward_all(self.X, ws)
        J = self.loss.cost(self.Y, As[-1])
        act = _activation_stats(net, Zs, As)
        if self.full:
            net.backward(Zs, As, self.Y, self.loss, ws, (self.dW, self.db))
            acc_p = np.sqrt(_sq_norms(self.grad, self.layout.starts, self.scratch))
            acc_z = np.sqrt(_sq_norms(ws.dZ_flat, ws.dZ_starts, ws.scratch))
        else:
            acc_p, acc_z = acc_p / len(self.starts), acc_z / len(self.starts)
            self.cached = not self.plan.shuffle and self.plan.batch_size == m
        bad = "" if math.isfinite(J) else "cost"
        if not bad and not (np.isfinite(acc_p).all() and np.isfinite(acc_z).all()):
            bad = "gradient"
        return J, act, (acc_p[0::2], acc_p[1::2], acc_z), bad


def _check_arguments(net: Network, X, Y, loss: Loss, lr, batch_size, epochs, tol, tol_on,
                     patience, epoch_gradients) -> None:
    checks.check_pair(net.activations[-1], loss)
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
                      UserWarning, stacklevel=3)


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
    X, Y = np.asarray(X, dtype=net.dtype), np.asarray(Y, dtype=net.dtype)
    _check_arguments(net, X, Y, loss, lr, batch_size, epochs, tol, tol_on, patience, epoch_gradients)
    m, L = X.shape[1], net.L
    plan = Schedule.of(optimizer, m, batch_size)
    run = _Trainer(net, X, Y, loss, plan, lr, stream(net.seed if seed is None else seed, "shuffle"),
                   bookkeeping, epoch_gradients == "full")
    info = {"optimizer": optimizer, "lr": lr, "batch_size": plan.batch_size, "epochs": epochs,
            "m": m, "loss": loss.name, "updates_per_epoch": len(run.starts)}
    for cb in callbacks:
        cb.on_train_begin(net, info)

    nan_L, nan_h = np.full(L, np.nan), np.full(L - 1, np.nan)
    history: list[EpochStats] = []
    outcome, message, diverged_epoch, calm = "finished", f"finished {epochs} epochs", None, 0
    last_good, prev_cost = run.theta.copy(), math.nan
    t_start = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            acc_p, acc_z = run.updates()
            bad = "" if np.isfinite(run.theta).all() else _non_finite(net)
            if bookkeeping:
                J, act, (gW, gb, gZ), bad_stats = run.bookkeep(acc_p, acc_z)
                bad = bad or bad_stats
            else:
                J, act, (gW, gb, gZ) = math.nan, (nan_h,) * 4, (nan_L,) * 3
            if bad:
                outcome, diverged_epoch = "diverged", epoch
                message = f"diverged at epoch {epoch}: {bad} became non-finite (NaN or inf)"
                run.theta[...] = last_good
                break
            now = time.perf_counter()
            stats = EpochStats(epoch, J, gW, gb, gZ, _norms(net.weights), *act, seconds=now - t0,
                               elapsed=now - t_start, updates=epoch * len(run.starts))
            history.append(stats)
            if tol is not None:
                change = abs(J - prev_cost) if tol_on == "cost" else \
                    float(np.max(np.abs(run.theta - last_good)))
                calm = calm + 1 if change < tol else 0
            last_good[...], prev_cost = run.theta, J
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
    updates = (len(history) + (diverged_epoch is not None)) * len(run.starts)
    result = TrainResult(history, outcome, len(history), updates, time.perf_counter() - t_start,
                         message, diverged_epoch)
    for cb in callbacks:
        cb.on_train_end(net, result)
    return result
