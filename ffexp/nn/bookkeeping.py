"""The bookkeeping pass: what one record of the history measures at the current parameters θ.

One pass over the whole training set X (n[0], m), Y (n[L], m), taken in chunks of k columns so
that its memory does not grow with m (a workspace as wide as the training set is 2 GB at
m = 1e6 for a 2-64-64-1 network), gives exactly what one pass over all m columns would:

- the cost J(θ) = (1/m) Σ_i L(y(i), ŷ(i)): the chunks' (or spans', below) mean costs
  weighted by k/m, each from the output layer's Z[L] and Ŷ (``losses.output_cost``: from β Z[L]
  for sigmoid + bce and softmax + cce);
- per hidden layer l, over its n[l] × m activations a = A[l]: the mean E[a], the standard
  deviation sqrt(E[a²] − E[a]²), the fraction saturated (sigmoid outside [0.01, 0.99],
  |tanh| > 0.99) and the fraction of dead units (ReLU / leaky ReLU units with z ≤ 0 for
  every one of the m examples);
- with ``gradients``: ∂J/∂W[l] and ∂J/∂b[l] of the full cost J — the sums of the chunks'
  back-propagations, each with dZ[L] normalized by the full m — and the squared norms
  ‖∂J/∂Z[l]‖²_F = Σ_chunks ‖dZ_chunk[l]‖², where ∂J/∂Z[l] is the n[l] × m matrix of the full
  cost (its columns carry the 1/m of the mean).

Chunked and unchunked agree to rounding (1e-12 relative, tested). Batch gradient descent
takes one chunk of all m columns: its training workspace is that wide anyway.

Without gradients (every record of ``epoch_gradients="mean"`` but step 0, except batch gradient
descent) the pass is the
forward products and what the record needs of their results, nothing else (docs/benchmarks.md
has its cost against a mini-batch epoch): the biases are folded into the products
(``Folded``), a chunk's row sums are one matrix-vector product, and the output layer's
activation and the cost, elementwise work on n[L] rows only, run once per span of many
chunks (``span_width``) instead of once per chunk, where the per-call overhead outweighed
the arithmetic.
"""

from __future__ import annotations

import numpy as np

from .losses import Loss, has_logit_cost, output_cost
from .network import FlatParams, Network, Workspace

#: the bytes a chunk's workspace (Z, A, dZ and a scratch row for every layer) may take: its
#: Z and A then stay in a core's L2 cache (e.g. 1016 columns of a 2-64-64-1 network)
CHUNK_BYTES = 4 << 20
#: the bytes of one row block of output-layer values (Z[L] or A[L]) over a span of chunks
SPAN_BYTES = 512 << 10


