"""The bookkeeping pass (ffexp.nn.bookkeeping) of K stacked networks, each as its own.

Everything ``FullPass`` measures at θ, for the K rows of a stack at once: the cost J, the
activation statistics of every hidden layer, and with ``gradients`` the full ∂J/∂θ and
‖∂J/∂Z[l]‖²; the same chunks of the training set, the same span of the output layer, the same
BLAS calls per slice, so each network's numbers equal its own pass's bit for bit
(ffexp.nn.stack says why). The cost of each group of equal activations (``stack_costs``) comes
from β Z[L] or Ŷ as ``losses.output_cost`` chooses for its output. Arrays carry the stack on axis 0: Z[l], A[l] (K, n[l], k),
per-network results (K,) or (K, layers).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .bookkeeping import chunk_width, span_width
from .losses import has_logit_cost, output_costs
from .network import FlatParams, Network


def matmul_dots(V: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out[k] = v_k · v_k for the rows v_k of V (K, n), out (K, 1, 1): numpy's matmul of
    (1, n) by (n, 1) is the BLAS dot that np.vdot and ndarray.dot take for one vector."""
    return np.matmul(V[:, None, :], V[:, :, None], out=out)


def stacked_views(layout: FlatParams, flat: np.ndarray) -> tuple[list, list]:
    """Lists (W-shaped, b-shaped) of (K, …) views of the rows of ``flat`` (K, P)."""
    K = len(flat)
    parts = [flat[:, a:a + int(np.prod(shape))].reshape(K, *shape)
             for a, shape in zip(layout.starts, layout.shapes)]
    return parts[0::2], parts[1::2]


def group_slices(nets: Sequence[Network], key: Callable) -> list[tuple[slice, list]]:
    """(slice of the stack, activations for l = 1..L) for each run of networks with equal
    ``key``: an activation's call covers its whole run."""
    groups: list[tuple[slice, list]] = []
    start = 0
    for k in range(1, len(nets) + 1):
        if k == len(nets) or key(nets[k]) != key(nets[start]):
            groups.append((slice(start, k), nets[start].activations))
            start = k
    return groups


def stack_costs(loss, groups: list, Y: np.ndarray, Z: np.ndarray,
                A: np.ndarray | None) -> np.ndarray:
    """J (K,) of the stack's output layer Z = Z[L], A = Ŷ (K, n[L], k) against Y ((n[L], k)
    shared or (K, n[L], k)): each group's ``losses.output_costs`` with its output activation."""
    J = np.empty(len(Z))
    for sl, g in groups:
        J[sl] = output_costs(loss, g[-1], Y if Y.ndim == 2 else Y[sl], Z[sl],
                             None if A is None else A[sl])
    return J


class StackSpace:
    """``Workspace`` for K networks and k columns: Z[l], A[l], dZ[l] (K, n[l], k), the dZ[l]
    views of one (K, Σ n[l]·k) buffer laid out per row as a Workspace's flat dZ."""

    def __init__(self, K: int, layer_sizes: Sequence[int], k: int, dtype):
        sizes = list(layer_sizes[1:])
        self.k = k
        self.Z = [None] + [np.empty((K, n, k), dtype=dtype) for n in sizes]
        self.A = [None] + [np.empty((K, n, k), dtype=dtype) for n in sizes]
        self.dZ_flat = np.empty((K, sum(sizes) * k), dtype=dtype)
        self.scratch = np.empty_like(self.dZ_flat)
        self.dZ_starts = np.cumsum([0] + [n * k for n in sizes[:-1]])
        self.dZ = [None] + [self.dZ_flat[:, s:s + n * k].reshape(K, n, k)
                            for s, n in zip(self.dZ_starts, sizes)]


