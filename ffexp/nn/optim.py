"""Gradient descent in the article's three forms, and the training loop (docs/math.md [148-154], [224-237]).

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
from .bookkeeping import FullPass, chunk_width, sq_norms
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


def _norms(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([math.sqrt(np.vdot(a, a)) for a in arrays])


class _Trainer:
    """The state of one training: θ and its gradient as flat vectors (one update is one vector
    operation), preallocated workspaces per batch width (the last batch may be smaller; the
    bookkeeping pass's chunks), the epoch's updates and the record of θ after them.

    Batch gradient descent (one unshuffled batch of all m examples) reuses the bookkeeping
    pass: its forward and backward at θ_e over the whole set are exactly the next update's,
    so the record gets the full gradient at θ_e for free and the update skips both."""

    def __init__(self, net: Network, X, Y, loss: Loss, plan: Schedule, lr: float,
                 rng: np.random.Generator, bookkeeping: bool, full_gradients: bool):
        self.net, self.X, self.Y, self.loss, self.plan, self.lr, self.rng = net, X, Y, loss, plan, lr, rng
        self.bookkeeping = bookkeeping
        m, s = X.shape[1], plan.batch_size
        self.starts = range(0, m, s)
        self.layout = FlatParams(net)
        self.theta = self.layout.bind(net)
        self.grad, self.scratch = np.empty_like(self.theta), np.empty_like(self.theta)
        self.dW, self.db = self.layout.views(self.grad)
        self.spaces = {k: Workspace(net, k) for k in {s, m - (len(self.starts) - 1) * s}}
        # per batch width, flat views v of the tensors whose norms an update adds up,
        # [dW1, db1, ..., dWL, dbL, dZ1, ..., dZL], each with its bound v.dot: math.sqrt of
        # a BLAS dot each is the cheapest way for tensors this small (one reduceat over the
        # squares is slower), and the bound method saves a fifth of the call's overhead
        params = [self.grad[a:a + int(np.prod(shape))]
                  for a, shape in zip(self.layout.starts, self.layout.shapes)]
        self.tensors = {k: [(v.dot, v) for v in params + [
                                ws.dZ_flat[a:a + n * k] for a, n in
                                zip(ws.dZ_starts, net.layer_sizes[1:])]]
                        for k, ws in self.spaces.items()}
        self.XT, self.YT = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
        self.reuse = bookkeeping and not plan.shuffle and s == m
        self.full = full_gradients or self.reuse
        self.cached = False   # grad and the m-wide workspace hold the pass at the current θ
        if bookkeeping:
            self.full_pass = FullPass(net, X, Y, loss, self.layout, self.grad,
                                      chunk_width(net, m, s), self.spaces)

    def updates(self) -> list[float]:
        """One pass of gradient descent; the sums over its updates of the per-tensor gradient
        norms ([W1, b1, ..., WL, bL, Z1, ..., ZL]) when they are tracked."""
        net, loss, lr, s, L = self.net, self.loss, self.lr, self.plan.batch_size, self.net.L
        theta, grad, scratch, sqrt = self.theta, self.grad, self.scratch, math.sqrt
        grads = (self.dW, self.db)
        norms = self.bookkeeping and not self.full
        if self.plan.shuffle:   # rows of the transposes: each batch of columns is contiguous
            perm = self.rng.permutation(self.X.shape[1])
            Xe, Ye = self.XT[perm].T, self.YT[perm].T
        else:
            Xe, Ye = self.X, self.Y
        acc = [0.0] * (3 * L)
        for i in self.starts:
            if self.cached:   # batch gradient descent: grad is ∂J/∂θ at this θ already
                self.cached = False
            else:
                Xb, Yb = Xe[:, i:i + s], Ye[:, i:i + s]
                ws = self.spaces[Xb.shape[1]]
                Zs, As = net.forward_all(Xb, ws)
                net.backward(Zs, As, Yb, loss, ws, grads)
                if norms:
                    j = 0
                    for dot, v in self.tensors[Xb.shape[1]]:
                        acc[j] += sqrt(dot(v))
                        j += 1
            np.multiply(grad, lr, out=scratch)
            theta -= scratch
        return acc

    def measure(self, epoch: int, acc: list | None) -> tuple:
        """(J, activation stats, (‖dW‖, ‖db‖, ‖dZ‖) per layer, their source, what went
        non-finite or '') at the current θ; the gradient norms of the full cost at step 0 and
        with full gradients, else the means over the epoch's updates."""
        full = self.full or epoch == 0
        J, act, dZ_sq = self.full_pass.run(gradients=full)
        if full:
            gp, gz = np.sqrt(sq_norms(self.grad, self.layout.starts, self.scratch)), np.sqrt(dZ_sq)
            self.cached = self.reuse
        else:
            mean = np.array(acc) / len(self.starts)
            gp, gz = mean[:2 * self.net.L], mean[2 * self.net.L:]
        bad = "" if math.isfinite(J) else "cost"
        if not bad and not (np.isfinite(gp).all() and np.isfinite(gz).all()):
            bad = "gradient"
        return J, act, (gp[0::2], gp[1::2], gz), "full" if full else "mean", bad

    def record(self, epoch: int, acc: list | None, t0: float,
               t_start: float) -> tuple[EpochStats, str]:
        """The epoch's EpochStats, measured at θ as it is now (after the epoch's updates; θ_0 at
        step 0) but for ``mean`` gradient norms (over the epoch's updates), and what went
        non-finite ('' if nothing)."""
        net, L = self.net, self.net.L
        bad = "" if np.isfinite(self.theta).all() else _non_finite(net)
        if self.bookkeeping and not bad:
            J, act, grads, source, bad = self.measure(epoch, acc)
        else:
            nan_L, nan_h = np.full(L, np.nan), np.full(L - 1, np.nan)
            J, act, grads, source = math.nan, (nan_h,) * 4, (nan_L,) * 3, ""
        now = time.perf_counter()
        stats = EpochStats(epoch, J, *grads, _norms(net.weights), *act, seconds=now - t0,
                           elapsed=now - t_start, updates=epoch * len(self.starts),
                           gradients=source)
        return stats, bad


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
          epoch_gradients: str = "full", bookkeeping: bool = True) -> TrainResult:
    """Train ``net`` in place on X (n[0], m) and Y (n[L], m) by gradient descent.

    The history starts with step 0, the record of the initial parameters θ_0 before any
    update (cost, full-gradient norms, activation statistics), then one record per epoch e,
    measured at θ_e, the parameters after the epoch's updates (see ``EpochStats`` for
    exactly what each number is measured on).

    Args:
        loss: name of the cost (``mse``, ``bce``, ``cce``) or a Loss.
        optimizer: ``batch``, ``sgd`` or ``minibatch`` (with ``batch_size`` s).
        lr: the learning rate α.
        epochs: the maximum number of passes over the training set.
        tol: stop (``converged``) once the change of the cost (``tol_on="cost"``) or the
            largest change of any parameter (``tol_on="params"``) over an epoch stays below
            tol for ``patience`` consecutive epochs (epoch 1's change is from step 0).
            None: run all epochs.
        seed: the seed of the shuffling stream (default: the network's seed).
        callbacks: called with step 0 and after every epoch with an EpochStats (see
            ``Callback``).
        epoch_gradients: ``full`` (default) — the norms of the full training cost's gradient
            at θ_e, from a backward pass at the epoch's end (batch gradient descent: the next
            update's, for free); ``mean`` — an epoch's gradient norms are the mean over its
            updates of the mini-batch gradients' norms (no backward pass of its own; batch
            gradient descent still gets the full gradient), a different measure, recorded with
            ``EpochStats.gradients = "mean"`` and logged under ``grad_norm_mean/*``. Step 0
            always has the full gradient.
        bookkeeping: False skips the cost, the norms and the activation statistics (the
            EpochStats then hold NaN there) for the fastest possible training.

    Divergence (a non-finite cost, gradient or parameter) stops training at the end of that
    epoch: the result's outcome is ``diverged``, the network keeps its last finite parameters,
    and the diverged epoch is not in the history.
    """
    loss = make_loss(loss)
    X, Y = np.asarray(X, dtype=net.dtype), np.asarray(Y, dtype=net.dtype)
    _check_arguments(net, X, Y, loss, lr, batch_size, epochs, tol, tol_on, patience, epoch_gradients)
    plan = Schedule.of(optimizer, X.shape[1], batch_size)
    run = _Trainer(net, X, Y, loss, plan, lr, stream(net.seed if seed is None else seed, "shuffle"),
                   bookkeeping, epoch_gradients == "full")
    info = {"optimizer": optimizer, "lr": lr, "batch_size": plan.batch_size, "epochs": epochs,
            "m": X.shape[1], "loss": loss.name, "updates_per_epoch": len(run.starts)}
    for cb in callbacks:
        cb.on_train_begin(net, info)
    t_start = time.perf_counter()
    history, outcome, message, diverged = _loop(run, epochs, tol, tol_on, patience, callbacks,
                                                t_start)
    trained = history[-1].epoch if history else 0   # epochs whose updates were kept
    updates = (trained + bool(diverged)) * len(run.starts)
    result = TrainResult(history, outcome, trained, updates, time.perf_counter() - t_start,
                         message, diverged)
    for cb in callbacks:
        cb.on_train_end(net, result)
    return result


