"""K networks of one shape trained as one computation, each exactly as ``train`` trains it.

The K networks' parameters are the rows of one array θ (K, P); W[l] is the view
(K, n[l], n[l-1]) and b[l] the view (K, n[l], 1) of it, and every layer of the forward and
backward pass of docs/math.md is one numpy call over the stack:

    Z[l] = W[l] A[l-1] + b[l]          np.matmul (K, n[l], n[l-1]) @ (K, n[l-1], s)
    dW[l] = dZ[l] A[l-1]ᵀ,  dA[l-1] = W[l]ᵀ dZ[l],  db[l] = row sums of dZ[l]

Each network keeps its own init stream (its Network was drawn from it), its own shuffle stream
(``stream(seed, "shuffle")``, one permutation per epoch, as ``train`` draws it), its own
learning rate, epochs, tolerance, patience and callbacks, and its own outcome: a network that
diverges, converges, finishes or is stopped by a callback leaves the stack at that epoch and
the others go on.

Bit for bit. numpy's matmul over a stack calls the same BLAS routine per slice as over one
2-D matrix (gemm for matrices, gemv for a matrix and a vector, dot for two vectors), and
elementwise ufuncs and row reductions treat each slice as they treat the 2-D array, so each
network's history and final parameters equal those of its own ``train`` call exactly: every
EpochStats value but the wall-clock ``seconds`` and ``elapsed`` (those of the stacked epoch,
which trained all K together). Where ``train`` takes a BLAS dot (‖v‖² of the norms, the
activations' E[a²], the quadratic cost) the stack takes np.matmul of (K, 1, n) by (K, n, 1),
which numpy hands to the same dot; where ``train`` sums with np.add.reduceat or np.sum the
stack reduces each row the same way. The cost comes from where ``train`` takes it
(``losses.output_costs``, per group of equal activations): from β Z[L] for sigmoid + bce and
softmax + cce, with the stable forms' elementwise operations in ``logit_cost``'s order and its
two dots (Y · (M − Z[L]) with Y flattened as np.vdot flattens it), else from Ŷ. tests/nn/test_stack.py checks it over activations,
initializations, optimizers, losses, dtypes and seeds; docs/benchmarks.md says on which numpy
and OpenBLAS it was measured.

Networks with different activations (per layer: name, slope c, β) share a stack: they are
ordered into groups of equal activations, and each activation runs once per group on its
contiguous slice of the stack.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .activations import ACTIVATIONS
from .history import Callback, EpochStats, TrainResult
from .losses import LOSSES, Loss, make_loss
from .network import FlatParams, Network
from .optim import _check_arguments, _non_finite, Schedule
from .rng import stream
from .stackpass import StackPass, StackSpace, group_slices, matmul_dots, stacked_views


@dataclass
class _Member:
    """One network of the stack and its own settings and state."""
    index: int                       # position in the caller's list
    net: Network
    X: np.ndarray                    # (n[0], m)
    Y: np.ndarray                    # (n[L], m)
    rng: np.random.Generator         # its shuffle stream
    lr: float
    epochs: int
    tol: float | None
    tol_on: str
    patience: int
    callbacks: Sequence[Callback]
    history: list[EpochStats] = field(default_factory=list)
    calm: int = 0
    result: TrainResult | None = None


def _each(name: str, value, K: int) -> list:
    """``value`` for each of K networks: a scalar for all, or a list/tuple of K values."""
    if isinstance(value, (list, tuple)):
        if len(value) != K:
            raise ValueError(f"{name} has {len(value)} values for {K} networks; give one "
                             f"value for all or one per network")
        return list(value)
    return [value] * K


def _data(name: str, value, K: int, dtype) -> list[np.ndarray]:
    """One (n, m) array for all networks, or a list/tuple or (K, n, m) array of one each."""
    if isinstance(value, (list, tuple)) or np.ndim(value) == 3:
        arrays = [np.asarray(v, dtype=dtype) for v in value]
        if len(arrays) != K:
            raise ValueError(f"{name} has {len(arrays)} arrays for {K} networks; give one "
                             f"(n, m) array for all or one per network")
        if len({a.shape for a in arrays}) > 1:
            raise ValueError(f"{name}: the networks' arrays need one shape, got "
                             f"{sorted({a.shape for a in arrays})}")
        return arrays
    return [np.asarray(value, dtype=dtype)] * K


def _check_stack(nets: Sequence[Network], loss: Loss) -> None:
    if not nets:
        raise ValueError("train_stacked needs at least one network, got none")
    first = nets[0]
    if len({id(n) for n in nets}) != len(nets):
        raise ValueError("train_stacked got the same Network object more than once; each "
                         "network of a stack needs its own parameters")
    for i, net in enumerate(nets):
        if net.layer_sizes != first.layer_sizes or net.dtype != first.dtype:
            raise ValueError(f"stacked networks need one shape and dtype: nets[{i}] has "
                             f"layer_sizes {net.layer_sizes} ({net.dtype}), nets[0] "
                             f"{first.layer_sizes} ({first.dtype})")
        for l, g in enumerate(net.activations, 1):
            if ACTIVATIONS.get(g.name) is not type(g):
                raise ValueError(f"nets[{i}] layer {l}: activation {type(g).__name__} is not "
                                 f"one of ffexp's ({sorted(ACTIVATIONS)}); stacking runs "
                                 f"only those")
    if LOSSES.get(loss.name) is not type(loss):
        raise ValueError(f"loss {loss!r} is not one of ffexp's ({sorted(LOSSES)}); stacking "
                         f"needs the per-network costs (Loss.costs, Loss.logit_costs) of those")


def train_stacked(nets: Sequence[Network], X, Y, loss: "str | Loss" = "bce", *,
                  optimizer: str = "minibatch", lr=0.1, batch_size: int = 32, epochs=100,
                  tol=None, tol_on="cost", patience=1, seeds=None,
                  callbacks: Sequence[Sequence[Callback]] | None = None,
                  epoch_gradients: str = "full", bookkeeping: bool = True) -> list[TrainResult]:
    """Train the K ``nets`` (one layer_sizes and dtype) in place as one stacked computation;
    their TrainResults in the order given, each equal to what ``train(nets[k], ...)`` with
    the k-th values returns (histories bit for bit but the wall-clock times).

    Args (as ``train``'s, with these per network):
        X, Y: one (n[0], m), (n[L], m) pair for all, or a list (or (K, n, m) array) of K of
            each, of one shape.
        lr, epochs, tol, tol_on, patience: one value for all or a list of K.
        seeds: the shuffle seeds, one for all or a list of K (default: each network's seed).
        callbacks: a list of K lists, network k's callbacks (None: none). Each is called with
            its own network and its own EpochStats; one that asks to stop stops its network.

    Shared by all: loss, optimizer, batch_size, epoch_gradients, bookkeeping.

    Raises ValueError naming what does not fit: networks of another shape or dtype, the same
    Network twice, a list of the wrong length, an activation or loss not ffexp's own, and
    every check ``train`` makes.
    """
    for name, value in (("loss", loss), ("optimizer", optimizer), ("batch_size", batch_size),
                        ("epoch_gradients", epoch_gradients), ("bookkeeping", bookkeeping)):
        if isinstance(value, (list, tuple)):
            raise ValueError(f"{name} is one value for all the stacked networks, got "
                             f"{value!r}; networks with another {name} train in another stack")
    loss = make_loss(loss)
    nets = list(nets)
    _check_stack(nets, loss)
    K, dtype = len(nets), nets[0].dtype
    Xs, Ys = _data("X", X, K, dtype), _data("Y", Y, K, dtype)
    seeds = _each("seeds", seeds, K)
    cbs = [[]] * K if callbacks is None else _each("callbacks", list(callbacks), K)
    members = [_Member(i, net, Xs[i], Ys[i],
                       stream(net.seed if seeds[i] is None else seeds[i], "shuffle"),
                       lr_i, ep, t, t_on, pat, list(cbs[i]))
               for i, (net, lr_i, ep, t, t_on, pat) in enumerate(zip(
                   nets, _each("lr", lr, K), _each("epochs", epochs, K), _each("tol", tol, K),
                   _each("tol_on", tol_on, K), _each("patience", patience, K)))]
    for mb in members:
        _check_arguments(mb.net, mb.X, mb.Y, loss, mb.lr, batch_size, mb.epochs, mb.tol,
                         mb.tol_on, mb.patience, epoch_gradients)
    m = Xs[0].shape[1]
    plan = Schedule.of(optimizer, m, batch_size)
    # networks of equal activations next to each other: each activation runs once per group
    signature = {}
    for mb in members:
        signature.setdefault(_activation_key(mb.net), len(signature))
    members.sort(key=lambda mb: signature[_activation_key(mb.net)])
    for mb in members:
        info = {"optimizer": optimizer, "lr": mb.lr, "batch_size": plan.batch_size,
                "epochs": mb.epochs, "m": m, "loss": loss.name,
                "updates_per_epoch": plan.updates_per_epoch(m)}
        for cb in mb.callbacks:
            cb.on_train_begin(mb.net, info)
    t_start = time.perf_counter()
    _loop(members, loss, plan, bookkeeping, epoch_gradients == "full", t_start)
    return [mb.result for mb in sorted(members, key=lambda mb: mb.index)]


def _activation_key(net: Network) -> tuple:
    return tuple((g.name, getattr(g, "c", None), getattr(g, "beta", None))
                 for g in net.activations)


def _loop(members: list[_Member], loss: Loss, plan: Schedule, bookkeeping: bool, full: bool,
          t_start: float) -> None:
    """Step 0, then the epochs, each network leaving the stack by its own stopping rule."""
    run = _Stack(members, loss, plan, bookkeeping, full)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for epoch in range(max(mb.epochs for mb in members) + 1):
            t0 = time.perf_counter()
            acc = run.updates() if epoch else None
            records = run.record(epoch, acc, t0, t_start)
            change = np.abs(run.theta - run.last_good).max(axis=1) \
                if epoch and any(mb.tol is not None and mb.tol_on == "params"
                                 for mb in run.members) else None
            done = [k for k, (mb, (stats, bad)) in enumerate(zip(run.members, records))
                    if _step(run, k, mb, epoch, stats, bad, change)]
            run.last_good[...] = run.theta
            if done:
                for k in done:
                    _finish(run, k, t_start)
                keep = [k for k in range(len(run.members)) if k not in set(done)]
                if not keep:
                    return
                run = run.subset(keep)


def _step(run: "_Stack", k: int, mb: _Member, epoch: int, stats: EpochStats, bad: str,
          change: np.ndarray | None) -> bool:
    """Network k's end of epoch, as ``optim._loop`` has it; True if it stops here."""
    if bad:
        run.theta[k] = run.last_good[k]
        mb.result = TrainResult(mb.history, "diverged", 0, 0, 0.0, f"diverged at epoch "
                                f"{epoch}: {bad} became non-finite (NaN or inf)", epoch)
        return True
    if mb.tol is not None and epoch:
        delta = abs(stats.cost - mb.history[-1].cost) if mb.tol_on == "cost" else \
            float(change[k])
        mb.calm = mb.calm + 1 if delta < mb.tol else 0
    mb.history.append(stats)
    stop = False
    for cb in mb.callbacks:
        stop = bool(cb.on_epoch_end(mb.net, stats)) or stop
    if mb.tol is not None and mb.calm >= mb.patience:
        mb.result = TrainResult(mb.history, "converged", 0, 0, 0.0, f"converged at epoch "
                                f"{epoch}: the {mb.tol_on} changed by less than {mb.tol} for "
                                f"{mb.patience} epoch(s)")
    elif stop:
        mb.result = TrainResult(mb.history, "stopped", 0, 0, 0.0,
                                f"stopped by a callback at epoch {epoch}")
    elif epoch == mb.epochs:
        mb.result = TrainResult(mb.history, "finished", 0, 0, 0.0, f"finished {epoch} epochs")
    return mb.result is not None


def _finish(run: "_Stack", k: int, t_start: float) -> None:
    """Network k leaves the stack: its parameters become its own flat θ again (a copy of its
    row), its result gets the epochs and updates kept, and its callbacks end."""
    mb, r = run.members[k], run.members[k].result
    FlatParams(mb.net).bind(mb.net)
    trained = r.history[-1].epoch if r.history else 0
    r.epochs, r.seconds = trained, time.perf_counter() - t_start
    r.updates = (trained + bool(r.diverged_epoch)) * len(run.starts)
    for cb in mb.callbacks:
        cb.on_train_end(mb.net, r)


class _Stack:
    """The state of the networks still training: θ, its gradient and the last finite θ as
    (K, P) rows, the stacked workspaces and bookkeeping pass; ``_Trainer``'s counterpart."""

    def __init__(self, members: list[_Member], loss: Loss, plan: Schedule, bookkeeping: bool,
                 full_gradients: bool, theta: np.ndarray | None = None,
                 grad: np.ndarray | None = None, last_good: np.ndarray | None = None,
                 cached: bool = False):
        self.members, self.loss, self.plan = members, loss, plan
        self.bookkeeping, self.full_gradients = bookkeeping, full_gradients
        net = members[0].net
        K, self.L, dtype = len(members), net.L, net.dtype
        m, s = members[0].X.shape[1], plan.batch_size
        self.starts = range(0, m, s)
        self.layout = FlatParams(net)
        if theta is None:
            theta = np.stack([FlatParams(mb.net).bind(mb.net) for mb in members])
        self.theta = theta
        for k, mb in enumerate(members):   # each network reads and writes its row
            mb.net.weights, mb.net.biases = self.layout.views(theta[k])
        self.grad = np.empty_like(theta) if grad is None else grad
        self.scratch = np.empty_like(theta)
        self.last_good = theta.copy() if last_good is None else last_good
        self.W, self.b = stacked_views(self.layout, theta)
        self.dW, self.db = stacked_views(self.layout, self.grad)
        self.lr = np.array([mb.lr for mb in members], dtype=dtype)[:, None]   # (K, 1)
        self.groups = group_slices([mb.net for mb in members], _activation_key)
        self.shared = all(mb.X is members[0].X and mb.Y is members[0].Y for mb in members)
        if self.shared:   # (n, m), broadcast over the stack
            self.X, self.Y = members[0].X, members[0].Y
        else:             # (K, n, m)
            self.X = np.stack([mb.X for mb in members])
            self.Y = np.stack([mb.Y for mb in members])
        self.XT = np.ascontiguousarray(self.X.swapaxes(-1, -2))   # (…, m, n[0])
        self.YT = np.ascontiguousarray(self.Y.swapaxes(-1, -2))
        self.spaces = {k: StackSpace(K, net.layer_sizes, k, dtype)
                       for k in {s, m - (len(self.starts) - 1) * s}}
        # the tensors whose norms an update adds up: [dW1, db1, ..., dWL, dbL, dZ1, ..., dZL],
        # each (K, size) rows of a flat buffer
        params = [self.grad[:, a:a + int(np.prod(shape))]
                  for a, shape in zip(self.layout.starts, self.layout.shapes)]
        self.dots = np.empty((3 * self.L, K, 1, 1), dtype=dtype)
        # per width, each tensor's (K, 1, n) and (K, n, 1) views and its row of ``dots``: one
        # matmul per tensor gives its K dots, as ``matmul_dots``
        self.tensors = {k: [(v[:, None, :], v[:, :, None], self.dots[j]) for j, v in enumerate(
                                params + [ws.dZ_flat[:, a:a + n * k] for a, n in
                                          zip(ws.dZ_starts, net.layer_sizes[1:])])]
                        for k, ws in self.spaces.items()}
        self.reuse = bookkeeping and not plan.shuffle and s == m
        self.full = full_gradients or self.reuse
        self.cached = cached
        if bookkeeping:
            self.full_pass = StackPass(self, self.spaces)

    def subset(self, keep: list[int]) -> "_Stack":
        """The stack of the networks at ``keep`` (θ, gradient and last finite θ carried)."""
        return _Stack([self.members[k] for k in keep], self.loss, self.plan, self.bookkeeping,
                      self.full_gradients, self.theta[keep], self.grad[keep],
                      self.last_good[keep], self.cached)

    # -- the forward and backward pass of the stack ------------------------------------------
    def forward_all(self, X: np.ndarray, ws: StackSpace) -> tuple[list, list]:
        """Z[l], A[l] (K, n[l], k) of the batch X ((n[0], k) shared or (K, n[0], k))."""
        Zs, As = ws.Z, ws.A
        As[0] = X
        for l in range(1, self.L + 1):
            np.matmul(self.W[l - 1], As[l - 1], out=Zs[l])
            Zs[l] += self.b[l - 1]
            for sl, g in self.groups:
                g[l - 1].forward_into(Zs[l][sl], As[l][sl])
        return Zs, As

    def backward(self, Zs: list, As: list, Y: np.ndarray, ws: StackSpace, grads: tuple,
                 m: int | None = None) -> None:
        """dW[l], db[l] into ``grads`` and dZ[l] into the workspace, as ``Network.backward``."""
        L, dZ, (dW, db) = self.L, ws.dZ, grads
        for sl, g in self.groups:
            Ysl = Y if Y.ndim == 2 else Y[sl]
            self.members[sl.start].net.output_error(Ysl, Zs[L][sl], As[L][sl], self.loss,
                                                    out=dZ[L][sl], m=m)
        for l in range(L, 0, -1):
            np.matmul(dZ[l], As[l - 1].swapaxes(-1, -2), out=dW[l - 1])
            np.add.reduce(dZ[l], axis=-1, keepdims=True, out=db[l - 1])
            if l > 1:
                np.matmul(self.W[l - 1].swapaxes(-1, -2), dZ[l], out=dZ[l - 1])
                for sl, g in self.groups:
                    g[l - 2].backward_inplace(dZ[l - 1][sl], Zs[l - 1][sl], As[l - 1][sl])

    # -- an epoch ----------------------------------------------------------------------------
    def updates(self) -> np.ndarray:
        """One pass of gradient descent for every network; (K, 3L) sums over its updates of
        the per-tensor gradient norms when they are tracked."""
        s, theta, grad, scratch = self.plan.batch_size, self.theta, self.grad, self.scratch
        matmul = np.matmul
        norms = self.bookkeeping and not self.full
        m = self.X.shape[-1]
        if self.plan.shuffle:   # each network's own permutation of the examples
            perms = np.stack([mb.rng.permutation(m) for mb in self.members])
            rows = np.arange(len(perms))[:, None]
            Xe = (self.XT[perms] if self.shared else self.XT[rows, perms]).swapaxes(1, 2)
            Ye = (self.YT[perms] if self.shared else self.YT[rows, perms]).swapaxes(1, 2)
        else:
            Xe, Ye = self.X, self.Y
        acc = np.zeros((3 * self.L, len(theta)))
        for i in self.starts:
            if self.cached:   # batch gradient descent: grad is ∂J/∂θ at this θ already
                self.cached = False
            else:
                Xb, Yb = Xe[..., i:i + s], Ye[..., i:i + s]
                ws = self.spaces[Xb.shape[-1]]
                Zs, As = self.forward_all(Xb, ws)
                self.backward(Zs, As, Yb, ws, (self.dW, self.db))
                if norms:
                    for row, col, out in self.tensors[Xb.shape[-1]]:
                        matmul(row, col, out=out)
                    acc += np.sqrt(self.dots[:, :, 0, 0], dtype=np.float64)
            np.multiply(grad, self.lr, out=scratch)
            theta -= scratch
        return acc.T

    def measure(self, epoch: int, acc: np.ndarray | None) -> tuple:
        """(J (K,), activation stats, (‖dW‖, ‖db‖, ‖dZ‖) (K, L) each, their source, what went
        non-finite per network) at the current θ, as ``_Trainer.measure``."""
        L = self.L
        full = self.full or epoch == 0
        J, act, dZ_sq = self.full_pass.run_pass(gradients=full)
        if full:
            np.multiply(self.grad, self.grad, out=self.scratch)
            gp = np.sqrt(np.add.reduceat(self.scratch, self.layout.starts, axis=1))
            gz = np.sqrt(dZ_sq)
            self.cached = self.reuse
        else:
            mean = acc / len(self.starts)
            gp, gz = mean[:, :2 * L], mean[:, 2 * L:]
        finite = np.isfinite(gp).all(axis=1) & np.isfinite(gz).all(axis=1)
        bad = ["" if np.isfinite(j) and ok else "cost" if not np.isfinite(j) else "gradient"
               for j, ok in zip(J, finite)]
        return J, act, (gp[:, 0::2], gp[:, 1::2], gz), "full" if full else "mean", bad

    def record(self, epoch: int, acc: np.ndarray | None, t0: float,
               t_start: float) -> list[tuple[EpochStats, str]]:
        """Each network's (EpochStats, what went non-finite or ''), as ``_Trainer.record``."""
        K, L = len(self.members), self.L
        finite = np.isfinite(self.theta).all(axis=1)
        if self.bookkeeping:
            J, act, grads, source, bad = self.measure(epoch, acc)
        wdots = np.empty((L, K, 1, 1), dtype=self.theta.dtype)
        for l, (a, shape) in enumerate(zip(self.layout.starts[0::2], self.layout.shapes[0::2])):
            matmul_dots(self.theta[:, a:a + int(np.prod(shape))], wdots[l])
        weight_norms = np.sqrt(wdots[:, :, 0, 0], dtype=np.float64).T   # (K, L)
        nan_L, nan_h = np.full(L, np.nan), np.full(L - 1, np.nan)
        now = time.perf_counter()
        out = []
        for k, mb in enumerate(self.members):
            if self.bookkeeping and finite[k]:
                values = (float(J[k]), *(g[k] for g in grads), weight_norms[k],
                          *(a[k] for a in act))
                src, b = source, bad[k]
            else:
                values = (np.nan, nan_L, nan_L, nan_L, weight_norms[k], *(nan_h,) * 4)
                src, b = "", "" if finite[k] else _non_finite(mb.net)
            out.append((EpochStats(epoch, *values, seconds=now - t0, elapsed=now - t_start,
                                   updates=epoch * len(self.starts), gradients=src), b))
        return out