class _StackFolded:
    """``Folded`` for K networks: A[l] (K, n[l] + 1, k) with a last row of ones."""

    def __init__(self, K: int, net: Network, k: int):
        sizes = net.layer_sizes
        self.A = [np.ones((K, n + 1, k), dtype=net.dtype) for n in sizes[:-1]]
        self.Z = np.empty((K, sizes[-1], k), dtype=net.dtype)
        self.zeros = np.zeros((max(sizes[1:-1], default=0), k), dtype=net.dtype)


class _StackStats:
    """``_Stats`` for K networks: the running sums per network, (K, n[l]) or (K, layers)."""

    def __init__(self, K: int, net: Network, groups: list, ones: np.ndarray):
        sizes = net.layer_sizes[1:-1]
        self.K, self.sizes, self.groups, self.ones = K, sizes, groups, ones
        self.rows = [np.zeros((K, n)) for n in sizes]   # Σ a per unit so far, in float64
        self.chunk_rows = [np.empty((K, n), dtype=net.dtype) for n in sizes]
        self.squares, self.saturated = np.zeros((K, len(sizes))), np.zeros((K, len(sizes)))
        self.inactive = [np.ones((K, n), dtype=bool) for n in sizes]
        self.dots = np.empty((K, 1, 1), dtype=net.dtype)

    def before(self, l: int, Z: np.ndarray) -> None:
        """Hidden layer l's chunk Z (K, n[l], k) before its activation (leaky ReLU's dead)."""
        for sl, g in self.groups:
            units = g[l - 1]
            if units.can_die and not units.inactive_from_sums:
                self.inactive[l - 1][sl] &= units.inactive(Z[sl])

    def add(self, l: int, A: np.ndarray, share: float) -> None:
        """Hidden layer l's chunk A (K, n[l], k), k/m of the set."""
        j = l - 1
        self.rows[j] += np.matmul(A, self.ones[:A.shape[-1]], out=self.chunk_rows[j])
        matmul_dots(A.reshape(self.K, -1), self.dots)
        self.squares[:, j] += self.dots[:, 0, 0]
        for sl, g in self.groups:
            mask = g[j].saturated_mask(A[sl])
            if mask is not None:   # the fraction of each slice, as np.mean of it
                self.saturated[sl, j] += mask.reshape(len(mask), -1).mean(axis=1) * share

    def result(self, m: int) -> tuple:
        """(mean, std, saturated, dead), each (K, L - 1)."""
        sizes = np.array(self.sizes, dtype=float) * m
        sums = [rows.sum(axis=1) for rows in self.rows]
        mean = (np.stack(sums, axis=1) if sums else np.zeros((self.K, 0))) / sizes
        std = np.sqrt(np.maximum(self.squares / sizes - mean * mean, 0.0))
        dead = np.zeros((self.K, len(self.sizes)))
        for sl, g in self.groups:
            for j, units in enumerate(g[:-1]):
                if units.can_die:
                    inactive = units.inactive(None, self.rows[j][sl]) \
                        if units.inactive_from_sums else self.inactive[j][sl]
                    dead[sl, j] = inactive.mean(axis=1)
        return mean, std, self.saturated, dead