def _loop(run: _Trainer, epochs: int, tol, tol_on: str, patience: int,
          callbacks: Sequence[Callback], t_start: float) -> tuple[list, str, str, int | None]:
    """Step 0, then the epochs until one of the stopping rules: (history, outcome, message,
    diverged epoch or None)."""
    history: list[EpochStats] = []
    last_good, calm = run.theta.copy(), 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for epoch in range(epochs + 1):
            t0 = time.perf_counter()
            acc = run.updates() if epoch else None
            stats, bad = run.record(epoch, acc, t0, t_start)
            if bad:
                run.theta[...] = last_good
                return history, "diverged", f"diverged at epoch {epoch}: {bad} became " \
                    f"non-finite (NaN or inf)", epoch
            if tol is not None and epoch:
                change = abs(stats.cost - history[-1].cost) if tol_on == "cost" else \
                    float(np.max(np.abs(run.theta - last_good)))
                calm = calm + 1 if change < tol else 0
            history.append(stats)
            last_good[...] = run.theta
            stop = False
            for cb in callbacks:
                stop = bool(cb.on_epoch_end(run.net, stats)) or stop
            if tol is not None and calm >= patience:
                return history, "converged", f"converged at epoch {epoch}: the {tol_on} " \
                    f"changed by less than {tol} for {patience} epoch(s)", None
            if stop:
                return history, "stopped", f"stopped by a callback at epoch {epoch}", None
    return history, "finished", f"finished {epochs} epochs", None
