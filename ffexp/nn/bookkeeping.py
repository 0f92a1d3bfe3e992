"""The bookkeeping pass: what one record of the history measures at the current parameters θ.

One pass over the whole training set X (n[0], m), Y (n[L], m), taken in chunks of k columns so
that its memory does not grow with m (a workspace as wide as the training set is 2 GB at
m = 1e6 for a 2-64-64-1 network), gives exactly what one pass over all m columns would:

- the cost J(θ) = (1/m) Σ_i L(y(i), ŷ(i)): the chunks' mean costs weighted by k/m;
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
"""

from __future__ import annotations

import numpy as np

from .losses import Loss
from .network import FlatParams, Network, Workspace

#: the bytes a chunk's workspace (Z, A, dZ and a scratch row for every layer) may take: its
#: Z and A then stay in a core's L2 cache (e.g. 1016 columns of a 2-64-64-1 network)
CHUNK_BYTES = 4 << 20


def chunk_width(net: Network, m: int, batch_size: int, budget: int = CHUNK_BYTES) -> int:
    """Columns per chunk: all m for a single batch (its workspace exists already), else as
    many as fit in ``budget`` bytes (at least 1)."""
    if batch_size >= m:
        return m
    per_column = 4 * sum(net.layer_sizes[1:]) * net.dtype.itemsize
    return max(1, min(m, budget // per_column))


def sq_norms(flat: np.ndarray, starts: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Squared Euclidean norms of the consecutive segments of ``flat`` starting at ``starts``."""
    np.multiply(flat, flat, out=scratch)
    return np.add.reduceat(scratch, starts)


class FullPass:
    """The bookkeeping pass over (X, Y) in chunks of ``width`` columns.

    The full gradient goes into ``grad`` (θ's flat layout): with one chunk the back-propagation
    writes it there directly, and the workspace keeps that chunk's forward pass, so batch
    gradient descent can take its next update from them (``Trainer``). ``spaces`` is the
    trainer's dict of workspaces by width, shared so that equal widths share one."""

    def __init__(self, net: Network, X: np.ndarray, Y: np.ndarray, loss: Loss,
                 layout: FlatParams, grad: np.ndarray, width: int, spaces: dict):
        self.net, self.X, self.Y, self.loss, self.width = net, X, Y, loss, width
        m = X.shape[1]
        self.chunks = range(0, m, width)
        self.grad = grad
        self.part = grad if len(self.chunks) == 1 else np.empty_like(grad)
        self.views, self.part_views = layout.views(grad), layout.views(self.part)
        for k in {width, m - (len(self.chunks) - 1) * width}:
            if k not in spaces:
                spaces[k] = Workspace(net, k)
        self.spaces = spaces

    def run(self, gradients: bool) -> tuple[float, tuple, np.ndarray | None]:
        """(J, (mean, std, saturated, dead) per hidden layer, ‖∂J/∂Z[l]‖² per layer or None);
        with ``gradients`` the full ∂J/∂θ is in ``grad`` afterwards."""
        net, loss, X, Y, w = self.net, self.loss, self.X, self.Y, self.width
        m, L, g = X.shape[1], net.L, net.activations
        cost, sums, squares, saturated = 0.0, np.zeros(L - 1), np.zeros(L - 1), np.zeros(L - 1)
        inactive = [np.ones(n, dtype=bool) for n in net.layer_sizes[1:-1]]
        dZ_sq = np.zeros(L) if gradients else None
        for i in self.chunks:
            Xc, Yc = X[:, i:i + w], Y[:, i:i + w]
            ws = self.spaces[Xc.shape[1]]
            share = Xc.shape[1] / m   # k/m; exactly 1.0 for a single chunk
            Zs, As = net.forward_all(Xc, ws)
            cost += loss.cost(Yc, As[-1]) * share
            for l in range(1, L):
                A, units = As[l], g[l - 1]
                rows = A.sum(axis=1)   # Σ over the chunk's examples, per unit
                sums[l - 1] += rows.sum()
                # E[a²] with a BLAS dot: one fast pass instead of np.std's three
                squares[l - 1] += np.vdot(A, A)
                saturated[l - 1] += units.saturated(A) * share
                if units.can_die:
                    inactive[l - 1] &= units.inactive(Zs[l], rows)
            if gradients:
                grads = self.views if i == 0 else self.part_views
                net.backward(Zs, As, Yc, loss, ws, grads, m=m)
                if i:
                    self.grad += self.part
                dZ_sq += sq_norms(ws.dZ_flat, ws.dZ_starts, ws.scratch)
        sizes = np.array(net.layer_sizes[1:-1], dtype=float) * m
        mean = sums / sizes
        std = np.sqrt(np.maximum(squares / sizes - mean * mean, 0.0))
        dead = np.array([float(np.mean(inactive[l])) if g[l].can_die else 0.0
                         for l in range(L - 1)])
        return cost, (mean, std, saturated, dead), dZ_sq