class StackPass:
    """``FullPass`` over the stack ``run`` (ffexp.nn.stack._Stack): its X, Y, θ views, its
    gradient buffer and its forward and backward pass; ``spaces`` its workspaces by width."""

    def __init__(self, run, spaces: dict):   # run: the _Stack
        net = run.members[0].net
        K, m = len(run.theta), run.X.shape[-1]
        self.stack, self.net, self.K = run, net, K
        self.width = width = chunk_width(net, m, run.plan.batch_size)
        self.chunks = range(0, m, width)
        self.part = run.grad if len(self.chunks) == 1 else np.empty_like(run.grad)
        self.views = (run.dW, run.db)
        self.part_views = stacked_views(run.layout, self.part)
        widths = {width, m - (len(self.chunks) - 1) * width}
        for k in widths:
            if k not in spaces:
                spaces[k] = StackSpace(K, net.layer_sizes, k, net.dtype)
        self.spaces = spaces
        self.folded = {k: _StackFolded(K, net, k) for k in widths}
        self.ones = np.ones(width, dtype=net.dtype)
        self.span = span_width(net, m, width)
        self.Z_out = np.empty((K, net.layer_sizes[-1], self.span), dtype=net.dtype)
        self.A_out = np.empty_like(self.Z_out)

    def run_pass(self, gradients: bool) -> tuple:
        """(J (K,), (mean, std, saturated, dead) (K, L - 1) each, ‖∂J/∂Z[l]‖² (K, L) or
        None); with ``gradients`` the full ∂J/∂θ is in the stack's gradient afterwards."""
        stats = _StackStats(self.K, self.net, self.stack.groups, self.ones)
        cost, dZ_sq = self._backprop(stats) if gradients else (self._forward(stats), None)
        return cost, stats.result(self.stack.X.shape[-1]), dZ_sq

    def _backprop(self, stats: _StackStats) -> tuple[np.ndarray, np.ndarray]:
        run, w = self.stack, self.width
        X, Y, L = run.X, run.Y, run.L
        m = X.shape[-1]
        cost, dZ_sq = np.zeros(self.K), np.zeros((self.K, L))
        for i in self.chunks:
            Xc, Yc = X[..., i:i + w], Y[..., i:i + w]
            k = Xc.shape[-1]
            ws = self.spaces[k]
            share = k / m   # exactly 1.0 for a single chunk
            Zs, As = run.forward_all(Xc, ws)
            cost += stack_costs(run.loss, run.groups, Yc, Zs[L], As[L]) * share
            for l in range(1, L):
                stats.before(l, Zs[l])
                stats.add(l, As[l], share)
            run.backward(Zs, As, Yc, ws, self.views if i == 0 else self.part_views, m=m)
            if i:
                run.grad += self.part
            np.multiply(ws.dZ_flat, ws.dZ_flat, out=ws.scratch)
            dZ_sq += np.add.reduceat(ws.scratch, ws.dZ_starts, axis=1)
        return cost, dZ_sq

    def _forward(self, stats: _StackStats) -> np.ndarray:
        """The forward products alone, biases folded (``Folded``): J (K,)."""
        run, w, span = self.stack, self.width, self.span
        X, L = run.X, run.L
        m = X.shape[-1]
        Wb = [np.concatenate((W, b), axis=2) for W, b in zip(run.W, run.b)]
        cost = np.zeros(self.K)
        for i in self.chunks:
            k = min(w, m - i)
            f = self.folded[k]
            f.A[0][:, :-1] = X[..., i:i + k]
            for l in range(1, L):
                A = f.A[l][:, :-1]
                np.matmul(Wb[l - 1], f.A[l - 1], out=A)   # Z[l], A[l] once activated
                stats.before(l, A)
                for sl, g in run.groups:
                    g[l - 1].forward_into(A[sl], A[sl], f.zeros[:A.shape[1]])
                stats.add(l, A, k / m)
            np.matmul(Wb[L - 1], f.A[L - 1], out=f.Z)
            j = i % span
            self.Z_out[:, :, j:j + k] = f.Z
            if j + k == span or i + k == m:
                cost += self._span_cost(i - j, j + k)
        return cost

    def _span_cost(self, start: int, k: int) -> np.ndarray:
        """The span of k columns from ``start``, its Z[L] in Z_out: (K,) mean costs times k/m."""
        run = self.stack
        Z, A = self.Z_out[:, :, :k], self.A_out[:, :, :k]
        for sl, g in run.groups:
            if not has_logit_cost(run.loss, g[-1]):   # the matched cross-entropies need Z alone
                g[-1].forward_into(Z[sl], A[sl])
        return stack_costs(run.loss, run.groups, run.Y[..., start:start + k], Z, A) \
            * (k / run.X.shape[-1])
