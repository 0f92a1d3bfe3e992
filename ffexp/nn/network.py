"""The feedforward network in the article's notation (docs/math.md).

Layers l = 0..L; layer 0 is the input. Examples are columns: X is (n[0], m).
W[l] is (n[l], n[l-1]) and b[l] is (n[l], 1); for a batch

    Z[l] = W[l] A[l-1] + b[l],   A[l] = g[l](Z[l]),   A[0] = X,   Ŷ = A[L].

Backward, with dZ[l] = ∂J/∂Z[l] of the mean cost J (so dZ carries the 1/m of the mean):

    dZ[L] = (Ŷ − Y)/m for a matched output/loss pair, else g[L]'ᵀ ∂J/∂Ŷ
    dW[l] = dZ[l] A[l-1]ᵀ,  db[l] = row sums of dZ[l],  dZ[l-1] = (W[l]ᵀ dZ[l]) ⊙ g[l-1]'(Z[l-1])

Python lists are 0-based: ``net.weights[l - 1]`` is W[l]. In the per-layer lists returned by
``forward_all``, index l is layer l (index 0 holds X, or None for Z).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import checks
from .activations import HIDDEN_ACTIVATIONS, Activation, make_activation
from .initializers import DISTRIBUTIONS, INITIALIZERS
from .losses import Loss, make_loss, output_cost, uses_shortcut
from .rng import stream

DTYPES = {"float64": np.float64, "float32": np.float32}


class Network:
    """A fully connected feedforward network.

    Args:
        layer_sizes: [n[0], n[1], ..., n[L]], input size first, output size last.
        hidden_activation: name of g[l] for l = 1..L-1 (see ``ACTIVATIONS``).
        output_activation: name of g[L].
        init: weight initialization, one of ``INITIALIZERS``.
        seed: the seed; the weights come from its ``init`` stream only.
        activations: optional per-layer names for l = 1..L, overriding the two above.
        slope: the c of ``linear`` and ``leaky_relu`` hidden layers (default 1 and 0.01); the
            output layer is never sloped.
        beta: the β of a softmax output, a = softmax(β z), or of a sigmoid output, σ(β z)
            (the softmax of (z, 0)); default 1. Other outputs take none.
        init_distribution: ``normal`` or ``uniform``.
        init_scale: the scale of ``random`` init (default 0.01).
        output_gain: W[L] is multiplied by it after the draw (default 1), e.g. to saturate
            the output layer alone.
        bias_init: the constant every bias starts at (default 0).
        dtype: ``float64`` (default) or ``float32``.
    """

    def __init__(self, layer_sizes: Sequence[int], hidden_activation: str = "relu",
                 output_activation: str = "sigmoid", init: str = "he", seed: int = 0, *,
                 activations: Sequence[str] | None = None, slope: float | None = None,
                 beta: float = 1.0, init_distribution: str = "normal", init_scale: float = 0.01,
                 output_gain: float = 1.0, bias_init: float = 0.0, dtype: str = "float64"):
        sizes = list(layer_sizes)
        if len(sizes) < 2:
            raise ValueError(f"layer_sizes needs an input and an output size, got {sizes!r}")
        self.layer_sizes = [checks.positive_int(f"layer_sizes[{i}]", n) for i, n in enumerate(sizes)]
        L = len(sizes) - 1
        names = list(activations) if activations is not None else \
            [hidden_activation] * (L - 1) + [output_activation]
        if len(names) != L:
            raise ValueError(f"activations needs one name per layer 1..L={L}, got {len(names)}")
        for l, name in enumerate(names[:-1], start=1):
            if name == "softmax":
                raise ValueError(f"softmax is for the output layer only, not hidden layer {l}; "
                                 f"hidden activations: {list(HIDDEN_ACTIVATIONS)}")
        # the slope c is the hidden layers'; the output layer keeps the plain form (c = 1 for a
        # linear output, so regression's quadratic cost keeps its shortcut) and takes β
        self.activations: list[Activation] = [make_activation(n, c=slope) for n in names[:-1]]
        if beta != 1.0 and names[-1] not in ("softmax", "sigmoid"):
            raise ValueError(f"beta={beta!r} is the temperature of a softmax or sigmoid output, "
                             f"but the output activation is {names[-1]!r}")
        self.activations.append(make_activation(names[-1], beta=beta))
        checks.one_of("init", init, INITIALIZERS)
        checks.one_of("init distribution", init_distribution, DISTRIBUTIONS)
        checks.one_of("dtype", str(np.dtype(dtype)) if dtype in (np.float32, np.float64) else dtype,
                      DTYPES)
        if init == "random":
            checks.positive_float("init scale", init_scale)
        checks.finite_float("output gain", output_gain)
        self.dtype = np.dtype(dtype)
        self.init, self.seed = init, int(seed)
        self.init_distribution, self.init_scale = init_distribution, float(init_scale)
        rng = stream(self.seed, "init")
        draw = INITIALIZERS[init]
        self.weights: list[np.ndarray] = [
            draw(rng, n_in, n_out, init_distribution, init_scale).astype(self.dtype)
            for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        if output_gain != 1.0:
            self.weights[-1] *= self.dtype.type(output_gain)
        self.biases: list[np.ndarray] = [np.full((n, 1), bias_init, dtype=self.dtype) for n in sizes[1:]]

    # -- shape ----------------------------------------------------------------------------
    @property
    def L(self) -> int:
        """Number of layers, the input not counted."""
        return len(self.layer_sizes) - 1

    @property
    def n_parameters(self) -> int:
        return sum(W.size + b.size for W, b in zip(self.weights, self.biases))

    def __repr__(self) -> str:
        acts = ",".join(a.name for a in self.activations)
        return f"Network({self.layer_sizes}, activations=[{acts}], init={self.init!r})"

    # -- forward --------------------------------------------------------------------------
    def forward(self, X: np.ndarray) -> np.ndarray:
        """Ŷ = A[L] for X of shape (n[0], m); returns (n[L], m)."""
        A = X
        for W, b, g in zip(self.weights, self.biases, self.activations):
            A = g.forward(W @ A + b)
        return A

    def forward_output(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Z[L], Ŷ = A[L]) for X of shape (n[0], m), both (n[L], m)."""
        A = X
        for W, b, g in zip(self.weights[:-1], self.biases[:-1], self.activations[:-1]):
            A = g.forward(W @ A + b)
        Z = self.weights[-1] @ A + self.biases[-1]
        return Z, self.activations[-1].forward(Z)

    def cost(self, X: np.ndarray, Y: np.ndarray, loss: "str | Loss") -> float:
        """J = (1/m) Σ_i L(y(i), ŷ(i)) over the columns of X, Y (``losses.output_cost``: from
        β Z[L] for sigmoid + bce and softmax + cce)."""
        loss = make_loss(loss)
        Z, Yhat = self.forward_output(X)
        return output_cost(loss, self.activations[-1], Y, Z, Yhat)

    def forward_all(self, X: np.ndarray, ws: "Workspace | None" = None) -> tuple[list, list]:
        """(Z, A) with Z[l], A[l] for l = 0..L (Z[0] is None, A[0] = X).

        With a Workspace of width m the arrays are its buffers, overwritten by the next call;
        without one they are new arrays."""
        if ws is None or ws.k != X.shape[1]:
            ws = Workspace(self, X.shape[1])
        Zs, As = ws.Z, ws.A
        As[0] = X
        for l in range(1, self.L + 1):
            np.matmul(self.weights[l - 1], As[l - 1], out=Zs[l])   # (n[l], m)
            Zs[l] += self.biases[l - 1]
            self.activations[l - 1].forward_into(Zs[l], As[l])
        return Zs, As

    # -- backward -------------------------------------------------------------------------
    def output_error(self, Y: np.ndarray, Z_L: np.ndarray, Yhat: np.ndarray, loss: Loss,
                     out: np.ndarray | None = None, m: int | None = None) -> np.ndarray:
        """dZ[L] = ∂J/∂Z[L]: the shortcut β (Ŷ − Y)/m for matched pairs, else the chain rule.

        m is the number of examples J averages over: by default the k columns of Y; a chunk
        of a larger set passes the set's m, so that the chunks' gradients add up to J's.
        Y, Z_L, Ŷ may be stacks (K, n[L], k) of networks of this output layer (Y also (n[L], k)
        shared): each slice comes out as its own call would."""
        if out is None:
            out = np.empty_like(Yhat)
        g, k = self.activations[-1], Y.shape[-1]
        if uses_shortcut(loss, g):
            np.subtract(Yhat, Y, out=out)
            out *= getattr(g, "beta", 1.0) / (m or k)
        else:
            out[...] = g.backward(loss.grad(Y, Yhat), Z_L, Yhat)   # carries 1/k
            if m and m != k:
                out *= k / m
        return out

    def backward(self, Zs: list, As: list, Y: np.ndarray, loss: Loss,
                 ws: "Workspace | None" = None, grads: tuple | None = None,
                 m: int | None = None):
        """Backpropagation over a batch. Returns lists (dW, db, dZ) for l = 1..L.

        ``ws`` (the Workspace of the forward pass) and ``grads`` (lists of dW, db buffers)
        let the training step run without allocating; ``m`` as in ``output_error``."""
        L = self.L
        dZ = ws.dZ if ws is not None else [None] + [np.empty_like(Z) for Z in Zs[1:]]
        dW, db = grads if grads is not None else (
            [np.empty_like(W) for W in self.weights], [np.empty_like(b) for b in self.biases])
        self.output_error(Y, Zs[L], As[L], loss, out=dZ[L], m=m)
        for l in range(L, 0, -1):
            np.matmul(dZ[l], As[l - 1].T, out=dW[l - 1])            # (n[l], n[l-1])
            np.add.reduce(dZ[l], axis=1, keepdims=True, out=db[l - 1])  # (n[l], 1)
            if l > 1:
                np.matmul(self.weights[l - 1].T, dZ[l], out=dZ[l - 1])  # dA[l-1]
                self.activations[l - 2].backward_inplace(dZ[l - 1], Zs[l - 1], As[l - 1])
        return dW, db, dZ[1:]

    def gradients(self, X: np.ndarray, Y: np.ndarray, loss: "str | Loss"):
        """(J, dW, db): the mean cost over the columns of X and ∂J/∂W[l], ∂J/∂b[l], l = 1..L."""
        loss = make_loss(loss)
        checks.check_pair(self.activations[-1], loss)
        checks.check_data(X, Y, self.layer_sizes[0], self.layer_sizes[-1], loss)
        Zs, As = self.forward_all(X)
        dW, db, _ = self.backward(Zs, As, Y, loss)
        return output_cost(loss, self.activations[-1], Y, Zs[-1], As[-1]), dW, db

    # -- parameters -----------------------------------------------------------------------
    def get_params(self) -> list[np.ndarray]:
        """Copies of [W[1], b[1], ..., W[L], b[L]]."""
        return [p.copy() for pair in zip(self.weights, self.biases) for p in pair]

    def set_params(self, params: Sequence[np.ndarray]) -> None:
        """Set from the list ``get_params`` returns (copied in place)."""
        for l in range(self.L):
            self.weights[l][...] = params[2 * l]
            self.biases[l][...] = params[2 * l + 1]

    def save(self, path) -> None:
        """Parameters and architecture to an .npz (loadable with allow_pickle=False)."""
        arrays = {f"W{l}": W for l, W in enumerate(self.weights, 1)}
        arrays.update({f"b{l}": b for l, b in enumerate(self.biases, 1)})
        np.savez(path, layer_sizes=np.array(self.layer_sizes),
                 activations=np.array([a.name for a in self.activations]),
                 slopes=np.array([getattr(a, "c", np.nan) for a in self.activations]),
                 betas=np.array([getattr(a, "beta", np.nan) for a in self.activations]),
                 **arrays)

    @classmethod
    def load(cls, path) -> "Network":
        """A network saved by ``save``."""
        with np.load(path, allow_pickle=False) as f:
            sizes = f["layer_sizes"].tolist()
            names = [str(n) for n in f["activations"]]
            net = cls(sizes, activations=names, init="zeros", dtype=str(f["W1"].dtype))
            for l, (a, c, beta) in enumerate(zip(net.activations, f["slopes"], f["betas"])):
                if hasattr(a, "c"):
                    a.c = float(c)
                if hasattr(a, "beta") and np.isfinite(beta):   # files before sigmoid's β: NaN
                    a.beta = float(beta)
            net.weights = [f[f"W{l}"] for l in range(1, net.L + 1)]
            net.biases = [f[f"b{l}"] for l in range(1, net.L + 1)]
        return net