def chunk_width(net: Network, m: int, batch_size: int, budget: int = CHUNK_BYTES) -> int:
    """Columns per chunk: all m for a single batch (its workspace exists already), else as
    many as fit in ``budget`` bytes (at least 1)."""
    if batch_size >= m:
        return m
    per_column = 4 * sum(net.layer_sizes[1:]) * net.dtype.itemsize
    return max(1, min(m, budget // per_column))


def span_width(net: Network, m: int, width: int, budget: int = SPAN_BYTES) -> int:
    """Columns per span of the output layer: whole chunks of ``width``, as many as fit its
    n[L] rows in ``budget`` bytes (at least one chunk, at most m)."""
    per_chunk = net.layer_sizes[-1] * width * net.dtype.itemsize
    return min(m, width * max(1, budget // per_chunk))


def sq_norms(flat: np.ndarray, starts: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Squared Euclidean norms of the consecutive segments of ``flat`` starting at ``starts``."""
    np.multiply(flat, flat, out=scratch)
    return np.add.reduceat(scratch, starts)


class Folded:
    """Buffers of a forward pass over k columns with the biases folded into the products.

    A[l-1] carries a last row of ones, so Z[l] = [W[l] | b[l]] [A[l-1]; 1] is one matrix
    product (one more column of W: +1/n[l-1] of the work) instead of a product and a pass
    that adds b[l] to every column. A[0] = [X; 1] is the chunk copied in (n[0] rows). A hidden
    layer's Z[l] is computed into A[l]'s rows and its activation applied in place: nothing
    reads Z[l] afterwards (the dead units that need it are counted before), and the chunk's
    buffers stay a third smaller, nearer the core's L2 cache. Z holds the output layer's;
    ``zeros`` (its first n[l] rows) is what a ReLU layer compares against (``forward_into``)."""

    def __init__(self, net: Network, k: int):
        sizes = net.layer_sizes
        self.A = [np.ones((n + 1, k), dtype=net.dtype) for n in sizes[:-1]]   # A[0..L-1]
        self.Z = np.empty((sizes[-1], k), dtype=net.dtype)
        self.zeros = np.zeros((max(sizes[1:-1], default=0), k), dtype=net.dtype)


class _Stats:
    """The running sums of the activation statistics over the chunks of one pass."""

    def __init__(self, net: Network, ones: np.ndarray):
        h, sizes = net.L - 1, net.layer_sizes[1:-1]
        self.units, self.ones = net.activations[:h], ones
        self.rows = [np.zeros(n) for n in sizes]   # Σ a per unit so far, in float64
        self.chunk_rows = [np.empty(n, dtype=net.dtype) for n in sizes]
        self.squares, self.saturated = [0.0] * h, [0.0] * h
        self.inactive = [np.ones(n, dtype=bool) for n in sizes]

    def before(self, l: int, Z: np.ndarray) -> None:
        """Hidden layer l's chunk Z (n[l], k) before its activation: the dead units where
        they need Z (leaky ReLU; ReLU's come from the row sums of A at the end)."""
        units = self.units[l - 1]
        if units.can_die and not units.inactive_from_sums:
            self.inactive[l - 1] &= units.inactive(Z)

    def add(self, l: int, A: np.ndarray, share: float) -> None:
        """Hidden layer l's chunk A (n[l], k), k/m of the set."""
        j = l - 1
        # Σ over the chunk's examples per unit: a BLAS matrix-vector product
        self.rows[j] += np.matmul(A, self.ones[:A.shape[1]], out=self.chunk_rows[j])
        # E[a²] with a BLAS dot: one fast pass instead of np.std's three
        self.squares[j] += float(np.vdot(A, A))
        self.saturated[j] += self.units[j].saturated(A) * share

    def result(self, net: Network, m: int) -> tuple:
        """(mean, std, saturated, dead) per hidden layer."""
        sizes = np.array(net.layer_sizes[1:-1], dtype=float) * m
        mean = np.array([float(rows.sum()) for rows in self.rows]) / sizes
        std = np.sqrt(np.maximum(np.array(self.squares) / sizes - mean * mean, 0.0))
        dead = np.zeros(len(self.units))
        for j, units in enumerate(self.units):
            if units.can_die:
                inactive = units.inactive(None, self.rows[j]) if units.inactive_from_sums \
                    else self.inactive[j]
                dead[j] = float(np.mean(inactive))
        return mean, std, np.array(self.saturated), dead


class FullPass:
    """The bookkeeping pass over (X, Y) in chunks of ``width`` columns.

    The full gradient goes into ``grad`` (θ's flat layout): with one chunk the back-propagation
    writes it there directly, and the workspace keeps that chunk's forward pass, so batch
    gradient descent can take its next update from them (``Trainer``). ``spaces`` is the
    trainer's dict of workspaces by width, shared so that equal widths share one. Without
    gradients the pass has buffers of its own (``Folded``, the output spans Z_out, A_out)."""

    def __init__(self, net: Network, X: np.ndarray, Y: np.ndarray, loss: Loss,
                 layout: FlatParams, grad: np.ndarray, width: int, spaces: dict):
        self.net, self.X, self.Y, self.loss, self.width = net, X, Y, loss, width
        m = X.shape[1]
        self.chunks = range(0, m, width)
        self.grad = grad
        self.part = grad if len(self.chunks) == 1 else np.empty_like(grad)
        self.views, self.part_views = layout.views(grad), layout.views(self.part)
        widths = {width, m - (len(self.chunks) - 1) * width}
        for k in widths:
            if k not in spaces:
                spaces[k] = Workspace(net, k)
        self.spaces = spaces
        self.folded = {k: Folded(net, k) for k in widths}
        self.ones = np.ones(width, dtype=net.dtype)
        self.span = span_width(net, m, width)
        self.Z_out = np.empty((net.layer_sizes[-1], self.span), dtype=net.dtype)
        self.A_out = np.empty_like(self.Z_out)

    def run(self, gradients: bool) -> tuple[float, tuple, np.ndarray | None]:
        """(J, (mean, std, saturated, dead) per hidden layer, ‖∂J/∂Z[l]‖² per layer or None);
        with ``gradients`` the full ∂J/∂θ is in ``grad`` afterwards."""
        stats = _Stats(self.net, self.ones)
        cost, dZ_sq = self._backprop(stats) if gradients else (self._forward(stats), None)
        return cost, stats.result(self.net, self.X.shape[1]), dZ_sq

    def _backprop(self, stats: _Stats) -> tuple[float, np.ndarray]:
        """Forward and backward through the network's own workspaces: (J, ‖∂J/∂Z[l]‖²)."""
        net, loss, X, Y, w = self.net, self.loss, self.X, self.Y, self.width
        m, L = X.shape[1], net.L
        cost, dZ_sq = 0.0, np.zeros(L)
        for i in self.chunks:
            Xc, Yc = X[:, i:i + w], Y[:, i:i + w]
            ws = self.spaces[Xc.shape[1]]
            share = Xc.shape[1] / m   # k/m; exactly 1.0 for a single chunk
            Zs, As = net.forward_all(Xc, ws)
            cost += output_cost(loss, net.activations[-1], Yc, Zs[L], As[L]) * share
            for l in range(1, L):
                stats.before(l, Zs[l])
                stats.add(l, As[l], share)
            grads = self.views if i == 0 else self.part_views
            net.backward(Zs, As, Yc, loss, ws, grads, m=m)
            if i:
                self.grad += self.part
            dZ_sq += sq_norms(ws.dZ_flat, ws.dZ_starts, ws.scratch)
        return cost, dZ_sq

    def _forward(self, stats: _Stats) -> float:
        """The forward products alone, biases folded (``Folded``): J."""
        net, X, w, span = self.net, self.X, self.width, self.span
        m, L, g = X.shape[1], net.L, net.activations
        Wb = [np.concatenate((W, b), axis=1) for W, b in zip(net.weights, net.biases)]
        Z_out = self.Z_out
        cost = 0.0
        for i in self.chunks:
            k = min(w, m - i)
            f = self.folded[k]
            f.A[0][:-1] = X[:, i:i + k]
            for l in range(1, L):
                A = f.A[l][:-1]
                np.matmul(Wb[l - 1], f.A[l - 1], out=A)   # Z[l], A[l] once activated
                stats.before(l, A)
                g[l - 1].forward_into(A, A, f.zeros[:A.shape[0]])
                stats.add(l, A, k / m)
            Z = f.Z
            np.matmul(Wb[L - 1], f.A[L - 1], out=Z)
            j = i % span   # where the chunk's columns go in the span
            Z_out[:, j:j + k] = Z
            if j + k == span or i + k == m:
                cost += self._span_cost(i - j, j + k)
        return cost

    def _span_cost(self, start: int, k: int) -> float:
        """The span of k columns from ``start``, its Z[L] in Z_out: its mean cost times k/m."""
        Z, A, g = self.Z_out[:, :k], self.A_out[:, :k], self.net.activations[-1]
        if not has_logit_cost(self.loss, g):   # the matched cross-entropies need Z alone
            g.forward_into(Z, A)
        return output_cost(self.loss, g, self.Y[:, start:start + k], Z, A) * (k / self.X.shape[1])