class Workspace:
    """Preallocated Z[l], A[l] and dZ[l] buffers for batches of k examples.

    Reusing them keeps allocation out of the training step: numpy's arrays of a full batch
    are large enough that each fresh allocation costs page faults. The dZ[l] are views of
    one flat buffer, so their norms can be taken in one reduction."""

    def __init__(self, net: Network, k: int):
        self.k = k
        sizes = net.layer_sizes[1:]
        self.Z = [None] + [np.empty((n, k), dtype=net.dtype) for n in sizes]
        self.A = [None] + [np.empty((n, k), dtype=net.dtype) for n in sizes]
        self.dZ_flat = np.empty(sum(sizes) * k, dtype=net.dtype)
        self.scratch = np.empty_like(self.dZ_flat)
        self.dZ_starts = np.cumsum([0] + [n * k for n in sizes[:-1]])
        self.dZ = [None] + [self.dZ_flat[s:s + n * k].reshape(n, k)
                            for s, n in zip(self.dZ_starts, sizes)]


class FlatParams:
    """All of a network's parameters in one flat vector θ = [W[1], b[1], ..., W[L], b[L]].

    ``bind`` makes the network's weights and biases views of θ, so an update of every
    parameter is one vector operation, and ``views`` lays gradients out the same way."""

    def __init__(self, net: Network):
        shapes = [p.shape for pair in zip(net.weights, net.biases) for p in pair]
        sizes = [int(np.prod(s)) for s in shapes]
        self.shapes, self.starts = shapes, np.cumsum([0] + sizes[:-1])
        self.size = sum(sizes)
        self.dtype = net.dtype

    def views(self, flat: np.ndarray) -> tuple[list, list]:
        """Lists (W-shaped, b-shaped) of views of ``flat``."""
        parts = [flat[s:s + int(np.prod(shape))].reshape(shape)
                 for s, shape in zip(self.starts, self.shapes)]
        return parts[0::2], parts[1::2]

    def bind(self, net: Network) -> np.ndarray:
        """θ holding the network's current parameters; the network now reads and writes θ."""
        theta = np.concatenate([p.ravel() for pair in zip(net.weights, net.biases) for p in pair])
        theta = theta.astype(self.dtype, copy=False)
        net.weights, net.biases = self.views(theta)
        return theta
